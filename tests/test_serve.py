"""The Datasette site over an archive (`snapshotter serve`): its pages, canned queries and
refusals, through `datasette.client` against snapshots of the simulated school (three terms and
a rollover, each diff saved as `snapshotter diff` saves it)."""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers_diff import sim_snapshot
from helpers_serve import HOSTILE_ESTAB, Archive, build_archive, get, serving
from helpers_serve import save_diff as _diff

from snapshotter.archive.layout import read_snapshot_info
from snapshotter.archive.people import headline
from snapshotter.cli import cli
from snapshotter.datasette.app import make_datasette
from snapshotter.datasette.plugin import QUERY_NAMES
from snapshotter.loopback import is_loopback


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    return build_archive(tmp_path_factory.mktemp("archive"))


@pytest.fixture(scope="module")
def site(archive: Archive) -> Any:
    return make_datasette(archive.path)


def _headline(archive: Archive, run_id: int) -> dict[str, Any]:
    with closing(sqlite3.connect(archive.path / "changes.db")) as conn:
        return headline(conn, run_id)


def _cells(html: str, row_pattern: str) -> dict[str, int]:
    """The numeric cells (`<td class="NAME">N</td>`) of the first table row matching."""
    row = re.search(row_pattern + r".*?</tr>", html, re.S)
    assert row, f"no row {row_pattern}"
    return {name: int(n) for name, n in re.findall(r'<td class="(\w+)">(\d+)</td>', row[0])}


HEADLINE_CELLS = ("joiners", "leavers", "purged")
COUNT_CELLS = ("year_group_changes", "class_moves", "identity_changes")


def _expected_cells(people: dict[str, Any]) -> dict[str, int]:
    cells = {name: people[name]["total"] for name in HEADLINE_CELLS}
    cells.update({name: people[name] for name in COUNT_CELLS})
    return cells


def test_the_home_page_lists_each_snapshot_and_each_run_with_the_clis_people_counts(
    archive: Archive, site: Any
) -> None:
    response = get(site, "/")
    assert response.status_code == 200
    html = response.text
    assert "Quarrendon Academy" in html
    for path in archive.snapshots:
        assert f'href="/{path.stem}"' in html, f"{path.name} is not listed"
    assert "2027-10-15 08:30:00 UTC" in html  # the rollover snapshot's time, as people read it
    for run_id in archive.run_ids:
        shown = _cells(html, f'<tr class="run" data-run-id="{run_id}">')
        expected = _expected_cells(_headline(archive, run_id))
        assert {k: v for k, v in shown.items() if k in expected} == expected
    # The rollover has people in every column worth a look.
    rollover = _headline(archive, archive.run_ids[-1])
    assert rollover["year_group_changes"] > 100 and rollover["leavers"]["total"] > 0


def test_a_change_report_shows_the_headline_both_snapshots_and_links_each_count(
    archive: Archive, site: Any
) -> None:
    run_id = archive.run_ids[-1]
    html = get(site, f"/-/snapshotter/runs/{run_id}").text
    assert _cells(html, '<tbody><tr>\\s*<td class="joiners">') == _expected_cells(
        _headline(archive, run_id)
    )
    old, new = (read_snapshot_info(p) for p in archive.snapshots[-2:])
    for info in (old, new):
        assert info.path.stem in html and info.content_hash in html
    assert "Volume: expected at a new school year" in html
    assert "of enrollments (1664 of 1682) removed" in html
    links = re.findall(r'<a href="(/changes/changed_records\?[^"]+)"[^>]*>([\d,]+)</a>', html)
    assert links, "no count links to the changed records"
    for url, count in links:
        table = get(
            site, url.replace("changed_records?", "changed_records.json?").replace("&amp;", "&")
        )
        assert table.status_code == 200
        assert table.json()["filtered_table_rows_count"] == int(count.replace(",", ""))


def test_an_unknown_run_is_not_found(site: Any) -> None:
    response = get(site, "/-/snapshotter/runs/999")
    assert response.status_code == 404
    assert "No diff run 999" in response.text


@pytest.mark.parametrize("query", QUERY_NAMES)
def test_each_canned_query_answers_for_a_run(archive: Archive, site: Any, query: str) -> None:
    run_id = archive.run_ids[-1]
    response = get(site, f"/changes/{query}.json?run_id={run_id}&_shape=array")
    assert response.status_code == 200, response.text
    rows = response.json()
    people = _headline(archive, run_id)
    if query == "joiners_and_leavers_by_role":
        for what, block in (("joined", "joiners"), ("left", "leavers")):
            assert sum(r["people"] for r in rows if r["what"] == what) == people[block]["total"]
    elif query == "staff_leavers_with_classes":
        assert {r["user_sourcedId"] for r in rows}, "no member of staff left at the rollover"
        assert len({r["user_sourcedId"] for r in rows}) <= people["leavers"]["by_role"]["staff"]
    elif query == "class_moves_in_run":
        assert len(rows) == people["class_moves"]
    else:
        counted = query.removesuffix("_in_run")
        assert len({r["sourcedId"] for r in rows}) == people[counted] > 0


