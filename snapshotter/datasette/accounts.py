"""Who may sign in to the site: user names, and where each one's password hash is kept.

A hash is PBKDF2 as datasette-auth-passwords makes it (`snapshotter hash-password`, or
`datasette hash-password`). It comes from the environment ($SNAPSHOTTER_PASSWORD_HASH), a file
(`--password-hash-file`) or the files the config file's `[serve]` section names; never from the
command line, where other users of the machine could read it in the process list.

The site is handed references, not hashes: datasette-auth-passwords' configuration holds
`{"$env": NAME}` or `{"$file": PATH}`, which Datasette resolves only when someone signs in, so
`/-/metadata` and every other page show where a hash is kept, never the hash. Standard library
only: the CLI decides whether to start before importing Datasette.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

HASH_ENV = "SNAPSHOTTER_PASSWORD_HASH"
DEFAULT_USER = "admin"
AUTH_PLUGIN = "datasette-auth-passwords"
# datasette-auth-passwords reads `<user>_password_hash` keys of its configuration.
HASH_KEY_SUFFIX = "_password_hash"
_HASH_SHAPE = re.compile(r"pbkdf2_sha256\$[0-9]{4,10}\$[^$\s]+\$[A-Za-z0-9+/]+=*")
_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MAKE_ONE = "make one with `snapshotter hash-password --file FILE`"


class AccountError(Exception):
    """A password hash cannot be used; the message says where it is and what to do, and never
    quotes what was found there."""


@dataclass(frozen=True)
class Account:
    """One user who may sign in, and where their password hash is kept."""

    user: str
    env: str | None = None
    file: Path | None = None

    @property
    def where(self) -> str:
        return f"${self.env}" if self.env else f"the password hash file {self.file}"

    def reference(self) -> dict[str, str]:
        """What datasette-auth-passwords' configuration holds for this user's hash."""
        if self.env:
            return {"$env": self.env}
        return {"$file": str(self.file)}

    def read_hash(self, environ: Mapping[str, str] | None = None) -> str:
        """The hash, checked to be one; AccountError if it is missing or malformed."""
        if self.env:
            text = (os.environ if environ is None else environ).get(self.env, "")
        else:
            assert self.file is not None
            try:
                text = self.file.read_text(encoding="utf-8")
            except OSError as exc:
                raise AccountError(f"cannot read {self.where}: {exc.strerror or exc}") from None
        text = text.strip()
        if not text:
            raise AccountError(f"{self.where} is empty: {MAKE_ONE}")
        if not _HASH_SHAPE.fullmatch(text):
            raise AccountError(
                f"{self.where} does not hold a password hash (pbkdf2_sha256$...): {MAKE_ONE}"
            )
        return text


def check_user_name(user: str) -> str:
    if not _USER_NAME.fullmatch(user) or HASH_KEY_SUFFIX in user:
        raise AccountError(
            f"user name {user!r}: use letters, digits, '.', '_', '@' and '-' (at most 64)"
        )
    return user


def choose_accounts(
    user: str | None,
    hash_file: Path | None,
    config_files: Iterable[tuple[str, Path]] = (),
    config_user: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[Account]:
    """Who may sign in: `user` (else the config file's `user`, else `admin`) with the hash of
    `--password-hash-file`, else of $SNAPSHOTTER_PASSWORD_HASH; and each user of the config
    file's `[serve]` section with their hash file (the option and the variable win for their
    user). Empty: no password configured."""
    environ = os.environ if environ is None else environ
    main_user = check_user_name(user or config_user or DEFAULT_USER)
    accounts: dict[str, Account] = {}
    if hash_file is not None:
        accounts[main_user] = Account(main_user, file=hash_file.expanduser().resolve())
    elif environ.get(HASH_ENV):
        accounts[main_user] = Account(main_user, env=HASH_ENV)
    for name, path in config_files:
        check_user_name(name)
        accounts.setdefault(name, Account(name, file=path.expanduser().resolve()))
    return list(accounts.values())


def auth_plugin_config(accounts: Iterable[Account]) -> dict[str, dict[str, str]]:
    """datasette-auth-passwords' configuration for these accounts: references, not hashes."""
    return {f"{a.user}{HASH_KEY_SUFFIX}": a.reference() for a in accounts}


def password_required(plugins: Mapping[str, object] | None) -> bool:
    """Whether a site's plugin configuration (`metadata["plugins"]`) names any password hash:
    then every page needs a signed-in actor. Judged by the keys, not by whether a hash can be
    read, so a variable unset after start closes the site rather than opening it."""
    config = (plugins or {}).get(AUTH_PLUGIN)
    return isinstance(config, Mapping) and any(str(key).endswith(HASH_KEY_SUFFIX) for key in config)
