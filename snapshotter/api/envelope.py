"""Reading a collection answer: `{"<collection>": [records...]}`, possibly with warnings.

Shared by the live fetch and `snapshotter import`, so replayed responses are checked exactly as
live ones are.
"""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover
    orjson = None  # type: ignore[assignment]

from .errors import FetchError, parse_provider_statuses

# codeMinor values about the order of an answer only: beside a 200 they never mean records are
# missing, whatever severity the server gives them.
_ORDER_ONLY = frozenset({"invalid_sort_field"})


def loads(data: bytes | str) -> Any:
    """json.loads, through orjson when it can (raises json.JSONDecodeError either way)."""
    if orjson is not None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)


def decode_json(
    endpoint: str, text: str, *, offset: int | None = None, content_type: str = ""
) -> Any:
    """Parse a JSON body, telling an HTML page (a proxy's login or error page) from bad JSON."""
    text = text.removeprefix("\ufeff")  # a UTF-8 byte order mark, as some .NET stacks send
    html = FetchError(
        endpoint,
        "the provider answered with an HTML page instead of JSON",
        offset=offset,
        hint="a proxy, login or maintenance page is in the way; check the base URL, try later",
    )
    if text.lstrip()[:1] == "<":
        raise html
    try:
        # orjson first when present; the standard library then says what is wrong, or copes
        # (NaN, huge integers).
        return loads(text)
    except json.JSONDecodeError as exc:
        if "html" in content_type.lower():
            raise html from None  # JSON mislabelled as HTML was read above; this is a page
        raise FetchError(
            endpoint,
            f"the answer is not valid JSON ({exc.msg} at character {exc.pos})",
            offset=offset,
            hint="the provider sent a broken answer; try again later, and report it if it persists",
        ) from None


def records_from_envelope(
    collection: str, body: Any, *, offset: int | None = None
) -> tuple[list[Any], list[str]]:
    """The records of a collection answer and any warnings the server put beside them."""
    if not isinstance(body, dict) or not isinstance(body.get(collection), list):
        if isinstance(body, dict):
            keys = ", ".join(repr(k) for k in list(body)[:6]) or "none"
            found = f"a JSON object with keys {keys}"
        else:
            found = f"a JSON {type(body).__name__}"
        statuses = parse_provider_statuses(body)
        said = f"; the provider said: {statuses[0].summary()}" if statuses else ""
        raise FetchError(
            collection,
            f'expected {{"{collection}": [...]}} but got {found}{said}',
            offset=offset,
            hint="the provider's answer has the wrong shape; check the base URL points at a "
            "OneRoster v1.1 school endpoint",
        )
    records = body[collection]
    statuses = parse_provider_statuses(body)
    # A 200 that also says the request failed may hold some records or none: neither can be
    # trusted as the collection (an empty page would end it). Only a complaint about the sort
    # order is harmless: the chain checks the order anyway.
    failures = [s for s in statuses if s.failed and s.code_minor not in _ORDER_ONLY]
    if failures:
        raise FetchError(
            collection,
            f"the provider answered 200 with {len(records)} records but said the request "
            f"failed: {failures[0].summary()}",
            offset=offset,
            hint="an answer the provider calls a failure is not archived; try again later, and "
            "report it to the provider if it persists",
        )
    return records, [status.summary() for status in statuses]
