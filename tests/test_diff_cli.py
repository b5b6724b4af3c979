"""`snapshotter diff`: which snapshots it compares, and the pairs it refuses to compare."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from helpers_diff import ESTAB, PUPILS, sim_snapshot, term_time, write_snapshot

from snapshotter.cli import cli
from snapshotter.sim.school import generate


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, ["diff", *map(str, args)], catch_exceptions=False)


def compared(result: Result) -> tuple[str, str]:
    report = json.loads(result.stdout)
    return report["from"]["name"], report["to"]["name"]


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """Terms 0, 1 and 2 of the simulated school, then an incomplete snapshot in term 2."""
    for term in range(3):
        sim_snapshot(tmp_path, term)
    write_snapshot(
        tmp_path,
        generate(seed=1, pupils=PUPILS, term=2),
        taken_at=term_time(2).replace(day=20),
        complete=False,
    )
    return tmp_path


def name(term: int, day: int = 15) -> str:
    return f"{ESTAB}_{term_time(term).replace(day=day).strftime('%Y-%m-%dT%H%M%SZ')}"


def test_with_no_arguments_the_two_latest_complete_snapshots_are_compared(archive: Path) -> None:
    result = run("--archive", archive, "--format", "json")
    assert result.exit_code == 0, result.output
    assert compared(result) == (name(1), name(2))


def test_latest_previous_and_timestamp_prefixes_name_snapshots(archive: Path) -> None:
    assert compared(run("--archive", archive, "--format", "json", "2026-10", "latest")) == (
        name(0),
        name(2),
    )
    assert compared(run("--archive", archive, "--format", "json", "2026-10-15T0830")) == (
        name(0),
        name(2),
    )
    assert compared(run("--archive", archive, "--format", "json", "2026", "previous")) == (
        name(0),
        name(1),
    )


def test_a_timestamp_prefix_matching_several_snapshots_means_the_latest_of_them(
    archive: Path,
) -> None:
    # 2027 holds terms 1 and 2 (and the incomplete one, which is no candidate).
    assert compared(run("--archive", archive, "--format", "json", "2026", "2027")) == (
        name(0),
        name(2),
    )


def test_snapshot_files_can_be_named_by_path(archive: Path) -> None:
    old = archive / ESTAB / f"{name(0)}.db"
    new = archive / ESTAB / f"{name(1)}.db"
    result = run("--archive", archive, "--format", "json", old, new)
    assert compared(result) == (name(0), name(1))


def test_terms_are_named_by_their_titles_in_the_snapshots(archive: Path) -> None:
    result = run(
        "--archive", archive, "--format", "json", "--term", "Autumn 2026", "--term", "spring 2027"
    )
    assert result.exit_code == 0, result.output
    assert compared(result) == (name(0), name(1))
    # A school year is a session too: its latest complete snapshot.
    assert compared(run("--archive", archive, "--format", "json", "Autumn 2026", "2026/27")) == (
        name(0),
        name(2),
    )


def test_a_single_spec_is_old_and_new_is_the_latest(archive: Path) -> None:
    assert compared(run("--archive", archive, "--format", "json", "Autumn 2026")) == (
        name(0),
        name(2),
    )


def test_an_incomplete_snapshot_is_refused_unless_partial_ones_are_allowed(
    archive: Path,
) -> None:
    partial = archive / ESTAB / f"{name(2, 20)}.db"
    refused = run("--archive", archive, "previous", partial)
    assert refused.exit_code == 1
    assert "incomplete" in refused.stderr and "--allow-partial" in refused.stderr
    allowed = run("--archive", archive, "--format", "json", "--allow-partial")
    assert allowed.exit_code == 0, allowed.output
    assert compared(allowed) == (name(2), name(2, 20))


def test_snapshots_of_two_schools_are_refused(archive: Path, tmp_path: Path) -> None:
    other = write_snapshot(
        tmp_path / "other",
        generate(seed=2, pupils=PUPILS, term=1),
        taken_at=term_time(1),
        estab="9999999",
    )
    result = run("--archive", archive, archive / ESTAB / f"{name(0)}.db", other)
    assert result.exit_code == 1
    assert "different schools" in result.stderr
    assert not (archive / "changes.db").exists()


def test_old_newer_than_new_is_refused_unless_reverse_is_explicit(archive: Path) -> None:
    refused = run("--archive", archive, "latest", "previous")
    assert refused.exit_code == 1
    assert "newer than NEW" in refused.stderr and "--reverse" in refused.stderr
    reversed_ = run("--archive", archive, "--format", "json", "--reverse", "latest", "previous")
    assert reversed_.exit_code == 0
    assert compared(reversed_) == (name(2), name(1))


def test_an_archive_of_several_schools_needs_estab(archive: Path) -> None:
    write_snapshot(
        archive, generate(seed=2, pupils=PUPILS, term=0), taken_at=term_time(0), estab="9999999"
    )
    result = run("--archive", archive)
    assert result.exit_code == 1
    assert "several schools" in result.stderr and "--estab" in result.stderr
    assert run("--archive", archive, "--estab", ESTAB, "--format", "json").exit_code == 0


def test_one_snapshot_is_not_enough_and_the_message_says_so(tmp_path: Path) -> None:
    sim_snapshot(tmp_path, 0)
    result = run("--archive", tmp_path)
    assert result.exit_code == 1
    assert "only one complete snapshot" in result.stderr


def test_a_name_that_matches_nothing_is_an_error_that_lists_what_would(archive: Path) -> None:
    result = run("--archive", archive, "Michaelmas 1999")
    assert result.exit_code == 1
    assert "timestamp prefix" in result.stderr and "latest/previous" in result.stderr


def test_a_mass_change_exits_3_only_with_fail_on_mass_change(tmp_path: Path) -> None:
    sim_snapshot(tmp_path, 2)
    sim_snapshot(tmp_path, 3)  # the rollover ends nearly every enrollment
    plain = run("--archive", tmp_path)
    assert plain.exit_code == 0
    assert "expected, the new snapshot is in a new school year (2027/28)" in plain.stdout
    failing = run("--archive", tmp_path, "--fail-on-mass-change", "50")
    assert failing.exit_code == 3
    assert "enrollments" in failing.stderr
    assert run("--archive", tmp_path, "--fail-on-mass-change", "100").exit_code == 0


def test_a_wiped_roster_outside_a_rollover_is_flagged_as_an_alarm(tmp_path: Path) -> None:
    school = generate(seed=1, pupils=PUPILS, term=0)
    wiped = {**school, "users": [u for u in school["users"] if u["role"] != "student"]}
    write_snapshot(tmp_path, school, taken_at=term_time(0))
    write_snapshot(tmp_path, wiped, taken_at=term_time(0).replace(day=16))
    result = run("--archive", tmp_path, "--fail-on-mass-change", "25")
    assert result.exit_code == 3
    assert "check the sync did not wipe the roster" in result.stdout
    assert "users" in result.stderr


def test_no_save_leaves_no_changes_database(archive: Path) -> None:
    result = run("--archive", archive, "--no-save")
    assert result.exit_code == 0
    assert "users" in result.stdout
    assert not (archive / "changes.db").exists()


def test_output_writes_the_report_to_a_file_and_nothing_to_stdout(
    archive: Path, tmp_path: Path
) -> None:
    target = tmp_path / "report.json"
    result = run("--archive", archive, "--format", "json", "--output", target)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert json.loads(target.read_text(encoding="utf-8"))["to"]["name"] == name(2)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # it names pupils
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []


def test_output_into_a_directory_that_does_not_exist_is_refused_before_any_work(
    archive: Path, tmp_path: Path
) -> None:
    result = run("--archive", archive, "--output", tmp_path / "no-such-dir" / "report.txt")
    assert result.exit_code == 1
    assert "there is no directory" in result.stderr
    assert "Traceback" not in result.output
    assert not (archive / "changes.db").exists()
