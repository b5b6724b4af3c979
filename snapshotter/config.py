"""The config file: several schools for `snapshotter fetch --all` (TOML).

    archive = "/srv/rostering/archive"          # optional; else SNAPSHOTTER_ARCHIVE or ./archive
    base_url = "https://..."                    # optional; Xporter's production URL by default
    drop_fields = ["users.sms"]                 # optional; for every school
    allow_insecure_http = false                 # optional; plain http:// off this machine
    stale_after = 3                             # optional; days before `run` alerts a stale school

    [mail]                                      # optional: for `digest` and `run`
    host = "smtp.example.org"
    port = 587                                  # optional; 587 starttls, 465 ssl, 25 none
    tls = "starttls"                            # starttls (default), ssl, or none (loopback only)
    username = "archive@example.org"            # optional login
    password_env = "SMTP_PASSWORD"              # or password_file = "/etc/snapshotter/smtp"
    from = "Rostering archive <archive@example.org>"
    alert_to = ["it@example.org"]               # who hears of a failed or stale school

    [[school]]
    name = "Hillside Academy"
    rp = "partner-rp"
    estab = "3281110"
    secret_env = "HILLSIDE_SECRET"              # the environment variable holding its secret
    to = ["data.manager@hillside.example"]      # optional: who gets its digest
    detail = "ids"                              # optional: counts, ids (default) or names
    datasette_url = "https://archive.example"   # optional: digest links into the pages
    # base_url, drop_fields, allow_insecure_http: optional, per school

    [serve]                                     # optional: password sign-in for `serve`
    user = "admin"                              # optional; `admin` by default
    password_hash_file = "/etc/snapshotter/admin.hash"
    [serve.users]                               # optional: more users, each with a hash file
    auditor = "/etc/snapshotter/auditor.hash"

Secrets never go in the file: only the name of the variable (or the file) that holds each one,
or the file that holds a password hash.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .api.defaults import PRODUCTION_BASE_URL
from .archive.snapshot import parse_drop_fields
from .digest.settings import TLS_MODES, MailSettings, address_problem

DEFAULT_CONFIG = Path("snapshotter.toml")


class ConfigError(Exception):
    """The config file is missing something or holds something it must not."""


@dataclass(frozen=True)
class SchoolConfig:
    name: str
    rp: str
    estab: str
    secret_env: str
    base_url: str = PRODUCTION_BASE_URL
    drop_fields: tuple[str, ...] = ()
    allow_insecure_http: bool = False
    to: tuple[str, ...] = ()
    detail: str = "ids"
    datasette_url: str | None = None

    def secret(self, environ: Mapping[str, str] | None = None) -> str | None:
        value = (os.environ if environ is None else environ).get(self.secret_env)
        return value if value else None


@dataclass(frozen=True)
class ServeConfig:
    """Who may sign in to `snapshotter serve`: (user name, password hash file) pairs."""

    user: str | None = None
    password_hash_files: tuple[tuple[str, Path], ...] = ()


@dataclass(frozen=True)
class Config:
    path: Path
    archive: Path | None
    base_url: str
    schools: tuple[SchoolConfig, ...]
    allow_insecure_http: bool = False
    mail: MailSettings | None = None
    alert_to: tuple[str, ...] = ()
    stale_after_days: int = 3
    serve: ServeConfig = ServeConfig()

    def school_of_estab(self, estab: str) -> SchoolConfig | None:
        return next((school for school in self.schools if school.estab == estab), None)

    def school(self, name: str) -> SchoolConfig:
        for school in self.schools:
            if name in (school.name, school.estab):
                return school
        known = ", ".join(s.name for s in self.schools) or "none"
        raise ConfigError(f"{self.path}: no school named {name!r} (schools: {known})")


def _text(table: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
    value = table.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: `{key}` must be a non-empty string")
    return value.strip()


def _drop_fields(table: Mapping[str, Any], where: str) -> tuple[str, ...]:
    value = table.get("drop_fields", [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: `drop_fields` must be a list of COLLECTION.FIELD strings")
    try:
        parse_drop_fields(value)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return tuple(value)


def _flag(table: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: `{key}` must be true or false")
    return value


_SECRET_KEYS = {"secret", "shared_secret", "password", "token"}
DETAILS = ("counts", "ids", "names")


def _addresses(table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: `{key}` must be a list of email addresses")
    for address in value:
        problem = address_problem(address)
        if problem is not None:
            raise ConfigError(f"{where}: `{key}`: {problem}")
    return tuple(v.strip() for v in value)


def _url(table: Mapping[str, Any], key: str, where: str) -> str | None:
    value = _text(table, key, where, required=False)
    if value is not None and not value.startswith(("http://", "https://")):
        raise ConfigError(f"{where}: `{key}` must start with http:// or https://")
    return value


def _sender(table: Mapping[str, Any], at: str) -> str | None:
    sender = _text(table, "from", at, required=False)
    problem = address_problem(sender) if sender else None
    if problem is not None:
        raise ConfigError(f"{at}: `from`: {problem}")
    return sender


def _mail(table: Any, path: Path) -> MailSettings:
    at = f"{path}, [mail]"
    if not isinstance(table, Mapping):
        raise ConfigError(f"{at}: expected a table")
    if _SECRET_KEYS & set(table):
        raise ConfigError(f"{at}: the password does not belong in the file; name a `password_env`")
    port = table.get("port")
    if port is not None and (not isinstance(port, int) or not 0 < port < 65536):
        raise ConfigError(f"{at}: `port` must be a number from 1 to 65535")
    tls = _text(table, "tls", at, required=False) or "starttls"
    if tls not in TLS_MODES:
        raise ConfigError(f"{at}: `tls` must be one of {', '.join(TLS_MODES)}")
    password_file = _text(table, "password_file", at, required=False)
    ca_file = _text(table, "ca_file", at, required=False)
    return MailSettings(
        host=_text(table, "host", at) or "",
        port=port,
        tls=tls,
        username=_text(table, "username", at, required=False),
        password_env=_text(table, "password_env", at, required=False),
        password_file=_relative_to(path, password_file) if password_file else None,
        sender=_sender(table, at),
        ca_file=_relative_to(path, ca_file) if ca_file else None,
    )


def _relative_to(path: Path, text: str) -> Path:
    """A path of the file, relative to the file, not to wherever cron runs."""
    named = Path(text).expanduser()
    return named if named.is_absolute() else path.parent / named


def _serve_config(document: Mapping[str, Any], path: Path) -> ServeConfig:
    table = document.get("serve", {})
    where = f"{path}, [serve]"
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: expected a table")
    if (_SECRET_KEYS | {"password_hash"}) & set(table):
        raise ConfigError(
            f"{where}: a password or its hash does not belong in the file; name a "
            "`password_hash_file` (make one with `snapshotter hash-password --file FILE`)"
        )
    user = _text(table, "user", where, required=False)
    files: dict[str, Path] = {}
    hash_file = _text(table, "password_hash_file", where, required=False)
    if hash_file is not None:
        files[user or "admin"] = _relative_to(path, hash_file)
    users = table.get("users", {})
    if not isinstance(users, Mapping):
        raise ConfigError(f"{where}: `users` is a table of user name = password hash file")
    for name, value in users.items():
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where}: user {name!r}: give the path of its password hash file")
        files.setdefault(name, _relative_to(path, value.strip()))
    return ServeConfig(user=user, password_hash_files=tuple(files.items()))


def parse_config(document: Mapping[str, Any], path: Path) -> Config:
    where = str(path)
    if _SECRET_KEYS & set(document):
        raise ConfigError(f"{where}: secrets do not belong in the file; name a `secret_env`")
    base_url = _text(document, "base_url", where, required=False) or PRODUCTION_BASE_URL
    archive_text = _text(document, "archive", where, required=False)
    shared_drops = _drop_fields(document, where)
    insecure_http = _flag(document, "allow_insecure_http", where, False)
    tables = document.get("school", [])
    if not isinstance(tables, list):
        raise ConfigError(f"{where}: schools are `[[school]]` tables")
    schools = []
    for index, table in enumerate(tables, start=1):
        at = f"{where}, school {index}"
        if not isinstance(table, Mapping):
            raise ConfigError(f"{at}: expected a table")
        if _SECRET_KEYS & set(table):
            raise ConfigError(f"{at}: secrets do not belong in the file; name a `secret_env`")
        name = _text(table, "name", at)
        assert name is not None
        at = f"{where}, school {name!r}"
        detail = _text(table, "detail", at, required=False) or "ids"
        if detail not in DETAILS:
            raise ConfigError(f"{at}: `detail` must be one of {', '.join(DETAILS)}")
        schools.append(
            SchoolConfig(
                name=name,
                rp=_text(table, "rp", at) or "",
                estab=_text(table, "estab", at) or "",
                secret_env=_text(table, "secret_env", at) or "",
                base_url=_text(table, "base_url", at, required=False) or base_url,
                drop_fields=tuple(dict.fromkeys(shared_drops + _drop_fields(table, at))),
                allow_insecure_http=_flag(table, "allow_insecure_http", at, insecure_http),
                to=_addresses(table, "to", at),
                detail=detail,
                datasette_url=_url(table, "datasette_url", at),
            )
        )
    names = [s.name for s in schools]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{where}: school names must be unique: {', '.join(duplicates)}")
    mail_table = document.get("mail")
    mail = _mail(mail_table, path) if mail_table is not None else None
    alert_to = _addresses(mail_table, "alert_to", f"{where}, [mail]") if mail_table else ()
    stale_after = document.get("stale_after", 3)
    if not isinstance(stale_after, int) or isinstance(stale_after, bool) or stale_after < 1:
        raise ConfigError(f"{where}: `stale_after` must be a whole number of days, 1 or more")
    archive = Path(archive_text).expanduser() if archive_text else None
    if archive is not None and not archive.is_absolute():
        archive = path.parent / archive  # relative to the file, not to wherever cron runs
    return Config(
        path=path,
        archive=archive,
        base_url=base_url,
        schools=tuple(schools),
        allow_insecure_http=insecure_http,
        mail=mail,
        alert_to=alert_to,
        stale_after_days=stale_after,
        serve=_serve_config(document, path),
    )


def load_config(path: Path) -> Config:
    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"no config file at {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    return parse_config(document, path)
