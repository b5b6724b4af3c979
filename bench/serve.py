"""Benchmark `snapshotter serve` over a year of nightly snapshots against Datasette's own index.

    python bench/serve.py                      # 365 daily snapshots of a 1,000-pupil school
    python bench/serve.py --days 30 --runs 3   # quicker
    python bench/serve.py --archive DIR        # reuse an archive built before

The archive: one snapshot of the simulated school (written straight from its records), then one
file a day, each a copy of the day before with a few pupils' surnames changed (their `_record`,
`_hash` and `dateLastModified` rewritten as the fetch would write them) and its metadata moved
on a day (times, content hash), so `list_archive` reads each as a snapshot; every consecutive
pair is diffed and saved into `changes.db`, as a nightly `fetch` + `diff` would.

Then, each server in its own child process on a free loopback port:

- `datasette serve FILES...` (every snapshot file and changes.db): its index page, `/`;
- `snapshotter serve --archive DIR`: the archive's home page, a change report, a record's
  history and a search (the last two may answer 404 on a branch without those pages).

For each page: the first request alone (a page may build something then), then the median of
`--runs` more. Each server's resident memory (VmRSS, and the peak VmHWM) after its requests.
The targets: each snapshotter page at most 0.5 s and at most a tenth of Datasette's index, and
the snapshotter server under 250 MB.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from snapshotter.archive.layout import list_archive, read_snapshot_info, snapshot_stem, utc_iso
from snapshotter.archive.schema import HASH_COLUMN, RECORD_COLUMN, quote
from snapshotter.archive.snapshot import SnapshotMeta, SnapshotWriter
from snapshotter.canonical import canonicalise
from snapshotter.diff import diff_and_save
from snapshotter.model import COLLECTIONS, entity
from snapshotter.sim.school import generate

CLI = [sys.executable, "-c", "from snapshotter.cli import cli; cli()"]
ESTAB = "3281110"
SCHOOL = "Quarrendon Academy"
FIRST_DAY = datetime(2026, 9, 1, 2, 0, tzinfo=UTC)
EDITS_PER_DAY = 3
TARGET_S = 0.5
TARGET_SHARE = 0.1  # of Datasette's own index time
TARGET_RSS_MB = 250
SURNAMES = ("Okafor", "Lindqvist", "Brennan", "Tanaka", "Oyelaran", "Castellano", "Whitfield")


def base_snapshot(archive: Path, pupils: int) -> Path:
    """Day 0: the simulated school, written as `snapshotter fetch` writes a snapshot."""
    with SnapshotWriter(archive, ESTAB, started_at=FIRST_DAY) as writer:
        for collection, records in generate(seed=1, pupils=pupils, term=0).items():
            writer.save_records(collection, records)
        meta = SnapshotMeta(estab=ESTAB, source="bench", started_at=FIRST_DAY, school_name=SCHOOL)
        return writer.finish(meta, complete=True, stable=True, incomplete_reason=None)


def content_hash(conn: sqlite3.Connection) -> str:
    """The snapshot's content hash, computed as the writer computes it."""
    digest = hashlib.sha256()
    for collection in COLLECTIONS:
        rows = conn.execute(
            f"SELECT ? || char(9) || sourcedId || char(9) || {HASH_COLUMN} || char(9) || "
            f"ifnull(dateLastModified, 'None') || char(10) FROM {quote(collection)} "
            "ORDER BY sourcedId",
            (collection,),
        )
        digest.update("".join(line for (line,) in rows).encode())
    return digest.hexdigest()