@pytest.mark.parametrize(
    "url",
    ["/changes?sql=select+1", "/changes.json?sql=select+*+from+changed_records"],
    ids=["page", "json"],
)
def test_arbitrary_sql_is_refused(site: Any, url: str) -> None:
    assert get(site, url).status_code == 403


def test_no_database_file_can_be_downloaded(archive: Archive, site: Any) -> None:
    name = archive.snapshots[0].stem
    assert get(site, f"/{name}").status_code == 200  # attached when asked for
    assert get(site, f"/{name}.db").status_code == 403
    assert get(site, "/changes.db").status_code in (403, 404)


def test_a_whole_table_cannot_be_streamed_as_csv(site: Any) -> None:
    total = get(site, "/changes/changed_records.json?_size=1").json()["filtered_table_rows_count"]
    assert total > 1000
    response = get(site, "/changes/changed_records.csv?_stream=on&_size=max")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert len(rows) - 1 < total


def test_robots_are_told_to_keep_out(site: Any) -> None:
    response = get(site, "/robots.txt")
    assert response.status_code == 200
    assert response.text.splitlines() == ["User-agent: *", "Disallow: /"]


def test_a_school_name_that_is_markup_is_shown_as_text(site: Any) -> None:
    html = get(site, "/").text
    assert "<script>alert(" not in html
    assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt; Academy" in html


def test_a_snapshot_and_a_diff_saved_while_the_site_runs_show_up_without_a_restart(
    tmp_path: Path,
) -> None:
    first = sim_snapshot(tmp_path, 0, pupils=30)
    site = make_datasette(tmp_path)  # no changes.db yet
    assert "No diff saved yet" in get(site, "/").text
    second = sim_snapshot(tmp_path, 1, pupils=30)
    run_id = _diff(first, second, tmp_path)
    html = get(site, "/").text
    assert f'href="/{second.stem}"' in html and f'data-run-id="{run_id}"' in html
    assert get(site, f"/-/snapshotter/runs/{run_id}").status_code == 200
    assert get(site, f"/{second.stem}/users.json").status_code == 200
    assert get(site, "/changes/diff_runs.json").json()["filtered_table_rows_count"] == 1


@pytest.fixture
def plugins_dir_only() -> Iterator[None]:
    """Only `plugins/`'s copy of the hooks registered, as under `datasette serve`."""
    from datasette.plugins import pm

    from snapshotter.datasette import plugin

    was_registered = pm.is_registered(plugin)
    if was_registered:
        pm.unregister(plugin)
    yield
    for module in list(pm.get_plugins()):
        if getattr(module, "__name__", "") == "snapshotter_pages":
            pm.unregister(module)
    if was_registered:
        pm.register(plugin, name="snapshotter")


ROOT = Path(__file__).resolve().parent.parent


def test_a_checkouts_plugins_folder_and_metadata_give_the_same_pages(
    archive: Archive, plugins_dir_only: None
) -> None:
    from datasette.app import Datasette
    from datasette.utils import parse_metadata

    metadata = parse_metadata((ROOT / "metadata.yml").read_text(encoding="utf-8"))
    site = Datasette(
        [str(archive.path / "changes.db")],
        plugins_dir=str(ROOT / "plugins"),
        metadata=metadata,
    )
    run_id = archive.run_ids[0]
    assert f'data-run-id="{run_id}"' in get(site, "/").text
    assert get(site, f"/-/snapshotter/runs/{run_id}").status_code == 200
    assert get(site, "/changes?sql=select+1").status_code == 403  # metadata's allow_sql: false
    assert get(site, "/changes/class_moves_in_run.json?run_id=1").status_code == 200


def test_there_is_one_metadata_file() -> None:
    top = ROOT / "metadata.yml"
    assert top.is_symlink()
    assert top.resolve() == (ROOT / "snapshotter" / "datasette" / "metadata.yml").resolve()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "example.org"])
def test_a_public_host_is_refused(tmp_path: Path, host: str) -> None:
    result = CliRunner().invoke(cli, ["serve", "--archive", str(tmp_path), "--host", host])
    assert result.exit_code == 2
    assert "refusing --host" in result.output and "127.0.0.1" in result.output


def test_loopback_addresses_are_loopback() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.0.2.1", "example.org"]))


