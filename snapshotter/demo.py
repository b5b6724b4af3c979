"""`snapshotter demo`: the whole job against the built-in simulated school, offline.

Start the simulator on a free loopback port, snapshot the school, advance it a term (or
several: three include a year rollover), snapshot it again, diff the two, keep the report and
print its summary; the command then serves the archive (`snapshotter serve`'s site) and names
the pages worth opening. It writes only into its own demo archive, never into a real one.
"""

from __future__ import annotations

import io
import socket
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .archive.layout import (
    ArchiveError,
    changes_db_path,
    read_only_uri,
    read_snapshot_info,
    school_dir,
)
from .diff.session import run_and_render
from .fetch import FetchOutcome, fetch_snapshot
from .progress import ProgressDisplay
from .safe_text import printable
from .select import check_pair
from .sim.curriculum import school_year_dates, school_year_index, snapshot_time_s
from .sim.server import DEFAULT_CLIENTS, SimServer

DEFAULT_DEMO_ARCHIVE = Path("demo-archive")
# Marks a directory as the demo's own: the demo refuses to write anywhere else.
DEMO_MARKER = ".snapshotter-demo"
EXAMPLES_PER_SECTION = 3
# The demo's snapshots say where their times come from: the simulated school's calendar.
DEMO_SOURCE = "demo (simulated clock)"


class DemoError(ArchiveError):
    """The demo cannot run as asked (most often: the archive is not a demo archive)."""


@dataclass(frozen=True)
class DemoResult:
    old_snapshot: Path
    new_snapshot: Path
    changes_db: Path
    run_id: int


def prepare_demo_archive(archive: Path) -> None:
    """Create the demo archive, or check that an existing directory is one."""
    if archive.exists():
        if not archive.is_dir():
            raise DemoError(f"{archive} is a file, not a directory for the demo archive")
        if any(archive.iterdir()) and not (archive / DEMO_MARKER).is_file():
            raise DemoError(
                f"{archive} is not empty and was not made by `snapshotter demo`: the demo "
                "never writes into a real archive. Choose another --archive"
            )
    archive.mkdir(parents=True, exist_ok=True, mode=0o700)
    (archive / DEMO_MARKER).write_text(
        "This archive was made by `snapshotter demo` from simulated data.\n", encoding="utf-8"
    )


def _credentials() -> tuple[str, str, str]:
    client, secret = next(iter(DEFAULT_CLIENTS.items()))
    rp, estab = client.split("|", 1)
    return rp, estab, secret


def term_title(term: int) -> str:
    """The simulated school's title for a term: "Autumn 2026" for term 0."""
    title, _, _ = school_year_dates(school_year_index(term)).terms[term % 3]
    return title


def simulated_clock(archive: Path, estab: str, term: int) -> Callable[[], datetime]:
    """A clock on the simulated school's calendar: the moment its snapshot of `term` is taken
    (mid-term, 06:00 UTC), running on in real time from now. Each run of the demo in the same
    archive takes that term's snapshot a minute later, so the newest run is the latest one in
    the term (and the file names never collide)."""
    moment = datetime.fromtimestamp(snapshot_time_s(term), UTC)
    earlier_runs = len(list(school_dir(archive, estab).glob(f"*_{moment:%Y-%m-%d}T*.db")))
    start = moment + timedelta(minutes=earlier_runs)
    began = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - began)


def _school_name(sim: SimServer) -> str | None:
    schools = [org for org in sim.records("orgs") if org.get("type") == "school"]
    return schools[0].get("name") if schools else None


