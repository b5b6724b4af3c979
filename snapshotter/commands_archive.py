"""`snapshotter fetch`, `import` and `snapshots`: option parsing over fetch, importer, layout.

Exit statuses: 0 a complete snapshot; 1 the fetch or import failed and the archive is as it
was; 2 bad credentials or bad usage; 3 a snapshot was kept but is incomplete (--allow-partial).
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .api.defaults import (
    DEFAULT_CONCURRENCY,
    DEFAULT_PAGE_SIZE,
    DEFAULT_TIMEOUT_S,
    PRODUCTION_BASE_URL,
)
from .api.errors import ApiError, AuthError
from .archive.layout import ARCHIVE_ENV, ArchiveError, SnapshotInfo, default_archive, list_archive
from .archive.snapshot import SnapshotDataError
from .config import DEFAULT_CONFIG, Config, ConfigError, SchoolConfig, load_config
from .safe_text import printable

# The fetch (httpx, asyncio) and the importer are imported inside the commands that use them,
# so that every other command, and `--help`, starts without them.
if TYPE_CHECKING:
    from .fetch import FetchOutcome

SECRET_ENV = "SNAPSHOTTER_SECRET"
ARCHIVE_HELP = (
    f"Archive directory [default: ${ARCHIVE_ENV}, else the config file's archive, else ./archive]."
)
EXIT_FAILED = 1
EXIT_AUTH = 2
EXIT_INCOMPLETE = 3
# With --all, the most serious status of any school: a failure outranks a partial snapshot.
_SEVERITY = {0: 0, EXIT_INCOMPLETE: 1, EXIT_FAILED: 2, EXIT_AUTH: 3}


def _warn(message: str) -> None:
    """A line on stderr; `message` may quote the provider, so its control characters are shown
    escaped, never obeyed (an escape code cannot clear the terminal nor a newline forge a line)."""
    click.echo(printable(message), err=True)


def _fail(message: str, status: int) -> None:
    _warn(f"Error: {message}")
    sys.exit(status)


def _load_config(path: Path | None) -> Config | None:
    if path is None and not DEFAULT_CONFIG.is_file():
        return None
    try:
        return load_config(path or DEFAULT_CONFIG)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


def _archive(option: Path | None, config: Config | None) -> Path:
    if option is not None:
        return option
    if os.environ.get(ARCHIVE_ENV) or config is None or config.archive is None:
        return default_archive()
    return config.archive


def config_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--config FILE`, read by every command that takes `--archive` for its `archive`."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help=f"TOML config file [default: {DEFAULT_CONFIG} when present].",
    )(command)


def archive_dir(option: Path | None, config_path: Path | None) -> Path:
    """The archive: `--archive`, else $SNAPSHOTTER_ARCHIVE, else the config file's `archive`,
    else ./archive (the same for every command, so `snapshots` and `diff` find what
    `fetch --all` wrote)."""
    return _archive(option, _load_config(config_path))


def warn_if_readable_by_others(what: str, path: Path, mode: int) -> None:
    """As ssh does for a private key: say so, and go on."""
    if mode & 0o077:
        click.echo(
            f"Warning: {what} {path} is readable by others "
            f"(permissions {stat.S_IMODE(mode):04o}); make it private: chmod 600 {path}",
            err=True,
        )


def _read_secret(
    secret_file: Path | None, secret_env: str, *, school: SchoolConfig | None = None
) -> str:
    """From --secret-file, else the environment, else a hidden prompt on a terminal. A school
    of the config file is looked up in its own `secret_env` first."""
    if secret_file is not None:
        try:
            secret = secret_file.read_text(encoding="utf-8").strip()
            mode = secret_file.stat().st_mode
        except OSError as exc:
            raise click.UsageError(f"cannot read --secret-file: {exc.strerror}") from None
        warn_if_readable_by_others("--secret-file", secret_file, mode)
        if not secret:
            raise click.UsageError(f"--secret-file {secret_file} is empty")
        return secret
    names = [school.secret_env, secret_env] if school is not None else [secret_env]
    for name in dict.fromkeys(names):
        secret = os.environ.get(name, "")
        if secret:
            return secret
    if sys.stdin.isatty():
        return click.prompt("Shared secret", hide_input=True, err=True)
    if school is not None:
        raise click.UsageError(
            f"no shared secret for {school.name}: set {school.secret_env} (its `secret_env` "
            "in the config file), pass --secret-file, or run on a terminal to be asked for it "
            "(it is never taken as a plain argument)"
        )
    raise click.UsageError(
        f"no shared secret: set {secret_env}, pass --secret-file, or run on a terminal to be "
        "asked for it (it is never taken as a plain argument)"
    )


def _index_published(archive: Path, snapshot_path: Path) -> None:
    """Add a new snapshot to the record index; a failure only warns (see `index_published`)."""
    from .archive.history import index_published

    warning = index_published(archive, snapshot_path)
    if warning is not None:
        _warn(warning)


def _report(outcome: FetchOutcome) -> None:
    if outcome.path is None:
        _fail(
            f"{outcome.estab}: the snapshot is not complete, so nothing was kept: "
            f"{outcome.reason} (try again later; --allow-partial keeps it marked incomplete)",
            EXIT_FAILED,
        )
    if not outcome.complete:
        _warn(f"Warning: snapshot kept but INCOMPLETE: {outcome.reason}")
        click.echo(str(outcome.path))
        sys.exit(EXIT_INCOMPLETE)
    click.echo(str(outcome.path))


@click.command("fetch")
@click.option(
    "--base-url", help=f"The provider's OneRoster school API [default: {PRODUCTION_BASE_URL}]"
)
@click.option("--rp", help="Relying-party identifier.")
@click.option("--estab", help="Establishment (school) identifier.")
@click.option("--school", "school_name", help="Fetch the school of this name from the config file.")
@click.option(
    "--all", "fetch_all", is_flag=True, help="Fetch every school in the config file, concurrently."
)
@config_option
@click.option(
    "--archive",
    type=click.Path(file_okay=False, path_type=Path),
    envvar=ARCHIVE_ENV,
    help=ARCHIVE_HELP,
)
@click.option(
    "--secret-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"File holding the shared secret [default: ${SECRET_ENV}, else a prompt].",
)
@click.option(
    "--drop-field",
    "drop_fields",
    multiple=True,
    metavar="COLLECTION.FIELD",
    help="Never store this field, e.g. users.sms or users.metadata.sen (repeatable).",
)
@click.option(
    "--allow-partial",
    is_flag=True,
    help="Keep what was fetched, marked incomplete, when an endpoint fails.",
)
@click.option(
    "--allow-insecure-http",
    is_flag=True,
    help="Allow a plain http:// --base-url to another machine (secret and tokens in clear).",
)
@click.option(
    "--page-size",
    type=click.IntRange(min=2),
    default=DEFAULT_PAGE_SIZE,
    show_default=True,
    help="Records asked for per page.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=DEFAULT_CONCURRENCY,
    show_default=True,
    help="Connections per school.",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0.1),
    default=DEFAULT_TIMEOUT_S,
    show_default=True,
    help="Seconds to wait for an answer before retrying.",
)
@click.option("--quiet", "-q", is_flag=True, help="Print only the snapshot's path.")
def fetch_command(
    base_url: str | None,
    rp: str | None,
    estab: str | None,
    school_name: str | None,
    fetch_all: bool,
    config_path: Path | None,
    archive: Path | None,
    secret_file: Path | None,
    drop_fields: tuple[str, ...],
    allow_partial: bool,
    allow_insecure_http: bool,
    page_size: int,
    concurrency: int,
    timeout_s: float,
    quiet: bool,
) -> None:
    """Take a full snapshot of a school's OneRoster data into the archive.

    The last line on stdout is the new snapshot's path. The shared secret comes from
    $SNAPSHOTTER_SECRET, --secret-file or a prompt, never from the command line.
    """
    from .fetch import (
        FetchSettings,
        InsecureTransportError,
        SchoolTarget,
        fetch_schools,
        fetch_snapshot,
        refuse_plain_http,
    )
    from .interrupts import FetchInterrupts
    from .progress import ProgressDisplay

    config = _load_config(config_path)
    archive_dir = _archive(archive, config)
    settings = FetchSettings(page_size=page_size, concurrency=concurrency, timeout_s=timeout_s)
    progress = None if quiet else ProgressDisplay()
    if fetch_all:
        if config is None or not config.schools:
            raise click.UsageError("--all needs a config file with schools (see --config)")
        targets = [
            SchoolTarget(
                name=s.name,
                rp=s.rp,
                estab=s.estab,
                secret=s.secret(),
                base_url=base_url or s.base_url,
                drop_fields=tuple(dict.fromkeys(s.drop_fields + drop_fields)),
                missing_secret_reason=f"{s.name}: ${s.secret_env} is not set",
                allow_insecure_http=allow_insecure_http or s.allow_insecure_http,
            )
            for s in config.schools
        ]
        for target in targets:  # a usage error: no school is fetched, no request sent
            try:
                refuse_plain_http(target.base_url, target.allow_insecure_http)
            except InsecureTransportError as exc:
                raise click.UsageError(f"{target.name}: {exc}") from None
        results = fetch_schools(
            targets, archive_dir, allow_partial=allow_partial, settings=settings, progress=progress
        )
        if progress:
            progress.close()
        worst = 0
        for result in results:
            outcome, name = result.outcome, result.target.name
            if result.error is not None:
                _warn(f"Error: {name}: {result.error}")
                status = EXIT_AUTH if isinstance(result.error, AuthError) else EXIT_FAILED
                worst = max(worst, status, key=_SEVERITY.get)
            elif outcome is not None and outcome.path is None:
                _warn(f"Error: {name}: not complete, nothing kept: {outcome.reason}")
                worst = max(worst, EXIT_FAILED, key=_SEVERITY.get)
            elif outcome is not None:
                if not outcome.complete:
                    _warn(f"Warning: {name}: kept INCOMPLETE: {outcome.reason}")
                    worst = max(worst, EXIT_INCOMPLETE, key=_SEVERITY.get)
                click.echo(str(outcome.path))
                _index_published(archive_dir, outcome.path)
        sys.exit(worst)

    school: SchoolConfig | None = None
    insecure_http_allowed = allow_insecure_http or bool(config and config.allow_insecure_http)
    if school_name is not None:
        if config is None:
            raise click.UsageError("--school needs a config file (see --config)")
        try:
            school = config.school(school_name)
        except ConfigError as exc:
            raise click.UsageError(str(exc)) from None
        rp, estab = rp or school.rp, estab or school.estab
        base_url = base_url or school.base_url
        drop_fields = tuple(dict.fromkeys(school.drop_fields + drop_fields))
        insecure_http_allowed = allow_insecure_http or school.allow_insecure_http
        school_name = school.name
    if not rp or not estab:
        raise click.UsageError("give --rp and --estab (or --school NAME, or --all)")
    base_url = base_url or (config.base_url if config else PRODUCTION_BASE_URL)
    try:  # before the secret is asked for, and before any request
        refuse_plain_http(base_url, insecure_http_allowed)
    except InsecureTransportError as exc:
        raise click.UsageError(str(exc)) from None
    secret = _read_secret(secret_file, SECRET_ENV, school=school)
    # Ctrl-C: before the snapshot is published it stops the fetch and leaves nothing; once it
    # is published it waits until the path is printed (exit 0), so status and archive agree.
    with FetchInterrupts() as interrupts:
        try:
            outcome = fetch_snapshot(
                base_url,
                rp,
                estab,
                secret,
                archive_dir,
                school_name=school_name,
                drop_fields=drop_fields,
                allow_partial=allow_partial,
                settings=settings,
                progress=progress,
                interrupts=interrupts,
                allow_insecure_http=insecure_http_allowed,
            )
        except AuthError as exc:
            _fail(str(exc), EXIT_AUTH)
        except (ApiError, SnapshotDataError, ArchiveError) as exc:
            _fail(f"{exc}. Nothing was added to the archive.", EXIT_FAILED)
        except OSError as exc:
            _fail(f"cannot write to the archive {archive_dir}: {exc}", EXIT_FAILED)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        finally:
            if progress:
                progress.close()
        if outcome.path is not None:
            _index_published(archive_dir, outcome.path)
        _report(outcome)


@click.command("import")
@click.argument("source_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--estab", required=True, help="Establishment identifier the snapshot is filed under."
)
@click.option("--school-name", help="The school's name, for the snapshot's metadata.")
@config_option
@click.option(
    "--archive",
    type=click.Path(file_okay=False, path_type=Path),
    envvar=ARCHIVE_ENV,
    help=ARCHIVE_HELP,
)
@click.option(
    "--drop-field",
    "drop_fields",
    multiple=True,
    metavar="COLLECTION.FIELD",
    help="Never store this field, e.g. users.sms or users.metadata.sen (repeatable).",
)
@click.option(
    "--allow-partial",
    is_flag=True,
    help="Import even when some collections have no file (marked incomplete).",
)
def import_command(
    source_dir: Path,
    estab: str,
    school_name: str | None,
    config_path: Path | None,
    archive: Path | None,
    drop_fields: tuple[str, ...],
    allow_partial: bool,
) -> None:
    """Build a snapshot from saved API responses in SOURCE_DIR.

    One file per collection: <collection>.json (the API envelope) or <collection>.ndjson (one
    record a line). The last line on stdout is the new snapshot's path.
    """
    from .importer import ImportSourceError, import_snapshot

    try:
        path = import_snapshot(
            source_dir,
            estab,
            archive_dir(archive, config_path),
            school_name=school_name,
            drop_fields=drop_fields,
            allow_partial=allow_partial,
        )
    except (ImportSourceError, ArchiveError) as exc:
        _fail(f"{exc}. Nothing was added to the archive.", EXIT_FAILED)
    except OSError as exc:
        _fail(f"cannot import: {exc}", EXIT_FAILED)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    _index_published(archive_dir(archive, config_path), path)
    click.echo(str(path))


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


@click.command("snapshots")
@config_option
@click.option(
    "--archive",
    type=click.Path(file_okay=False, path_type=Path),
    envvar=ARCHIVE_ENV,
    help=ARCHIVE_HELP,
)
@click.option("--estab", help="Only this school.")
@click.option("--json", "as_json", is_flag=True, help="A JSON list instead of a table.")
def snapshots_command(
    config_path: Path | None, archive: Path | None, estab: str | None, as_json: bool
) -> None:
    """List the snapshots in the archive, oldest first."""
    directory = archive_dir(archive, config_path)
    if not directory.is_dir():
        _fail(
            f"there is no archive at {directory}: no such directory. Check --archive, "
            f"${ARCHIVE_ENV} or the config file's `archive`",
            EXIT_FAILED,
        )
    try:
        listing = list_archive(directory, estab)
    except ArchiveError as exc:  # an --estab with nothing to name files by
        raise click.UsageError(str(exc)) from None
    # Files that cannot be read are listed in their place and said so on stderr, never skipped:
    # the newest snapshot vanishing from the list would hide a failing fetch or a full disk.
    for unreadable in listing.unreadable:
        click.echo(f"Warning: {unreadable.message}", err=True)
    entries = listing.entries()
    if as_json:
        fields = (
            "path",
            "estab",
            "school_name",
            "taken_at",
            "finished_at",
            "complete",
            "stable",
            "incomplete_reason",
            "record_counts",
            "size_bytes",
            "content_hash",
            "source",
        )
        listed = [
            {f: info.as_json()[f] for f in fields}
            | {"unreadable": None if isinstance(info, SnapshotInfo) else info.reason}
            for info in entries
        ]
        click.echo(json.dumps(listed, indent=2))
        return
    if not entries:
        click.echo("No snapshots.", err=True)
        return
    for info in entries:
        if not isinstance(info, SnapshotInfo):
            click.echo(f"{info.estab}  {info.taken_at}  UNREADABLE: {info.reason}\n  {info.path}")
            continue
        state = "complete" if info.complete else "INCOMPLETE"
        if info.complete and not info.stable:
            state += ", unstable"
        counts = " ".join(f"{name}={count}" for name, count in info.record_counts.items())
        school = info.school_name or info.estab
        click.echo(
            f"{school}  {info.taken_at}  {state}  {_human_size(info.size_bytes)}  {counts}\n"
            f"  {info.path}"
        )
