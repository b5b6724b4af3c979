"""The Datasette site's report pages, compare page, readable cells and home chart, through
`datasette.client` against snapshots of the simulated school (helpers_serve's archive: three
terms and a rollover, each diff saved as `snapshotter diff` saves it)."""

from __future__ import annotations

import html as html_module
import re
import sqlite3
import tempfile
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from helpers_diff import ESTAB, edited, first, sim_snapshot, term_time, write_snapshot
from helpers_serve import HOSTILE_ESTAB, Archive, build_archive, get, save_diff

from snapshotter.archive.people import headline
from snapshotter.datasette.app import make_datasette
from snapshotter.datasette.changes_list import SHOWN_PER_SECTION
from snapshotter.model import COLLECTIONS
from snapshotter.sim.school import generate

HOSTILE = "<script>alert('pwned')</script>"


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    return build_archive(tmp_path_factory.mktemp("archive"))


@pytest.fixture(scope="module")
def site(archive: Archive) -> Any:
    return make_datasette(archive.path)


def _text(page: str) -> str:
    """A page as a person reads it: tags gone, entities decoded, spaces squeezed."""
    spaced = re.sub(r"</?(li|p|h\d|td|th|tr|ul|br|section|option)\b[^>]*>", " ", page)
    return re.sub(r"\s+", " ", html_module.unescape(re.sub(r"<[^>]+>", "", spaced)))


def _people_cells(page: str) -> dict[str, int]:
    row = re.search(r'<tbody><tr>\s*<td class="joiners">.*?</tr>', page, re.S)
    assert row, "no people counts on the page"
    return {name: int(n) for name, n in re.findall(r'<td class="(\w+)">(\d+)</td>', row[0])}


def _record_counts(page: str) -> dict[tuple[str, str], int]:
    table = re.search(r'<table class="rows-and-columns counts">.*?</table>', page, re.S)
    assert table, "no counts table"
    counts = {}
    for entity, change, count in re.findall(
        r"<tr><td>(\w+)</td><td>(\w+)</td><td>(?:<a [^>]*>)?([\d,]+)", table[0]
    ):
        counts[(entity, change)] = int(count.replace(",", ""))
    return counts


def _headline(changes_db: Path, run_id: int) -> dict[str, Any]:
    with closing(sqlite3.connect(changes_db)) as conn:
        return headline(conn, run_id)


def _expected_people(people: dict[str, Any]) -> dict[str, int]:
    cells = {name: people[name]["total"] for name in ("joiners", "leavers", "purged")}
    cells.update({n: people[n] for n in ("year_group_changes", "class_moves", "identity_changes")})
    return cells


def _pupil_renamed(root: Path, family_name: str) -> tuple[Path, Path, dict[str, Any]]:
    """Two snapshots a day apart in which one pupil's surname changed."""
    school = generate(seed=1, pupils=30, term=0)
    pupil = first(school, "users", role="student")
    old = write_snapshot(root, school, taken_at=term_time(0))
    renamed = edited(school, "users", pupil["sourcedId"], familyName=family_name)
    new = write_snapshot(root, renamed, taken_at=term_time(0) + timedelta(days=1))
    return old, new, pupil


# --- the run page's changes ----------------------------------------------------------------------


def test_the_run_page_lists_a_pupil_whose_surname_changed_with_old_and_new(
    tmp_path: Path,
) -> None:
    old, new, pupil = _pupil_renamed(tmp_path, "Featherstonehaugh")
    run_id = save_diff(old, new, tmp_path)
    page = get(make_datasette(tmp_path), f"/-/snapshotter/runs/{run_id}")
    assert page.status_code == 200
    text = _text(page.text)
    assert "Identity changes: 1 person" in text
    name = f"{pupil['givenName']} Featherstonehaugh (student, year {pupil['grades'][0]})"
    assert name in text
    assert f'familyName: "{pupil["familyName"]}" → "Featherstonehaugh"' in text
    history = f"/-/snapshotter/history/{ESTAB}/users/{quote(pupil['sourcedId'], safe='')}"
    assert f'href="{history}"' in page.text


