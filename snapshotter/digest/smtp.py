"""Sending a message by SMTP: STARTTLS (the default, port 587), implicit TLS (`ssl`, port 465),
or plain (`none`, to this machine's own relay only).

The login password comes from an environment variable or a file, never the command line (where
`ps` and shell history would show it). Every failure becomes a `MailError` saying what refused
what: the login, a recipient, the sender, the server that could not be reached.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from ..loopback import is_loopback
from .settings import DEFAULT_PORTS, TLS_MODES, MailError, MailSettings


def check_settings(settings: MailSettings) -> None:
    """Refuse what would send children's data unprotected across a network."""
    if settings.tls not in TLS_MODES:
        raise MailError(f"mail tls must be one of {', '.join(TLS_MODES)}, not {settings.tls!r}")
    if settings.tls == "none" and not is_loopback(settings.host):
        raise MailError(
            f"refusing to send to {settings.address} without TLS: the digest would cross the "
            'network in clear. Use tls = "starttls" or "ssl", or a relay on this machine.'
        )
    if settings.username and not (settings.password_env or settings.password_file):
        raise MailError(
            f"a mail login ({settings.username}) needs `password_env` or `password_file`"
        )


def _context(settings: MailSettings) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if settings.ca_file is not None:
        context.load_verify_locations(cafile=str(settings.ca_file))
    return context


def _connect(settings: MailSettings) -> smtplib.SMTP:
    port = settings.port or DEFAULT_PORTS[settings.tls]
    if settings.tls == "ssl":
        return smtplib.SMTP_SSL(
            settings.host, port, timeout=settings.timeout, context=_context(settings)
        )
    client = smtplib.SMTP(settings.host, port, timeout=settings.timeout)
    if settings.tls == "starttls":
        client.starttls(context=_context(settings))
    return client


def send(message: EmailMessage, settings: MailSettings, recipients: list[str]) -> None:
    """Send `message` to `recipients`, or raise `MailError` saying why not."""
    check_settings(settings)
    if not recipients:
        raise MailError("no recipient: give --to, or `to` for the school in the config file")
    if not settings.sender:
        raise MailError("no sender: give --from, or `from` in the config file's [mail]")
    password = settings.password()
    where = settings.address
    try:
        with _connect(settings) as client:
            if settings.username:
                client.login(settings.username, password or "")
            refused = client.send_message(message, from_addr=settings.sender, to_addrs=recipients)
    except smtplib.SMTPAuthenticationError as exc:
        raise MailError(
            f"the mail server {where} refused the login of {settings.username}: "
            f"{_reply(exc.smtp_code, exc.smtp_error)}; check the user name and the password"
        ) from None
    except smtplib.SMTPRecipientsRefused as exc:
        said = "; ".join(f"{who}: {_reply(*reply)}" for who, reply in exc.recipients.items())
        raise MailError(f"the mail server {where} rejected every recipient ({said})") from None
    except smtplib.SMTPSenderRefused as exc:
        raise MailError(
            f"the mail server {where} rejected the sender {exc.sender}: "
            f"{_reply(exc.smtp_code, exc.smtp_error)}; check `from`"
        ) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise MailError(f"the mail server {where} does not support what was asked: {exc}") from None
    except ssl.SSLError as exc:
        raise MailError(
            f"TLS with the mail server {where} failed ({exc.reason or exc}): check the tls mode "
            "(starttls on 587, ssl on 465) and the server's certificate"
        ) from None
    except smtplib.SMTPException as exc:
        raise MailError(f"the mail server {where} failed: {exc}") from None
    except TimeoutError:
        raise MailError(
            f"the mail server {where} did not answer in {settings.timeout:g} s"
        ) from None
    except OSError as exc:
        raise MailError(
            f"cannot reach the mail server {where}: {exc.strerror or exc}; check host and port"
        ) from None
    if refused:
        said = "; ".join(f"{who}: {_reply(*reply)}" for who, reply in refused.items())
        raise MailError(
            f"the mail server {where} rejected some recipients ({said}); the others got it"
        )


def _reply(code: int, text: bytes | str) -> str:
    said = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {said}".strip()
