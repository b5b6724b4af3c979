"""What `metadata.yml` and the plugin's `get_metadata` tell a reader of the Datasette site: a
description of every table and column, of `changes.db` and of the snapshot files alike, and the
canned queries across runs (the records changed most often, each school's latest counts), each
answering with the numbers the archive holds."""

from __future__ import annotations

import sqlite3
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from helpers_diff import sim_snapshot
from helpers_serve import Archive, build_archive, get, save_diff

from snapshotter.archive.layout import read_snapshot_info
from snapshotter.archive.people import headline
from snapshotter.datasette.app import load_metadata, make_datasette
from snapshotter.datasette.descriptions import (
    ENTITY_DESCRIPTIONS,
    FIELD_DESCRIPTIONS,
    GENERIC_FIELD,
    field_description,
)
from snapshotter.model import ENTITIES


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    return build_archive(tmp_path_factory.mktemp("archive"))


@pytest.fixture(scope="module")
def site(archive: Archive) -> Any:
    return make_datasette(archive.path)


def _rows(site: Any, query: str) -> list[dict[str, Any]]:
    response = get(site, f"/changes/{query}.json?_shape=array")
    assert response.status_code == 200, response.text
    return response.json()


def _columns(database: Path) -> dict[str, list[str]]:
    """Each table and view of a SQLite file, and its columns."""
    with closing(sqlite3.connect(database)) as conn:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                "AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {
            name: [row[1] for row in conn.execute(f'PRAGMA table_info("{name}")')] for name in names
        }


def test_every_table_view_and_column_of_changes_db_is_described(archive: Archive) -> None:
    described = load_metadata()["databases"]["changes"]["tables"]
    for table, columns in _columns(archive.path / "changes.db").items():
        assert described.get(table, {}).get("description"), f"{table} has no description"
        missing = [c for c in columns if c not in described[table].get("columns", {})]
        assert missing == [], f"{table}: columns without a description"


def test_every_table_and_column_of_a_snapshot_file_is_described(
    archive: Archive, site: Any
) -> None:
    snapshot = archive.snapshots[-1]
    assert get(site, f"/{snapshot.stem}").status_code == 200  # attached as a person opens it
    described = site.metadata("databases")[snapshot.stem]["tables"]
    for table, columns in _columns(snapshot).items():
        assert described.get(table, {}).get("description"), f"{table} has no description"
        missing = [c for c in columns if c not in described[table].get("columns", {})]
        assert missing == [], f"{table}: columns without a description"


def test_each_field_of_the_entity_model_has_words_of_its_own() -> None:
    for entity in ENTITIES:
        for name in (*entity.scalars, *entity.arrays):
            assert field_description(entity, name) != GENERIC_FIELD.format(field=name), (
                f"{entity.collection}.{name}: add it to FIELD_DESCRIPTIONS"
            )
    assert set(ENTITY_DESCRIPTIONS) == {entity.collection for entity in ENTITIES}


def test_a_snapshot_table_page_shows_what_the_table_and_its_columns_hold(
    archive: Archive, site: Any
) -> None:
    html = get(site, f"/{archive.snapshots[0].stem}/users").text
    assert "Pupils, staff and contacts: one row per person, whatever their role." in html
    assert '<dl class="column-descriptions">' in html
    assert "<dt>familyName</dt><dd>Surname.</dd>" in html
    assert "<dt>_hash</dt>" in html
    assert FIELD_DESCRIPTIONS[("users", "role")] in html
    # The site's own metadata page still answers, snapshots included.
    metadata = get(site, "/-/metadata.json")
    assert metadata.status_code == 200
    assert archive.snapshots[0].stem in metadata.json()["databases"]


def test_a_changes_db_table_page_shows_its_column_descriptions(site: Any) -> None:
    html = get(site, "/changes/leavers").text
    # The licence a page shows is the data's: children's personal data is licensed to no one.
    assert "Personal data of pupils, staff and contacts: not for publication or reuse" in html
    assert "Apache" not in html.split("Data source")[0]
    assert "<dt>evidence</dt><dd>soft (marked tobedeleted), hard (removed)" in html


def _times_changed(changes_db: Path) -> Counter[tuple[str, str, str]]:
    """How many snapshots each record changed in, counted in Python from the saved changes."""
    with closing(sqlite3.connect(changes_db)) as conn:
        seen = set(
            conn.execute(
                "SELECT d.estab, r.entity, r.sourcedId, d.new_snapshot FROM changed_records r "
                "JOIN diff_runs d ON d.id = r.run_id WHERE r.change <> 'touched'"
            )
        )
    return Counter(key[:3] for key in seen)


def test_the_records_changed_most_often_come_first_with_how_often(
    archive: Archive, site: Any
) -> None:
    rows = _rows(site, "records_changed_most_often")
    times = _times_changed(archive.path / "changes.db")
    assert rows[0]["times_changed"] == max(times.values()) > 1
    for row in rows:
        assert row["times_changed"] == times[(row["estab"], row["entity"], row["sourcedId"])]
        assert row["label"]
    shown = [row["times_changed"] for row in rows]
    assert shown == sorted(shown, reverse=True)
    assert len(rows) == min(100, len(times))


def test_a_diff_saved_again_over_the_same_snapshots_does_not_count_twice(tmp_path: Path) -> None:
    first, second, third = (sim_snapshot(tmp_path, term, pupils=30) for term in range(3))
    save_diff(first, second, tmp_path)
    save_diff(second, third, tmp_path)
    save_diff(first, third, tmp_path)  # a wider window, ending at the same snapshot
    rows = _rows(make_datasette(tmp_path), "records_changed_most_often")
    # Counted per diff run, a record that changed in each term would count 3 times.
    assert rows[0]["times_changed"] == 2
    times = _times_changed(tmp_path / "changes.db")
    assert all(
        row["times_changed"] == times[(row["estab"], row["entity"], row["sourcedId"])]
        for row in rows
    )


def test_each_schools_latest_counts_are_its_latest_snapshots_and_latest_reports(
    archive: Archive, site: Any
) -> None:
    rows = _rows(site, "latest_counts_by_school")
    assert [row["estab"] for row in rows] == ["3281110"]  # the other school was never compared
    (row,) = rows
    latest = read_snapshot_info(archive.snapshots[-1])
    assert row["latest_snapshot"] == archive.snapshots[-1].stem
    assert row["school_name"] == "Quarrendon Academy"
    assert {entity: row[entity] for entity in latest.record_counts} == latest.record_counts
    run_id = archive.run_ids[-1]
    assert row["latest_run"] == run_id
    with closing(sqlite3.connect(archive.path / "changes.db")) as conn:
        people = headline(conn, run_id)
    for name in ("joiners", "leavers", "purged"):
        assert row[name] == people[name]["total"], name
    for name in ("year_group_changes", "class_moves", "identity_changes"):
        assert row[name] == people[name], name
