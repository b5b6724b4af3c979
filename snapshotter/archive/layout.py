"""Where snapshots live in the archive, what they are called, and how to list them.

    <archive>/<estab>/<estab>_<YYYY-MM-DD>T<HHMMSS>Z.db   one complete (or kept partial) snapshot
    <archive>/<estab>/.<name>.<pid>.partial               a fetch in progress (never a snapshot)
    <archive>/changes.db                                  the change reports

Names sort by time, are unique across schools, and are safe in a URL: Datasette names each
database after its file. Only to the second, though: two snapshots begun in one second are
`-2`, `-3` in the order they finished, so lists order by each one's `started_at` (milliseconds)
first. `list_archive` gives the readable snapshots and, apart, the files named like snapshots
that cannot be read as one, so no caller can drop those in silence.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .checks import (
    ADVICE,
    SnapshotProblem,
    parse_record_counts,
    parse_started_at,
    read_metadata_row,
    sqlite_problem,
)

ARCHIVE_ENV = "SNAPSHOTTER_ARCHIVE"
SNAPSHOT_SUFFIX = ".db"
PARTIAL_SUFFIX = ".partial"
CHANGES_DB = "changes.db"
_TIME_FORMAT = "%Y-%m-%dT%H%M%SZ"
_NAME_RE = re.compile(
    r"^(?P<estab>[A-Za-z0-9-]+)_(?P<time>\d{4}-\d{2}-\d{2}T\d{6}Z)(?:-(?P<serial>\d+))?$"
)
_UNSAFE = re.compile(r"[^A-Za-z0-9-]+")


class ArchiveError(Exception):
    """Something about the archive on disk that the user has to sort out."""


def default_archive() -> Path:
    return Path(os.environ.get(ARCHIVE_ENV) or "archive")


def safe_estab(estab: str) -> str:
    """The establishment id as it appears in paths: letters, digits and dashes only."""
    cleaned = _UNSAFE.sub("-", estab.strip()).strip("-")
    if not cleaned:
        raise ArchiveError(f"establishment id {estab!r} has no letters or digits to name files by")
    return cleaned


def make_private_dir(path: Path) -> list[Path]:
    """Create a directory (and parents) readable by its owner only; returns those it created,
    outermost first. Existing directories keep the mode their owner gave them."""
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    created: list[Path] = []
    try:
        for directory in reversed(missing):
            try:
                directory.mkdir(mode=0o700)
            except FileExistsError:
                continue  # a concurrent fetch made it first
            created.append(directory)
            os.chmod(directory, 0o700)  # mkdir's mode is masked by the umask
    except OSError:
        for directory in reversed(created):  # leave nothing behind
            directory.rmdir()
        raise
    if not path.is_dir():
        raise ArchiveError(f"{path} exists and is not a directory")
    return created


def school_dir(archive: Path, estab: str) -> Path:
    return archive / safe_estab(estab)


def snapshot_stem(estab: str, taken_at: datetime) -> str:
    return f"{safe_estab(estab)}_{taken_at.astimezone(UTC).strftime(_TIME_FORMAT)}"


def time_from_name(path: Path) -> datetime | None:
    match = _NAME_RE.match(path.stem)
    if not match:
        return None
    return datetime.strptime(match["time"], _TIME_FORMAT).replace(tzinfo=UTC)


def estab_of_name(name: str) -> str | None:
    """The school of a snapshot's name (its file name without `.db`), or None for any other
    name: such a name holds no `/`, `.` or `..`, so it is safe to look up in the archive."""
    match = _NAME_RE.match(name)
    return match["estab"] if match else None


def changes_db_path(archive: Path) -> Path:
    return archive / CHANGES_DB


def utc_iso(moment: datetime) -> str:
    """UTC ISO 8601 with milliseconds and a Z, as OneRoster writes timestamps."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _writer_alive(partial: Path) -> bool:
    """Whether the process that writes a temporary snapshot file (its name ends with the
    writer's pid) still runs."""
    pid_text = partial.name[: -len(PARTIAL_SUFFIX)].rsplit(".", 1)[-1]
    return pid_text.isdigit() and (int(pid_text) == os.getpid() or _pid_alive(int(pid_text)))


def clean_stale_partials(directory: Path) -> list[Path]:
    """Remove temporary files left by fetches that died (their process is gone)."""
    removed = []
    if not directory.is_dir():
        return removed
    for partial in directory.glob(f".*{PARTIAL_SUFFIX}"):
        if _writer_alive(partial):  # its writer still runs (this process, or another)
            continue
        partial.unlink(missing_ok=True)
        removed.append(partial)
    return removed