def test_a_long_section_shows_a_few_and_links_the_rest_in_changed_records(
    archive: Archive, site: Any
) -> None:
    run_id = archive.run_ids[-1]  # the rollover: thousands of enrollments
    page = get(site, f"/-/snapshotter/runs/{run_id}").text
    counts = _record_counts(page)
    section = re.search(r"<h3>enrollments added \(([\d,]+)\)</h3>(.*?)</section>", page, re.S)
    assert section, "no section of the enrollments added"
    total = int(section[1].replace(",", ""))
    assert total == counts[("enrollments", "added")] > SHOWN_PER_SECTION
    assert section[2].count("<li><a") + section[2].count("<li>") >= SHOWN_PER_SECTION
    more = re.search(r"… and ([\d,]+) more: <a href=\"([^\"]+)\"", section[2])
    assert more, "no link to the rest"
    assert int(more[1].replace(",", "")) == total - SHOWN_PER_SECTION
    url = html_module.unescape(more[2]).replace("changed_records?", "changed_records.json?")
    assert get(site, url).json()["filtered_table_rows_count"] == total


def test_the_people_come_first_as_in_the_text_report(archive: Archive, site: Any) -> None:
    page = _text(get(site, f"/-/snapshotter/runs/{archive.run_ids[-1]}").text)
    changes = page[page.index("The changes") :]
    order = [changes.index(title) for title in ("Joined:", "Left:", "Year group changes:")]
    assert order == sorted(order)
    assert order[-1] < changes.index("enrollments added")


# --- the compare page ----------------------------------------------------------------------------


def _compare(site: Any, old: str, new: str, estab: str = ESTAB) -> Any:
    return get(site, f"/-/snapshotter/compare/{estab}?old={quote(old)}&new={quote(new)}")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("3281110_2027-05-15T083000Z", "3281110_2027-10-15T083000Z"),
        ("previous", "latest"),
        ("Summer 2027", "Autumn 2027"),
        ("2027-05", "2027-10-15T08"),
    ],
    ids=["names", "latest-previous", "session-titles", "time-prefixes"],
)
def test_a_compare_shows_the_counts_of_the_saved_run_of_that_pair(
    archive: Archive, site: Any, old: str, new: str
) -> None:
    run_id = archive.run_ids[-1]  # snapshots 2 -> 3
    compared = _compare(site, old, new)
    assert compared.status_code == 200, _text(compared.text)
    saved = get(site, f"/-/snapshotter/runs/{run_id}").text
    assert _people_cells(compared.text) == _expected_people(
        _headline(archive.path / "changes.db", run_id)
    )
    assert _record_counts(compared.text) == _record_counts(saved)
    for path in archive.snapshots[-2:]:
        assert path.stem in compared.text
    assert "Compared just now, saved nowhere." in compared.text
    assert "The changes" in compared.text and "Joined:" in compared.text


