"""The `snapshotter` command: thin click glue over the modules that do the work."""

from __future__ import annotations

import click

from . import __version__
from .commands.check import check_command
from .commands.digest import digest_command
from .commands.prune import prune_command
from .commands.run import run_command
from .commands.serve import hash_password_command, serve_command
from .commands_archive import fetch_command, import_command, snapshots_command
from .commands_reading import demo_command, diff_command
from .safe_text import printable
from .sim.cli import sim


class SafeErrorsGroup(click.Group):
    """Every command's error message is printed with its control characters escaped: the one
    place a click error, which may quote a provider (a partial snapshot's reason, a name), is
    shown."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except click.ClickException as error:
            error.message = printable(error.message)
            raise


@click.group(cls=SafeErrorsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="snapshotter")
def cli() -> None:
    """Keep an offline, queryable archive of a school's OneRoster rostering data.

    Fetch full snapshots from Groupcall Xporter's OneRoster v1.1 API into timestamped SQLite
    files, work out what changed between two snapshots, and keep those change reports.
    """


cli.add_command(sim)

# The archive side: fetch, import, snapshots.
cli.add_command(fetch_command)
cli.add_command(import_command)
cli.add_command(snapshots_command)
# The reading side: diff, demo.
cli.add_command(diff_command)
cli.add_command(demo_command)
cli.add_command(serve_command)
cli.add_command(digest_command)
cli.add_command(run_command)
cli.add_command(prune_command)
cli.add_command(hash_password_command)
cli.add_command(check_command)
