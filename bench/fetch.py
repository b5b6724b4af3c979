"""Benchmark `snapshotter fetch` against a naive sequential client, in the same run.

    python bench/fetch.py                 # 1,000 pupils (5 runs) and 10,000 pupils (3 runs)
    python bench/fetch.py --quick         # 1,000 pupils only
    python bench/fetch.py --sweep         # fetch's wall time by --concurrency, 1,000 pupils
    python bench/fetch.py --sort-cost     # only the rows against a server where sort is costly

The simulated server runs in its own process (so its CPU does not count against either
client) with a 100-record page cap, with 20 ms added to every answer and without. Each client
runs as its own process too, so peak memory is that process's own maximum resident set
(`ru_maxrss` from wait4). The naive client is what a careful first attempt looks like: one
keep-alive connection, `limit=100`, one page after another until an empty page (so it is
correct on a capped server), each page inserted with sqlite-utils as it arrives.

Targets (issue 3): fetch at most 0.35 of the naive time with latency, no slower without it,
and under 150 MB peak at 10,000 pupils.

The sort-cost rows (issue 7) run the same comparison against a server where `sort` is an
unindexed ORDER BY: 5.6 ms of server time per sorted request on 12,000 records (the sim's
`--sort-cost-ms-per-1000`), held while no other request is answered. They also print, for each
client, the requests it made and the server time they used (from the sim's `/_sim/state`).
Targets: fetch at most the naive time without latency, at most 0.35 of it at 20 ms.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve()
CLI = [sys.executable, "-c", "from snapshotter.cli import cli; cli()"]
RP, ESTAB, SECRET = "partner-rp", "3281110", "super-secret"
LATENCY_S = 0.020
PAGE_CAP = 100
SORT_COST_MS_PER_1000 = 5.6 / 12  # 5.6 ms per sorted request on a 12,000-record collection


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SimProcess:
    """`snapshotter sim serve` in its own process; quirks switched through its control URL."""

    def __init__(self, pupils: int) -> None:
        self.port = free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.root}/api/ims/oneroster/v1p1/school"
        self.process = subprocess.Popen(
            [*CLI, "sim", "serve", "--port", str(self.port), "--pupils", str(pupils),
             "--max-page-size", str(PAGE_CAP)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"{self.root}/_sim/state", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("the simulated server did not start") from None
                time.sleep(0.1)

    def latency(self, seconds: float) -> None:
        self.quirks(latency_s=seconds)

    def quirks(self, **changes: float) -> None:
        httpx.post(f"{self.root}/_sim/quirks", json=changes).raise_for_status()

    def usage(self) -> tuple[int, float]:
        """Requests answered so far and the server time they used."""
        state = httpx.get(f"{self.root}/_sim/state").json()
        return state["requests"], state["server_time_s"]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def run_measured(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak resident MB of one client process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{command[:6]} failed with status {status}")
    return wall, usage.ru_maxrss / 1024  # Linux reports KiB


def fetch_command(sim: SimProcess, archive: Path, concurrency: int | None = None) -> list[str]:
    command = [*CLI, "fetch", "--base-url", sim.base_url, "--rp", RP, "--estab", ESTAB,
               "--archive", str(archive), "--quiet"]  # fmt: skip
    if concurrency is not None:
        command += ["--concurrency", str(concurrency)]
    return command


def naive_command(sim: SimProcess, archive: Path) -> list[str]:
    return [sys.executable, str(HERE), "--naive", sim.base_url, str(archive)]


def naive_fetch(base_url: str, database: Path) -> None:
    """The naive client: sequential pages of 100, each inserted as it comes."""
    import sqlite_utils

    from snapshotter.model import COLLECTIONS

    db = sqlite_utils.Database(database)
    with httpx.Client(timeout=60) as http:
        token = http.post(f"{base_url}/auth/token", auth=(f"{RP}|{ESTAB}", SECRET))
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        for collection in COLLECTIONS:
            offset = 0
            while True:
                response = http.get(
                    f"{base_url}/{collection}",
                    params={"limit": 100, "offset": offset},
                    headers=headers,
                )
                response.raise_for_status()
                records = [] if response.status_code == 204 else response.json()[collection]
                if not records:
                    break
                db[collection].insert_all(records, pk="sourcedId", replace=True, alter=True)
                offset += len(records)


def median_of(runs: int, command_for, env: dict[str, str]) -> tuple[float, float]:  # noqa: ANN001
    walls, peaks = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as scratch:
            wall, peak = run_measured(command_for(Path(scratch)), env)
        walls.append(wall)
        peaks.append(peak)
    return statistics.median(walls), max(peaks)


def measure_with_usage(
    command: list[str], env: dict[str, str], sim: SimProcess
) -> tuple[float, float, int, float]:
    """Wall seconds, peak MB, requests made and server seconds used by one client run."""
    requests_before, server_before = sim.usage()
    wall, peak = run_measured(command, env)
    requests_after, server_after = sim.usage()
    # Less one: the state request that read `requests_before` is counted once answered.
    return wall, peak, requests_after - requests_before - 1, server_after - server_before


def compare_sort_cost(pupils: int, runs: int) -> None:
    """Fetch against naive where an unindexed sort costs the server time on every request.

    The two clients take turns run by run, so that a machine whose load changes during the
    benchmark weighs on both alike."""
    env = {**os.environ, "SNAPSHOTTER_SECRET": SECRET}
    sim = SimProcess(pupils)
    try:
        sim.quirks(sort_cost_ms_per_1000=SORT_COST_MS_PER_1000)
        for latency in (LATENCY_S, 0.0):
            sim.latency(latency)
            ours, naive = [], []
            for _ in range(runs):
                with tempfile.TemporaryDirectory() as scratch:
                    archive = Path(scratch) / "archive"
                    ours.append(measure_with_usage(fetch_command(sim, archive), env, sim))
                    database = Path(scratch) / "naive.db"
                    naive.append(measure_with_usage(naive_command(sim, database), env, sim))
            wall, naive_wall = (statistics.median(r[0] for r in runs_) for runs_ in (ours, naive))
            peak, naive_peak = (max(r[1] for r in runs_) for runs_ in (ours, naive))
            requests, naive_requests = (
                round(statistics.median(r[2] for r in runs_)) for runs_ in (ours, naive)
            )
            server_s, naive_server_s = (
                statistics.median(r[3] for r in runs_) for runs_ in (ours, naive)
            )
            print(
                f"{pupils:>6} pupils, {latency * 1000:>2.0f} ms latency, costly sort: "
                f"fetch {wall:6.2f} s  naive {naive_wall:6.2f} s  ratio {wall / naive_wall:.2f}"
                f"   requests {requests} / {naive_requests}   "
                f"server time {server_s:.3f} s / {naive_server_s:.3f} s   "
                f"peak {peak:.0f} / {naive_peak:.0f} MB   [median of {runs}]",
                flush=True,
            )
    finally:
        sim.stop()


def compare(pupils: int, runs: int) -> None:
    env = {**os.environ, "SNAPSHOTTER_SECRET": SECRET}
    sim = SimProcess(pupils)
    try:
        for latency in (LATENCY_S, 0.0):
            sim.latency(latency)
            ours, our_peak = median_of(runs, lambda d: fetch_command(sim, d / "archive"), env)
            naive, naive_peak = median_of(runs, lambda d: naive_command(sim, d / "naive.db"), env)
            print(
                f"{pupils:>6} pupils, {latency * 1000:>2.0f} ms latency: "
                f"fetch {ours:6.2f} s (peak {our_peak:5.1f} MB)  "
                f"naive {naive:6.2f} s (peak {naive_peak:5.1f} MB)  "
                f"ratio {ours / naive:.2f}   [median of {runs}]",
                flush=True,
            )
    finally:
        sim.stop()


def sweep(pupils: int = 1000, runs: int = 3) -> None:
    env = {**os.environ, "SNAPSHOTTER_SECRET": SECRET}
    sim = SimProcess(pupils)
    try:
        for latency in (LATENCY_S, 0.0):
            sim.latency(latency)
            for concurrency in (1, 2, 4, 8, 12, 16, 32):
                wall, peak = median_of(
                    runs, lambda d, c=concurrency: fetch_command(sim, d / "a", c), env
                )
                print(
                    f"{pupils} pupils, {latency * 1000:.0f} ms latency, --concurrency "
                    f"{concurrency:>2}: {wall:6.2f} s (peak {peak:5.1f} MB)",
                    flush=True,
                )
    finally:
        sim.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 pupils only")
    parser.add_argument("--sweep", action="store_true", help="time fetch by --concurrency")
    parser.add_argument(
        "--sort-cost", action="store_true", help="only the rows against a costly-sort server"
    )
    parser.add_argument("--naive", nargs=2, metavar=("BASE_URL", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.naive:
        naive_fetch(args.naive[0], Path(args.naive[1]))
    elif args.sweep:
        sweep()
    elif args.sort_cost:
        compare_sort_cost(1000, runs=5)
    else:
        compare(1000, runs=5)
        compare_sort_cost(1000, runs=5)
        if not args.quick:
            compare(10_000, runs=3)


if __name__ == "__main__":
    main()
