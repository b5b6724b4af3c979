"""Benchmark `snapshotter diff` against `sqldiff --primarykey` and `csv-diff` on the same data.

    python bench/diff.py                       # 10,000, 100,000 and 1,000,000 records
    python bench/diff.py --sizes 10000,100000  # quicker

For each size: two snapshots of enrollment-like records built through `snapshotter import`
(1% removed, 1% added, 1% changed between them), and CSV exports of both. Then, interleaved so
that a busy machine slows every tool alike, each run measures in its own child process:

- `snapshotter diff OLD NEW --format json` (the default: the report is also saved into a fresh
  changes database, as a user's diff would be);
- `sqldiff --primarykey OLD NEW` (Debian's sqlite3-tools) on the same two files;
- `csv-diff OLD.csv NEW.csv --key sourcedId --json` on the CSV exports.

Wall time and peak resident memory of each child (from `wait4`), median of `--runs` runs
(`--big-runs` at 1,000,000; csv-diff runs once there: it holds both files in memory). The
inputs are kept in `--workdir` and reused by later runs of the same size.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from snapshotter.model import COLLECTIONS

CLI = [sys.executable, "-c", "from snapshotter.cli import cli; cli()"]
ESTAB = "9000001"
CHANGE_EVERY = 100  # 1% of records each removed, changed and added
CSV_COLUMNS = (
    "sourcedId",
    "status",
    "dateLastModified",
    "role",
    "primary",
    "beginDate",
    "endDate",
    "user_sourcedId",
    "class_sourcedId",
    "school_sourcedId",
)


def ref(collection: str, singular: str, sourced_id: str) -> dict[str, str]:
    href = f"https://xporter.example/ims/oneroster/v1p1/{collection}/{sourced_id}"
    return {"href": href, "sourcedId": sourced_id, "type": singular}


def enrollment(index: int, *, moved: bool = False) -> dict[str, Any]:
    """An enrollment like Xporter's: ten enrollments a pupil, 5,000 classes."""
    class_id = f"xC{(index % 5000) + (1 if moved else 0):07d}"
    record: dict[str, Any] = {
        "sourcedId": f"xE{index:08d}",
        "status": "active",
        "dateLastModified": "2026-09-01T07:15:00.000Z",
        "role": "student" if index % 25 else "teacher",
        "primary": index % 25 == 0,
        "beginDate": "2026-09-01",
        "user": ref("users", "user", f"xU{index // 10:07d}"),
        "class": ref("classes", "class", class_id),
        "school": ref("orgs", "org", "xS0000001"),
    }
    return record


def changed(index: int) -> dict[str, Any]:
    """The 1% that changed: a class move, an end date, a new role, in turn."""
    record = enrollment(index, moved=index % 3 == 0)
    record["dateLastModified"] = "2026-11-02T07:15:00.000Z"
    if index % 3 == 1:
        record["endDate"] = "2026-11-01"
    elif index % 3 == 2:
        record["role"] = "aide"
    return record


