"""Progress on a real 80-column terminal (a pseudo-terminal): it fits, and it does not scroll."""

from __future__ import annotations

import fcntl
import os
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

from click.testing import CliRunner
from helpers_fetch import ESTAB, RP, SECRET

from snapshotter.cli import cli
from snapshotter.sim.quirks import Quirks

ROOT = Path(__file__).resolve().parent.parent
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _run_on_a_terminal(args: list[str], columns: int = 80) -> tuple[str, str, int]:
    """Run `snapshotter ARGS` with stderr on a pseudo-terminal `columns` wide and stdout piped:
    (what the terminal received, stdout, exit status)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env |= {"PYTHONPATH": str(ROOT), "SNAPSHOTTER_SECRET": SECRET, "SNAPSHOTTER_ARCHIVE": ""}
    process = subprocess.Popen(
        [sys.executable, "-c", "from snapshotter.cli import cli; cli()", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    received = bytearray()
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        received += chunk
    os.close(master)
    stdout = process.stdout.read().decode() if process.stdout else ""
    status = process.wait(timeout=120)
    return received.decode("utf-8", "replace"), stdout, status


def _rows(terminal: str) -> tuple[int, list[str]]:
    """(lines the terminal scrolled, every stretch of text written between two returns)."""
    text = _ESCAPES.sub("", terminal).replace("\r\n", "\n")
    return text.count("\n"), [s for s in re.split(r"[\r\n]", text) if s]


def test_fetch_progress_fits_an_80_column_terminal_in_a_few_rows(sim_server, tmp_path: Path):
    sim = sim_server(pupils=300, quirks=Quirks(latency_s=0.005))
    archive = tmp_path / "archive"
    args = ["fetch", "--base-url", sim.base_url, "--rp", RP, "--estab", ESTAB,
            "--archive", str(archive), "--page-size", "40"]  # fmt: skip
    terminal, stdout, status = _run_on_a_terminal(args)
    assert status == 0, terminal
    (snapshot,) = (archive / ESTAB).glob("*.db")
    assert stdout == f"{snapshot}\n"  # nothing but the path on stdout
    scrolled, stretches = _rows(terminal)
    assert scrolled <= 8, terminal  # the bar, then one line per collection
    assert max(len(s) for s in stretches) <= 79, max(stretches, key=len)
    assert terminal.count("\r") > 6  # the bar was redrawn in place as records came in
    summary = _ESCAPES.sub("", terminal).replace("\r\n", "\n")
    for collection in ("orgs", "users", "enrollments"):
        assert re.search(rf"^{collection} \d+/\d+$", summary, re.M)


def test_the_demo_shows_progress_for_each_snapshot_within_the_terminal(tmp_path: Path):
    archive = tmp_path / "demo-archive"
    args = ["demo", "--no-serve", "--pupils", "150", "--archive", str(archive)]
    terminal, stdout, status = _run_on_a_terminal(args)
    assert status == 0, terminal
    assert "Term 0 " in terminal and "Term 1 " in terminal
    assert "Generating the simulated school (150 pupils)..." in terminal
    assert "Moving the simulated school on 1 term..." in terminal
    scrolled, stretches = _rows(terminal)
    assert scrolled <= 18, terminal  # two snapshots and what happens between them
    assert max(len(s) for s in stretches) <= 79, max(stretches, key=len)
    assert "Changes for " in stdout


def test_a_log_gets_one_line_per_collection_and_nothing_else(sim_server, tmp_path: Path):
    sim = sim_server(pupils=60)
    args = ["fetch", "--base-url", sim.base_url, "--rp", RP, "--estab", ESTAB,
            "--archive", str(tmp_path), "--page-size", "40"]  # fmt: skip
    result = CliRunner().invoke(cli, args, env={"SNAPSHOTTER_SECRET": SECRET})
    assert result.exit_code == 0, result.output
    assert len(result.stderr.splitlines()) == 6
    assert len(result.stdout.splitlines()) == 1
