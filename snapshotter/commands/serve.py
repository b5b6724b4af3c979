"""`snapshotter serve`: option parsing over `datasette.app.serve`.

Exit statuses: 0 stopped by Ctrl-C; 1 the site could not start; 2 bad usage, a public --host
included (refused until password authentication exists).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..commands_archive import ARCHIVE_HELP, archive_dir, config_option
from ..safe_text import printable

EXIT_FAILED = 1
EXIT_USAGE = 2


@click.command("serve")
@click.option("--archive", type=click.Path(file_okay=False, path_type=Path), help=ARCHIVE_HELP)
@config_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Only a loopback address (127.0.0.1, ::1, localhost): the "
    "archive holds children's data, and password sign-in is not available yet.",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8001,
    show_default=True,
    help="Port to listen on.",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the site in the browser.")
def serve_command(
    archive: Path | None, config_path: Path | None, host: str, port: int, open_browser: bool
) -> None:
    """Browse the archive in Datasette: the snapshots, the change reports, canned queries.

    Read-only and locked down: no arbitrary SQL, no database downloads, no CSV of whole
    tables, robots.txt disallowing everything. Prints the URL; Ctrl-C stops it.
    """
    # Datasette and uvicorn are imported only here, so other commands start without them.
    from ..datasette.app import ServeError, serve
    from ..loopback import is_loopback

    if not is_loopback(host):
        click.echo(
            f"Error: refusing --host {printable(host)}: it would publish the archive, children's "
            "data, beyond this machine, and password sign-in is not available yet. Serve on "
            "127.0.0.1 (the default) and reach it through an SSH tunnel instead.",
            err=True,
        )
        sys.exit(EXIT_USAGE)
    directory = archive_dir(archive, config_path)
    if not directory.is_dir():
        raise click.UsageError(
            f"no archive at {directory}: fetch a snapshot first, or pass --archive"
        )
    # The record index (history, search) catches up before the site starts, saying so when slow.
    from ..archive.history import catch_up

    catch_up(directory, lambda line: click.echo(printable(line), err=True))
    try:
        serve(
            directory,
            host,
            port,
            open_browser=open_browser,
            announce=lambda url: click.echo(
                f"Serving the archive {directory} at {url} (Ctrl-C stops it)"
            ),
        )
    except ServeError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_FAILED)
