"""Ctrl-C during a fetch, so that the exit status and the archive always agree.

Before the snapshot is published (renamed into place), Ctrl-C stops the fetch, which removes
its temporary file, and the command fails. From the moment publishing begins until the path
is printed, Ctrl-C is held back: the snapshot is there, so the command finishes and says so.
A second Ctrl-C is never allowed to cut the clean-up short (it would leave a `.partial`).
Once a snapshot is published, Ctrl-C stays ignored until the process exits.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from types import FrameType
from typing import Any


class FetchInterrupts:
    """SIGINT handling for one fetch, as a context manager around the whole command (the fetch
    and the printing of its path). Outside the main thread it does nothing."""

    def __init__(self) -> None:
        self.count = 0  # Ctrl-Cs received
        self.publishing = False  # set (by the writer thread) just before the rename
        self._task: asyncio.Task[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> FetchInterrupts:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
            self._installed = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self._installed:
            return
        self._installed = False
        if self.publishing or self.count:
            # Published and its path printed: Ctrl-C from here to the end of the process is
            # ignored, as a KeyboardInterrupt now would turn the success into exit status 130.
            # Interrupted: the command is on its way out (the fetch cleaned up); another Ctrl-C
            # while Python joins the writer thread at exit would only print a traceback.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        else:
            signal.signal(signal.SIGINT, self._previous)

    def attach(self, task: asyncio.Task[Any]) -> None:
        """The task that runs the fetch: the first Ctrl-C cancels it."""
        self._loop, self._task = asyncio.get_running_loop(), task
        if self.count:
            task.cancel()

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        # Never raises: an exception here could land inside the clean-up and skip it.
        self.count += 1
        if self.publishing:
            return  # held back: the snapshot is being published, the command will finish
        task, loop = self._task, self._loop
        if self.count > 1 or task is None or loop is None:
            return
        # After the fetch's loop has ended (a failure being reported), there is nothing left to
        # cancel: the command is already on its way out.
        if not loop.is_closed() and not task.done():
            loop.call_soon_threadsafe(task.cancel)

    def may_publish(self) -> bool:
        """Called by the writer just before the rename: False when Ctrl-C came first. From a
        True answer on, Ctrl-C is held back until the context exits."""
        # Flag first, then look: with the handler doing the reverse, one of the two always
        # sees the other (either the rename is skipped or the Ctrl-C is held back).
        self.publishing = True
        if self.count:
            self.publishing = False
            return False
        return True
