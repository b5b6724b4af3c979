"""A record's history and people search (`/-/snapshotter/history/...`, `/-/snapshotter/search/...`)
and the record index behind them (`<archive>/history.db`), through `datasette.client` against
the simulated school over three terms and a rollover, each diff saved, plus one more snapshot in
which a pupil's surname changed."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from helpers_diff import edited, sim_snapshot, term_time, write_snapshot
from helpers_fetch import ESTAB, RP, SECRET
from helpers_serve import HOSTILE_ESTAB, Archive, build_archive, get, save_diff

from snapshotter.archive.history import HISTORY_DB, catch_up, update_index
from snapshotter.archive.layout import list_archive
from snapshotter.cli import cli
from snapshotter.datasette.app import make_datasette
from snapshotter.sim.school import GUIDE_PUPIL_ID, generate

NEW_SURNAME = "Okafor-Lindqvist"


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    """The site's archive, and a fifth snapshot a week after the rollover in which the guide
    pupil (Zoë O'Brien) took a new surname, diffed and saved."""
    built = build_archive(tmp_path_factory.mktemp("archive"))
    renamed = write_snapshot(
        built.path,
        edited(
            generate(seed=1, pupils=150, term=3), "users", GUIDE_PUPIL_ID, familyName=NEW_SURNAME
        ),
        taken_at=term_time(3) + timedelta(days=7),
    )
    run_id = save_diff(built.snapshots[-1], renamed, built.path)
    return Archive(built.path, [*built.snapshots, renamed], [*built.run_ids, run_id])


@pytest.fixture(scope="module")
def site(archive: Archive) -> Any:
    return make_datasette(archive.path)


def _changes(archive: Archive, sql: str, *params: Any) -> list[sqlite3.Row]:
    with closing(sqlite3.connect(archive.path / "changes.db")) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute(sql, params).fetchall()


def _text(page: str) -> str:
    """A page's content as a person reads it: tags gone, entities decoded, spaces collapsed."""
    start = page.find('<section class="content">')
    content = page[start:] if start >= 0 else page
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", content))).strip()


def _event_rows(page: str) -> dict[str, list[str]]:
    """The history's event rows as text, by kind."""
    rows: dict[str, list[str]] = {}
    for kind, row in re.findall(r'<tr class="event" data-kind="([^"]+)">(.*?)</tr>', page, re.S):
        rows.setdefault(html.unescape(kind), []).append(_text(row))
    return rows


def history(site: Any, entity: str, sourced_id: str, estab: str = ESTAB) -> Any:
    return get(site, f"/-/snapshotter/history/{estab}/{entity}/{quote(sourced_id, safe='')}")


def search(site: Any, text: str, estab: str = ESTAB) -> Any:
    return get(site, f"/-/snapshotter/search/{estab}?q={quote(text, safe='')}")


def _hits(page: str) -> dict[str, str]:
    """The search's hits: sourcedId -> the row as text."""
    return {
        sid: _text(row)
        for sid, row in re.findall(
            r'<tr class="hit" data-sourced-id="([^"]+)">(.*?)</tr>', page, re.S
        )
    }


def test_a_history_shows_the_version_where_a_pupils_surname_changed(
    archive: Archive, site: Any
) -> None:
    saved = _changes(
        archive,
        "SELECT r.sourcedId, f.old, f.new, d.new_taken_at FROM changed_fields f "
        "JOIN changed_records r ON r.id = f.record_id JOIN diff_runs d ON d.id = r.run_id "
        "WHERE f.field = 'familyName' AND r.role = 'student'",
    )
    assert saved, "the saved diff has no pupil whose surname changed"
    for row in saved:
        response = history(site, "users", row["sourcedId"])
        assert response.status_code == 200
        changed = _event_rows(response.text)["changed"]
        when = re.sub(r"T(\d\d:\d\d:\d\d).*", r" \1 UTC", row["new_taken_at"])
        [version] = [text for text in changed if "familyName" in text]
        assert version.startswith(when), version
        assert f'familyName : "{row["old"]}" → "{row["new"]}"' in version
    # The report that saw it is linked.
    assert (
        f'href="/-/snapshotter/runs/{archive.run_ids[-1]}"'
        in history(site, "users", GUIDE_PUPIL_ID).text
    )


def test_a_leavers_history_shows_when_they_were_marked_tobedeleted_and_when_they_went(
    archive: Archive, site: Any
) -> None:
    # Marked tobedeleted in the first run, purged (removed) in a later one.
    [leaver] = _changes(
        archive,
        "SELECT l.sourcedId, l.new_taken_at AS left_at, p.new_taken_at AS gone_at FROM leavers l "
        "JOIN purged p ON p.sourcedId = l.sourcedId WHERE l.evidence = 'soft' "
        "ORDER BY l.run_id, l.sourcedId LIMIT 1",
    )
    page = history(site, "users", leaver["sourcedId"]).text
    events = _event_rows(page)
    assert events["marked tobedeleted"][0].startswith(leaver["left_at"][:10])
    assert events["disappeared"][0].startswith(leaver["gone_at"][:10])
    assert "Gone since the snapshot of " + leaver["gone_at"][:10] in _text(page)
    # Every run that mentions them is listed.
    runs = _changes(
        archive,
        "SELECT DISTINCT run_id FROM changed_records WHERE sourcedId = ? AND entity = 'users'",
        leaver["sourcedId"],
    )
    for run in runs:
        assert f'data-run-id="{run["run_id"]}"' in page


def _enrollments_in_snapshots(archive: Archive, user_id: str) -> dict[str, tuple[str, str]]:
    """enrollment sourcedId -> (class sourcedId, day first seen), over the school's snapshots."""
    found: dict[str, tuple[str, str]] = {}
    for path in archive.snapshots:
        with closing(sqlite3.connect(path)) as conn:
            day = conn.execute("SELECT substr(started_at, 1, 10) FROM snapshot_metadata").fetchone()
            for sourced_id, class_id in conn.execute(
                "SELECT sourcedId, class_sourcedId FROM enrollments WHERE user_sourcedId = ?",
                (user_id,),
            ):
                found.setdefault(sourced_id, (class_id, day[0]))
    return found


def test_a_users_history_lists_their_enrollments_over_time_each_class_linked(
    archive: Archive, site: Any
) -> None:
    # The guide pupil moved up a year at the rollover: new classes from then on.
    page = history(site, "users", GUIDE_PUPIL_ID).text
    rows = re.findall(
        r'<tr class="enrollment" data-sourced-id="([^"]+)">\s*<td><a href="'
        r"/-/snapshotter/history/" + ESTAB + r'/classes/([^"]+)"(.*?)</tr>',
        page,
        re.S,
    )
    expected = _enrollments_in_snapshots(archive, GUIDE_PUPIL_ID)
    assert {sid: class_id for sid, class_id, _ in rows} == {
        sid: class_id for sid, (class_id, _) in expected.items()
    }
    for sourced_id, _class_id, row in rows:
        first_seen = re.findall(r"<td>(\d{4}-\d\d-\d\d) \d\d:\d\d:\d\d UTC</td>", row)[0]
        assert first_seen == expected[sourced_id][1], row
    assert len({day for _, day in expected.values()}) == 2, "no enrollment began at the rollover"
    class_id = rows[0][1]
    class_page = history(site, "classes", class_id)
    assert class_page.status_code == 200 and "first seen" in class_page.text


def test_search_finds_a_leaver_and_says_they_left_and_when(archive: Archive, site: Any) -> None:
    [leaver] = _changes(
        archive,
        "SELECT l.sourcedId, l.new_taken_at, p.new_taken_at AS gone_at FROM leavers l "
        "JOIN purged p ON p.sourcedId = l.sourcedId WHERE l.evidence = 'soft' "
        "ORDER BY l.run_id, l.sourcedId LIMIT 1",
    )
    with closing(sqlite3.connect(archive.snapshots[0])) as conn:
        family, username = conn.execute(
            "SELECT familyName, username FROM users WHERE sourcedId = ?", (leaver["sourcedId"],)
        ).fetchone()
    assert leaver["sourcedId"] not in _sourced_ids_in(archive.snapshots[-1], "users")
    for text in (family, username):
        hits = _hits(search(site, text).text)
        assert leaver["sourcedId"] in hits, text
        row = hits[leaver["sourcedId"]]
        assert "left" in row and f"gone since {leaver['gone_at'][:10]}" in row
        assert (
            f'href="/-/snapshotter/history/{ESTAB}/users/{leaver["sourcedId"]}"'
            in search(site, text).text
        )


def _sourced_ids_in(path: Path, table: str) -> set[str]:
    with closing(sqlite3.connect(path)) as conn:
        return {row[0] for row in conn.execute(f"SELECT sourcedId FROM {table}")}


def test_search_finds_a_renamed_pupil_by_their_old_surname(site: Any) -> None:
    hits = _hits(search(site, "O'Brien").text)
    assert GUIDE_PUPIL_ID in hits
    assert NEW_SURNAME in hits[GUIDE_PUPIL_ID] and "earlier: Zoë O'Brien" in hits[GUIDE_PUPIL_ID]
    assert GUIDE_PUPIL_ID in _hits(search(site, NEW_SURNAME).text)


def test_search_matches_the_beginning_of_a_word(archive: Archive, site: Any) -> None:
    with closing(sqlite3.connect(archive.snapshots[-1])) as conn:
        family, upn_user = conn.execute(
            "SELECT familyName, sourcedId FROM users WHERE role = 'student' "
            "AND familyName NOT LIKE '% %' AND length(familyName) > 5 LIMIT 1"
        ).fetchone()
        same_start = {
            row[0]
            for row in conn.execute(
                "SELECT sourcedId FROM users WHERE familyName LIKE ? || '%'", (family[:3],)
            )
        }
    hits = _hits(search(site, family[:3].lower()).text)
    assert upn_user in hits and same_start <= set(hits)


@pytest.mark.parametrize(
    "text",
    ['"', "*", "-", "smi*", '"smith', "NEAR(a b)", "a OR", "AND", "(", "^x", "'", "%", "  ", ""],
)
def test_odd_search_input_gives_a_page_never_an_error(site: Any, text: str) -> None:
    response = search(site, text)
    assert response.status_code == 200
    assert "fts5" not in response.text.lower() and "syntax error" not in response.text.lower()


def test_search_text_is_shown_escaped(site: Any) -> None:
    response = search(site, "<script>alert(1)</script>")
    assert response.status_code == 200
    assert "<script>alert(1)" not in response.text
    assert "&lt;script&gt;alert(1)" in response.text


def test_a_school_name_that_is_markup_is_shown_escaped_on_its_pages(site: Any) -> None:
    with_markup = search(site, "a", estab=HOSTILE_ESTAB)
    assert with_markup.status_code == 200
    assert "<script>alert('pwned')" not in with_markup.text
    hit = next(iter(_hits(with_markup.text)))
    page = history(site, "users", hit, estab=HOSTILE_ESTAB)
    assert page.status_code == 200 and "<script>alert('pwned')" not in page.text


@pytest.mark.parametrize(
    ("url", "says"),
    [
        (f"/-/snapshotter/history/{ESTAB}/users/no-such-id", "No users record"),
        ("/-/snapshotter/history/999999/users/x", "No snapshots of school 999999"),
        (f"/-/snapshotter/history/{ESTAB}/pupils/x", "No entity"),
        ("/-/snapshotter/search/999999?q=smith", "No snapshots of school 999999"),
    ],
)
def test_unknown_records_schools_and_entities_are_not_found(site: Any, url: str, says: str) -> None:
    response = get(site, url)
    assert response.status_code == 404
    assert says in html.unescape(response.text)


def test_the_home_page_has_a_search_box_per_school(site: Any) -> None:
    page = get(site, "/").text
    assert f'action="/-/snapshotter/search/{ESTAB}"' in page
    assert f'action="/-/snapshotter/search/{HOSTILE_ESTAB}"' in page


def test_datasettes_own_people_table_has_a_search_box_and_a_title(site: Any) -> None:
    search(site, "a")  # the index exists once a page has asked for it
    response = get(site, "/history/people.json?_search=Lindqvist&_shape=array")
    assert response.status_code == 200
    assert [row["sourcedId"] for row in response.json()] == [GUIDE_PUPIL_ID]
    page = get(site, "/history/people")
    assert 'name="_search"' in page.text and "People" in page.text
    assert "Record index" in get(site, "/history").text


def test_the_index_is_no_snapshot_and_holds_no_password(archive: Archive, site: Any) -> None:
    search(site, "a")
    index = archive.path / HISTORY_DB
    assert index.is_file() and index.stat().st_mode & 0o777 == 0o600
    listing = list_archive(archive.path)
    assert len(listing.snapshots) == len(archive.snapshots) + 1 and not listing.unreadable
    assert b"sim-pw-123" not in index.read_bytes() and b'"password"' not in index.read_bytes()


# The index kept current.


def _index_content(archive: Path) -> dict[str, Any]:
    """What the index says, without its row ids: the same history built two ways is equal."""
    with closing(sqlite3.connect(archive / HISTORY_DB)) as conn:
        return {
            "snapshots": conn.execute(
                "SELECT estab, seq, name, content_hash FROM snapshots ORDER BY estab, seq"
            ).fetchall(),
            "spans": sorted(
                conn.execute(
                    "SELECT r.estab, r.entity, r.sourcedId, s.first_seq, s.last_seq, s.gone_seq, "
                    "v.hash, v.record FROM spans s JOIN records r ON r.id = s.record_id "
                    "JOIN versions v ON v.id = s.version_id"
                )
            ),
            "people": sorted(
                tuple(row[1:]) for row in conn.execute("SELECT * FROM people").fetchall()
            ),
        }


def _rebuilt_from_scratch(archive: Path, tmp_path: Path) -> dict[str, Any]:
    copy = tmp_path / "scratch"
    shutil.copytree(archive, copy)
    (copy / HISTORY_DB).unlink()
    update_index(copy)
    return _index_content(copy)


def test_a_snapshot_added_while_the_site_runs_is_found_without_a_restart(tmp_path: Path) -> None:
    sim_snapshot(tmp_path, 0, pupils=30)
    site = make_datasette(tmp_path)
    assert GUIDE_PUPIL_ID not in _hits(search(site, NEW_SURNAME).text)
    write_snapshot(
        tmp_path,
        edited(
            generate(seed=1, pupils=30, term=0), "users", GUIDE_PUPIL_ID, familyName=NEW_SURNAME
        ),
        taken_at=term_time(0) + timedelta(days=1),
    )
    assert GUIDE_PUPIL_ID in _hits(search(site, NEW_SURNAME).text)
    changed = _event_rows(history(site, "users", GUIDE_PUPIL_ID).text)["changed"]
    assert f'"O\'Brien" → "{NEW_SURNAME}"' in changed[0]


def test_an_older_snapshot_added_later_rebuilds_the_school_as_if_from_scratch(
    tmp_path: Path,
) -> None:
    archive = tmp_path / "archive"
    sim_snapshot(archive, 0, pupils=30)
    sim_snapshot(archive, 2, pupils=30)
    update_index(archive)
    sim_snapshot(archive, 1, pupils=30)  # an import of older data: it goes in the middle
    report = update_index(archive)
    assert report.rebuilt == [ESTAB]
    content = _index_content(archive)
    assert [row[2] for row in content["snapshots"]] == [
        p.stem for p in sorted((archive / ESTAB).glob("*.db"))
    ]
    assert content == _rebuilt_from_scratch(archive, tmp_path)


def test_a_snapshot_removed_from_the_archive_is_gone_from_the_histories(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    paths = [sim_snapshot(archive, term, pupils=30) for term in range(3)]
    site = make_datasette(archive)
    assert history(site, "users", GUIDE_PUPIL_ID).status_code == 200
    paths[1].unlink()  # pruned
    page = history(site, "users", GUIDE_PUPIL_ID).text
    assert "2027-02-15" not in page and "2027-05-15" in page
    assert _index_content(archive) == _rebuilt_from_scratch(archive, tmp_path)


def test_an_incomplete_snapshot_does_not_make_records_disappear(tmp_path: Path) -> None:
    school = generate(seed=1, pupils=30, term=0)
    write_snapshot(tmp_path, school, taken_at=term_time(0))
    without_pupil = {
        **school,
        "users": [u for u in school["users"] if u["sourcedId"] != GUIDE_PUPIL_ID],
    }
    write_snapshot(
        tmp_path, without_pupil, taken_at=term_time(0) + timedelta(days=1), complete=False
    )
    site = make_datasette(tmp_path)
    page = history(site, "users", GUIDE_PUPIL_ID).text
    assert "disappeared" not in _event_rows(page) and "In the latest snapshot" in _text(page)
    # A complete snapshot without them: now they did disappear.
    write_snapshot(tmp_path, without_pupil, taken_at=term_time(0) + timedelta(days=2))
    assert "disappeared" in _event_rows(history(site, "users", GUIDE_PUPIL_ID).text)


def _fetch(sim: Any, archive: Path) -> Any:
    args = ["fetch", "--base-url", sim.base_url, "--rp", RP, "--estab", ESTAB]
    args += ["--archive", str(archive), "--page-size", "40", "-q"]
    return CliRunner().invoke(cli, args, env={"SNAPSHOTTER_SECRET": SECRET})


def test_fetch_adds_its_snapshot_to_the_index(sim_server: Any, tmp_path: Path) -> None:
    result = _fetch(sim_server(pupils=30), tmp_path)
    assert result.exit_code == 0, result.output
    snapshot = Path(result.stdout.splitlines()[-1])
    with closing(sqlite3.connect(tmp_path / HISTORY_DB)) as conn:
        names = [row[0] for row in conn.execute("SELECT name FROM snapshots")]
        found = conn.execute(
            "SELECT sourcedId FROM people WHERE people.rowid IN "
            "(SELECT rowid FROM people_fts WHERE people_fts MATCH 'brien')"
        ).fetchall()
    assert names == [snapshot.stem]
    assert (GUIDE_PUPIL_ID,) in found


def test_a_broken_index_does_not_fail_a_fetch_and_the_pages_say_why(
    sim_server: Any, tmp_path: Path
) -> None:
    (tmp_path / HISTORY_DB).mkdir()  # cannot be opened as a database, nor replaced by us
    result = _fetch(sim_server(pupils=30), tmp_path)
    assert result.exit_code == 0, result.output
    assert Path(result.stdout.splitlines()[-1]).is_file()
    assert "record index" in result.stderr and "Traceback" not in result.stderr
    site = make_datasette(tmp_path)
    for url in (
        f"/-/snapshotter/search/{ESTAB}?q=brien",
        f"/-/snapshotter/history/{ESTAB}/users/{GUIDE_PUPIL_ID}",
    ):
        response = get(site, url)
        assert response.status_code == 503
        assert "History and search are not available" in response.text
        assert "history.db" in response.text


def test_serve_catches_up_at_start_saying_how_far_it_has_got(tmp_path: Path) -> None:
    for term in range(2):
        sim_snapshot(tmp_path, term, pupils=30)
    said: list[str] = []
    catch_up(tmp_path, said.append, after_s=0)
    assert said and said[-1].endswith("school 3281110, 2 of 2")
    said.clear()
    catch_up(tmp_path, said.append, after_s=0)
    assert said == []  # nothing to do, nothing opened, nothing said


def test_provider_text_that_is_markup_is_shown_escaped(tmp_path: Path) -> None:
    school = generate(seed=1, pupils=30, term=0)
    write_snapshot(tmp_path, school, taken_at=term_time(0))
    markup = "<img src=x onerror=alert(1)>"
    write_snapshot(
        tmp_path,
        edited(school, "users", GUIDE_PUPIL_ID, familyName=markup),
        taken_at=term_time(0) + timedelta(days=1),
    )
    site = make_datasette(tmp_path)
    for page in (history(site, "users", GUIDE_PUPIL_ID).text, search(site, "img").text):
        assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_a_record_that_comes_back_is_shown_reappearing(tmp_path: Path) -> None:
    school = generate(seed=1, pupils=30, term=0)
    without_pupil = {
        **school,
        "users": [u for u in school["users"] if u["sourcedId"] != GUIDE_PUPIL_ID],
    }
    for day, collections in enumerate((school, without_pupil, school)):
        write_snapshot(tmp_path, collections, taken_at=term_time(0) + timedelta(days=day))
    events = _event_rows(history(make_datasette(tmp_path), "users", GUIDE_PUPIL_ID).text)
    assert list(events) == ["first seen", "disappeared", "reappeared"]
    assert events["disappeared"][0].startswith("2026-10-16")
    assert events["reappeared"][0].startswith("2026-10-17")


def test_an_import_adds_its_snapshot_to_the_index(tmp_path: Path) -> None:
    saved = tmp_path / "saved"
    saved.mkdir()
    for collection, records in generate(seed=1, pupils=30, term=0).items():
        (saved / f"{collection}.json").write_text(json.dumps({collection: records}))
    archive = tmp_path / "archive"
    result = CliRunner().invoke(
        cli, ["import", str(saved), "--estab", ESTAB, "--archive", str(archive)]
    )
    assert result.exit_code == 0, result.output
    snapshot = Path(result.stdout.splitlines()[-1])
    with closing(sqlite3.connect(archive / HISTORY_DB)) as conn:
        assert [row[0] for row in conn.execute("SELECT name FROM snapshots")] == [snapshot.stem]


def test_two_processes_indexing_at_once_leave_the_index_as_one_would(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    for term in range(3):
        sim_snapshot(archive, term, pupils=30)
    code = "import sys; from pathlib import Path; from snapshotter.archive.history import "
    code += "update_index; update_index(Path(sys.argv[1]))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    runs = [subprocess.Popen([sys.executable, "-c", code, str(archive)], env=env) for _ in range(2)]
    assert [run.wait(timeout=120) for run in runs] == [0, 0]
    assert _index_content(archive) == _rebuilt_from_scratch(archive, tmp_path)


def test_a_sourced_id_with_slashes_and_spaces_has_a_history_at_its_percent_encoded_url(
    tmp_path: Path,
) -> None:
    odd_id = "odd/id ü#?~.x"
    school = edited(generate(seed=1, pupils=30, term=0), "users", GUIDE_PUPIL_ID, sourcedId=odd_id)
    write_snapshot(tmp_path, school, taken_at=term_time(0))
    site = make_datasette(tmp_path)
    url = f"/-/snapshotter/history/{ESTAB}/users/{quote(odd_id, safe='')}"
    response = get(site, url)
    assert response.status_code == 200
    assert "Zoë O&#39;Brien" in response.text or "Zoë O'Brien" in response.text
    assert f'href="{url}"' in search(site, "O'Brien").text