def live_partials(archive: Path) -> list[Path]:
    """Temporary files of fetches and imports still running, in any school of the archive."""
    return [p for p in archive.glob(f"*/.*{PARTIAL_SUFFIX}") if _writer_alive(p)]


def open_snapshot(path: Path) -> sqlite3.Connection:
    """A read-only connection: reading the archive must never change it."""
    if not path.is_file():
        raise ArchiveError(f"no snapshot file at {path}")
    return sqlite3.connect(read_only_uri(path), uri=True)


def read_only_uri(path: Path) -> str:
    """A read-only SQLite URI for `path`, percent-encoded: `#`, `?`, `%` and spaces in a
    directory name are part of the path, never a query or a fragment."""
    return f"{path.resolve().as_uri()}?mode=ro"


@dataclass(frozen=True)
class SnapshotInfo:
    path: Path
    estab: str
    school_name: str | None
    taken_at: str
    finished_at: str
    complete: bool
    stable: bool
    incomplete_reason: str | None
    record_counts: dict[str, int]
    content_hash: str
    size_bytes: int
    source: str
    provider_version: Any = None

    def as_json(self) -> dict[str, Any]:
        result = asdict(self)
        result["path"] = str(self.path)
        return result


def unreadable_message(path: Path, problem: str) -> str:
    """One line for a person about a file that cannot be read as a snapshot: the file, why,
    and what to do."""
    return f"{path} cannot be read as a snapshot: {problem}; {ADVICE}"


class SnapshotFileError(ArchiveError):
    """A file named like a snapshot that cannot be read as one; the message names the file,
    says why and what to do, on one line."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(unreadable_message(path, problem))
        self.path = path
        self.problem = problem


# A published snapshot file never changes: its metadata is read and checked once per process,
# keyed by what would differ if the file were replaced, damaged or rewritten (a year of nightly
# snapshots costs a server a few milliseconds a file at every listing otherwise).
_INFOS: dict[tuple[str, int, int, int], SnapshotInfo] = {}
_INFOS_KEPT = 20_000


def read_snapshot_info(path: Path) -> SnapshotInfo:
    """The metadata row of a snapshot file, checked; `SnapshotFileError` for anything else."""
    try:
        stat = path.stat()
    except OSError:
        return _read_snapshot_info(path)  # says what is wrong with the path
    key = (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    info = _INFOS.get(key)
    if info is None:
        info = _read_snapshot_info(path)
        if len(_INFOS) >= _INFOS_KEPT:
            _INFOS.clear()
        _INFOS[key] = info
    return info


def _read_snapshot_info(path: Path) -> SnapshotInfo:
    try:
        with closing(open_snapshot(path)) as conn:
            row = read_metadata_row(conn, path)
            record_counts = parse_record_counts(row["record_counts"])
            parse_started_at(row["started_at"])
    except SnapshotProblem as exc:
        raise SnapshotFileError(path, str(exc)) from None
    except sqlite3.Error as exc:
        raise SnapshotFileError(path, sqlite_problem(exc)) from None
    try:
        provider_version = json.loads(row["provider_version"]) if row["provider_version"] else None
    except (TypeError, json.JSONDecodeError):
        provider_version = row["provider_version"]  # shown as it is: nothing relies on it
    return SnapshotInfo(
        path=path,
        estab=row["estab"],
        school_name=row["school_name"],
        taken_at=row["started_at"],
        finished_at=row["finished_at"],
        complete=bool(row["complete"]),
        stable=bool(row["stable"]),
        incomplete_reason=row["incomplete_reason"],
        record_counts=record_counts,
        content_hash=row["content_hash"],
        size_bytes=path.stat().st_size,
        source=row["source"],
        provider_version=provider_version,
    )


def damage_problem(path: Path) -> str | None:
    """What is wrong with a snapshot file, reading every page of it (slow: for after a read of
    it failed); None when nothing is found."""
    try:
        with closing(open_snapshot(path)) as conn:
            read_metadata_row(conn, path)
            conn.row_factory = None
            # integrity_check, not quick_check: it also finds indexes that disagree with
            # their tables, which the diff's joins read.
            verdict = [row[0] for row in conn.execute("PRAGMA integrity_check(1)")]
    except SnapshotProblem as exc:
        return str(exc)
    except sqlite3.Error as exc:
        return sqlite_problem(exc)
    if verdict == ["ok"]:
        return None
    # The verdict spans lines ("*** in database main ***", then the pages); one line is wanted.
    found = [line for text in verdict for line in text.splitlines() if not line.startswith("***")]
    return f"the file is damaged (SQLite's check: {found[0] if found else 'not ok'})"


@contextmanager
def blaming_snapshots(*paths: Path) -> Iterator[None]:
    """Turn a failed read of snapshot files into `SnapshotFileError` naming the damaged file,
    when one of them is; any other failure goes on as it was."""
    try:
        yield
    except (sqlite3.DatabaseError, ValueError) as exc:  # ValueError: a damaged record's JSON
        for path in paths:
            problem = damage_problem(path)
            if problem is not None:
                raise SnapshotFileError(path, problem) from exc
        if not isinstance(exc, sqlite3.DatabaseError):
            raise
        # Damage no check finds (a record's JSON, say) is still the files' and still one line.
        named = " or ".join(str(path) for path in paths)
        raise ArchiveError(f"cannot read {named} ({exc}): damaged, it seems; {ADVICE}") from exc


@dataclass(frozen=True)
class UnreadableSnapshot:
    """A file in the archive named like a snapshot that cannot be read as one: what its name
    says, and why it cannot be read."""

    path: Path
    estab: str
    taken_at: str  # the time in its name, as `SnapshotInfo.taken_at` writes times
    reason: str

    @property
    def message(self) -> str:
        """One line for a person: the file, why, and what to do."""
        return unreadable_message(self.path, self.reason)

    def as_json(self) -> dict[str, Any]:
        """Every key a readable snapshot's entry has, null but for what the name says."""
        result: dict[str, Any] = {name: None for name in SnapshotInfo.__dataclass_fields__}
        result.update(path=str(self.path), estab=self.estab, taken_at=self.taken_at)
        result["unreadable"] = self.reason
        return result