def next_day(previous: Path, day: int, pupils: list[str]) -> tuple[Path, list[str]]:
    """A copy of `previous`, one day later, with EDITS_PER_DAY pupils' surnames changed."""
    taken = FIRST_DAY + timedelta(days=day)
    path = previous.with_name(snapshot_stem(ESTAB, taken) + ".db")
    shutil.copyfile(previous, path)
    os.chmod(path, 0o600)
    users = entity("users")
    stamp = utc_iso(taken)
    edited = [pupils[(day * EDITS_PER_DAY + i) % len(pupils)] for i in range(EDITS_PER_DAY)]
    with closing(sqlite3.connect(path)) as conn, conn:
        for n, sourced_id in enumerate(edited):
            (stored,) = conn.execute(
                f"SELECT {RECORD_COLUMN} FROM users WHERE sourcedId = ?", (sourced_id,)
            ).fetchone()
            record = json.loads(stored)
            record["familyName"] = SURNAMES[(day + n) % len(SURNAMES)]
            record["dateLastModified"] = stamp
            _canonical, text, digest, _removed = canonicalise(users, record)
            conn.execute(
                f"UPDATE users SET familyName = ?, dateLastModified = ?, {RECORD_COLUMN} = ?, "
                f"{HASH_COLUMN} = ? WHERE sourcedId = ?",
                (record["familyName"], stamp, text, digest, sourced_id),
            )
        finished = utc_iso(taken + timedelta(minutes=2))
        conn.execute(
            "UPDATE snapshot_metadata SET started_at = ?, finished_at = ?, content_hash = ?",
            (stamp, finished, content_hash(conn)),
        )
    return path, edited


@dataclass
class Built:
    archive: Path
    snapshots: list[Path]
    run_ids: list[int]
    edited: dict[str, int]  # sourcedId -> times its surname changed


