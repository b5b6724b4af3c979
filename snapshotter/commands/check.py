"""`snapshotter check`: option parsing over `quality` (the rules, their store, their forms).

Exit statuses: 0 whatever was found; 4 with --fail-on when a finding that serious exists;
1 when the snapshot cannot be found or read; 2 bad usage.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..commands_archive import ARCHIVE_HELP, archive_dir, config_option

EXIT_FINDINGS = 4
DEFAULT_LIMIT = 20


@click.command("check")
@click.argument("snapshot", required=False)
@config_option
@click.option("--archive", type=click.Path(file_okay=False, path_type=Path), help=ARCHIVE_HELP)
@click.option("--estab", help="The school, when the archive holds several.")
@click.option("--allow-partial", is_flag=True, help="Check an incomplete snapshot too.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "csv"]),
    default="text",
    show_default=True,
    help="text: for people, counts first; json: for scripts; csv: one row per finding.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the findings to FILE instead of standard output.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=DEFAULT_LIMIT,
    show_default=True,
    metavar="N",
    help="Findings shown per rule in the text form; 0 for all of them.",
)
@click.option(
    "--fail-on",
    type=click.Choice(["error", "warning"]),
    help="Exit 4 when a finding of this severity or worse exists.",
)
@click.option("--no-save", is_flag=True, help="Do not keep the findings in the changes database.")
def check_command(
    snapshot: str | None,
    config_path: Path | None,
    archive: Path | None,
    estab: str | None,
    allow_partial: bool,
    output_format: str,
    output: Path | None,
    limit: int,
    fail_on: str | None,
    no_save: bool,
) -> None:
    """What is wrong in a snapshot's data: broken references, pupils without classes,
    duplicate emails or UPNs, wrong check letters, year groups, dates.

    SNAPSHOT is named as for diff: a snapshot file, latest (the default) or previous, a
    timestamp prefix or an academic session's title. Findings are kept in the archive's
    changes.db (every fetch and import keeps its own). Exit status: 0 whatever is found; 4 with
    --fail-on when a finding of that severity or worse exists; 1 when the snapshot cannot be
    read.
    """
    import sys

    from ..archive.checks import ADVICE
    from ..archive.layout import ArchiveError, UnreadableSnapshot, changes_db_path
    from ..atomic import write_atomically
    from ..commands_reading import _refuse_output_into_archive
    from ..quality.render import render
    from ..quality.rules import at_least
    from ..quality.store import kept_check
    from ..select import select_one

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
    try:
        info = select_one(
            archive, snapshot, estab=estab, allow_partial=allow_partial, on_unreadable=skipped
        )
        if output is not None:
            _refuse_output_into_archive(output, archive, (info.path,))
        result = kept_check(None if no_save else changes_db_path(archive), info)
        if output is None:
            render(result, output_format, sys.stdout, limit=limit or None)
        else:
            write_atomically(
                output, lambda handle: render(result, output_format, handle, limit=limit or None)
            )
    except ArchiveError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        if output is None:
            raise
        raise click.ClickException(f"cannot write {output}: {exc.strerror or exc}") from exc
    if fail_on is not None:
        serious = at_least(fail_on)
        if any(finding.severity in serious for finding in result.findings):
            raise SystemExit(EXIT_FINDINGS)
