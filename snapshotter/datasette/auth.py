"""The gate in front of every page when a password is configured (see `accounts`).

datasette-auth-passwords gives the login form (`/-/login`) and the signed `ds_actor` cookie; it
does not close anything. This does, before Datasette routes the request, so that every page is
closed the same way (the plugin's own, pages other plugins add, Datasette's tables, rows, JSON,
canned queries, `/-/metadata` and the like): someone not signed in is sent to the login form
(a page) or refused with a 403 (JSON, CSV, a POST). Only the login form, the static files it is
drawn with, robots.txt and the favicon stay open.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from datasette.plugins import pm
from datasette.utils import await_me_maybe
from datasette.utils.asgi import Request, Response

from .accounts import password_required

LOGIN_PATH = "/-/login"
# Open to anyone: the login form, the static files it is drawn with, robots.txt, the favicon.
OPEN_PATHS = frozenset({LOGIN_PATH, "/robots.txt", "/favicon.ico"})
OPEN_PREFIXES = ("/-/static/",)
SIGN_IN_FIRST = "Sign in first: this site needs a password (" + LOGIN_PATH + ")."


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def routed_path(scope: dict[str, Any]) -> str:
    """The path as Datasette routes it: the raw one, undecoded (so `%2F` cannot make a closed
    page look like an open one)."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else scope.get("path", "")
    return path.partition("?")[0]


def closed(datasette: Any) -> bool:
    """Whether this site needs a signed-in actor on every page."""
    return password_required(datasette.metadata("plugins"))


async def signed_in_actor(datasette: Any, scope: dict[str, Any], receive: Any) -> Any:
    """The actor of this request as Datasette finds it (the `actor_from_request` hooks: the
    login's signed cookie, and any other way a plugin signs people in), or None."""
    request = Request(scope, receive)
    for actor in pm.hook.actor_from_request(datasette=datasette, request=request):
        actor = await await_me_maybe(actor)
        if actor:
            return actor
    return None


def _wants_data(scope: dict[str, Any]) -> str | None:
    """`json` or another format's extension when the request is not for a page, else None."""
    path = routed_path(scope)
    query = parse_qs((scope.get("query_string") or b"").decode("latin-1"))
    if "json" in query.get("_format", []):
        return "json"
    last = path.rsplit("/", 1)[-1]
    # A dot in the last segment is a format: Datasette tilde-encodes dots in names.
    if "." in last:
        return last.rsplit(".", 1)[1].lower() or "?"
    accept = dict(scope.get("headers") or []).get(b"accept", b"").decode("latin-1")
    if "application/json" in accept and "text/html" not in accept:
        return "json"
    return None


def refusal(scope: dict[str, Any]) -> Response:
    """What someone not signed in gets: the login form for a page, else a 403."""
    wanted = _wants_data(scope)
    if wanted == "json":
        return Response.json({"ok": False, "error": SIGN_IN_FIRST, "status": 403}, status=403)
    if wanted is None and scope.get("method", "GET") in ("GET", "HEAD"):
        return Response.redirect(LOGIN_PATH)
    return Response.text(SIGN_IN_FIRST, status=403)


async def refused(datasette: Any, scope: dict[str, Any], receive: Any, send: Any) -> bool:
    """Answer a request that needs a signed-in actor and has none; True if it was answered."""
    if scope.get("type") != "http" or is_open(routed_path(scope)) or not closed(datasette):
        return False
    if await signed_in_actor(datasette, scope, receive) is not None:
        return False
    await refusal(scope).asgi_send(send)
    return True
