"""`snapshotter diff` and `demo`: option parsing over select, diff, report and demo.

The heavy modules are imported inside the commands, so `snapshotter --help` stays quick.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .commands_archive import archive_dir, config_option

if TYPE_CHECKING:  # the demo (and its simulator) is imported only when it runs
    from .demo import DemoResult


def _refuse_output_into_archive(
    output: Path, archive: Path, snapshots: tuple[Path, ...] = ()
) -> None:
    """--output must never replace the archive's own files: changes.db (and its journals),
    a snapshot, or anything in a school's directory. Symlinks and `..` are resolved first."""
    from .archive.layout import CHANGES_DB

    target = Path(os.path.realpath(output))
    home = Path(os.path.realpath(archive))
    journals = {home / f"{CHANGES_DB}{suffix}" for suffix in ("", "-wal", "-journal", "-shm")}
    if target in journals:
        what = f"the archive's {target.name}"
    elif target in {Path(os.path.realpath(path)) for path in snapshots}:
        what = "a snapshot being compared"
    elif target.is_relative_to(home) and target.parent != home:
        what = f"inside the archive's school directory {target.parent}"
    else:
        return
    raise click.UsageError(
        f"--output {output} is {what}: the report would replace the archive's own files; "
        "write it outside the archive"
    )


# Entries per section of the text and Markdown reports unless --limit says otherwise.
DEFAULT_LIMIT = 20


@click.command("diff")
@click.argument("old", required=False)
@click.argument("new", required=False)
@config_option
@click.option(
    "--archive",
    type=click.Path(file_okay=False, path_type=Path),
    help="The archive directory. Default: $SNAPSHOTTER_ARCHIVE, else the config file's "
    "archive, else ./archive.",
)
@click.option("--estab", help="The school, when the archive holds several.")
@click.option(
    "--term",
    "terms",
    multiple=True,
    metavar="TITLE",
    help='Name OLD (then NEW) by academic session, e.g. --term "Autumn 2026": the latest '
    "snapshot taken inside it.",
)
@click.option("--allow-partial", is_flag=True, help="Compare incomplete snapshots too.")
@click.option("--reverse", is_flag=True, help="Allow OLD to be newer than NEW.")
@click.option(
    "--include-touched",
    is_flag=True,
    help="Also report records whose only change is dateLastModified.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "csv", "markdown"]),
    default="text",
    show_default=True,
    help="text: a summary for people; json: for scripts; csv: one row per changed field.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report to FILE instead of standard output.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=DEFAULT_LIMIT,
    show_default=True,
    metavar="N",
    help="Entries per section in the text and markdown reports; 0 for all of them "
    "(json and csv always hold everything).",
)
@click.option("--no-save", is_flag=True, help="Do not keep the report in the changes database.")
@click.option(
    "--fail-on-mass-change",
    type=click.FloatRange(min=0),
    metavar="PCT",
    help="Exit 3 when more than PCT percent of any entity was removed or marked tobedeleted.",
)
def diff_command(
    old: str | None,
    new: str | None,
    config_path: Path | None,
    archive: Path | None,
    estab: str | None,
    terms: tuple[str, ...],
    allow_partial: bool,
    reverse: bool,
    include_touched: bool,
    output_format: str,
    output: Path | None,
    limit: int,
    no_save: bool,
    fail_on_mass_change: float | None,
) -> None:
    """What changed between two snapshots of a school: OLD and NEW.

    With no arguments, the two latest complete snapshots. Each of OLD and NEW may be a snapshot
    file, latest or previous, a timestamp prefix (2026-09: the latest snapshot taken then) or an
    academic session's title ("Autumn 2026"); with only OLD, NEW is the latest. The report is
    saved in the archive's changes.db unless --no-save. Exit status: 0, changes or not; 1 when
    the snapshots cannot or should not be compared; 3 on a mass change with
    --fail-on-mass-change.
    """
    from .archive.checks import ADVICE
    from .archive.layout import ArchiveError, UnreadableSnapshot, changes_db_path
    from .diff.session import DiffOptions, run_and_render
    from .select import check_pair, select_pair

    def skipped(unreadable: UnreadableSnapshot) -> None:
        click.echo(
            f"Warning: skipped {unreadable.path}, which cannot be read as a snapshot: "
            f"{unreadable.reason}; {ADVICE}",
            err=True,
        )

    archive = archive_dir(archive, config_path)
    if output is not None and not output.parent.is_dir():
        raise click.ClickException(f"cannot write {output}: there is no directory {output.parent}")
    if output is not None:
        _refuse_output_into_archive(output, archive)
    specs = [spec for spec in (old, new) if spec] + list(terms)
    try:
        old_info, new_info = select_pair(
            archive, specs, estab=estab, allow_partial=allow_partial, on_unreadable=skipped
        )
        if output is not None:
            _refuse_output_into_archive(output, archive, (old_info.path, new_info.path))
        check_pair(old_info, new_info, allow_partial=allow_partial, reverse=reverse)
        options = DiffOptions(
            include_touched=include_touched,
            mass_change_pct=fail_on_mass_change,
            allow_partial=allow_partial,
            reverse=reverse,
        )
        changes_db = None if no_save else changes_db_path(archive)
        outcome = run_and_render(
            old_info, new_info, changes_db, output_format, output, options, examples=limit or None
        )
    except ArchiveError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        if output is None:
            raise
        raise click.ClickException(f"cannot write {output}: {exc.strerror or exc}") from exc
    if outcome.saved_to is not None:
        click.echo(f"Saved as run {outcome.run_id} in {outcome.saved_to}", err=True)
    if fail_on_mass_change is not None and outcome.mass_changes:
        flagged = ", ".join(f"{m.entity} {m.percent}%" for m in outcome.mass_changes)
        click.echo(f"Mass change: {flagged} removed or marked tobedeleted", err=True)
        raise SystemExit(3)


