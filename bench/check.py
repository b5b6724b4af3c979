"""Time `snapshotter check`'s rules on a 10,000-pupil snapshot of the simulated school.

    python bench/check.py [--pupils 10000] [--runs 5]

Builds the snapshot once (clean and with the planted problems), then times every rule over it
(`quality.check_snapshot`, labels included, nothing kept) and prints the median wall and CPU
time, with the load average: on a machine shared with other work the wall time waits for CPU.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from snapshotter.archive.layout import read_snapshot_info
from snapshotter.archive.snapshot import SnapshotMeta, SnapshotWriter
from snapshotter.quality import check_snapshot
from snapshotter.sim.school import generate


def build(archive: Path, planted: bool, pupils: int) -> Path:
    taken_at = datetime(2026, 10, 15, 8, 30, tzinfo=UTC)
    school = generate(pupils=pupils, term=0, plant_problems=planted)
    with SnapshotWriter(archive, "3281110", started_at=taken_at) as writer:
        for collection, records in school.items():
            writer.save_records(collection, records)
        meta = SnapshotMeta(estab="3281110", source="import", started_at=taken_at)
        return writer.finish(meta, complete=True, stable=True, incomplete_reason=None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pupils", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for planted in (False, True):
            path = build(Path(tmp) / str(planted), planted, args.pupils)
            info = read_snapshot_info(path)
            times, cpu_times, findings = [], [], 0
            for _ in range(args.runs):
                began, cpu_began = time.perf_counter(), time.process_time()
                findings = len(check_snapshot(info).findings)
                times.append(time.perf_counter() - began)
                cpu_times.append(time.process_time() - cpu_began)
            records = sum(info.record_counts.values())
            print(
                f"{args.pupils} pupils, {records} records, planted={planted}: "
                f"median {statistics.median(times):.3f} s over {args.runs} runs "
                f"(min {min(times):.3f}, max {max(times):.3f}; CPU median "
                f"{statistics.median(cpu_times):.3f} s), {findings} findings; "
                f"load average {os.getloadavg()[0]:.1f}"
            )


if __name__ == "__main__":
    main()
