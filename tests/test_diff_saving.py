"""Saving a diff into changes.db: diffs saving at once, waiting for the lock, and a save that
fails (a full disk, a damaged or unwritable changes.db) still shows the report."""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers_diff import sim_snapshot
from helpers_faults import assert_cannot_write, modes_apply_even_to_root

from snapshotter.archive import changes
from snapshotter.cli import cli


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """Four terms of the simulated school (the last after a rollover)."""
    directory = tmp_path / "archive"
    for term in range(4):
        sim_snapshot(directory, term)
    return directory


def snapshot_files(archive: Path) -> list[Path]:
    return sorted(archive.rglob("*.db"))


def saved_runs(changes_db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(changes_db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute(
            "SELECT o.name, n.name FROM diff_runs d JOIN snapshots o ON o.id = d.old_snapshot "
            "JOIN snapshots n ON n.id = d.new_snapshot ORDER BY d.id"
        )
        return sorted(rows)


def _diff_in_a_process(barrier, args: list[str]) -> None:  # noqa: ANN001
    import snapshotter.diff.session  # noqa: F401  (imported first: the saves start together)
    import snapshotter.select  # noqa: F401

    barrier.wait()
    cli.main(args, prog_name="snapshotter")


def _shape_in_a_process(barrier, directory: str, rounds: int) -> None:  # noqa: ANN001
    for number in range(rounds):
        barrier.wait(timeout=30)  # a process that died breaks the barrier: the rest stop too
        changes.open_changes_db(Path(directory) / f"changes-{number}.db").close()


def test_processes_shaping_fresh_changes_dbs_at_once_never_collide(tmp_path: Path) -> None:
    # Before: 'view "joiners" already exists' within a few rounds.
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(6)
    processes = [
        context.Process(target=_shape_in_a_process, args=(barrier, str(tmp_path), 20))
        for _ in range(6)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0] * 6
    for number in range(20):
        with sqlite3.connect(tmp_path / f"changes-{number}.db") as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == changes.SHAPE_VERSION
            views = conn.execute("SELECT name FROM sqlite_master WHERE type = 'view'").fetchall()
            assert sorted(name for (name,) in views) == sorted(changes.VIEWS_SQL)


@pytest.mark.parametrize("changes_db_is", ["fresh", "of an older version", "fresh again"])
def test_diffs_saving_into_a_fresh_or_older_changes_db_at_once_all_succeed(
    archive: Path, tmp_path: Path, changes_db_is: str
) -> None:
    changes_db = archive / "changes.db"
    snapshots = snapshot_files(archive)
    pairs = [(a, b) for i, a in enumerate(snapshots) for b in snapshots[i + 1 :]]  # six pairs
    if changes_db_is == "of an older version":
        first = CliRunner().invoke(cli, ["diff", "--archive", str(archive), "--format", "json"])
        assert first.exit_code == 0, first.output
        with sqlite3.connect(changes_db) as conn:
            conn.execute("PRAGMA user_version = 1")  # every diff reshapes it: views anew
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(len(pairs))
    processes = []
    for number, (old, new) in enumerate(pairs):
        args = ["diff", "--archive", str(archive), str(old), str(new), "--format", "json"]
        args += ["--output", str(tmp_path / f"report-{number}.json")]
        process = context.Process(target=_diff_in_a_process, args=(barrier, args))
        process.start()
        processes.append(process)
    for process in processes:
        process.join(timeout=120)
    # Before: some died with 'view "joiners" already exists', their reports lost.
    assert [p.exitcode for p in processes] == [0] * len(pairs)
    expected = sorted((old.stem, new.stem) for old, new in pairs)
    assert saved_runs(changes_db) == expected
    for number in range(len(pairs)):
        assert json.loads((tmp_path / f"report-{number}.json").read_text())["summary"]


def test_a_diff_waits_for_the_write_lock_as_long_as_it_is_held(
    archive: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    changes_db = archive / "changes.db"
    first = CliRunner().invoke(cli, ["diff", "--archive", str(archive), "--format", "json"])
    assert first.exit_code == 0, first.output
    # Another diff holds the write lock for several times the (lowered) wait before a notice;
    # the old code gave up after a fixed 30 s and lost the report.
    monkeypatch.setattr(changes, "LOCK_NOTICE_AFTER_S", 0.2)
    holder = sqlite3.connect(changes_db, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    releaser = threading.Timer(1.5, holder.execute, ("COMMIT",))
    releaser.start()
    try:
        result = CliRunner().invoke(
            cli, ["diff", "--archive", str(archive), "--format", "json", "2026-10", "latest"]
        )
    finally:
        releaser.join()
        holder.close()
    assert result.exit_code == 0, result.output
    assert result.stderr.count("waiting for changes.db: another diff is saving") == 1
    assert json.loads(result.stdout)["from"]["name"].startswith("3281110_2026-10")
    assert len(saved_runs(changes_db)) == 2


def _diff_subprocess(
    archive: Path,
    *args: str,
    file_size_limit: int | None = None,
    preexec: Callable[[], None] | None = None,
) -> subprocess.CompletedProcess:
    """`snapshotter diff` in a process of its own; with `file_size_limit`, no file it writes
    may grow past that many bytes (RLIMIT_FSIZE, SIGXFSZ ignored): the full disk SQLite and
    Python see is real, EFBIG on write."""
    prelude = "import sys\n"
    if file_size_limit is not None:
        prelude += (
            "import resource, signal\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({file_size_limit}, {file_size_limit}))\n"
        )
    prelude += "from snapshotter.cli import cli\ncli(prog_name='snapshotter')\n"
    command = [sys.executable, "-c", prelude, "diff", "--archive", str(archive), *args]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=120, preexec_fn=preexec
    )


def test_a_full_disk_while_saving_still_prints_the_report_and_damages_nothing(
    archive: Path,
) -> None:
    changes_db = archive / "changes.db"
    earlier = _diff_subprocess(archive, "2026-10", "latest", "--format", "json")
    assert earlier.returncode == 0, earlier.stderr
    before = saved_runs(changes_db)

    # changes.db may not grow by more than a page: saving the next run fails as on a full
    # disk (SQLite sees EFBIG, and calls it a disk I/O error rather than a full disk).
    result = _diff_subprocess(
        archive, "--format", "json", file_size_limit=changes_db.stat().st_size + 1000
    )
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["summary"]["users"]
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert str(changes_db) in line and "not saved" in line
    assert "disk I/O error" in line and "free some disk space" in line
    assert saved_runs(changes_db) == before  # still opens, every earlier run kept
    assert not list(archive.glob("changes.db-*"))


def test_a_damaged_changes_db_still_prints_the_report_and_is_left_as_it_was(
    archive: Path,
) -> None:
    # Tests run as root, which ignores file modes: a changes.db SQLite cannot write into is
    # made here from a file that is not a database at all.
    changes_db = archive / "changes.db"
    changes_db.write_bytes(b"not a database, whatever it once was\n" * 200)
    before = changes_db.read_bytes()
    result = _diff_subprocess(archive, "--format", "json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["summary"]
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert f"not saved in {changes_db}" in line and "file is not a database" in line
    assert "--no-save" in line
    assert changes_db.read_bytes() == before


def test_a_changes_db_that_cannot_be_created_still_prints_the_report(archive: Path) -> None:
    # Root creates files in a read-only directory; a directory where the file should be stops
    # root as it stops anyone.
    (archive / "changes.db").mkdir()
    result = _diff_subprocess(archive, "--format", "json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["summary"]
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert f"not saved in {archive / 'changes.db'}" in line


def test_a_read_only_changes_db_still_prints_the_report_and_is_left_as_it_was(
    archive: Path,
) -> None:
    changes_db = archive / "changes.db"
    earlier = _diff_subprocess(archive, "2026-10", "latest", "--format", "json")
    assert earlier.returncode == 0, earlier.stderr
    before_runs = saved_runs(changes_db)
    changes_db.chmod(0o400)
    before = changes_db.read_bytes()
    # The child runs with file modes binding it even as root (see helpers_faults).
    result = _diff_subprocess(archive, "--format", "json", preexec=modes_apply_even_to_root)
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["summary"]["users"]  # the report is still printed
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert f"not saved in {changes_db}" in line and "--no-save" in line
    assert changes_db.read_bytes() == before
    changes_db.chmod(0o600)
    assert saved_runs(changes_db) == before_runs


def test_a_read_only_archive_without_changes_db_still_prints_the_report(archive: Path) -> None:
    archive.chmod(0o500)
    try:
        assert_cannot_write(archive)
        result = _diff_subprocess(archive, "--format", "json", preexec=modes_apply_even_to_root)
    finally:
        archive.chmod(0o700)
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["summary"]["users"]
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert f"not saved in {archive / 'changes.db'}" in line
    assert not (archive / "changes.db").exists()


def test_output_on_a_full_disk_is_one_clear_line_and_leaves_no_partial_file(
    archive: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out" / "report.json"
    output.parent.mkdir()
    result = _diff_subprocess(
        archive, "2026-10", "latest", "--format", "json", "--no-save", "--output", str(output),
        file_size_limit=4096,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: cannot write {output}: File too large")
    assert list(output.parent.iterdir()) == []
    assert not (archive / "changes.db").exists()