@click.command("demo")
@click.option(
    "--pupils", type=click.IntRange(min=1), default=1000, show_default=True, help="School size."
)
@click.option(
    "--terms",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Terms to advance between the two snapshots; 3 include a year rollover.",
)
@click.option(
    "--archive",
    type=click.Path(file_okay=False, path_type=Path),
    default="demo-archive",
    show_default=True,
    help="The demo's own archive (never $SNAPSHOTTER_ARCHIVE).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    metavar="N",
    help="Entries per section of the report it prints; 0 for all of them.",
)
@click.option(
    "--no-serve",
    "serve",
    flag_value=False,
    default=True,
    help="End once the report is printed, without serving the archive.",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8001,
    show_default=True,
    help="Port to serve the archive on, on 127.0.0.1 (another free one if it is in use).",
)
def demo_command(
    pupils: int, terms: int, archive: Path, limit: int, serve: bool, port: int
) -> None:
    """Run the whole job against the built-in simulated school, offline.

    Starts the simulated Xporter server on a free loopback port, snapshots the school, advances
    it, snapshots it again, diffs the two, saves the report and prints its summary. Then serves
    the archive as `snapshotter serve` does, naming the pages worth opening, until Ctrl-C.
    """
    from .archive.layout import ArchiveError
    from .demo import run_demo
    from .progress import ProgressDisplay

    try:
        # Progress per snapshot on stderr, as for fetch: a big school takes seconds each.
        result = run_demo(
            pupils=pupils,
            terms=terms,
            archive=archive,
            out=click.echo,
            progress=ProgressDisplay(),
            limit=limit,
        )
    except ArchiveError as exc:
        raise click.ClickException(str(exc)) from exc
    if serve:
        _serve_demo(result, port)


def _serve_demo(result: DemoResult, wanted_port: int) -> None:
    """Serve the demo's archive on loopback, printing the URL and the pages worth opening."""
    from .datasette.app import ServeError, serve
    from .demo import pages_worth_opening, port_to_serve_on

    host = "127.0.0.1"
    port = port_to_serve_on(wanted_port, host)
    if port != wanted_port:
        click.echo(f"Port {wanted_port} is in use: serving on port {port} instead (see --port).")
    archive = result.changes_db.parent
    pages = pages_worth_opening(result)

    def announce(url: str) -> None:
        click.echo("")
        click.echo(f"Serving the demo archive {archive} at {url} (Ctrl-C stops it). Open:")
        for what, path in pages:
            click.echo(f"  {what}: {url.rstrip('/')}{path}")

    try:
        serve(archive, host, port, announce=announce)
    except ServeError as exc:
        raise click.ClickException(str(exc)) from exc
