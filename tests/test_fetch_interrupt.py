"""Ctrl-C at any moment of a fetch: the exit status and the archive always agree. Either the
fetch exits 0 and prints the path of a complete snapshot, or it fails and leaves nothing: no
snapshot, no `.partial` (even after a second Ctrl-C)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers_fetch import ESTAB, RP, SECRET, metadata, server_truth, stored

from snapshotter.sim.quirks import Quirks


def _start_fetch(sim, archive: Path) -> subprocess.Popen:  # noqa: ANN001
    command = [sys.executable, "-c", "from snapshotter.cli import cli; cli()", "fetch",
               "--base-url", sim.base_url, "--rp", RP, "--estab", ESTAB,
               "--archive", str(archive), "--page-size", "20", "--quiet"]  # fmt: skip
    env = {**os.environ, "SNAPSHOTTER_SECRET": SECRET}
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.001)


def _snapshots(archive: Path) -> list[Path]:
    # In the schools' folders: changes.db and history.db, which a fetch updates, are no snapshots.
    return sorted(archive.glob("*/*.db"))


# When to press Ctrl-C, given the number of requests a whole fetch makes.
MOMENTS: dict[str, Callable[[int], int]] = {
    "mid-fetch": lambda total: total // 2,
    "at the next to last request": lambda total: total - 1,
    "right after the last page": lambda total: total,
}


@pytest.fixture
def sim(sim_server):  # noqa: ANN001, ANN201
    return sim_server(pupils=40)


@pytest.fixture
def total_requests(sim, tmp_path: Path) -> int:  # noqa: ANN001
    """The requests one whole fetch makes, counted on an uninterrupted fetch."""
    sim.quirks = Quirks(latency_s=0.01)
    process = _start_fetch(sim, tmp_path / "counting")
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    total = len(sim.request_log)
    sim.request_log.clear()
    return total


def _assert_status_and_archive_agree(process: subprocess.Popen, archive: Path, sim) -> None:  # noqa: ANN001
    stdout, stderr = process.communicate(timeout=60)
    assert "Traceback" not in stderr
    assert not list(archive.rglob("*.partial")), "a temporary file was left behind"
    snapshots = _snapshots(archive)
    if process.returncode == 0:
        [path] = snapshots
        assert stdout.strip() == str(path)
        assert metadata(path)["complete"] == 1
        assert stored(path) == server_truth(sim)
    else:
        assert snapshots == [], f"exit {process.returncode} yet {snapshots} was published"
        assert stdout.strip() == ""


@pytest.mark.parametrize("times", [1, 2], ids=["once", "twice in a row"])
@pytest.mark.parametrize("moment", MOMENTS, ids=list(MOMENTS))
def test_ctrl_c_at_any_moment_leaves_status_and_archive_agreeing(
    sim,
    total_requests: int,
    tmp_path: Path,
    moment: str,
    times: int,  # noqa: ANN001
) -> None:
    archive = tmp_path / "archive"
    process = _start_fetch(sim, archive)
    target = MOMENTS[moment](total_requests)
    _wait_for(lambda: len(sim.request_log) >= target, f"{target} requests")
    for _ in range(times):
        process.send_signal(signal.SIGINT)
        time.sleep(0.005)
    _assert_status_and_archive_agree(process, archive, sim)


@pytest.mark.parametrize("times", [1, 2], ids=["once", "twice in a row"])
def test_ctrl_c_the_moment_the_snapshot_appears_still_prints_it_and_exits_0(
    sim,
    tmp_path: Path,
    times: int,  # noqa: ANN001
) -> None:
    # Before: "Aborted!", exit 1 and no path, yet the snapshot had been published.
    sim.quirks = Quirks(latency_s=0.01)
    archive = tmp_path / "archive"
    process = _start_fetch(sim, archive)
    _wait_for(lambda: bool(_snapshots(archive)) or process.poll() is not None, "a snapshot")
    for _ in range(times):
        process.send_signal(signal.SIGINT)
        time.sleep(0.005)
    _assert_status_and_archive_agree(process, archive, sim)
    assert process.returncode == 0  # published, so the command must say so
