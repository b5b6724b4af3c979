"""`snapshotter demo` ends by serving its archive: the URL and the pages worth opening are
printed and answer, a busy --port is replaced by a free one (and said), Ctrl-C ends it cleanly."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from snapshotter.datasette import plugin

ROOT = Path(__file__).resolve().parent.parent


def _status(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _has_route(path: str) -> bool:
    return any(re.match(pattern, path) for pattern, _ in plugin.register_routes(datasette=None))


def test_the_demo_serves_its_archive_names_its_pages_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    busy_port = busy.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    env.pop("SNAPSHOTTER_ARCHIVE", None)
    command = [sys.executable, "-c", "from snapshotter.cli import cli; cli()", "demo"]
    # 400 pupils: enough for a pupil to move class in one term (150 have none).
    args = ["--pupils", "400", "--archive", str(tmp_path / "demo"), "--port", str(busy_port)]
    demo = subprocess.Popen(
        [*command, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert demo.stdout is not None and demo.stderr is not None
        lines: list[str] = []
        while not lines or not lines[-1].startswith("Serving the demo archive"):
            line = demo.stdout.readline()
            assert line, "".join(lines) + demo.stderr.read()
            lines.append(line.rstrip("\n"))
        moved = re.search(
            rf"Port {busy_port} is in use: serving on port (\d+) instead", "\n".join(lines)
        )
        assert moved, "\n".join(lines)
        base = f"http://127.0.0.1:{moved[1]}"
        assert f"at {base}/ (Ctrl-C stops it)" in lines[-1]
        pages = [demo.stdout.readline().rstrip("\n") for _ in range(2)]
        report = re.fullmatch(
            rf"  The change report of this run: ({base}/-/snapshotter/runs/(\d+))", pages[0]
        )
        history = re.fullmatch(
            rf"  A pupil who moved class \(.+\): "
            rf"({base}/-/snapshotter/history/3281110/users/(\S+))",
            pages[1],
        )
        assert report and history, pages
        status, home = _status(f"{base}/")
        assert status == 200 and f'data-run-id="{report[2]}"' in home
        status, html = _status(report[1])
        assert status == 200 and 'class="joiners"' in html
        # The pupil did move class in that run, as the canned query shows.
        status, body = _status(
            f"{base}/changes/class_moves_in_run.json?run_id={report[2]}&_shape=array"
        )
        assert status == 200
        assert history[2] in {row["user_sourcedId"] for row in json.loads(body)}
        status, _ = _status(history[1])
        # History pages come with another branch of issue 9; once routed, the page must answer.
        expected = 200 if _has_route(history[1].removeprefix(base)) else 404
        assert status == expected
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=30) == 0
        assert "Traceback" not in demo.stderr.read()
    finally:
        busy.close()
        if demo.poll() is None:
            demo.kill()
            demo.wait()
