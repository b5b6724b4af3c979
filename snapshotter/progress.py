"""The progress display of `snapshotter fetch` and `demo`, on stderr so stdout keeps only the path.

On a terminal, one bar (click's) is redrawn in place, as wide as the terminal and never wider:
the collection that moved last, then records saved so far against the totals the provider
announced. When the fetch is over the bar stays, followed by one line per collection
(`users 1400/1400`). Elsewhere (cron, CI) one line is written per collection as it finishes.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, TextIO

import click

from .fetch import EndpointProgress
from .model import COLLECTIONS
from .safe_text import printable

# Columns assumed when the stream cannot say (it is not a terminal after all).
FALLBACK_COLUMNS = 80
# Room kept for the collection that moved last, so the bar does not jitter as it changes.
ITEM_WIDTH = 28


class _Terminal:
    """The stream as click's bar sees it: a terminal (a test may ask for one on a buffer)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return True


def terminal_columns(stream: TextIO) -> int:
    """The width of the terminal `stream` writes to (stderr's own, even when stdout is piped)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns or FALLBACK_COLUMNS
    except (AttributeError, OSError, ValueError):
        return FALLBACK_COLUMNS


def _visible_width(line: str) -> int:
    return len(click.unstyle(line))


class ProgressDisplay:
    """A `progress` callback for `fetch_snapshot`; call `close()` when the fetch is over."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        live: bool | None = None,
        label: str = "Fetching",
        columns: int | None = None,
    ) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.label = label
        self.columns = columns
        self.state: dict[tuple[str, str], EndpointProgress] = {}
        self.schools: list[str] = []
        self._bar: Any = None  # click's ProgressBar, made at the first event
        self._drawn_at = 0.0

    def __call__(self, event: EndpointProgress) -> None:
        label = printable(event.school_name or event.estab)
        if label not in self.schools:
            self.schools.append(label)
        self.state[(label, event.collection)] = event
        if self.live:
            now = time.monotonic()
            if event.done or now - self._drawn_at > 0.1:
                self._drawn_at = now
                self._draw(label, event)
        elif event.done:
            self.stream.write(self._line(label, event) + "\n")
            self.stream.flush()

    def _line(self, label: str, event: EndpointProgress, *, note: bool = True) -> str:
        total = "?" if event.total is None else str(event.total)
        text = f"{event.collection} {event.records}/{total}"
        if len(self.schools) > 1:
            text = f"{label}: {text}"
        if event.attempt > 1:
            text += f" (attempt {event.attempt})"
        if note and event.done and event.note:
            text += f" - {printable(event.note)}"  # it may quote the provider
        return text

    def _draw(self, label: str, event: EndpointProgress) -> None:
        saved = sum(e.records for e in self.state.values())
        expected = sum(e.records if e.total is None else e.total for e in self.state.values())
        if self._bar is None:
            self._bar = click.progressbar(
                length=max(1, expected),
                label=self.label,
                file=_Terminal(self.stream),  # type: ignore[arg-type]
                show_pos=True,
                show_eta=False,
            )
        bar = self._bar
        bar.length = max(1, expected, saved)
        bar.pos = saved
        item = self._line(label, event, note=False)
        if len(item) > ITEM_WIDTH:
            item = item[: ITEM_WIDTH - 1] + "…"
        # The collection that moved last, in a fixed width before the bar so the bar stays put.
        bar.label = f"{self.label} {item.ljust(ITEM_WIDTH)}"
        # As wide as the terminal less one column (a line that reaches the last column makes
        # some terminals wrap): the bar takes what the label and the figures leave.
        columns = self.columns or terminal_columns(self.stream)
        bar.width = 0
        bar.width = max(0, columns - 1 - _visible_width(bar.format_progress_line()))
        bar.render_progress()

    def message(self, text: str) -> None:
        """A line of its own between fetches (what a long silent step is doing)."""
        self.stream.write(printable(text) + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End the display of one fetch (the same display may then show another)."""
        if self.live and self._bar is not None:
            self._bar.render_finish()
            self._bar = None
            for label in self.schools:
                for collection in COLLECTIONS:
                    event = self.state.get((label, collection))
                    if event is not None:
                        self.stream.write(self._line(label, event) + "\n")
            self.stream.flush()
        self.state.clear()
        self.schools.clear()
