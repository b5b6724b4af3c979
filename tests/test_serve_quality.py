"""The data-quality page of a snapshot (`/-/snapshotter/quality/<name>`), and the links to it
from the home and run pages, through `datasette.client` against the serve tests' archive plus
snapshots with the simulator's planted problems: one kept by a saved diff, one never checked
(with markup in a name and an email)."""

from __future__ import annotations

import html as html_lib
import json
import re
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers_diff import edited, term_time, write_snapshot
from helpers_serve import Archive, build_archive, get, save_diff

from snapshotter.archive.layout import read_snapshot_info
from snapshotter.cli import cli
from snapshotter.datasette.app import make_datasette
from snapshotter.datasette.quality_pages import SHOWN_PER_RULE
from snapshotter.quality.store import kept_check
from snapshotter.sim.problems import planted_problems
from snapshotter.sim.school import generate

PUPILS = 150
HOSTILE_GIVEN = "<script>alert('given')</script>"
HOSTILE_EMAIL = "<b>not@an address</b>"
MANY_BAD_EMAILS = SHOWN_PER_RULE + 5


@dataclass(frozen=True)
class Planted:
    archive: Archive
    kept: Path  # planted problems, kept by a saved diff from the last term
    unchecked: Path  # planted problems, markup and many bad emails: never checked
    run_id: int  # last term -> kept


def _unchecked_school() -> dict[str, list[dict[str, Any]]]:
    school = generate(pupils=PUPILS, term=3, plant_problems=True)
    pupils = [u for u in school["users"] if u["role"] == "student" and u["status"] == "active"]
    school = edited(
        school, "users", pupils[0]["sourcedId"], givenName=HOSTILE_GIVEN, email=HOSTILE_EMAIL
    )
    for number, pupil in enumerate(pupils[1:MANY_BAD_EMAILS]):
        school = edited(school, "users", pupil["sourcedId"], email=f"no address {number}")
    return school


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Planted:
    archive = build_archive(tmp_path_factory.mktemp("archive"))
    taken = term_time(3)
    kept = write_snapshot(
        archive.path,
        generate(pupils=PUPILS, term=3, plant_problems=True),
        taken_at=taken.replace(day=16),
    )
    run_id = save_diff(archive.snapshots[-1], kept, archive.path)
    kept_check(archive.path / "changes.db", read_snapshot_info(kept))  # as its fetch would
    unchecked = write_snapshot(archive.path, _unchecked_school(), taken_at=taken.replace(day=17))
    return Planted(archive, kept, unchecked, run_id)


@pytest.fixture(scope="module")
def site(planted: Planted) -> Any:
    return make_datasette(planted.archive.path)


