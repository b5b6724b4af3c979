"""A fetch killed with SIGKILL at any moment leaves the archive as it was, apart from a
temporary file that the next run cleans up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers_fetch import ESTAB, RP, SECRET, fetch, tree

from snapshotter.sim.quirks import Quirks


def _start_fetch(sim, archive: Path) -> subprocess.Popen:  # noqa: ANN001
    command = [sys.executable, "-c", "from snapshotter.cli import cli; cli()", "fetch",
               "--base-url", sim.base_url, "--rp", RP, "--estab", ESTAB,
               "--archive", str(archive), "--page-size", "20", "--quiet"]  # fmt: skip
    env = {**os.environ, "SNAPSHOTTER_SECRET": SECRET}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for(condition, what: str, timeout_s: float = 30) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.mark.parametrize(
    "requests_before_kill", [2, 25, 60], ids=["at the start", "early", "mid-fetch"]
)
def test_a_killed_fetch_leaves_the_archive_as_it_was(
    sim_server, tmp_path: Path, requests_before_kill: int
):
    sim = sim_server(pupils=60)
    archive = tmp_path / "archive"
    existing = fetch(sim, archive).path
    before = tree(archive)
    sim.quirks = Quirks(latency_s=0.02)  # slow enough to be caught in the middle
    sim.request_log.clear()

    process = _start_fetch(sim, archive)
    _wait_for(lambda: len(sim.request_log) >= requests_before_kill, "requests")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)

    after = tree(archive)
    leftovers = set(after) - set(before)
    assert all(name.endswith(".partial") for name in leftovers), leftovers
    assert {name: data for name, data in after.items() if name in before} == before
    assert existing.read_bytes() == before[str(existing.relative_to(archive))]

    # The next fetch succeeds and removes what the killed one left.
    sim.quirks = Quirks()
    second = fetch(sim, archive)
    assert second.complete
    assert not list(archive.rglob("*.partial"))
    assert len(list(archive.glob("*/*.db"))) == 2  # snapshots (changes.db holds findings)
