"""`snapshotter check`: the planted problems found exactly, none of the error rules on a clean
school, exit statuses, the JSON shape, findings kept in the archive, hostile text neutralised."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers_diff import edited, first, sim_snapshot, term_time, write_snapshot
from helpers_fetch import fetch

from snapshotter.archive.layout import changes_db_path
from snapshotter.cli import cli
from snapshotter.quality.rules import RULES
from snapshotter.sim.problems import PROBLEMS_FILE, planted_problems
from snapshotter.sim.school import generate

PUPILS = 150


def check(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["check", *args])
    return result.exit_code, result.output


def findings_of(archive: Path, *args: str) -> set[tuple[str, str]]:
    status, output = check("--archive", str(archive), "--format", "json", *args)
    assert status == 0, output
    return {(f["rule"], f["sourcedId"]) for f in json.loads(output)["findings"]}


def truth_pairs(truth: dict[str, list[str]]) -> set[tuple[str, str]]:
    return {(rule, sid) for rule, ids in truth.items() for sid in ids}


@pytest.mark.parametrize("term", [0, 4])
def test_check_finds_exactly_the_planted_problems_on_top_of_the_clean_school(
    tmp_path: Path, term: int
) -> None:
    clean = sim_snapshot(tmp_path / "clean", term)
    planted = write_snapshot(
        tmp_path / "planted",
        generate(pupils=PUPILS, term=term, plant_problems=True),
        taken_at=term_time(term),
    )
    truth = truth_pairs(planted_problems(pupils=PUPILS, term=term))
    assert {rule for rule, _ in truth} == {rule.id for rule in RULES}
    clean_findings = findings_of(clean.parent.parent, str(clean))
    assert findings_of(planted.parent.parent, str(planted)) == clean_findings | truth


def test_no_error_rule_fires_on_a_clean_school_term_after_term(tmp_path: Path) -> None:
    errors = {rule.id for rule in RULES if rule.severity == "error"}
    for term in range(5):  # a whole school year and the rollover into the next
        path = sim_snapshot(tmp_path / f"t{term}", term)
        found = findings_of(path.parent.parent)
        assert not {rule for rule, _ in found} & errors, (term, found)


def test_fail_on_exits_4_only_when_a_finding_that_serious_exists(tmp_path: Path) -> None:
    school = generate(pupils=PUPILS, term=0)
    pupil = first(school, "users", role="student", status="active")
    # A warning only: a pupil without a year group.
    warned = write_snapshot(
        tmp_path / "warned",
        edited(school, "users", pupil["sourcedId"], grades=[]),
        taken_at=term_time(0),
    )
    archive = str(warned.parent.parent)
    assert check("--archive", archive)[0] == 0
    assert check("--archive", archive, "--fail-on", "error")[0] == 0
    assert check("--archive", archive, "--fail-on", "warning")[0] == 4
    # And an error: the same pupil's email is no address.
    broken = write_snapshot(
        tmp_path / "broken",
        edited(school, "users", pupil["sourcedId"], email="nobody"),
        taken_at=term_time(0),
    )
    assert check("--archive", str(broken.parent.parent), "--fail-on", "error")[0] == 4
    clean = sim_snapshot(tmp_path / "clean", 0)
    assert check("--archive", str(clean.parent.parent), "--fail-on", "warning")[0] == 0


def test_the_json_form_has_provenance_every_rule_counted_and_the_findings(tmp_path: Path) -> None:
    school = generate(pupils=PUPILS, term=0, plant_problems=True)
    path = write_snapshot(tmp_path / "a", school, taken_at=term_time(0))
    status, output = check("--archive", str(tmp_path / "a"), "--format", "json")
    document = json.loads(output)
    assert status == 0
    assert set(document) == {"snapshot", "counts", "findings"}
    assert document["snapshot"]["name"] == path.stem
    assert document["snapshot"]["content_hash"]
    assert set(document["counts"]) == {rule.id for rule in RULES}
    assert document["counts"]["duplicate-upn"] == 2
    one = next(f for f in document["findings"] if f["rule"] == "duplicate-upn")
    assert set(one) == {"rule", "severity", "entity", "sourcedId", "label", "message", "related"}
    assert one["severity"] == "error" and one["entity"] == "users"
    assert len(one["related"]) == 1 and one["related"][0] != one["sourcedId"]
    assert "UPN" in one["message"] and "(student, year" in one["label"]


def test_the_text_form_counts_first_then_each_rule_capped(tmp_path: Path) -> None:
    school = generate(pupils=PUPILS, term=0)
    pupils = [u for u in school["users"] if u["role"] == "student" and u["status"] == "active"]
    for number, pupil in enumerate(pupils[:5]):
        school = edited(school, "users", pupil["sourcedId"], email=f"no address {number}")
    write_snapshot(tmp_path / "a", school, taken_at=term_time(0))
    status, output = check("--archive", str(tmp_path / "a"), "--limit", "2")
    lines = output.splitlines()
    assert status == 0
    assert lines[0] == "Data quality of Quarrendon Academy (estab 3281110)"
    assert "5 findings: 5 errors" in output
    counts_at = lines.index("5 findings: 5 errors")
    assert lines[counts_at + 1].split() == ["error", "invalid-email", "5"]
    assert "invalid-email (error): an email that is not an address: 5" in output
    assert "  … and 3 more: `--format csv` or `--format json` has them all" in lines


def test_hostile_names_are_neutralised_in_text_and_csv(tmp_path: Path) -> None:
    school = generate(pupils=PUPILS, term=0)
    pupil = first(school, "users", role="student", status="active")
    school = edited(
        school,
        "users",
        pupil["sourcedId"],
        givenName='=HYPERLINK("http://x")',
        familyName="\x1b[2J\u202eevil\nforged line",
        email="=cmd|' /C calc'!A0",
    )
    write_snapshot(tmp_path / "a", school, taken_at=term_time(0))
    _, text = check("--archive", str(tmp_path / "a"))
    assert "\x1b" not in text and "\u202e" not in text
    assert "\\x1b[2J\\u202eevil\\nforged line" in text
    _, table = check("--archive", str(tmp_path / "a"), "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(table)))
    row = next(r for r in rows if r["rule"] == "invalid-email")
    assert row["label"].startswith("'=HYPERLINK(")
    assert not any(cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r.values())


def _kept(archive: Path) -> dict[str, set[tuple[str, str]]]:
    with sqlite3.connect(changes_db_path(archive)) as conn:
        rows = conn.execute(
            "SELECT c.snapshot_name, f.rule, f.sourcedId FROM quality_checks c "
            "LEFT JOIN quality_findings f ON c.id = f.check_id"
        ).fetchall()
    kept: dict[str, set[tuple[str, str]]] = {}
    for name, rule, sid in rows:
        kept.setdefault(name, set())
        if rule is not None:
            kept[name].add((rule, sid))
    return kept


def test_a_fetch_keeps_the_findings_of_its_snapshot(sim_server, tmp_path: Path) -> None:
    sim = sim_server(pupils=PUPILS, plant_problems=True)
    outcome = fetch(sim, tmp_path)
    assert outcome.path is not None
    kept = _kept(tmp_path)[outcome.path.stem]
    assert truth_pairs(planted_problems(pupils=PUPILS, term=0)) <= kept


def test_an_import_keeps_the_findings_of_its_snapshot(tmp_path: Path) -> None:
    source = tmp_path / "saved"
    runner = CliRunner()
    generated = runner.invoke(
        cli, ["sim", "generate", "--pupils", str(PUPILS), "--out", str(source), "--plant-problems"]
    )
    assert generated.exit_code == 0, generated.output
    imported = runner.invoke(
        cli, ["import", str(source), "--estab", "3281110", "--archive", str(tmp_path / "a")]
    )
    assert imported.exit_code == 0, imported.output
    path = Path(imported.output.strip().splitlines()[-1])
    truth = json.loads((source / PROBLEMS_FILE).read_text())
    assert truth_pairs(truth) <= _kept(tmp_path / "a")[path.stem]


def test_a_fetch_whose_checks_fail_still_succeeds_with_a_warning(
    sim_server, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    changes_db_path(tmp_path).mkdir(parents=True)  # changes.db cannot be opened
    outcome = fetch(sim_server(pupils=PUPILS), tmp_path)
    assert outcome.path is not None and outcome.path.is_file() and outcome.complete
    assert "data-quality checks of" in capfd.readouterr().err


def test_check_on_an_older_snapshot_computes_and_keeps_its_findings_once(tmp_path: Path) -> None:
    school = generate(pupils=PUPILS, term=0)
    pupil = first(school, "users", role="student", status="active")
    # Written straight into the archive (not fetched): never checked.
    older = write_snapshot(
        tmp_path, edited(school, "users", pupil["sourcedId"], email="x"), taken_at=term_time(0)
    )
    sim_snapshot(tmp_path, 1)
    assert not changes_db_path(tmp_path).exists()
    before = findings_of(tmp_path, str(older))
    assert before == {("invalid-email", pupil["sourcedId"])}
    assert _kept(tmp_path)[older.stem] == before
    with sqlite3.connect(changes_db_path(tmp_path)) as conn:
        first_check = conn.execute("SELECT id, checked_at FROM quality_checks").fetchall()
    assert findings_of(tmp_path, str(older)) == before
    with sqlite3.connect(changes_db_path(tmp_path)) as conn:
        assert conn.execute("SELECT id, checked_at FROM quality_checks").fetchall() == first_check
    assert check("--archive", str(tmp_path), "--no-save", "latest")[0] == 0
    assert set(_kept(tmp_path)) == {older.stem}


def _pair(tmp_path: Path, *, planted_first: bool) -> Path:
    """Two snapshots of term 0, a day apart: one clean, one with the problems planted."""
    clean = generate(pupils=PUPILS, term=0)
    planted = generate(pupils=PUPILS, term=0, plant_problems=True)
    first_data, second_data = (planted, clean) if planted_first else (clean, planted)
    taken = term_time(0)
    write_snapshot(tmp_path, first_data, taken_at=taken)
    write_snapshot(tmp_path, second_data, taken_at=taken.replace(day=taken.day + 1))
    return tmp_path


def _truth_counts() -> dict[str, int]:
    truth = planted_problems(pupils=PUPILS, term=0)
    return {rule.id: len(truth[rule.id]) for rule in RULES}


def test_the_diff_report_counts_the_problems_new_since_old(tmp_path: Path) -> None:
    archive = _pair(tmp_path, planted_first=False)
    result = CliRunner().invoke(cli, ["diff", "--archive", str(archive), "--format", "json"])
    assert result.exit_code == 0, result.output
    quality = json.loads(result.stdout)["quality"]
    assert quality == {"new": _truth_counts(), "fixed": {}}
    # Both snapshots' findings are kept by the saved diff, and `check` reads them back.
    assert set(_kept(archive)) == {p.stem for p in archive.glob("*/*.db")}
    text = CliRunner().invoke(cli, ["diff", "--archive", str(archive), "--limit", "1"]).stdout
    total = sum(_truth_counts().values())
    assert f"Data quality: {total} new since the old snapshot, 0 fixed (none remain" in text
    assert "  New: duplicate-upn (error): 2\n" in text
    assert "  New: enrollment-without-user (error): 1\n    xQPLANT90 (student) in " in text


def test_the_diff_report_counts_the_problems_fixed_in_every_format(tmp_path: Path) -> None:
    archive = _pair(tmp_path, planted_first=True)
    runner = CliRunner()
    as_json = runner.invoke(cli, ["diff", "--archive", str(archive), "--format", "json"])
    document = json.loads(as_json.stdout)
    assert document["quality"] == {"new": {}, "fixed": _truth_counts()}
    markdown = runner.invoke(cli, ["diff", "--archive", str(archive), "--format", "markdown"])
    assert "\n## Data quality\n\n- 0 new since the old snapshot, " in markdown.stdout
    assert "- Fixed: `invalid-upn (error)`: 2\n" in markdown.stdout
    table = runner.invoke(cli, ["diff", "--archive", str(archive), "--format", "csv"]).stdout
    fixed = [r for r in csv.DictReader(io.StringIO(table)) if r["change"] == "fixed problem"]
    assert {(r["path"], r["sourcedId"]) for r in fixed} == truth_pairs(
        planted_problems(pupils=PUPILS, term=0)
    )
    assert all(r["old"] and not r["new"] for r in fixed)


def test_check_with_a_changes_db_it_cannot_open_still_prints_the_findings(tmp_path: Path) -> None:
    school = generate(pupils=PUPILS, term=0)
    pupil = first(school, "users", role="student", status="active")
    write_snapshot(
        tmp_path, edited(school, "users", pupil["sourcedId"], email="x"), taken_at=term_time(0)
    )
    changes_db_path(tmp_path).mkdir()  # not a database: cannot be opened
    result = CliRunner().invoke(cli, ["check", "--archive", str(tmp_path), "--format", "json"])
    assert result.exit_code == 0
    findings = json.loads(result.stdout)["findings"]
    assert [(f["rule"], f["sourcedId"]) for f in findings] == [
        ("invalid-email", pupil["sourcedId"])
    ]
    assert "the findings were not kept in " in result.stderr and "Traceback" not in result.output


def test_check_names_its_snapshot_as_diff_does(tmp_path: Path) -> None:
    autumn = sim_snapshot(tmp_path, 0)
    spring = sim_snapshot(tmp_path, 1)
    for spec, expected in (("Autumn 2026", autumn), (None, spring), ("previous", autumn)):
        args = ["--archive", str(tmp_path), "--format", "json", *([spec] if spec else [])]
        status, output = check(*args)
        assert status == 0, output
        assert json.loads(output)["snapshot"]["name"] == expected.stem


def test_check_of_an_archive_without_snapshots_says_so(tmp_path: Path) -> None:
    (tmp_path / "3281110").mkdir()
    result = CliRunner().invoke(cli, ["check", "--archive", str(tmp_path), "--estab", "3281110"])
    assert result.exit_code == 1
    assert "holds no complete snapshot of the school" in result.output
    assert "Traceback" not in result.output


def test_the_diff_report_of_two_clean_snapshots_says_no_problems(tmp_path: Path) -> None:
    sim_snapshot(tmp_path, 0)
    sim_snapshot(tmp_path, 1)
    text = CliRunner().invoke(cli, ["diff", "--archive", str(tmp_path), "--no-save"]).stdout
    assert text.endswith("\nData quality: no problems found in either snapshot\n")