def check_json(archive: Path, snapshot: Path) -> dict[str, Any]:
    result = CliRunner().invoke(
        cli,
        ["check", "--archive", str(archive), "--no-save", "--format", "json", str(snapshot)],
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def shown_findings(html: str) -> set[tuple[str, str, str]]:
    """(rule, entity, sourcedId) of every finding row on the page, by its section."""
    found = set()
    for rule, body in re.findall(
        r'<section class="rule-findings" id="rule-[^"]+" data-rule="([^"]+)">(.*?)</section>',
        html,
        re.S,
    ):
        for entity, sid in re.findall(
            r'<tr class="finding" data-entity="([^"]+)" data-sourced-id="([^"]*)">', body
        ):
            found.add((rule, entity, html_lib.unescape(sid)))
    return found


COUNT_ROW = r'<tr class="rule-count" data-rule="([^"]+)">.*?<td class="count">(\d+)</td>'


def shown_counts(html: str) -> dict[str, int]:
    return {rule: int(n) for rule, n in re.findall(COUNT_ROW, html, re.S)}


def test_the_page_lists_exactly_the_findings_check_gives_by_rule(
    planted: Planted, site: Any
) -> None:
    response = get(site, f"/-/snapshotter/quality/{planted.kept.stem}")
    assert response.status_code == 200, response.text
    page = response.text
    expected = check_json(planted.archive.path, planted.kept)
    assert shown_findings(page) == {
        (f["rule"], f["entity"], f["sourcedId"]) for f in expected["findings"]
    }
    assert shown_counts(page) == expected["counts"]
    truth = planted_problems(pupils=PUPILS, term=3)
    assert {(r, s) for r, _, s in shown_findings(page)} >= {
        (rule, sid) for rule, ids in truth.items() for sid in ids
    }
    assert "not kept yet" not in page
    assert "Quarrendon Academy" in page and planted.kept.stem in page  # provenance


def test_each_sourced_id_links_to_its_history(planted: Planted, site: Any) -> None:
    page = get(site, f"/-/snapshotter/quality/{planted.kept.stem}").text
    rows = re.findall(
        r'<tr class="finding" data-entity="([^"]+)" data-sourced-id="([^"]+)">.*?'
        r'<a class="history" href="([^"]+)">',
        page,
        re.S,
    )
    assert rows
    for entity, sid, href in rows:
        assert href == f"/-/snapshotter/history/3281110/{entity}/{sid}"
    entity, sid, href = next(r for r in rows if r[0] == "users")
    history = get(site, href)
    assert history.status_code == 200 and sid in history.text


def test_the_trend_table_shows_the_kept_counts_of_each_checked_snapshot(
    planted: Planted, site: Any
) -> None:
    page = get(site, f"/-/snapshotter/quality/{planted.kept.stem}").text
    with closing(sqlite3.connect(planted.archive.path / "changes.db")) as conn:
        kept = {
            name: json.loads(counts)
            for name, counts in conn.execute(
                "SELECT snapshot_name, counts FROM quality_checks WHERE estab = '3281110' "
                "ORDER BY taken_at"
            )
        }
    assert len(kept) == 5  # terms 0 to 3, and the planted one
    trend = re.search(r'<table class="rows-and-columns quality-trend">(.*?)</table>', page, re.S)
    assert trend
    columns = re.findall(r'<th class="snapshot[^"]*" data-snapshot="([^"]+)">', trend[1])
    # The never-checked snapshot is not in the trend: only kept checks, and this one.
    assert columns == list(kept)
    marked = re.findall(r'<th class="snapshot this-snapshot" data-snapshot="([^"]+)">', trend[1])
    assert marked == [planted.kept.stem]
    for rule, row in re.findall(
        r'<tr class="trend" data-rule="([^"]+)">(.*?)</tr>', trend[1], re.S
    ):
        numbers = [int(n) for n in re.findall(r'<td class="n[^"]*"[^>]*>(\d+)</td>', row)]
        assert numbers == [kept[name][rule] for name in columns], rule
        assert "<svg" in row and "http" not in row.replace("http://www.w3.org", "")


def test_a_never_checked_snapshot_is_checked_for_the_page_and_nothing_is_written(
    planted: Planted, site: Any
) -> None:
    changes_db = planted.archive.path / "changes.db"
    before = changes_db.read_bytes()
    response = get(site, f"/-/snapshotter/quality/{planted.unchecked.stem}")
    assert response.status_code == 200, response.text
    page = response.text
    assert changes_db.read_bytes() == before
    assert "not kept yet" in page
    assert f"snapshotter check {planted.unchecked.stem}</code> keeps it" in page
    expected = check_json(planted.archive.path, planted.unchecked)
    shown = shown_findings(page)
    # Each rule shows at most SHOWN_PER_RULE: the rest are counted, not listed.
    bad_emails = [f for f in expected["findings"] if f["rule"] == "invalid-email"]
    assert len(bad_emails) > SHOWN_PER_RULE
    assert len({s for r, _, s in shown if r == "invalid-email"}) == SHOWN_PER_RULE
    assert f"… and {len(bad_emails) - SHOWN_PER_RULE} more" in page
    assert shown == {
        (f["rule"], f["entity"], f["sourcedId"])
        for f in expected["findings"]
        if f["rule"] != "invalid-email"
    } | {(r, e, s) for r, e, s in shown if r == "invalid-email"}
    assert shown_counts(page) == expected["counts"]


def test_provider_markup_is_escaped(planted: Planted, site: Any) -> None:
    page = get(site, f"/-/snapshotter/quality/{planted.unchecked.stem}").text
    assert "<script>alert('given')" not in page and "<b>not@an" not in page
    assert "&lt;script&gt;alert(" in page
    assert "&lt;b&gt;not@an address&lt;/b&gt;" in page


def test_more_than_a_rules_cap_links_to_the_kept_findings_in_datasette(
    planted: Planted, tmp_path: Path
) -> None:
    """Kept (unlike the shared archive's), the capped rule links to Datasette's table view."""
    archive = tmp_path
    snapshot = write_snapshot(archive, _unchecked_school(), taken_at=term_time(3))
    result = CliRunner().invoke(cli, ["check", "--archive", str(archive), str(snapshot)])
    assert result.exit_code == 0, result.output
    site = make_datasette(archive)
    page = get(site, f"/-/snapshotter/quality/{snapshot.stem}").text
    link = re.search(r'… and (\d+) more: <a href="([^"]+)">see them all</a>', page)
    assert link, "no link to the rest"
    assert link[2].startswith("/changes/quality_findings?check_id=")
    table = get(
        site, link[2].replace("quality_findings?", "quality_findings.json?").replace("&amp;", "&")
    )
    assert table.status_code == 200, table.text
    assert table.json()["filtered_table_rows_count"] == MANY_BAD_EMAILS
    assert int(link[1]) == MANY_BAD_EMAILS - SHOWN_PER_RULE


@pytest.mark.parametrize(
    "name", ["3281110_2020-01-01T000000Z", "nothing-like-a-snapshot", "changes"]
)
def test_an_unknown_snapshot_is_not_found(site: Any, name: str) -> None:
    response = get(site, f"/-/snapshotter/quality/{name}")
    assert response.status_code == 404


def test_the_home_page_links_each_snapshot_to_its_quality_page_with_kept_counts(
    planted: Planted, site: Any
) -> None:
    page = get(site, "/").text
    expected = check_json(planted.archive.path, planted.kept)
    errors = sum(1 for f in expected["findings"] if f["severity"] == "error")
    warnings = sum(1 for f in expected["findings"] if f["severity"] == "warning")
    assert (
        f'<a href="/-/snapshotter/quality/{planted.kept.stem}">{errors} errors, '
        f"{warnings} warnings</a>"
    ) in page
    assert f'<a href="/-/snapshotter/quality/{planted.unchecked.stem}">data quality</a>' in page


def test_the_run_page_counts_new_and_fixed_problems_and_links_both_quality_pages(
    planted: Planted, site: Any
) -> None:
    page = get(site, f"/-/snapshotter/runs/{planted.run_id}").text
    truth = planted_problems(pupils=PUPILS, term=3)
    old = check_json(planted.archive.path, planted.archive.snapshots[-1])
    new = check_json(planted.archive.path, planted.kept)

    def keys(document: dict[str, Any]) -> set[tuple[str, str, str]]:
        return {(f["rule"], f["entity"], f["sourcedId"]) for f in document["findings"]}

    added, fixed = len(keys(new) - keys(old)), len(keys(old) - keys(new))
    assert added >= sum(len(ids) for ids in truth.values())
    assert f"{added} new data problems, {fixed} fixed." in page
    for snapshot in (planted.archive.snapshots[-1], planted.kept):
        assert f'href="/-/snapshotter/quality/{snapshot.stem}"' in page