def write_sources(directory: Path, size: int, *, newer: bool) -> None:
    """`<collection>.ndjson` files for `snapshotter import`: enrollments, and empty others."""
    directory.mkdir(parents=True, exist_ok=True)
    for collection in COLLECTIONS:
        (directory / f"{collection}.ndjson").write_text("", encoding="utf-8")
    with open(directory / "enrollments.ndjson", "w", encoding="utf-8") as out:
        for index in range(size):
            if not newer:
                record = enrollment(index)
            elif index % CHANGE_EVERY == 0:
                continue  # removed
            elif index % CHANGE_EVERY == 1:
                record = changed(index)
            else:
                record = enrollment(index)
            out.write(json.dumps(record) + "\n")
        if newer:
            for index in range(size, size + size // CHANGE_EVERY):
                out.write(json.dumps(enrollment(index)) + "\n")


def import_snapshot(source: Path, archive: Path) -> tuple[Path, float]:
    started = time.perf_counter()
    result = subprocess.run(
        [*CLI, "import", str(source), "--estab", ESTAB, "--archive", str(archive)],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(result.stdout.strip().splitlines()[-1]), time.perf_counter() - started


def export_csv(snapshot: Path, target: Path) -> None:
    columns = ", ".join(f'"{c}"' for c in CSV_COLUMNS)
    with sqlite3.connect(f"file:{snapshot}?mode=ro", uri=True) as conn:
        rows = conn.execute(f"SELECT {columns} FROM enrollments ORDER BY rowid")
        with open(target, "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(CSV_COLUMNS)
            writer.writerows(rows)


def prepare(workdir: Path, size: int) -> dict[str, Any]:
    """The two snapshots and their CSV exports for `size` records, built once and kept."""
    directory = workdir / f"n{size}"
    done = directory / "inputs.json"
    if done.is_file():
        return json.loads(done.read_text())
    shutil.rmtree(directory, ignore_errors=True)
    archive = directory / "archive"
    inputs: dict[str, Any] = {"size": size}
    for side, newer in (("old", False), ("new", True)):
        source = directory / f"{side}-source"
        write_sources(source, size, newer=newer)
        snapshot, seconds = import_snapshot(source, archive)
        shutil.rmtree(source)
        export_csv(snapshot, directory / f"{side}.csv")
        inputs[side] = str(snapshot)
        inputs[f"{side}_csv"] = str(directory / f"{side}.csv")
        inputs[f"import_{side}_s"] = round(seconds, 2)
    inputs["archive"] = str(archive)
    done.write_text(json.dumps(inputs, indent=2))
    return inputs


GNU_TIME = Path("/usr/bin/time")


def measure(command: list[str], stdout: Path, timeout_s: float) -> dict[str, Any]:
    """Wall seconds and peak RSS (MB) of one child process.

    The peak comes from GNU time when there is one: a child forked straight from this process
    would count this process's own memory, inherited before the exec, as its peak.
    """
    peak_file = stdout.with_suffix(".peak")
    if GNU_TIME.is_file():
        command = [str(GNU_TIME), "-f", "%M %U %S", "-o", str(peak_file), *command]
    with open(stdout, "wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.PIPE)
        try:
            _, stderr = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            return {"timeout": True, "seconds": timeout_s}
        elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{command} failed ({process.returncode}): {stderr.decode()}")
    cpu_s = None
    if GNU_TIME.is_file():
        peak, user, system = peak_file.read_text().split()[-3:]
        peak_kb, cpu_s = int(peak), float(user) + float(system)
    else:
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # an upper bound
    return {"seconds": elapsed, "cpu_s": cpu_s, "peak_mb": peak_kb / 1024}


def commands(inputs: dict[str, Any], out: Path) -> dict[str, list[str]]:
    return {
        "snapshotter diff": [
            *CLI,
            "diff",
            inputs["old"],
            inputs["new"],
            "--archive",
            inputs["archive"],
            "--format",
            "json",
        ],
        "sqldiff": ["sqldiff", "--primarykey", inputs["old"], inputs["new"]],
        "csv-diff": [
            "csv-diff",
            inputs["old_csv"],
            inputs["new_csv"],
            "--key",
            "sourcedId",
            "--json",
        ],
    }


def check_report(report_path: Path, size: int) -> None:
    """The diff found exactly the 1% of each kind the inputs hold."""
    summary = json.loads(report_path.read_text(encoding="utf-8"))["summary"]["enrollments"]
    expected = size // CHANGE_EVERY
    assert summary == {
        "added": expected,
        "changed": expected,
        "tobedeleted": 0,
        "reactivated": 0,
        "removed": expected,
    }, summary


def bench_size(
    inputs: dict[str, Any], runs: int, csv_diff_runs: int, timeout_s: float
) -> dict[str, Any]:
    size = inputs["size"]
    out = Path(inputs["archive"]).parent
    tools = commands(inputs, out)
    samples: dict[str, list[dict[str, Any]]] = {tool: [] for tool in tools}
    for run in range(runs):
        for tool, command in tools.items():
            if tool == "csv-diff" and run >= csv_diff_runs:
                continue
            if tool == "snapshotter diff":
                (Path(inputs["archive"]) / "changes.db").unlink(missing_ok=True)
            target = out / f"{tool.replace(' ', '-')}.out"
            samples[tool].append(measure(command, target, timeout_s))
            if tool == "snapshotter diff":
                check_report(target, size)
    result: dict[str, Any] = {
        "size": size,
        "import_s": [inputs["import_old_s"], inputs["import_new_s"]],
    }
    for tool, measured in samples.items():
        finished = [m for m in measured if not m.get("timeout")]
        result[tool] = {
            "runs": len(measured),
            "timeouts": len(measured) - len(finished),
            "seconds": statistics.median(m["seconds"] for m in finished) if finished else None,
            "cpu_s": statistics.median(m["cpu_s"] or 0 for m in finished) if finished else None,
            "samples_s": [round(m["seconds"], 3) for m in measured],
            "peak_mb": max(m["peak_mb"] for m in finished) if finished else None,
        }
    return result


def _cell(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _timed(tool: dict[str, Any]) -> str:
    return f"{_cell(tool['seconds'])} ({_cell(tool['cpu_s'])})"


def _ratio(ours: dict[str, Any], other: dict[str, Any]) -> str:
    if ours["seconds"] is None or other["seconds"] is None:
        return "-"
    return f"{ours['seconds'] / other['seconds']:.2f}"


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| records | snapshotter diff s (CPU s) | peak MB | sqldiff s (CPU s) | peak MB "
        "| csv-diff s (CPU s) | peak MB | diff / sqldiff | diff / csv-diff |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ours, sqldiff, csvdiff = r["snapshotter diff"], r["sqldiff"], r["csv-diff"]
        lines.append(
            f"| {r['size']:,} | {_timed(ours)} | {_cell(ours['peak_mb'], 0)} "
            f"| {_timed(sqldiff)} | {_cell(sqldiff['peak_mb'], 0)} "
            f"| {_timed(csvdiff)} | {_cell(csvdiff['peak_mb'], 0)} "
            f"| {_ratio(ours, sqldiff)} | {_ratio(ours, csvdiff)} |"
        )
    return "\n".join(lines)


def growth(results: list[dict[str, Any]]) -> str:
    """Microseconds per record at each size: flat means linear growth."""
    parts = []
    for r in results:
        per_record = r["snapshotter diff"]["seconds"] / r["size"] * 1e6
        parts.append(f"{r['size']:,}: {per_record:.2f} µs/record")
    return "snapshotter diff cost per record: " + ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--runs", type=int, default=3, help="runs per tool (median)")
    parser.add_argument("--big-runs", type=int, default=3, help="runs at 1,000,000 and above")
    parser.add_argument("--workdir", type=Path, default=Path("bench/out/diff"))
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    args = parser.parse_args()
    if shutil.which("sqldiff") is None or shutil.which("csv-diff") is None:
        sys.exit(
            "needs sqldiff (apt-get install sqlite3-tools) and csv-diff (pip install csv-diff)"
        )
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        print(f"preparing {size:,} records...", file=sys.stderr, flush=True)
        inputs = prepare(args.workdir, size)
        big = size >= 1_000_000
        runs = args.big_runs if big else args.runs
        print(f"measuring {size:,} records ({runs} runs)...", file=sys.stderr, flush=True)
        results.append(bench_size(inputs, runs, 1 if big else runs, args.timeout))
    (args.workdir / "results.json").write_text(json.dumps(results, indent=2))
    print(table(results))
    print()
    print(growth(results))
    print("(csv-diff runs once at 1,000,000 records; medians elsewhere. Peak MB: largest run.)")


if __name__ == "__main__":
    main()