def test_snapshotter_serve_answers_over_http_and_stops_on_ctrl_c(archive: Archive) -> None:
    with serving(archive.path) as served:
        with urllib.request.urlopen(served.url) as response:
            html = response.read().decode()
        assert "Quarrendon Academy" in html and 'data-run-id="1"' in html
        assert served.stop() == 0


def test_an_installed_copy_serves_the_pages_from_its_own_files(
    archive: Archive, tmp_path: Path
) -> None:
    """What `pip install .` installs is what setuptools' build_py copies (the wheel's content:
    packages and package data); that copy alone, outside the checkout, serves the pages."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "snapshotter", source / "snapshotter", ignore=shutil.ignore_patterns("__pycache__")
    )
    lib = tmp_path / "lib"
    built = subprocess.run(
        [sys.executable, "-c", "from setuptools import setup; setup()", "-q", "build_py"]
        + ["--build-lib", str(lib)],
        cwd=source,
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    packaged = lib / "snapshotter" / "datasette"
    assert (packaged / "metadata.yml").read_bytes() == (ROOT / "metadata.yml").read_bytes()
    probe = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "import snapshotter\n"
        "from snapshotter.datasette.app import make_datasette\n"
        "site = make_datasette(Path(sys.argv[1]))\n"
        "home = asyncio.run(site.client.get('/'))\n"
        "report = asyncio.run(site.client.get('/-/snapshotter/runs/1'))\n"
        "query = asyncio.run(site.client.get('/changes/class_moves_in_run.json?run_id=1'))\n"
        "print(snapshotter.__file__, home.status_code, report.status_code, query.status_code)\n"
        # The digest's templates are package data too (the demo mails its report).
        "from snapshotter.digest.content import read_digest\n"
        "from snapshotter.digest.message import render_html, render_text\n"
        "digest = read_digest(Path(sys.argv[1]) / 'changes.db', run_id=1)\n"
        "assert '<h1' in render_html(digest) and 'People' in render_text(digest)\n"
    )
    served = subprocess.run(
        [sys.executable, "-c", probe, str(archive.path)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(lib)},
        capture_output=True,
        text=True,
    )
    assert served.returncode == 0, served.stderr
    where, *statuses = served.stdout.split()
    assert Path(where).is_relative_to(lib)
    assert statuses == ["200", "200", "200"]


def test_datasettes_own_row_pages_link_a_run_to_its_change_report(
    archive: Archive, site: Any
) -> None:
    # On table pages Datasette links run_id, a foreign key, to the diff_runs row instead.
    run_id = archive.run_ids[0]
    for url in ("/changes/changed_records/1", "/changes/changed_fields/1"):
        html = get(site, url).text
        assert f'<a href="/-/snapshotter/runs/{run_id}" title="the change report">' in html, url


def test_a_snapshots_datasette_page_is_titled_by_its_school_and_time(
    archive: Archive, site: Any
) -> None:
    html = get(site, f"/{archive.snapshots[1].stem}").text
    assert "Quarrendon Academy: snapshot of 2027-02-15 08:30:00 UTC" in html
    hostile = next((archive.path / HOSTILE_ESTAB).glob("*.db")).stem
    html = get(site, f"/{hostile}").text
    assert "&lt;script&gt;" in html and "<script>alert(" not in html


def test_a_damaged_snapshot_is_not_served(tmp_path: Path) -> None:
    good = sim_snapshot(tmp_path, 0, pupils=30)
    damaged = good.with_name(good.stem + "-2.db")
    damaged.write_bytes(b"not a database" * 100)
    site = make_datasette(tmp_path)
    assert get(site, f"/{damaged.stem}").status_code == 404
    assert "cannot be read as a snapshot" in get(site, "/").text


def test_a_changes_db_saved_by_an_older_version_is_shown_with_todays_counts(
    archive: Archive, tmp_path: Path
) -> None:
    # An archive whose last diff ran before this version: its views lack what the pages read.
    shutil.copytree(archive.path, tmp_path / "old")
    changes_db = tmp_path / "old" / "changes.db"
    with closing(sqlite3.connect(changes_db)) as conn, conn:
        conn.execute("DROP VIEW joiners")
        conn.execute("CREATE VIEW joiners AS SELECT run_id, role, sourcedId FROM changed_records")
        conn.execute("DROP VIEW purged")
        conn.execute("PRAGMA user_version = 1")
    site = make_datasette(tmp_path / "old")
    home = get(site, "/")
    assert home.status_code == 200
    run_id = archive.run_ids[0]
    report = get(site, f"/-/snapshotter/runs/{run_id}")
    assert report.status_code == 200
    assert _cells(report.text, '<tbody><tr>\\s*<td class="joiners">') == _expected_cells(
        _headline(archive, run_id)
    )