@dataclass(frozen=True)
class ArchiveListing:
    """What the archive holds, oldest first: the snapshots that can be read, and the files
    named like snapshots that cannot. Callers decide what to say about the second."""

    snapshots: list[SnapshotInfo]
    unreadable: list[UnreadableSnapshot]

    def entries(self) -> list[SnapshotInfo | UnreadableSnapshot]:
        """Both kinds together, oldest first."""
        return sorted([*self.snapshots, *self.unreadable], key=_listing_order)


def _name_order(path: Path) -> tuple[str, int, str]:
    """Snapshots of one second by their `-N` serial as a number (`-10` after `-9`)."""
    match = _NAME_RE.match(path.stem)
    if not match:
        return ("", 0, path.name)
    return (match["time"], int(match["serial"] or 1), path.name)


def _listing_order(
    entry: SnapshotInfo | UnreadableSnapshot,
) -> tuple[datetime, tuple[str, int, str]]:
    """By the time the snapshot began (milliseconds, from its metadata), then by name: the `-N`
    suffix of snapshots taken in one second says only which finished first."""
    return (parse_started_at(entry.taken_at), _name_order(entry.path))


def snapshot_paths(archive: Path, estab: str | None = None) -> list[Path]:
    """Snapshot files in the archive (one school, or all), in name order: by the second they
    were taken, which `list_archive` refines by their metadata."""
    if estab is not None:
        directories = [school_dir(archive, estab)]
    else:
        directories = sorted(p for p in archive.iterdir() if p.is_dir()) if archive.is_dir() else []
    paths = []
    for directory in directories:
        paths += [p for p in directory.glob(f"*{SNAPSHOT_SUFFIX}") if _NAME_RE.match(p.stem)]
    return sorted(paths, key=_name_order)


def list_archive(archive: Path, estab: str | None = None) -> ArchiveListing:
    """Every snapshot file in the archive (one school, or all), each read or found unreadable,
    oldest first by the time it began."""
    snapshots: list[SnapshotInfo] = []
    unreadable: list[UnreadableSnapshot] = []
    for path in snapshot_paths(archive, estab):
        try:
            snapshots.append(read_snapshot_info(path))
        except ArchiveError as exc:  # SnapshotFileError, or no longer a file
            match = _NAME_RE.match(path.stem)
            assert match is not None  # snapshot_paths lists only such names
            named_time = time_from_name(path)
            assert named_time is not None
            problem = exc.problem if isinstance(exc, SnapshotFileError) else str(exc)
            unreadable.append(
                UnreadableSnapshot(path, match["estab"], utc_iso(named_time), problem)
            )
    snapshots.sort(key=_listing_order)
    unreadable.sort(key=_listing_order)
    return ArchiveListing(snapshots, unreadable)
