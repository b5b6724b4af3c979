"""An archive for the Datasette site's tests: the simulated school over terms 0 to 3 (the last a
rollover), each diff saved as `snapshotter diff` saves it, each snapshot's data-quality findings
kept as a fetch keeps them, and a second school whose provider-given name is markup."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers_diff import sim_snapshot, term_time, write_snapshot

from snapshotter.archive.layout import read_snapshot_info
from snapshotter.diff import diff_and_save
from snapshotter.quality.store import kept_check
from snapshotter.sim.school import generate

HOSTILE_NAME = "<script>alert('pwned')</script> Academy"
HOSTILE_ESTAB = "666"


@dataclass(frozen=True)
class Archive:
    path: Path
    snapshots: list[Path]
    run_ids: list[int]


def save_diff(old: Path, new: Path, archive: Path) -> int:
    """Diff two snapshot files and save the run in the archive's changes.db; its id."""
    return diff_and_save(
        read_snapshot_info(old), read_snapshot_info(new), archive / "changes.db"
    ).run_id


def build_archive(root: Path) -> Archive:
    """Terms 0 to 3 (the last a rollover), each diffed from the one before; and a second
    school whose provider-given name is markup."""
    snapshots = [sim_snapshot(root, term) for term in range(4)]
    run_ids = [
        save_diff(old, new, root) for old, new in zip(snapshots, snapshots[1:], strict=False)
    ]
    for path in snapshots:
        kept_check(root / "changes.db", read_snapshot_info(path))
    write_snapshot(
        root,
        generate(seed=2, pupils=20, term=0),
        taken_at=term_time(0),
        estab=HOSTILE_ESTAB,
        school_name=HOSTILE_NAME,
    )
    return Archive(root, snapshots, run_ids)


def get(datasette: Any, url: str) -> Any:
    """A page of the in-process site, as `datasette.client` answers it."""
    return asyncio.run(datasette.client.get(url))


ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port free on 127.0.0.1 just now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Served:
    """`snapshotter serve` running in a subprocess: its process, its address and the line it
    printed once it listened."""

    process: subprocess.Popen[str]
    url: str  # http://127.0.0.1:PORT/
    first_line: str

    def stop(self) -> int:
        """Ctrl-C, as a person stops it; its exit status."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=30)


@contextmanager
def serving(archive: Path, **environ: str) -> Iterator[Served]:
    """`snapshotter serve --archive ARCHIVE` on a free loopback port, until the block ends
    (killed then if it still runs). Fails with its stderr when it does not start."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **environ}
    process = subprocess.Popen(
        [sys.executable, "-c", "from snapshotter.cli import cli; cli()"]
        + ["serve", "--archive", str(archive), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # printed once the port listens
        url = f"http://127.0.0.1:{port}/"
        if url not in line:
            process.kill()
            _, errors = process.communicate()
            raise AssertionError(f"snapshotter serve did not start: {line}{errors}")
        yield Served(process, url, line)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
