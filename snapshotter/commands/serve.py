"""`snapshotter serve` and `hash-password`: option parsing over `datasette.app.serve` and
`datasette.accounts`.

Exit statuses: 0 stopped by Ctrl-C; 1 the site could not start; 2 bad usage, a public --host
without a password included.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ..commands_archive import (
    ARCHIVE_HELP,
    _load_config,
    archive_dir,
    config_option,
    warn_if_readable_by_others,
)
from ..datasette.accounts import HASH_ENV, Account, AccountError, choose_accounts
from ..loopback import is_loopback
from ..safe_text import printable

EXIT_FAILED = 1
EXIT_USAGE = 2

HOW_TO_SET_A_PASSWORD = (
    "make a password hash (`snapshotter hash-password --file site.hash`) and pass "
    f"--password-hash-file site.hash, set ${HASH_ENV}, or name a password_hash_file in the "
    "config file's [serve] section"
)


def bind_refusal(host: str, password_required: bool) -> str | None:
    """Why the site must not listen on `host`, or None when it may: a loopback address always;
    any other only when every page needs a password."""
    if is_loopback(host) or password_required:
        return None
    return (
        f"refusing --host {printable(host)}: it would publish the archive, children's data, "
        f"beyond this machine with no password. To serve it further, {HOW_TO_SET_A_PASSWORD}. "
        "Or serve on 127.0.0.1 (the default) and reach it through an SSH tunnel."
    )


def read_accounts(
    user: str | None, hash_file: Path | None, config_path: Path | None
) -> list[Account]:
    """The accounts configured, each hash checked once now (so a typo fails at start, not at
    the first sign-in); a hash file others can read gets a warning."""
    config = _load_config(config_path)
    serve_config = config.serve if config is not None else None
    try:
        accounts = choose_accounts(
            user,
            hash_file,
            serve_config.password_hash_files if serve_config else (),
            serve_config.user if serve_config else None,
        )
        for account in accounts:
            account.read_hash()
            if account.file is not None:
                mode = account.file.stat().st_mode
                warn_if_readable_by_others("password hash file", account.file, mode)
    except AccountError as exc:
        raise click.UsageError(str(exc)) from None
    return accounts


@click.command("serve")
@click.option("--archive", type=click.Path(file_okay=False, path_type=Path), help=ARCHIVE_HELP)
@config_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Another than loopback (127.0.0.1, ::1, localhost) only with a "
    "password: the archive holds children's data.",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8001,
    show_default=True,
    help="Port to listen on.",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the site in the browser.")
@click.option(
    "--password-hash-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"File holding the password hash (`snapshotter hash-password`) [default: ${HASH_ENV}, "
    "else the config file's [serve] password_hash_file]. With one, every page needs a sign-in.",
)
@click.option(
    "--user",
    help="User name that signs in with that password [default: the config file's [serve] user, "
    "else admin].",
)
def serve_command(
    archive: Path | None,
    config_path: Path | None,
    host: str,
    port: int,
    open_browser: bool,
    password_hash_file: Path | None,
    user: str | None,
) -> None:
    """Browse the archive in Datasette: the snapshots, the change reports, canned queries.

    Read-only and locked down: no arbitrary SQL, no database downloads, no CSV of whole
    tables, robots.txt disallowing everything. With a password hash, every page needs a
    sign-in, and --host may then be a public address. Prints the URL; Ctrl-C stops it.
    """
    accounts = read_accounts(user, password_hash_file, config_path)
    refusal = bind_refusal(host, bool(accounts))
    if refusal is not None:
        click.echo(f"Error: {refusal}", err=True)
        sys.exit(EXIT_USAGE)
    directory = archive_dir(archive, config_path)
    if not directory.is_dir():
        raise click.UsageError(
            f"no archive at {directory}: fetch a snapshot first, or pass --archive"
        )
    # The record index (history, search) catches up before the site starts, saying so when slow.
    from ..archive.history import catch_up

    catch_up(directory, lambda line: click.echo(printable(line), err=True))
    # Datasette and uvicorn are imported only here, so other commands start without them.
    from ..datasette.app import ServeError, serve

    signing_in = f"; sign in as {', '.join(a.user for a in accounts)}" if accounts else ""
    try:
        serve(
            directory,
            host,
            port,
            open_browser=open_browser,
            accounts=accounts,
            announce=lambda url: click.echo(
                f"Serving the archive {directory} at {url} (Ctrl-C stops it){signing_in}"
            ),
        )
    except ServeError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_FAILED)


@click.command("hash-password")
@click.option(
    "--file",
    "output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the hash to this file, readable by its owner only, instead of printing it.",
)
def hash_password_command(output: Path | None) -> None:
    """Make a password hash for `snapshotter serve` (PBKDF2, as datasette-auth-passwords
    makes it). Asks for the password twice without showing it; it is never an argument."""
    from datasette_auth_passwords.utils import hash_password

    password = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    if not password.strip():
        raise click.UsageError("the password is empty")
    password_hash = hash_password(password)
    if output is None:
        click.echo(password_hash)
        return
    try:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(password_hash + "\n")
        os.chmod(output, 0o600)  # an existing file keeps its mode through O_CREAT
    except OSError as exc:
        raise click.UsageError(f"cannot write {output}: {exc.strerror or exc}") from None
    click.echo(f"The password hash is in {output}: serve with --password-hash-file {output}")
