"""A read-only archive and a full disk, for real, during fetch and import: one line naming the
directory or file and what to do, exit 1, nothing left behind, the archive as it was.

Both faults are made for real in a child process (the CLI as a user runs it): the child is the
one that cannot write, so this test process can still set up and inspect the archive.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers_faults import assert_cannot_write, modes_apply_even_to_root
from helpers_fetch import ESTAB, RP, SECRET, fetch, tree

from snapshotter.importer import PARALLEL_FROM_BYTES, import_snapshot
from snapshotter.sim.school import generate


def _file_size_limit(limit_bytes: int) -> Callable[[], None]:
    """Run in the child: writes past `limit_bytes` in any file fail with EFBIG, as on a full
    disk (SIGXFSZ ignored, or the kernel would kill the child instead)."""

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return limit


def _run_cli(args: list[str], preexec: Callable[[], None]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "from snapshotter.cli import cli; cli()", *args]
    env = {**os.environ, "SNAPSHOTTER_SECRET": SECRET}
    return subprocess.run(
        command, env=env, preexec_fn=preexec, capture_output=True, text=True, timeout=120
    )


def _one_line(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # no traceback, no "Task exception was never retrieved"
    assert all(text in lines[0] for text in expected), lines[0]
    return lines[0]


def _saved_responses(directory: Path, *, big: bool = False) -> Path:
    """A school's saved API responses; with `big`, enrollments as ndjson large enough for the
    import to parse it in worker processes."""
    directory.mkdir()
    school = generate(seed=1, pupils=150, term=0)
    for collection, records in school.items():
        if collection == "enrollments" and big:
            continue
        (directory / f"{collection}.json").write_text(json.dumps({collection: records}))
    if big:
        with open(directory / "enrollments.ndjson", "w") as lines:
            copy = 0
            while lines.tell() < PARALLEL_FROM_BYTES * 1.2:
                for record in school["enrollments"]:
                    lines.write(
                        json.dumps({**record, "sourcedId": f"{record['sourcedId']}-{copy}"})
                    )
                    lines.write("\n")
                copy += 1
        assert (directory / "enrollments.ndjson").stat().st_size >= PARALLEL_FROM_BYTES
    return directory


@pytest.mark.parametrize("read_only", ["archive", "school directory"])
def test_a_read_only_archive_gets_one_line_naming_the_directory(
    sim_server, tmp_path: Path, read_only: str
) -> None:
    sim = sim_server(pupils=60)
    archive = tmp_path / "archive"
    if read_only == "archive":
        archive.mkdir()
        locked = archive
    else:
        fetch(sim, archive)  # the school's directory exists, with a snapshot in it
        locked = archive / ESTAB
    locked.chmod(0o500)
    assert_cannot_write(locked)
    before = tree(archive)
    source = _saved_responses(tmp_path / "saved")

    fetched = _run_cli(
        ["fetch", "--base-url", sim.base_url, "--rp", RP, "--estab", ESTAB,
         "--archive", str(archive), "--quiet"],
        modes_apply_even_to_root,
    )  # fmt: skip
    _one_line(fetched, f"archive directory {locked} is not writable", "--archive", "fetch again")
    imported = _run_cli(
        ["import", str(source), "--estab", ESTAB, "--archive", str(archive)],
        modes_apply_even_to_root,
    )
    _one_line(imported, f"archive directory {locked} is not writable", "import again")

    assert tree(archive) == before
    locked.chmod(0o700)


@pytest.mark.parametrize("share", [0.0, 0.5, 0.97], ids=["at once", "midway", "finishing"])
def test_a_full_disk_during_a_fetch_gets_one_line_and_leaves_the_archive_as_it_was(
    sim_server, tmp_path: Path, share: float
) -> None:
    sim = sim_server(pupils=150)
    archive = tmp_path / "archive"
    existing = fetch(sim, archive).path
    assert existing is not None
    before = tree(archive)
    # A new snapshot of the same school is about the size of the existing one: the disk
    # fills at once, midway, or while the snapshot is being indexed and finished.
    limit = max(1024, int(existing.stat().st_size * share))

    result = _run_cli(
        ["fetch", "--base-url", sim.base_url, "--rp", RP, "--estab", ESTAB,
         "--archive", str(archive), "--quiet"],
        _file_size_limit(limit),
    )  # fmt: skip
    line = _one_line(result, "disk full while writing", "free space and fetch again")
    assert str(archive / ESTAB / f"{ESTAB}_") in line
    assert tree(archive) == before  # no .partial, nothing else


@pytest.mark.parametrize("big", [False, True], ids=["in this process", "in worker processes"])
def test_a_full_disk_during_an_import_gets_one_line_and_leaves_nothing(
    tmp_path: Path, big: bool
) -> None:
    source = _saved_responses(tmp_path / "saved", big=big)
    reference = import_snapshot(source, ESTAB, tmp_path / "reference")
    archive = tmp_path / "archive"
    archive.mkdir()

    result = _run_cli(
        ["import", str(source), "--estab", ESTAB, "--archive", str(archive)],
        _file_size_limit(reference.stat().st_size // 2),
    )
    _one_line(result, f"disk full while writing {archive / ESTAB}", "free space and import again")
    assert tree(archive) == {}
