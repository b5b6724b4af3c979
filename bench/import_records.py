"""Benchmark `snapshotter import`: records a second into a snapshot.

    python bench/import_records.py                # 1,000,000 enrollments, 3 runs
    python bench/import_records.py --records 200000 --runs 1

Writes enrollment-like records (the synthetic school's enrollments, repeated under new
sourcedIds) as `enrollments.ndjson` beside the other five collections of a 1,000-pupil school,
then times the whole `snapshotter import` command in its own process: reading, canonicalising,
hashing, inserting, indexing, the snapshot's content hash and the final fsync. Target (issue 3):
at least 100,000 records a second.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from snapshotter.model import COLLECTIONS
from snapshotter.sim.school import generate

CLI = [sys.executable, "-c", "from snapshotter.cli import cli; cli()"]


def write_source(directory: Path, records: int) -> int:
    school = generate(seed=1, pupils=1000)
    for collection in COLLECTIONS:
        if collection != "enrollments":
            body = {collection: school[collection]}
            (directory / f"{collection}.json").write_text(json.dumps(body))
    templates = school["enrollments"]
    with open(directory / "enrollments.ndjson", "w") as out:
        for number in range(records):
            record = dict(templates[number % len(templates)], sourcedId=f"xE{number:08d}")
            out.write(json.dumps(record) + "\n")
    return records + sum(len(school[c]) for c in COLLECTIONS if c != "enrollments")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "saved"
        source.mkdir()
        total = write_source(source, args.records)
        size_mb = (source / "enrollments.ndjson").stat().st_size / 1e6
        print(f"{total:,} records ({args.records:,} enrollments, {size_mb:.0f} MB of ndjson)")
        timings, peaks = [], []
        for run in range(args.runs):
            archive = Path(scratch) / f"archive{run}"
            # Start each run with no dirty pages from writing the source or the last run's
            # snapshot: otherwise the kernel's writeback lands in the middle of the timing.
            os.sync()
            started = time.perf_counter()
            command = [*CLI, "import", str(source), "--estab", "3281110", "--archive", str(archive)]
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
            _, status, usage = os.wait4(process.pid, 0)
            timings.append(time.perf_counter() - started)
            peaks.append(usage.ru_maxrss / 1024)
            if status:
                raise SystemExit(f"import failed ({status})")
            shutil.rmtree(archive)
            print(f"  run {run + 1}: {timings[-1]:.2f} s, {total / timings[-1]:,.0f} records/s")
        wall = statistics.median(timings)
        print(
            f"median {wall:.2f} s: {total / wall:,.0f} records/s "
            f"(main process peak {max(peaks):.0f} MB; workers not counted)"
        )


if __name__ == "__main__":
    main()
