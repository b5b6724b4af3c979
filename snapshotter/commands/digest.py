"""`snapshotter digest`: a saved change report as an email, sent, written to a file, or shown.

Exit statuses: 0 sent (or written, or shown); 1 not sent (the mail server refused or could not
be reached: the report stays in the archive, so the same command sends it again); 2 bad usage
(no such run, several schools and no --estab, a bad setting).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import click

from ..archive.layout import CHANGES_DB
from ..commands_archive import ARCHIVE_HELP, _archive, _load_config, config_option
from ..config import DETAILS, SchoolConfig
from ..digest.content import DEFAULT_MAX_PER_SECTION
from ..digest.settings import TLS_MODES, MailError, MailSettings, address_problem
from ..safe_text import printable

EXIT_NOT_SENT = 1
EXIT_USAGE = 2


def _fail(message: str, status: int) -> None:
    click.echo(f"Error: {printable(message)}", err=True)
    sys.exit(status)


@click.command("digest")
@click.option("--archive", type=click.Path(file_okay=False, path_type=Path), help=ARCHIVE_HELP)
@config_option
@click.option("--estab", help="The school, when the archive holds several.")
@click.option("--school", "school_name", help="The school of this name in the config file.")
@click.option("--run", "run_id", type=int, help="A saved diff run's id [default: the latest].")
@click.option(
    "--detail",
    type=click.Choice(DETAILS),
    help="What the message may say of people: counts only; ids (sourcedIds, roles, year "
    "groups, class names; no name, email or identifier); names (opt-in) [default: the school's "
    "`detail` in the config file, else ids].",
)
@click.option(
    "--max-per-section",
    type=click.IntRange(min=0),
    default=DEFAULT_MAX_PER_SECTION,
    show_default=True,
    help='Lines per section before "and N more".',
)
@click.option(
    "--datasette-url",
    help="Base URL of `snapshotter serve` for the links [default: the school's `datasette_url`].",
)
@click.option("--to", "recipients", multiple=True, help="A recipient (repeat for more).")
@click.option("--from", "sender", help="The sender's address [default: the config's `from`].")
@click.option(
    "--eml",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the message to this .eml file instead of sending it.",
)
@click.option("--print", "show", is_flag=True, help="Print the text part instead of sending.")
@click.option("--smtp-host", help="Mail server [default: the config's [mail] host].")
@click.option("--smtp-port", type=click.IntRange(1, 65535), help="Mail server port.")
@click.option("--tls", type=click.Choice(TLS_MODES), help="TLS mode [default: starttls].")
@click.option("--smtp-user", help="Login name on the mail server.")
@click.option(
    "--smtp-password-env",
    metavar="VAR",
    help="Environment variable holding the login password (never the password itself).",
)
@click.option(
    "--smtp-password-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File holding the login password.",
)
def digest_command(
    archive: Path | None,
    config_path: Path | None,
    estab: str | None,
    school_name: str | None,
    run_id: int | None,
    detail: str | None,
    max_per_section: int,
    datasette_url: str | None,
    recipients: tuple[str, ...],
    sender: str | None,
    eml: Path | None,
    show: bool,
    smtp_host: str | None,
    smtp_port: int | None,
    tls: str | None,
    smtp_user: str | None,
    smtp_password_env: str | None,
    smtp_password_file: Path | None,
) -> None:
    """Mail a saved change report as a digest: a text and an HTML part.

    The subject gives the school and the people counts ("19 joiners, 18 leavers, 43 class
    moves, 12 identity changes (Autumn 2026 → Spring 2027)"); the body the provenance, any
    mass-change warning, the counts, then joiners, leavers, staff leavers and their classes,
    year-group changes, class moves, identity changes and structural changes, each capped.

    Sends to --to (or the school's `to` in the config file) through the config's [mail]
    server; --eml writes the message to a file; --print shows the text part. With no
    recipient and no --eml, the text part is printed.
    """
    from ..digest.content import Digest, DigestError, read_digest
    from ..digest.message import build_message

    for address in (*recipients, *([sender] if sender else [])):
        problem = address_problem(address)
        if problem is not None:
            raise click.BadParameter(problem, param_hint="--to/--from")
    if eml is not None and not eml.parent.is_dir():
        raise click.BadParameter(f"no directory {eml.parent} to write into", param_hint="--eml")
    config = _load_config(config_path)
    school: SchoolConfig | None = None
    if config is not None and school_name is not None:
        try:
            school = config.school(school_name)
        except Exception as exc:  # ConfigError: its message names the file and the schools
            raise click.UsageError(str(exc)) from None
        estab = estab or school.estab
    elif config is not None and estab is not None:
        school = config.school_of_estab(estab)
    directory = _archive(archive, config)
    chosen_detail = detail or (school.detail if school else "ids")
    url = datasette_url or (school.datasette_url if school else None)
    if url is not None and not url.startswith(("http://", "https://")):
        raise click.BadParameter(
            "must start with http:// or https://", param_hint="--datasette-url"
        )

    def read(detail_level: str, link_base: str | None) -> Digest:
        try:
            return read_digest(
                directory / CHANGES_DB,
                run_id=run_id,
                estab=estab,
                detail=detail_level,
                max_per_section=max_per_section,
                datasette_url=link_base,
            )
        except DigestError as exc:
            _fail(str(exc), EXIT_USAGE)
            raise  # unreachable: _fail exits

    digest = read(chosen_detail, url)
    if school is None and config is not None:
        # The run's school, known only now: its settings of the config file apply.
        school = config.school_of_estab(digest.estab)
        if school is not None and (detail is None or datasette_url is None):
            chosen_detail = detail or school.detail
            url = datasette_url or school.datasette_url
            digest = read(chosen_detail, url)
    to = list(recipients) or (list(school.to) if school else [])
    settings = _settings(config.mail if config else None, smtp_host, smtp_port, tls, smtp_user)
    settings = replace(
        settings,
        password_env=smtp_password_env or settings.password_env,
        password_file=smtp_password_file or settings.password_file,
        sender=sender or settings.sender,
    )
    message = build_message(digest, settings.sender, to)
    if eml is not None:
        from ..atomic import write_atomically

        write_atomically(eml, lambda handle: handle.write(message.as_string()))
        click.echo(f"Wrote the digest of change report {digest.run_id} to {eml}")
        return
    if show or not to:
        if not show:
            click.echo("Not sent: no recipient (--to, or `to` in the config file).", err=True)
        click.echo(printable_text(message))
        return
    from ..digest.smtp import send

    try:
        send(message, settings, to)
    except MailError as exc:
        _fail(
            f"the digest of change report {digest.run_id} was not sent: {exc}. The report "
            "stays in the archive: run the same command again to send it.",
            EXIT_NOT_SENT,
        )
    click.echo(
        f"Sent the digest of change report {digest.run_id} to {', '.join(to)} "
        f"({settings.address}): {printable(digest.subject)}"
    )


def printable_text(message: object) -> str:
    """The text part of a message built by `build_message`."""
    body = message.get_body(preferencelist=("plain",))  # type: ignore[attr-defined]
    return str(body.get_content()).rstrip("\n")


def _settings(
    configured: MailSettings | None,
    host: str | None,
    port: int | None,
    tls: str | None,
    user: str | None,
) -> MailSettings:
    base = configured or MailSettings()
    return replace(
        base,
        host=host or base.host,
        port=port or base.port,
        tls=tls or base.tls,
        username=user or base.username,
    )
