"""The progress display: one redrawn bar on a terminal, a line per endpoint elsewhere."""

from __future__ import annotations

import io

import click

from snapshotter.fetch import EndpointProgress
from snapshotter.progress import ProgressDisplay


def _event(collection: str, records: int, total: int | None, **kw) -> EndpointProgress:  # noqa: ANN003
    return EndpointProgress("3281110", None, collection, records, total, 1, **kw)


def test_a_terminal_sees_one_bar_redrawn_then_a_line_per_collection() -> None:
    stream = io.StringIO()
    display = ProgressDisplay(stream, live=True, columns=60)
    display(_event("users", 40, 75, done=False))
    display(_event("enrollments", 120, None, done=False))
    display(_event("users", 75, 75, done=True))
    display.close()
    output = stream.getvalue()
    bar, summary = output.split("\n", 1)
    assert bar.startswith("\r") and "Fetching users 75/75" in bar and "195/195" in bar
    assert all(len(click.unstyle(s)) <= 59 for s in bar.split("\r"))  # never wider
    assert summary == "users 75/75\nenrollments 120/?\n"


def test_a_log_gets_one_line_per_finished_endpoint_with_any_problem() -> None:
    stream = io.StringIO()
    display = ProgressDisplay(stream, live=False)
    display(_event("users", 40, 75))
    display(_event("users", 75, 75, done=True))
    display(_event("classes", 0, None, done=True, note="HTTP 403"))
    assert stream.getvalue() == "users 75/75\nclasses 0/? - HTTP 403\n"