def run_demo(
    pupils: int = 1000,
    terms: int = 1,
    archive: Path = DEFAULT_DEMO_ARCHIVE,
    seed: int = 1,
    out: Callable[[str], None] = print,
    progress: ProgressDisplay | None = None,
    limit: int = EXAMPLES_PER_SECTION,
) -> DemoResult:
    """Snapshot the simulated school, advance it `terms` terms, snapshot, diff, report.

    The snapshots are stamped with the simulated school's dates (see `simulated_clock`), so
    `--term "Autumn 2026"` and the school years a report prints find them."""
    if pupils < 1 or terms < 1:
        raise DemoError("the demo needs at least one pupil and one term")
    prepare_demo_archive(archive)
    rp, estab, secret = _credentials()
    if progress is not None:  # seconds of work at 10,000 pupils, said rather than silent
        progress.message(f"Generating the simulated school ({pupils} pupils)...")
    with SimServer(pupils=pupils, term=0, seed=seed) as sim:
        school_name = _school_name(sim)
        school = printable(school_name or estab)
        out(f"Simulated Xporter server for {school} ({pupils} pupils) at {sim.base_url}")

        def snapshot(term: int) -> Path:
            if progress is not None:
                progress.label = f"Term {term}"
            try:
                outcome = _fetch(term)
            finally:
                if progress is not None:
                    progress.close()
            if outcome.path is None or not outcome.complete:
                raise DemoError(f"the snapshot of term {term} is incomplete: {outcome.reason}")
            records = sum(outcome.record_counts.values())
            taken = f"{term_title(term)}, simulated date {outcome.path.stem.split('_')[-1][:10]}"
            out(f"Snapshot of term {term}: {records} records ({taken}) in {outcome.path}")
            return outcome.path

        def _fetch(term: int) -> FetchOutcome:
            return fetch_snapshot(
                sim.base_url,
                rp,
                estab,
                secret,
                archive,
                school_name=school_name,
                progress=progress,
                clock=simulated_clock(archive, estab, term),
                source=DEMO_SOURCE,
            )

        old_path = snapshot(0)
        if progress is not None:
            progress.message(
                f"Moving the simulated school on {terms} term{'s' if terms > 1 else ''}..."
            )
        for term in range(1, terms + 1):
            sim.set_term(term)
        rollover = " (a new school year)" if terms >= 3 else ""
        out(f"The simulated school moved on {terms} term{'s' if terms > 1 else ''}{rollover}")
        new_path = snapshot(terms)

    old, new = read_snapshot_info(old_path), read_snapshot_info(new_path)
    check_pair(old, new)
    changes_db = changes_db_path(archive)
    text = io.StringIO()
    result = run_and_render(old, new, changes_db, "text", out=text, examples=limit or None)
    out("")
    out(text.getvalue().rstrip("\n"))
    out("")
    out(f"The report is saved in {changes_db} (run {result.run_id}). All of it:")
    out(
        f'  snapshotter diff --archive {archive} --term "{term_title(0)}" '
        f'--term "{term_title(terms)}" --limit 0'
    )
    eml = write_demo_digest(archive, changes_db, result.run_id)
    out(f"Its email digest (text and HTML, sourcedIds and no names): {eml}")
    return DemoResult(old_path, new_path, changes_db, result.run_id)


def write_demo_digest(archive: Path, changes_db: Path, run_id: int) -> Path:
    """The run's digest as `snapshotter digest --eml` writes it, in the demo archive."""
    from .atomic import write_atomically
    from .digest.content import read_digest
    from .digest.message import build_message

    digest = read_digest(changes_db, run_id=run_id)
    message = build_message(digest, "snapshotter demo <demo@snapshotter.invalid>", [])
    eml = archive / f"digest-run-{run_id}.eml"
    write_atomically(eml, lambda handle: handle.write(message.as_string()))
    return eml


DEFAULT_DEMO_PORT = 8001


def pages_worth_opening(result: DemoResult) -> list[tuple[str, str]]:
    """(what, path) of the demo's pages to open first: its change report, and the history of
    a pupil who moved class in it (from the `class_moves` view), when one did."""
    estab = read_snapshot_info(result.new_snapshot).estab
    pages = [("The change report of this run", f"/-/snapshotter/runs/{result.run_id}")]
    with closing(sqlite3.connect(read_only_uri(result.changes_db), uri=True)) as conn:
        moved = conn.execute(
            "SELECT user_sourcedId, person FROM class_moves WHERE run_id = ? AND role = 'student' "
            "ORDER BY person, user_sourcedId LIMIT 1",
            (result.run_id,),
        ).fetchone()
    if moved is not None:
        user, person = moved
        pages.append(
            (
                f"A pupil who moved class ({printable(person or user)})",
                f"/-/snapshotter/history/{estab}/users/{user}",
            )
        )
    return pages


def port_to_serve_on(wanted: int, host: str = "127.0.0.1") -> int:
    """`wanted` if nothing listens there, else a free port the system picks."""
    with socket.socket() as probe:
        try:
            probe.bind((host, wanted))
            return wanted
        except OSError:
            pass
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]
