"""Where and how a digest is mailed: the `[mail]` table of the config file, or the options.

Standard library only, and no smtplib: the config is read by every command at start-up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TLS_MODES = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


class MailError(Exception):
    """The message was not sent; the text says why and what to check."""


def address_problem(address: str) -> str | None:
    """Why `address` cannot be a sender or recipient (None when it can): one `@`, no space or
    control character (a newline would forge a header)."""
    if any(char.isspace() or ord(char) < 32 or ord(char) == 127 for char in address.strip("<> ")):
        return f"{address!r} holds a space or a control character"
    local, at, domain = address.rpartition("<")[2].rstrip(">").partition("@")
    if not at or not local or not domain or "@" in domain:
        return f"{address!r} is not an email address"
    return None


@dataclass(frozen=True)
class MailSettings:
    host: str = "localhost"
    port: int | None = None
    tls: str = "starttls"
    username: str | None = None
    password_env: str | None = None
    password_file: Path | None = None
    sender: str | None = None
    ca_file: Path | None = None
    timeout: float = 30.0

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port or DEFAULT_PORTS[self.tls]}"

    def password(self) -> str | None:
        """The login password: from `password_file`, else `password_env`; None when neither."""
        if self.password_file is not None:
            try:
                return self.password_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise MailError(
                    f"cannot read the mail password file {self.password_file}: "
                    f"{exc.strerror or exc}"
                ) from None
        if self.password_env:
            value = os.environ.get(self.password_env)
            if not value:
                raise MailError(
                    f"the mail password variable {self.password_env} is not set: export it "
                    "before sending, or set `password_file`"
                )
            return value
        return None
