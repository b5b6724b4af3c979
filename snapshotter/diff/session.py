"""A diff from start to finish: compare, keep the run (or not), render the report."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from ..archive.changes import open_changes_db
from ..archive.layout import SnapshotInfo
from ..report import load_report, render
from .run import diff_and_save
from .volume import MassChange


@dataclass(frozen=True)
class DiffOptions:
    include_touched: bool = False
    mass_change_pct: float | None = None  # None: flag at DEFAULT_MASS_CHANGE_PCT, never fail
    allow_partial: bool = False
    reverse: bool = False


@dataclass(frozen=True)
class DiffOutcome:
    run_id: int
    saved_to: Path | None  # the changes database, or None with --no-save
    mass_changes: list[MassChange]
    rollover: bool


def run_and_render(
    old: SnapshotInfo,
    new: SnapshotInfo,
    changes_db: Path | None,
    output_format: str,
    output: Path | None = None,
    options: DiffOptions | None = None,
    out: TextIO | None = None,
    examples: int | None = None,
) -> DiffOutcome:
    """Diff `old` to `new`, save into `changes_db` (None: a throwaway one), write the report to
    `output` (a file, written whole or not at all) or `out` (default standard output).
    `examples`: list at most that many records of each kind in the text form."""
    options = options or DiffOptions()
    with tempfile.TemporaryDirectory(prefix="snapshotter-diff-") as scratch:
        database = changes_db if changes_db is not None else Path(scratch) / "changes.db"
        result = diff_and_save(
            old,
            new,
            database,
            include_touched=options.include_touched,
            mass_change_pct=options.mass_change_pct,
            options={"allow_partial": options.allow_partial, "reverse": options.reverse},
        )
        with closing(open_changes_db(database)) as conn:
            report = load_report(conn, result.run_id)
            if output is None:
                render(report, output_format, out or sys.stdout, examples=examples)
            else:
                _write_atomically(
                    output, lambda handle: render(report, output_format, handle, examples=examples)
                )
    return DiffOutcome(result.run_id, changes_db, result.mass_changes, result.rollover)


def _write_atomically(path: Path, write: Callable[[TextIO], None]) -> None:
    """Write `path` whole or not at all, readable by its owner only: a report names people."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.unlink(missing_ok=True)  # one left by a killed run would keep its old mode
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with open(fd, "w", encoding="utf-8", newline="") as handle:
            write(handle)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
