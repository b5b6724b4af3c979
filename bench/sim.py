"""Benchmark the synthetic school and the simulated server.

    python bench/sim.py            # 1,000 and 10,000 pupils
    python bench/sim.py --quick    # 1,000 pupils only

Prints generation time (median of runs), and for a full paged read (limit=100) of all six
collections: requests/s, records/s and the server's CPU seconds, read from /proc for a server
running in its own process. The same read against a peer server that answers each page with a
plain `json.dumps` of the records (same uvicorn, no auth, no quirks) puts the figures in context.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx

from snapshotter.model import COLLECTIONS
from snapshotter.sim.school import generate

PAGE_SIZE = 100
CLI = [sys.executable, "-c", "from snapshotter.cli import cli; cli()"]
CREDENTIALS = ("partner-rp|3281110", "super-secret")


def time_generation(pupils: int, runs: int, term: int = 0) -> tuple[float, int]:
    """Median seconds of `runs` calls of generate(), and the number of records made."""
    timings, records = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        school = generate(seed=1, pupils=pupils, term=term)
        timings.append(time.perf_counter() - started)
        records = sum(len(collection) for collection in school.values())
    return statistics.median(timings), records


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(command: list[str]) -> tuple[subprocess.Popen[str], str]:
    """Run a server process and wait for the base URL it prints."""
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("Base URL:"):
            return process, line.split()[-1]
    raise RuntimeError(f"server exited without printing its URL: {command}")


def full_paged_read(base_url: str) -> tuple[int, int, float]:
    """Read every collection in pages of PAGE_SIZE: (requests, records, wall seconds)."""
    requests = records = 0
    with httpx.Client(timeout=60) as client:
        token = client.post(f"{base_url}/auth/token", auth=CREDENTIALS).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        started = time.perf_counter()
        for collection in COLLECTIONS:
            offset = 0
            while True:
                answer = client.get(
                    f"{base_url}/{collection}", params={"limit": PAGE_SIZE, "offset": offset}
                )
                requests += 1
                page = answer.json()[collection]
                records += len(page)
                if len(page) < PAGE_SIZE:
                    break
                offset += PAGE_SIZE
        return requests, records, time.perf_counter() - started


def measure(command: list[str]) -> dict[str, float]:
    process, base_url = start_server(command)
    try:
        cpu_before = process_cpu_s(process.pid)
        requests, records, wall_s = full_paged_read(base_url)
        cpu_s = process_cpu_s(process.pid) - cpu_before
    finally:
        process.terminate()
        process.wait(timeout=30)
    return {"requests": requests, "records": records, "wall_s": wall_s, "cpu_s": cpu_s}


# --- the peer: each page a fresh json.dumps -------------------------------------------------


def serve_peer(pupils: int) -> None:
    """A minimal server answering each page with json.dumps (no auth, no filters)."""
    import uvicorn

    from snapshotter.sim.server import API_PREFIX, bind_socket

    school = generate(seed=1, pupils=pupils, term=0)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"].endswith("/auth/token"):
            body = json.dumps({"access_token": "peer", "token_type": "Bearer", "expires_in": 3600})
        else:
            name = scope["path"].rsplit("/", 1)[-1]
            params = dict(parse_qsl(scope["query_string"].decode()))
            offset, limit = int(params.get("offset", 0)), int(params.get("limit", 10**9))
            records = school[name][offset : offset + limit]
            body = json.dumps({name: records}, ensure_ascii=False)
        encoded = body.encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(encoded)),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": encoded})

    sock = bind_socket("127.0.0.1", 0)
    host, port = sock.getsockname()[:2]
    print(f"Base URL: http://{host}:{port}{API_PREFIX}", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", http="h11")
    uvicorn.Server(config).run(sockets=[sock])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 pupils only")
    parser.add_argument("--serve-peer", type=int, metavar="PUPILS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_peer:
        serve_peer(args.serve_peer)
        return
    sizes = [1_000] if args.quick else [1_000, 10_000]

    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print("\ngeneration (seed 1):")
    for pupils in sizes:
        runs = 3
        seconds, records = time_generation(pupils, runs)
        print(f"  {pupils:>6,} pupils, term 0: {seconds:6.2f} s  median of {runs}", end="")
        print(f"  ({records:,} records)")
    seconds, records = time_generation(sizes[-1], 1, term=3)
    print(f"  {sizes[-1]:>6,} pupils, term 3: {seconds:6.2f} s  one run", end="")
    print(f"  ({records:,} records, three terms evolved)")

    print(f"\nfull paged read of all six collections, limit={PAGE_SIZE}, keep-alive client:")
    header = "  {:<26} {:>8} {:>9} {:>7} {:>8} {:>10} {:>10} {:>8}"
    print(
        header.format(
            "server", "requests", "records", "wall s", "req/s", "records/s", "server CPU", "ms/req"
        )
    )
    for pupils in sizes:
        ours = CLI + ["sim", "serve", "--port", "0", "--pupils", str(pupils)]
        peer = [sys.executable, __file__, "--serve-peer", str(pupils)]
        for label, command in (
            (f"simulator, {pupils:,} pupils", ours),
            (f"json.dumps peer, {pupils:,}", peer),
        ):
            result = measure(command)
            print(
                header.format(
                    label,
                    f"{result['requests']:,}",
                    f"{result['records']:,}",
                    f"{result['wall_s']:.2f}",
                    f"{result['requests'] / result['wall_s']:,.0f}",
                    f"{result['records'] / result['wall_s']:,.0f}",
                    f"{result['cpu_s']:.2f} s",
                    f"{1000 * result['cpu_s'] / result['requests']:.2f}",
                )
            )


if __name__ == "__main__":
    main()
