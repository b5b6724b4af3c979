"""`snapshotter run`: the nightly job over every school of the config file.

Exit statuses: 0 every school fetched, diffed and mailed as configured; 1 a school failed (each
is reported, and alerted to `alert_to`); 2 bad usage; 5 another `run` holds this archive.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import click

from ..api.defaults import DEFAULT_CONCURRENCY, DEFAULT_PAGE_SIZE, DEFAULT_TIMEOUT_S
from ..commands_archive import ARCHIVE_HELP, _archive, _load_config, config_option
from ..config import ConfigError
from ..safe_text import printable

EXIT_FAILED = 1
EXIT_BUSY = 5


def _say(message: str) -> None:
    click.echo(printable(message), err=True)


@click.command("run")
@config_option
@click.option("--archive", type=click.Path(file_okay=False, path_type=Path), help=ARCHIVE_HELP)
@click.option(
    "--school",
    "school_names",
    multiple=True,
    help="Only this school of the config file (name or estab; repeat for more).",
)
@click.option("--always-mail", is_flag=True, help="Mail the digest even when nothing changed.")
@click.option(
    "--stale-after",
    type=click.IntRange(min=1),
    help="Days after which a school with no newer complete snapshot is alerted "
    "[default: the config's `stale_after`, else 3].",
)
@click.option("--page-size", type=click.IntRange(min=2), default=DEFAULT_PAGE_SIZE,
              show_default=True, help="Records asked for per page.")  # fmt: skip
@click.option("--concurrency", type=click.IntRange(min=1), default=DEFAULT_CONCURRENCY,
              show_default=True, help="Connections per school.")  # fmt: skip
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0.1), default=DEFAULT_TIMEOUT_S,
              show_default=True, help="Seconds to wait for an answer before retrying.")  # fmt: skip
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
def run_command(
    config_path: Path | None,
    archive: Path | None,
    school_names: tuple[str, ...],
    always_mail: bool,
    stale_after: int | None,
    page_size: int,
    concurrency: int,
    timeout_s: float,
    quiet: bool,
) -> None:
    """The scheduled job: for every school of the config file, fetch a snapshot, diff it
    against the school's previous complete snapshot, save the report and mail the digest to the
    school's `to` when anything changed.

    Schools are fetched concurrently; one school's failure (a bad secret, the provider down, an
    incomplete snapshot, a mail server refusing) is reported, mailed to the config's
    `alert_to`, and stops nothing else. So is a school whose newest complete snapshot is older
    than --stale-after days. Each job and each school's steps are recorded in changes.db
    (tables job_runs and job_schools). One run at a time per archive: a second one says so
    and exits 5.
    """
    from ..archive.locks import RUN_LOCK, LockBusy, hold
    from ..fetch import FetchSettings
    from ..job import JobSettings, run_job
    from ..progress import ProgressDisplay

    config = _load_config(config_path)
    if config is None or not config.schools:
        raise click.UsageError("run needs a config file with schools (see --config)")
    try:
        schools = [config.school(name) for name in school_names] or list(config.schools)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    directory = _archive(archive, config)
    settings = JobSettings(
        fetch=FetchSettings(page_size=page_size, concurrency=concurrency, timeout_s=timeout_s),
        always_mail=always_mail,
        stale_after=timedelta(days=stale_after or config.stale_after_days),
    )
    try:
        with hold(directory, RUN_LOCK):
            report = run_job(
                config,
                directory,
                schools,
                settings,
                say=_say,
                progress=None if quiet else ProgressDisplay(),
            )
    except LockBusy as exc:
        _say(
            f"Another `snapshotter run` is working on the archive {directory} ({exc}): this "
            "one stops without touching it. If no run is going, the lock went with its process: "
            "just run again."
        )
        sys.exit(EXIT_BUSY)
    for outcome in report.outcomes:
        if outcome.ok:
            parts = [f"{outcome.school}: snapshot {outcome.snapshot}"]
            if outcome.diff_run_id is not None:
                parts.append(
                    f"report {outcome.diff_run_id} ({outcome.records_changed} records changed)"
                )
            diffed = outcome.steps.get("diff", "")
            if diffed != "ok":  # skipped (a first snapshot), or windows caught up
                parts.append(f"diff {diffed}")
            parts.append(outcome.steps.get("mail", ""))
            click.echo(printable("; ".join(p for p in parts if p)))
        else:
            alerted = "alerted" if outcome.alerted else "not alerted"
            _say(
                f"Error: {outcome.school}: failed at {outcome.failed_step}: {outcome.message} "
                f"({alerted})"
            )
    if not report.ok:
        sys.exit(EXIT_FAILED)
