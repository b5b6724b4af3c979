"""`snapshotter sim ...`: run the simulated Xporter server, or write its school to files."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path

import click

from ..model import COLLECTIONS
from .curriculum import school_year_dates, school_year_index
from .quirks import Quirks


@click.group()
def sim() -> None:
    """The simulated Xporter OneRoster server and its synthetic school."""


def _parse_client(value: str) -> tuple[str, str]:
    client, separator, secret = value.partition(":")
    if not separator or "|" not in client or not secret:
        raise click.BadParameter(f"expected RP|ESTAB:SECRET, got {value!r}", param_hint="--client")
    return client, secret


def describe_term(term: int) -> str:
    """ "Autumn 2026" for term 0: the term's name and calendar year."""
    title, _, _ = school_year_dates(school_year_index(term)).terms[term % 3]
    return title


@sim.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to listen on. Keep it on loopback: plain HTTP, no real data.",
)
@click.option("--port", default=8765, show_default=True, help="TCP port; 0 picks a free one.")
@click.option("--pupils", default=1000, show_default=True, help="Size of the synthetic school.")
@click.option("--term", default=0, show_default=True, help="Term to serve: 0 = Autumn 2026.")
@click.option("--seed", default=1, show_default=True, help="Seed of the synthetic school.")
@click.option(
    "--client",
    "clients",
    multiple=True,
    metavar="RP|ESTAB:SECRET",
    help="Accepted credentials (repeatable); replaces the default partner-rp|3281110.",
)
@click.option("--latency-ms", default=0.0, help="Delay added before every answer.")
@click.option("--error-rate", default=0.0, help="Share of data requests answered 500 or 503.")
@click.option("--rate-limit-every", default=0, help="Every Nth data request answers 429.")
@click.option("--retry-after", default=1.0, help="Retry-After seconds sent with 429 and 503.")
@click.option("--token-lifetime", default=3600, help="Seconds an issued token stays valid.")
@click.option(
    "--forbid",
    multiple=True,
    type=click.Choice([*COLLECTIONS, "version"]),
    help="Endpoint answering 403 (repeatable).",
)
@click.option("--max-page-size", type=int, help="Silently cap `limit` (and a missing limit).")
@click.option("--no-total-count", is_flag=True, help="Send no X-Total-Count or Link header.")
@click.option("--empty-page-204", is_flag=True, help="Answer an empty page with 204 No Content.")
@click.option("--ignore-sort", is_flag=True, help="Accept `sort` but answer in default order.")
@click.option("--booleans-as-strings", is_flag=True, help='Send "true"/"false" strings.')
@click.option("--inactive-status", is_flag=True, help="Send `inactive` for `tobedeleted`.")
@click.option("--shuffle-order", is_flag=True, help="Default order changes between requests.")
@click.option(
    "--tied-order",
    is_flag=True,
    help="Default order has ties: tied records change places with the offset asked.",
)
@click.option(
    "--sort-cost-ms-per-1000",
    default=0.0,
    help="Server time a `sort` costs per 1,000 records, on every request (unindexed).",
)
@click.option("--quirk-seed", default=0, help="Seed for random errors and shuffling.")
@click.option(
    "--plant-problems",
    is_flag=True,
    help="Plant a known data problem of every `snapshotter check` rule; GET "
    "/_sim/problems gives the ground truth.",
)
def serve(
    host: str,
    port: int,
    pupils: int,
    term: int,
    seed: int,
    clients: tuple[str, ...],
    latency_ms: float,
    error_rate: float,
    rate_limit_every: int,
    retry_after: float,
    token_lifetime: int,
    forbid: tuple[str, ...],
    max_page_size: int | None,
    no_total_count: bool,
    empty_page_204: bool,
    ignore_sort: bool,
    booleans_as_strings: bool,
    inactive_status: bool,
    shuffle_order: bool,
    tied_order: bool,
    sort_cost_ms_per_1000: float,
    quirk_seed: int,
    plant_problems: bool,
) -> None:
    """Serve the synthetic school as Xporter's OneRoster v1.1 API until interrupted.

    Switch term, offset drift and page faults while it runs through the control endpoint:
    POST /_sim/term {"term": 1}, POST /_sim/quirks {"drift_endpoint": "users", ...}.
    """
    from .server import (
        API_PREFIX,
        CONTROL_PREFIX,
        SimState,
        bind_socket,
        create_app,
        uvicorn_server,
    )

    accepted = dict(_parse_client(value) for value in clients) if clients else None
    quirks = Quirks(
        latency_s=latency_ms / 1000,
        error_rate=error_rate,
        rate_limit_every=rate_limit_every,
        retry_after_s=retry_after,
        token_lifetime_s=token_lifetime,
        forbidden=frozenset(forbid),
        max_page_size=max_page_size,
        no_total_count=no_total_count,
        empty_page_204=empty_page_204,
        ignore_sort=ignore_sort,
        booleans_as_strings=booleans_as_strings,
        inactive_status=inactive_status,
        shuffle_order=shuffle_order,
        tied_order=tied_order,
        sort_cost_ms_per_1000=sort_cost_ms_per_1000,
        seed=quirk_seed,
    )
    click.echo(f"Generating a school of {pupils} pupils (seed {seed}, term {term})...", err=True)
    state = SimState(
        seed=seed,
        pupils=pupils,
        term=term,
        clients=accepted,
        quirks=quirks,
        plant_problems=plant_problems,
    )
    sock = bind_socket(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    root = f"http://{bound_host}:{bound_port}"
    counts = ", ".join(f"{count} {name}" for name, count in state.counts().items())
    click.echo(f"Simulated Xporter OneRoster v1.1: {describe_term(term)} (term {term}): {counts}")
    click.echo(f"Base URL: {root}{API_PREFIX}")
    click.echo(f"Token:    POST {root}{API_PREFIX}/auth/token with HTTP Basic auth")
    click.echo("Accepted credentials (Basic user rp|estab, password secret):")
    for client, secret in state.clients.items():
        click.echo(f"  {client}:{secret}")
    click.echo(f"Control:  GET {root}{CONTROL_PREFIX}/state, POST {root}{CONTROL_PREFIX}/term")
    if plant_problems:
        click.echo(f"Planted:  GET {root}{CONTROL_PREFIX}/problems (the ground truth)")
    click.echo("Press Ctrl-C to stop.")
    # uvicorn re-raises the Ctrl-C it handled once it has shut down: a normal way out.
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn_server(create_app(state)).run(sockets=[sock])
    click.echo("Stopped.", err=True)


@sim.command()
@click.option("--pupils", default=1000, show_default=True)
@click.option("--term", default=0, show_default=True)
@click.option("--seed", default=1, show_default=True)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for <collection>.json files.",
)
@click.option(
    "--changes/--no-changes",
    "with_changes",
    default=False,
    help="Also write changes.json: what changed since the term before (ground truth).",
)
@click.option(
    "--plant-problems",
    is_flag=True,
    help="Plant a known data problem of every `snapshotter check` rule, and write their "
    "ground truth (rule: sourcedIds) to planted-problems.json.",
)
def generate(
    pupils: int, term: int, seed: int, out_dir: Path, with_changes: bool, plant_problems: bool
) -> None:
    """Write the synthetic school at a term as <collection>.json API envelopes."""
    from .school import changes
    from .school import generate as generate_school

    if with_changes and term < 1:  # refused before anything is written
        raise click.UsageError(
            "--changes needs --term 1 or more: term 0 has no term before it to compare with"
        )
    school = generate_school(seed=seed, pupils=pupils, term=term)
    truth: dict[str, list[str]] | None = None
    if plant_problems:
        from .problems import plant_problems as plant

        school, truth = plant(school)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in COLLECTIONS:
        path = out_dir / f"{name}.json"
        path.write_text(json.dumps({name: school[name]}, ensure_ascii=False), encoding="utf-8")
        click.echo(f"{path}: {len(school[name])} records")
    if truth is not None:
        from .problems import PROBLEMS_FILE

        (out_dir / PROBLEMS_FILE).write_text(json.dumps(truth, indent=1), encoding="utf-8")
        planted = sum(len(ids) for ids in truth.values())
        click.echo(f"{out_dir / PROBLEMS_FILE}: {planted} findings planted, {len(truth)} rules")
    if with_changes:
        truth = [
            dataclasses.asdict(change) for change in changes(seed=seed, pupils=pupils, term=term)
        ]
        (out_dir / "changes.json").write_text(json.dumps(truth, indent=1), encoding="utf-8")
        click.echo(f"{out_dir / 'changes.json'}: {len(truth)} changes since term {term - 1}")
