"""A digest as an email: a plain-text part and an HTML part, from the package's templates.

Every value a template prints goes through `printable` first (a provider's name with a newline
or an escape code cannot forge a line nor a header), and the HTML template is autoescaped. The
HTML part has inline styles only, no script, no image, no font or style sheet from another host:
mail clients strip the rest, and a remote asset would tell its host who opened the message.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from .. import __version__
from ..safe_text import printable
from .content import Digest, SnapshotSide

_DETAIL_WORDS = {
    "counts": "counts only",
    "ids": "sourcedIds, roles, year groups and class names; no person's name, email or identifier",
    "names": "people's names included (the operator opted in)",
}


def _finalize(value: Any) -> Any:
    return printable(value) if isinstance(value, str) else value


def _environment(html: bool) -> Environment:
    return Environment(
        loader=PackageLoader("snapshotter.digest", "templates"),
        autoescape=html,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


_TEXT = _environment(html=False)
_HTML = _environment(html=True)


def side_line(side: SnapshotSide) -> str:
    """`2027-01-05 06:00:00 UTC, complete, school year 2026/27, Spring 2027`."""
    parts = [side.taken, "complete" if side.complete else "INCOMPLETE"]
    if side.school_year:
        parts.append(f"school year {side.school_year}")
    if side.term:
        parts.append(side.term)
    return ", ".join(parts)


def footer(digest: Digest) -> str:
    return (
        f"Change report {digest.run_id} of estab {digest.estab}, sent by snapshotter "
        f"{__version__}. Detail: {_DETAIL_WORDS[digest.detail]}. Look a sourcedId up with "
        "`snapshotter serve` (the record's history) or `snapshotter diff --format csv`."
    )


def _context(digest: Digest) -> dict[str, Any]:
    people = digest.people
    return {
        "d": digest,
        "side": side_line,
        "footer": footer(digest),
        "people": [
            ("joiners", people["joiners"]["total"]),
            ("leavers", people["leavers"]["total"]),
            ("purged", people["purged"]["total"]),
            ("year-group changes", people["year_group_changes"]),
            ("class moves", people["class_moves"]),
            ("identity changes", people["identity_changes"]),
        ],
    }


def render_text(digest: Digest) -> str:
    return _TEXT.get_template("digest.txt").render(_context(digest))


def render_html(digest: Digest) -> str:
    return _HTML.get_template("digest.html").render(_context(digest))


def build_message(digest: Digest, sender: str | None, recipients: list[str]) -> EmailMessage:
    """The email: subject, both parts, and (when given) From and To."""
    message = EmailMessage()
    message["Subject"] = printable(digest.subject)
    if sender:
        message["From"] = sender
    if recipients:
        message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain="snapshotter.invalid")
    message.set_content(render_text(digest))
    message.add_alternative(render_html(digest), subtype="html")
    return message