def _files(root: Path) -> dict[Path, tuple[bytes, int]]:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def test_a_compare_saves_nothing_and_leaves_no_temporary_file(
    archive: Archive, site: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    before = _files(archive.path)
    # A pair no run was saved for: the first snapshot to the rollover.
    response = _compare(site, archive.snapshots[0].stem, "latest")
    assert response.status_code == 200
    assert "Joined:" in response.text
    assert _files(archive.path) == before
    assert list(scratch.iterdir()) == []


def test_without_selectors_the_page_is_the_form_listing_snapshots_and_sessions(
    archive: Archive, site: Any
) -> None:
    page = get(site, f"/-/snapshotter/compare/{ESTAB}")
    assert page.status_code == 200
    assert '<form class="compare"' in page.text and "The changes" not in page.text
    for path in archive.snapshots:
        assert f'<option value="{path.stem}"' in page.text
    for title in ("Autumn 2026", "Summer 2027", "2027/28"):
        assert f'<option value="{title}"' in page.text


@pytest.mark.parametrize(
    ("old", "message"),
    [
        ("Lent 1999", "no snapshot matches 'Lent 1999'"),
        ("2031-01", "no snapshot was taken at a time starting '2031-01'"),
        ("/etc/passwd", "a file path is not accepted here"),
        ("latest", "is newer than NEW"),
    ],
    ids=["unknown-session", "no-such-time", "a-path", "backwards"],
)
def test_a_bad_selector_is_a_400_with_the_reason_and_the_form(
    site: Any, old: str, message: str
) -> None:
    response = _compare(site, old, "2027-02")
    assert response.status_code == 400
    assert message in _text(response.text)
    assert '<form class="compare"' in response.text
    assert "Traceback" not in response.text


def test_a_school_with_no_snapshot_is_not_found(site: Any) -> None:
    assert get(site, "/-/snapshotter/compare/9999999").status_code == 404


def test_a_compare_of_an_identical_pair_says_no_changes(tmp_path: Path) -> None:
    school = generate(seed=1, pupils=20, term=0)
    write_snapshot(tmp_path, school, taken_at=term_time(0))
    write_snapshot(tmp_path, school, taken_at=term_time(0) + timedelta(days=1))
    site = make_datasette(tmp_path)
    page = _compare(site, "previous", "latest")
    assert page.status_code == 200
    assert "No changes" in page.text and "The changes" not in page.text
    same = _compare(site, "latest", "latest")
    assert same.status_code == 200 and "no changes" in same.text


def test_the_home_page_links_each_schools_compare_page(site: Any) -> None:
    page = get(site, "/").text
    for estab in (ESTAB, HOSTILE_ESTAB):
        assert f'href="/-/snapshotter/compare/{estab}"' in page


# --- readable cells ------------------------------------------------------------------------------


def test_a_snapshots_id_cells_link_to_the_records_history(archive: Archive, site: Any) -> None:
    name = archive.snapshots[-1].stem
    with closing(sqlite3.connect(archive.snapshots[-1])) as conn:
        enrollment, user = conn.execute(
            "SELECT sourcedId, user_sourcedId FROM enrollments LIMIT 1"
        ).fetchone()
        klass, terms = conn.execute(
            "SELECT sourcedId, terms_sourcedIds FROM classes LIMIT 1"
        ).fetchone()
    row = get(site, f"/{name}/enrollments/{quote(enrollment)}").text
    assert f'href="/-/snapshotter/history/{ESTAB}/users/{quote(user)}"' in row
    table = get(site, f"/{name}/classes?sourcedId={quote(klass)}").text
    for term in __import__("json").loads(terms):
        assert f'href="/-/snapshotter/history/{ESTAB}/academicSessions/{quote(term)}"' in table
    assert '<ul class="snapshotter-list">' in table


def test_changes_db_id_cells_link_to_the_history_of_the_runs_school(
    archive: Archive, site: Any
) -> None:
    run_id = archive.run_ids[-1]
    with closing(sqlite3.connect(archive.path / "changes.db")) as conn:
        record_id, sourced_id, user, klass = conn.execute(
            "SELECT id, sourcedId, user_sourcedId, class_sourcedId FROM changed_records "
            "WHERE run_id = ? AND entity = 'enrollments' LIMIT 1",
            (run_id,),
        ).fetchone()
        (joiner,) = conn.execute(
            "SELECT sourcedId FROM joiners WHERE run_id = ? LIMIT 1", (run_id,)
        ).fetchone()
    history = f"/-/snapshotter/history/{ESTAB}"
    page = get(site, f"/changes/changed_records/{record_id}").text  # the school from the run
    for entity, an_id in (("enrollments", sourced_id), ("users", user), ("classes", klass)):
        assert f'href="{history}/{entity}/{quote(an_id)}"' in page, entity
    joiners = get(site, f"/changes/joiners?run_id={run_id}").text  # the school from the row
    assert f'href="{history}/users/{quote(joiner)}"' in joiners


def test_timestamps_read_as_utc_dates_with_the_stored_value_in_the_title(
    archive: Archive, site: Any
) -> None:
    page = get(site, "/changes/diff_runs").text
    assert (
        '<time datetime="2027-10-15T08:30:00.000Z" title="2027-10-15T08:30:00.000Z">'
        "2027-10-15 08:30:00 UTC</time>"
    ) in page
    users = get(site, f"/{archive.snapshots[0].stem}/users?_size=5").text
    assert re.search(r'<time datetime="[^"]+Z" title="[^"]+">\d{4}-\d\d-\d\d [\d:]+ UTC', users)


def test_a_records_whole_json_is_cut_short(archive: Archive, site: Any) -> None:
    page = get(site, f"/{archive.snapshots[0].stem}/users?_size=3").text
    assert re.search(r'<span class="record">\{.*?…</span> <small>\([\d,]+ characters\)', page)


def test_hostile_provider_text_is_shown_as_text_on_every_page(tmp_path: Path) -> None:
    school = generate(seed=1, pupils=20, term=0)
    pupil = first(school, "users", role="student")
    old = write_snapshot(tmp_path, school, taken_at=term_time(0))
    hostile = edited(school, "users", pupil["sourcedId"], givenName=HOSTILE)
    hostile = edited(hostile, "users", pupil["sourcedId"], grades=[HOSTILE])
    new = write_snapshot(tmp_path, hostile, taken_at=term_time(0) + timedelta(days=1))
    run_id = save_diff(old, new, tmp_path)
    site = make_datasette(tmp_path)
    pages = [
        f"/-/snapshotter/runs/{run_id}",
        f"/-/snapshotter/compare/{ESTAB}?old=previous&new=latest",
        f"/{new.stem}/users?sourcedId={quote(pupil['sourcedId'])}",
        f"/changes/changed_fields?run_id={run_id}",
        f"/changes/changed_records?run_id={run_id}",
    ]
    for url in pages:
        response = get(site, url)
        assert response.status_code == 200, url
        assert "<script>alert(" not in response.text, url
        assert "&lt;script&gt;alert(" in response.text, url


# --- the chart -----------------------------------------------------------------------------------


def _chart_of(page: str, estab: str) -> str:
    school = page[page.index(f'id="school-{estab}"') :]
    svg = re.search(r"<svg .*?</svg>", school, re.S)
    assert svg, f"no chart for {estab}"
    return svg[0]


def test_the_home_chart_has_one_point_per_snapshot_for_each_entity(
    archive: Archive, site: Any
) -> None:
    page = get(site, "/").text
    svg = _chart_of(page, ESTAB)
    assert 'role="img"' in svg and "<title" in svg
    for collection in COLLECTIONS:
        points = re.findall(rf'<circle class="point" data-entity="{collection}"', svg)
        assert len(points) == len(archive.snapshots), collection
    numbers = re.search(r'<details class="chart-numbers">.*?</details>', page, re.S)
    assert numbers and numbers[0].count("<tr><td>") == len(archive.snapshots)


def test_the_home_page_asks_no_other_host_for_anything(site: Any) -> None:
    page = get(site, "/").text
    assert not re.search(r"""\bsrc\s*=\s*["']?(https?:)?//""", page, re.I)
    assert not re.search(r"""<link[^>]+href\s*=\s*["']?(https?:)?//""", page, re.I)
    assert "http" not in _chart_of(page, ESTAB)


def test_an_incomplete_snapshot_is_marked_on_the_chart(tmp_path: Path) -> None:
    sim_snapshot(tmp_path, 0, pupils=20)
    write_snapshot(
        tmp_path, generate(seed=1, pupils=20, term=1), taken_at=term_time(1), complete=False
    )
    svg = _chart_of(get(make_datasette(tmp_path), "/").text, ESTAB)
    assert svg.count('<circle class="point incomplete"') == len(COLLECTIONS)
    assert svg.count('class="incomplete-mark"') == 1
