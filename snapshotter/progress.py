"""The progress display of `snapshotter fetch`, on stderr so stdout keeps only the path.

On a terminal one line is redrawn (`users 1200/1400  enrollments 3100/?`); elsewhere (cron,
CI) one line is written per collection as it finishes.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from .fetch import EndpointProgress
from .model import COLLECTIONS
from .safe_text import printable


class ProgressDisplay:
    """A `progress` callback for `fetch_snapshot`; call `close()` when the fetch is over."""

    def __init__(self, stream: TextIO | None = None, *, live: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.state: dict[tuple[str, str], EndpointProgress] = {}
        self.schools: list[str] = []
        self._drawn_at = 0.0
        self._width = 0

    def __call__(self, event: EndpointProgress) -> None:
        label = printable(event.school_name or event.estab)
        if label not in self.schools:
            self.schools.append(label)
        self.state[(label, event.collection)] = event
        if self.live:
            now = time.monotonic()
            if event.done or now - self._drawn_at > 0.1:
                self._drawn_at = now
                self._draw()
        elif event.done:
            prefix = f"{label}: " if len(self.schools) > 1 else ""
            self.stream.write(f"{prefix}{self._describe(event)}\n")
            self.stream.flush()

    @staticmethod
    def _describe(event: EndpointProgress) -> str:
        total = "?" if event.total is None else str(event.total)
        text = f"{event.collection} {event.records}/{total}"
        if event.attempt > 1:
            text += f" (attempt {event.attempt})"
        if event.done and event.note:
            text += f" - {printable(event.note)}"  # it may quote the provider
        return text

    def _draw(self) -> None:
        parts = []
        for label in self.schools:
            for collection in COLLECTIONS:
                event = self.state.get((label, collection))
                if event is not None:
                    total = "?" if event.total is None else str(event.total)
                    mark = "" if not event.done else " ok" if not event.note else " !"
                    parts.append(f"{collection} {event.records}/{total}{mark}")
        line = "  ".join(parts)
        self.stream.write("\r" + line.ljust(self._width))
        self._width = len(line)
        self.stream.flush()

    def close(self) -> None:
        if self.live and self._width:
            self.stream.write("\n")
            notes = [e for e in self.state.values() if e.done and e.note]
            for event in notes:
                self.stream.write(f"{event.collection}: {printable(event.note)}\n")
            self.stream.flush()
