"""`snapshotter diff --output` never replaces the archive's own files."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from helpers_diff import sim_snapshot

from snapshotter.cli import cli


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, ["diff", *map(str, args)], catch_exceptions=False)


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    directory = tmp_path / "archive"
    for term in range(2):
        sim_snapshot(directory, term)
    saved = run("--archive", directory, "--format", "json")
    assert saved.exit_code == 0, saved.output
    for suffix in ("-wal", "-journal", "-shm"):  # as a live SQLite would leave them
        (directory / f"changes.db{suffix}").write_bytes(b"journal " + suffix.encode())
    return directory


def everything(directory: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def snapshot(archive: Path) -> Path:
    return sorted(archive.glob("*/*.db"))[-1]


TARGETS = {
    "changes.db": lambda archive: archive / "changes.db",
    "changes.db-wal": lambda archive: archive / "changes.db-wal",
    "changes.db-journal": lambda archive: archive / "changes.db-journal",
    "changes.db-shm": lambda archive: archive / "changes.db-shm",
    "a snapshot": snapshot,
    "a new file in a school directory": lambda archive: snapshot(archive).parent / "report.csv",
    "changes.db by way of ..": lambda archive: archive / "3281110" / ".." / "changes.db",
}


@pytest.mark.parametrize("target", TARGETS, ids=list(TARGETS))
def test_output_onto_the_archives_own_files_is_refused_before_any_work(
    archive: Path, target: str
) -> None:
    before = everything(archive)
    output = TARGETS[target](archive)
    result = run("--archive", archive, "--format", "csv", "--output", output)
    assert result.exit_code == 2
    assert "write it outside the archive" in result.stderr
    assert everything(archive) == before


def test_output_through_a_symlink_into_the_archive_is_refused(
    archive: Path, tmp_path: Path
) -> None:
    before = everything(archive)
    link = tmp_path / "innocent-looking.csv"
    link.symlink_to(archive / "changes.db")
    result = run("--archive", archive, "--format", "csv", "--output", link)
    assert result.exit_code == 2
    assert "the archive's changes.db" in result.stderr
    assert everything(archive) == before
    assert link.is_symlink()


def test_output_onto_a_snapshot_named_outside_the_archive_is_refused(
    archive: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    old = sim_snapshot(elsewhere, 0)
    new = sim_snapshot(elsewhere, 1)
    before = everything(elsewhere)
    result = run("--archive", archive, old, new, "--no-save", "--output", new)
    assert result.exit_code == 2
    assert "a snapshot being compared" in result.stderr
    assert everything(elsewhere) == before


def test_output_beside_changes_db_in_the_archive_is_still_allowed(archive: Path) -> None:
    result = run("--archive", archive, "--format", "csv", "--output", archive / "report.csv")
    assert result.exit_code == 0, result.output
    assert (archive / "report.csv").read_text().startswith("entity,")


def test_output_to_a_full_device_is_one_clear_line_and_the_device_stays(archive: Path) -> None:
    # /dev/full is a real full disk. The report used to be renamed over the output path,
    # which here would replace the device itself (as root): never run this test on that code.
    result = run("--archive", archive, "--format", "json", "--no-save", "--output", "/dev/full")
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: cannot write /dev/full: No space left on device"
    assert stat.S_ISCHR(Path("/dev/full").stat().st_mode)
