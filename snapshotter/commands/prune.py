"""`snapshotter prune`: keep what retention needs, delete the rest, and say what went.

Exit statuses: 0 done (or nothing to do); 1 a file could not be removed; 2 bad usage; 5 a
`run` or a fetch is working on the archive (nothing deleted).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import click

from ..archive.layout import SnapshotInfo, utc_iso
from ..archive.retention import DEFAULT_KEEP_DAILY, DEFAULT_KEEP_MONTHLY
from ..commands_archive import ARCHIVE_HELP, archive_dir, config_option
from ..safe_text import printable

EXIT_FAILED = 1
EXIT_BUSY = 5


def _size(total: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if total < 1024 or unit == "GB":
            return f"{total:.0f} {unit}" if unit == "bytes" else f"{total:.1f} {unit}"
        total /= 1024  # type: ignore[assignment]
    return str(total)


def _busy(message: str) -> None:
    click.echo(f"Error: {message}; nothing was deleted. Try again when it has finished.", err=True)
    sys.exit(EXIT_BUSY)


@click.command("prune")
@click.option("--archive", type=click.Path(file_okay=False, path_type=Path), help=ARCHIVE_HELP)
@config_option
@click.option("--estab", help="Only this school.")
@click.option(
    "--keep-daily",
    type=click.IntRange(min=0),
    default=DEFAULT_KEEP_DAILY,
    show_default=True,
    help="Keep the newest snapshot of each of the last N days.",
)
@click.option(
    "--keep-monthly",
    type=click.IntRange(min=0),
    default=DEFAULT_KEEP_MONTHLY,
    show_default=True,
    help="Keep the newest snapshot of each of the last M calendar months.",
)
@click.option(
    "--keep-terms/--no-keep-terms",
    default=True,
    show_default=True,
    help="Keep the last snapshot of every academic session (term-to-term diffs stay possible).",
)
@click.option("--dry-run", is_flag=True, help="Say what would be deleted; delete nothing.")
def prune_command(
    archive: Path | None,
    config_path: Path | None,
    estab: str | None,
    keep_daily: int,
    keep_monthly: int,
    keep_terms: bool,
    dry_run: bool,
) -> None:
    """Delete the snapshots retention does not need, printing each file removed.

    Keeps each school's newest complete snapshot, the last snapshot of every academic session,
    the newest of each day for --keep-daily days and of each month for --keep-monthly months;
    an incomplete snapshot only while it is newer than the newest complete one. Saved change
    reports stay, and say that their snapshot was pruned. Never deletes a file it did not
    write (unreadable files are left alone), nor anything while `run` or a fetch is working.
    """
    from ..archive.layout import list_archive, live_partials
    from ..archive.locks import RUN_LOCK, LockBusy, hold

    directory = archive_dir(archive, config_path)
    if not directory.is_dir():
        raise click.UsageError(f"no archive at {directory}")
    rules = Rules(keep_daily, keep_monthly, keep_terms, dry_run, datetime.now(UTC))
    failed = False
    try:
        with hold(directory, RUN_LOCK):
            writing = live_partials(directory)
            if writing:
                _busy(f"a fetch is writing into {writing[0].parent}")
            listing = list_archive(directory, estab)
            by_school: dict[str, list[SnapshotInfo]] = {}
            for info in listing.snapshots:
                by_school.setdefault(info.estab, []).append(info)
            for snapshots in by_school.values():
                failed = not _prune_school(directory, snapshots, rules) or failed
            for lost in listing.unreadable:
                click.echo(f"Left alone (not readable as a snapshot): {lost.path}", err=True)
    except LockBusy as exc:
        _busy(f"a `snapshotter run` is working on {directory} ({exc})")
    if failed:
        sys.exit(EXIT_FAILED)


@dataclass(frozen=True)
class Rules:
    keep_daily: int
    keep_monthly: int
    keep_terms: bool
    dry_run: bool
    now: datetime


def _term_title(info: SnapshotInfo) -> str | None:
    from ..archive.terms import term_of

    term = term_of(info.path, info.taken_at)
    # Title and start: a school whose terms are "Autumn Term" every year keeps each year's.
    return f"{term[0]} (from {term[1]})" if term else None


def _prune_school(archive: Path, snapshots: list[SnapshotInfo], rules: Rules) -> bool:
    """Prune one school's snapshots; False when a file could not be removed."""
    from ..archive.layout import CHANGES_DB
    from ..archive.pruned import forget_pruned, record_pruned
    from ..archive.retention import plan

    decisions = plan(
        snapshots,
        rules.now,
        keep_daily=rules.keep_daily,
        keep_monthly=rules.keep_monthly,
        keep_terms=rules.keep_terms,
        term_of=_term_title,
    )
    doomed = [d.info for d in decisions if not d.keep]
    verb = "would remove" if rules.dry_run else "removed"
    name = next((i.school_name for i in snapshots if i.school_name), None)
    estab = snapshots[0].estab
    label = f"{name} (estab {estab})" if name else f"estab {estab}"
    size = _size(sum(info.size_bytes for info in doomed))
    click.echo(
        printable(
            f"{label}: keeping {len(decisions) - len(doomed)} of {len(decisions)} snapshots, "
            f"{verb} {len(doomed)} ({size})"
        )
    )
    changes_db = archive / CHANGES_DB
    if not doomed:
        return True
    if not rules.dry_run and changes_db.is_file():
        # Recorded first: a prune killed half-way leaves reports saying "pruned", never
        # pointing at a file that silently vanished.
        record_pruned(changes_db, doomed, utc_iso(rules.now))
    not_removed = []
    for info in doomed:
        if not rules.dry_run:
            try:
                info.path.unlink(missing_ok=True)
            except OSError as exc:
                click.echo(f"Error: cannot remove {info.path}: {exc.strerror}", err=True)
                not_removed.append(info.path)
                continue
        click.echo(f"  {verb} {info.path}")
    if not_removed and changes_db.is_file():
        forget_pruned(changes_db, not_removed)
    if not rules.dry_run:
        _forget_in_index(archive, estab)
    return not not_removed


def _forget_in_index(archive: Path, estab: str) -> None:
    """The record index (history, search) holds what the pruned snapshots held: rebuild the
    school's now, so retention is met when prune ends, not at the next fetch."""
    from ..archive.history import update_index

    try:
        update_index(archive, estab)
    except Exception as exc:  # noqa: BLE001 - the files are gone; the index catches up later
        click.echo(
            printable(f"Warning: the record index (history.db) was not rebuilt: {exc}"), err=True
        )
