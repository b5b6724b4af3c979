"""Where snapshots live in the archive, what they are called, and how to list them.

    <archive>/<estab>/<estab>_<YYYY-MM-DD>T<HHMMSS>Z.db   one complete (or kept partial) snapshot
    <archive>/<estab>/.<name>.<pid>.partial               a fetch in progress (never a snapshot)
    <archive>/changes.db                                  the change reports

Names sort by time, are unique across schools, and are safe in a URL: Datasette names each
database after its file.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .schema import METADATA_TABLE

ARCHIVE_ENV = "SNAPSHOTTER_ARCHIVE"
SNAPSHOT_SUFFIX = ".db"
PARTIAL_SUFFIX = ".partial"
CHANGES_DB = "changes.db"
_TIME_FORMAT = "%Y-%m-%dT%H%M%SZ"
_NAME_RE = re.compile(r"^(?P<estab>[A-Za-z0-9-]+)_(?P<time>\d{4}-\d{2}-\d{2}T\d{6}Z)(?:-\d+)?$")
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
    created = []
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            continue  # a concurrent fetch made it first
        os.chmod(directory, 0o700)  # mkdir's mode is masked by the umask
        created.append(directory)
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


def clean_stale_partials(directory: Path) -> list[Path]:
    """Remove temporary files left by fetches that died (their process is gone)."""
    removed = []
    if not directory.is_dir():
        return removed
    for partial in directory.glob(f".*{PARTIAL_SUFFIX}"):
        pid_text = partial.name[: -len(PARTIAL_SUFFIX)].rsplit(".", 1)[-1]
        # A partial file whose writer still runs (this process, or another live one) stays.
        if pid_text.isdigit() and (int(pid_text) == os.getpid() or _pid_alive(int(pid_text))):
            continue
        partial.unlink(missing_ok=True)
        removed.append(partial)
    return removed


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


def read_snapshot_info(path: Path) -> SnapshotInfo:
    """The metadata row of a snapshot file, with a clear error for anything else."""
    try:
        with open_snapshot(path) as conn:
            conn.row_factory = sqlite3.Row
            row = conn.execute(f"SELECT * FROM {METADATA_TABLE}").fetchone()
    except sqlite3.DatabaseError as exc:
        raise ArchiveError(f"{path} is not a snapshot file ({exc})") from exc
    if row is None:
        raise ArchiveError(f"{path} has an empty {METADATA_TABLE} table: not a finished snapshot")
    provider_version = json.loads(row["provider_version"]) if row["provider_version"] else None
    return SnapshotInfo(
        path=path,
        estab=row["estab"],
        school_name=row["school_name"],
        taken_at=row["started_at"],
        finished_at=row["finished_at"],
        complete=bool(row["complete"]),
        stable=bool(row["stable"]),
        incomplete_reason=row["incomplete_reason"],
        record_counts=json.loads(row["record_counts"]),
        content_hash=row["content_hash"],
        size_bytes=path.stat().st_size,
        source=row["source"],
        provider_version=provider_version,
    )


def snapshot_paths(archive: Path, estab: str | None = None) -> list[Path]:
    """Snapshot files in the archive (one school, or all), oldest first."""
    if estab is not None:
        directories = [school_dir(archive, estab)]
    else:
        directories = sorted(p for p in archive.iterdir() if p.is_dir()) if archive.is_dir() else []
    paths = []
    for directory in directories:
        paths += [p for p in directory.glob(f"*{SNAPSHOT_SUFFIX}") if _NAME_RE.match(p.stem)]
    return sorted(paths, key=lambda p: (p.stem.split("_", 1)[-1], p.stem))


def list_snapshots(archive: Path, estab: str | None = None) -> list[SnapshotInfo]:
    """Every readable snapshot in the archive, oldest first; unreadable files are skipped."""
    infos = []
    for path in snapshot_paths(archive, estab):
        try:
            infos.append(read_snapshot_info(path))
        except ArchiveError:
            continue
    return infos