def build(archive: Path, days: int, pupils: int) -> Built:
    archive.mkdir(parents=True, exist_ok=True, mode=0o700)
    started = time.perf_counter()
    snapshots = [base_snapshot(archive, pupils)]
    with closing(sqlite3.connect(snapshots[0])) as conn:
        students = [
            row[0]
            for row in conn.execute(
                "SELECT sourcedId FROM users WHERE role = 'student' ORDER BY sourcedId"
            )
        ]
    # A few pupils, edited again and again: their histories are long.
    pool = students[: max(EDITS_PER_DAY, days // 4)]
    edited: dict[str, int] = {}
    run_ids = []
    for day in range(1, days):
        path, changed = next_day(snapshots[-1], day, pool)
        for sourced_id in changed:
            edited[sourced_id] = edited.get(sourced_id, 0) + 1
        run_ids.append(
            diff_and_save(
                read_snapshot_info(snapshots[-1]), read_snapshot_info(path), archive / "changes.db"
            ).run_id
        )
        snapshots.append(path)
        if day % 30 == 0:
            print(f"  {day} days built...", file=sys.stderr, flush=True)
    print(f"built {days} snapshots in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    (archive / "bench.json").write_text(json.dumps({"edited": edited, "run_ids": run_ids}))
    return Built(archive, snapshots, run_ids, edited)


def reuse(archive: Path) -> Built:
    listing = list_archive(archive)
    saved = json.loads((archive / "bench.json").read_text())
    return Built(archive, [s.path for s in listing.snapshots], saved["run_ids"], saved["edited"])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def wait_until_listening(process: subprocess.Popen[bytes], port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server stopped (status {process.returncode})")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listened on port {port} within {timeout_s:.0f} s")


def timed_get(url: str, timeout_s: float) -> tuple[float, int]:
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        error.read()
        status = error.code
    return time.perf_counter() - started, status


def measure_pages(
    command: list[str], port: int, pages: dict[str, str], runs: int, timeout_s: float
) -> dict[str, Any]:
    """Start a server, time each page (first request, then the median of `runs`), then its
    memory; stop it."""
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        started = time.perf_counter()
        wait_until_listening(server, port, timeout_s)
        result: dict[str, Any] = {"start_s": time.perf_counter() - started, "pages": {}}
        for name, path in pages.items():
            url = f"http://127.0.0.1:{port}{path}"
            first_s, status = timed_get(url, timeout_s)
            samples = [timed_get(url, timeout_s)[0] for _ in range(runs)] if status == 200 else []
            result["pages"][name] = {
                "path": path,
                "status": status,
                "first_s": first_s,
                "median_s": statistics.median(samples) if samples else None,
            }
        result["rss_mb"], result["peak_rss_mb"] = rss_mb(server.pid)
        return result
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s"


def report(built: Built, datasette: dict[str, Any], ours: dict[str, Any], runs: int) -> str:
    index = datasette["pages"]["Datasette's index /"]
    index_s = index["median_s"] or index["first_s"]
    limit_s = min(TARGET_S, TARGET_SHARE * index_s)
    size_mb = sum(p.stat().st_size for p in built.snapshots) / 1e6
    lines = [
        f"{len(built.snapshots)} snapshots ({size_mb:,.0f} MB), {len(built.run_ids)} diff runs; "
        f"first request, then the median of {runs}.",
        "",
        f"Datasette's own index `/`: first {_s(index['first_s'])}, median {_s(index['median_s'])}"
        f" (status {index['status']}); RSS {datasette['rss_mb']:.0f} MB "
        f"(peak {datasette['peak_rss_mb']:.0f} MB)",
        "",
        f"| snapshotter serve page | first | median | target (≤ {limit_s:.3f} s) | "
        "share of Datasette's index |",
        "|---|---:|---:|---|---:|",
    ]
    for name, page in ours["pages"].items():
        if page["status"] != 200:
            lines.append(f"| {name} | n/a ({page['status']}) | | | |")
            continue
        met = "met" if page["median_s"] <= limit_s else "MISSED"
        share = page["median_s"] / index_s
        lines.append(
            f"| {name} | {_s(page['first_s'])} | {_s(page['median_s'])} | {met} | {share:.3f} |"
        )
    met = "met" if ours["rss_mb"] < TARGET_RSS_MB else "MISSED"
    lines.append("")
    lines.append(
        f"snapshotter serve RSS after those requests: {ours['rss_mb']:.0f} MB (peak "
        f"{ours['peak_rss_mb']:.0f} MB; target < {TARGET_RSS_MB} MB: {met}); "
        f"Datasette / snapshotter memory: {datasette['rss_mb'] / ours['rss_mb']:.1f}x"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=365, help="daily snapshots to build")
    parser.add_argument("--pupils", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5, help="requests per page after the first")
    parser.add_argument("--workdir", type=Path, default=Path("bench/out/serve"))
    parser.add_argument("--archive", type=Path, help="reuse this archive (built by this bench)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per request")
    args = parser.parse_args()
    if args.archive is not None:
        built = reuse(args.archive)
    else:
        archive = args.workdir / f"archive-{args.days}d-{args.pupils}p"
        if (archive / "bench.json").is_file():
            print(f"reusing {archive}", file=sys.stderr)
            built = reuse(archive)
        else:
            shutil.rmtree(archive, ignore_errors=True)
            print(f"building {args.days} daily snapshots in {archive}...", file=sys.stderr)
            built = build(archive, args.days, args.pupils)
    most_edited = max(built.edited, key=lambda sourced_id: built.edited[sourced_id])
    surname = SURNAMES[0]
    pages = {
        "the archive /": "/",
        "a change report": f"/-/snapshotter/runs/{built.run_ids[len(built.run_ids) // 2]}",
        "a record's history": f"/-/snapshotter/history/{ESTAB}/users/{most_edited}",
        "a search": f"/-/snapshotter/search/{ESTAB}?" + urllib.parse.urlencode({"q": surname}),
    }
    files = [str(p) for p in built.snapshots] + [str(built.archive / "changes.db")]
    print("measuring Datasette's own index...", file=sys.stderr, flush=True)
    port = free_port()
    datasette = measure_pages(
        [sys.executable, "-m", "datasette", "serve", *files, "--port", str(port)],
        port,
        {"Datasette's index /": "/"},
        args.runs,
        args.timeout,
    )
    print("measuring snapshotter serve...", file=sys.stderr, flush=True)
    port = free_port()
    ours = measure_pages(
        [*CLI, "serve", "--archive", str(built.archive), "--port", str(port)],
        port,
        pages,
        args.runs,
        args.timeout,
    )
    (built.archive.parent / "results.json").write_text(
        json.dumps({"datasette": datasette, "snapshotter": ours}, indent=2)
    )
    print(report(built, datasette, ours, args.runs))


if __name__ == "__main__":
    main()
