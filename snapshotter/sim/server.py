"""The simulated Xporter OneRoster v1.1 server: a raw ASGI app over the synthetic school.

Everything in the provider's guide (token endpoint, bearer tokens, the six collections,
filter / sort / paging, the status codes) plus the switchable quirks of `quirks.py`, which are
read on every request so a test may change them while the server runs. `SimServer` runs it
under uvicorn in a background thread for tests; `snapshotter sim serve` runs it in the
foreground.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import dataclasses
import hmac
import json
import random
import secrets
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import uvicorn

from .. import __version__
from ..model import COLLECTIONS, ENTITY_BY_COLLECTION
from .filters import Filter, FilterError, check_path, parse_filter, sort_key
from .quirks import PageFault, Quirks
from .served import ServedCollection, Variant, term_data

API_PREFIX = "/api/ims/oneroster/v1p1/school"
CONTROL_PREFIX = "/_sim"
DEFAULT_CLIENTS: dict[str, str] = {"partner-rp|3281110": "super-secret"}
PRODUCT = "Xporter OneRoster (simulated)"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

_HTML_ERROR_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Service Unavailable</title></head>"
    b"<body><h1>Service Unavailable</h1><p>The service is temporarily unavailable. "
    b"Please try again later.</p></body></html>\n"
)
_STATUS_FAULTS = {"400": 400, "401": 401, "429": 429, "500": 500, "503": 503}


def ims_status(
    description: str, code_minor: str, severity: str = "error", code_major: str = "failure"
) -> dict[str, Any]:
    """An IMS status object, the error body of every data endpoint."""
    return {
        "imsx_codeMajor": code_major,
        "imsx_severity": severity,
        "imsx_description": description,
        "imsx_CodeMinor": {
            "imsx_codeMinorField": [
                {
                    "imsx_codeMinorFieldName": "TargetEndSystem",
                    "imsx_codeMinorFieldValue": code_minor,
                }
            ]
        },
    }


@dataclasses.dataclass
class Response:
    status: int
    body: bytes = b""
    headers: Headers = dataclasses.field(default_factory=list)
    content_type: bytes | None = b"application/json"
    drop: bool = False  # close the connection without answering
    stall_s: float = 0.0  # hold the answer back this long


def _compact_json(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def json_response(status: int, payload: Any, headers: Headers | None = None) -> Response:
    return Response(status, _compact_json(payload), headers or [])


def ims_error(
    status: int, description: str, code_minor: str, headers: Headers | None = None
) -> Response:
    return json_response(status, ims_status(description, code_minor), headers)


def _seconds_header(seconds: float) -> bytes:
    return f"{seconds:g}".encode()


class QueryError(ValueError):
    """An invalid query option: answered 400."""

    def __init__(self, description: str, code_minor: str = "invalid_query_parameter") -> None:
        super().__init__(description)
        self.code_minor = code_minor


@dataclasses.dataclass(frozen=True)
class IssuedToken:
    client: str  # "rp|estab"
    estab: str
    expires_at: float  # time.monotonic()


class SimState:
    """Everything the server knows: the school and term, clients, quirks, tokens, statistics."""

    def __init__(
        self,
        seed: int = 1,
        pupils: int = 1000,
        term: int = 0,
        clients: dict[str, str] | None = None,
        quirks: Quirks | None = None,
        plant_problems: bool = False,
    ) -> None:
        self.seed = seed
        self.pupils = pupils
        self.plant_problems = plant_problems  # serve the school with its known data problems
        self.clients = dict(DEFAULT_CLIENTS if clients is None else clients)
        self.quirks = quirks if quirks is not None else Quirks()
        self.tokens: dict[str, IssuedToken] = {}
        self.request_log: list[tuple[str, str, int]] = []
        self.data_requests = 0
        self.records_served = 0
        self.server_time_s = 0.0  # spent answering requests, added latency and stalls excluded
        self.sort_time_s = 0.0  # of which charged for sorting (the `sort_cost_ms_per_1000` quirk)
        self.term = term
        self._collections: dict[str, ServedCollection] = {}
        self._orders: OrderedDict[tuple[Any, ...], list[int]] = OrderedDict()
        self._drift_pages: dict[str, int] = {}
        # Per-Quirks-object state; the object is kept so its id is never reused meanwhile.
        self._random_for: tuple[Quirks, random.Random] | None = None
        self._fault_hits: dict[int, tuple[tuple[PageFault, ...], list[int]]] = {}
        self.set_term(term)

    # --- the school ---

    def set_term(self, term: int) -> None:
        """Serve the school at `term` from now on (drift is undone, tokens stay valid)."""
        data = term_data(self.seed, self.pupils, term, self.plant_problems)
        self._collections = {
            name: ServedCollection(name, records, bodies)
            for name, (records, bodies) in data.items()
        }
        self.term = term
        self._orders.clear()
        self._drift_pages.clear()

    def collection(self, name: str) -> ServedCollection:
        return self._collections[name]

    def records(self, name: str) -> list[dict[str, Any]]:
        """What the server holds for a collection now (after any drift), as plain records."""
        return self._collections[name].copy_records()

    def counts(self) -> dict[str, int]:
        return {name: len(served.records) for name, served in self._collections.items()}

    # --- per-request randomness and fault bookkeeping ---

    def random(self) -> random.Random:
        quirks = self.quirks
        if self._random_for is None or self._random_for[0] is not quirks:
            self._random_for = (quirks, random.Random(f"sim-quirks:{quirks.seed}"))
        return self._random_for[1]

    def take_fault(self, endpoint: str, offset: int | None) -> PageFault | None:
        """The first configured fault matching this request that has not yet fired `times`."""
        faults = self.quirks.faults
        if not faults:
            return None
        entry = self._fault_hits.get(id(faults))
        if entry is None or entry[0] is not faults:
            entry = (faults, [0] * len(faults))
            self._fault_hits[id(faults)] = entry
        hits = entry[1]
        for index, fault in enumerate(faults):
            if fault.endpoint != endpoint or hits[index] >= fault.times:
                continue
            if fault.offset is not None and fault.offset != offset:
                continue
            hits[index] += 1
            return fault
        return None

    def ordering(
        self,
        served: ServedCollection,
        where: Filter | None,
        filter_text: str,
        sort_path: tuple[str, ...] | None,
        descending: bool,
    ) -> Sequence[int]:
        """Positions of the matching records in answer order, cached until the data changes."""
        if where is None and sort_path is None:
            return range(len(served.records))
        key = (served.name, id(served), served.version, filter_text, sort_path, descending)
        cached = self._orders.get(key)
        if cached is not None:
            self._orders.move_to_end(key)
            return cached
        records = served.records
        if where is not None:
            matches = where.matcher()
            positions = [i for i, record in enumerate(records) if matches(record)]
        else:
            positions = list(range(len(records)))
        if sort_path is not None:
            record_key = sort_key(sort_path)
            positions.sort(key=lambda i: record_key(records[i]), reverse=descending)
        self._orders[key] = positions
        if len(self._orders) > 32:
            self._orders.popitem(last=False)
        return positions

    def drift_after_page(self, name: str) -> None:
        quirks = self.quirks
        if quirks.drift_endpoint != name:
            return
        done = self._drift_pages.get(name, 0)
        if done >= quirks.drift_pages:
            return
        self._drift_pages[name] = done + 1
        self._collections[name].drift(
            quirks.drift_insert_per_page,
            quirks.drift_remove_per_page,
            self.random(),
            self.term,
            at_end=quirks.drift_at_end,
        )

    # --- tokens ---

    def issue_token(self, client: str) -> tuple[str, int]:
        lifetime = self.quirks.token_lifetime_s
        token = secrets.token_urlsafe(32)
        estab = client.split("|", 1)[1] if "|" in client else ""
        self.tokens[token] = IssuedToken(client, estab, time.monotonic() + lifetime)
        return token, lifetime


# --- request handling -------------------------------------------------------------------------


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _query_params(scope: Scope) -> dict[str, str]:
    """Query options, percent-decoded (`+` and `%20` as space); the first of repeats wins."""
    params: dict[str, str] = {}
    text = scope["query_string"].decode("utf-8", "replace")
    for name, value in parse_qsl(text, keep_blank_values=True):
        params.setdefault(name, value)
    return params


def _int_param(params: dict[str, str], name: str, minimum: int) -> int | None:
    text = params.get(name)
    if text is None:
        return None
    try:
        value = int(text.strip())
    except ValueError:
        raise QueryError(f"{name} must be an integer, not {text!r}") from None
    if value < minimum:
        raise QueryError(f"{name} must be {minimum} or more, not {value}")
    return value


def _check_bearer(state: SimState, scope: Scope) -> Response | None:
    """None when the request carries a live token; otherwise the 401 to answer."""
    challenge = [(b"www-authenticate", b'Bearer realm="oneroster", error="invalid_token"')]
    authorization = _header(scope, b"authorization")
    if authorization is None:
        return ims_error(401, "Missing bearer token", "unauthorisedrequest", challenge)
    scheme, _, token = authorization.partition(" ")
    issued = state.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
    if issued is None:
        return ims_error(401, "Invalid bearer token", "unauthorisedrequest", challenge)
    if time.monotonic() >= issued.expires_at:
        return ims_error(401, "The access token has expired", "unauthorisedrequest", challenge)
    return None


def _fault_response(fault: PageFault, quirks: Quirks) -> Response | None:
    """The answer for a status-code fault; None for faults that shape a normal answer."""
    status = _STATUS_FAULTS.get(fault.kind)
    if status is None:
        if fault.kind == "html":
            return Response(200, _HTML_ERROR_PAGE, content_type=b"text/html; charset=utf-8")
        if fault.kind == "drop":
            return Response(0, drop=True)
        return None
    retry = [(b"retry-after", _seconds_header(quirks.retry_after_s))]
    said = fault.description
    if status == 429:
        return ims_error(429, said or "Too many requests: try again later", "server_busy", retry)
    if status == 503:
        return ims_error(503, said or "Service unavailable: try again later", "server_busy", retry)
    if status == 500:
        return ims_error(500, said or "Internal server error", "internal_server_error")
    if status == 401:
        return ims_error(401, said or "Invalid bearer token", "unauthorisedrequest")
    return ims_error(400, said or "Bad request", "invalid_query_parameter")


def _busy_or_failing(state: SimState) -> Response | None:
    """Rate limiting and random server errors, for data requests."""
    quirks = state.quirks
    state.data_requests += 1
    if quirks.rate_limit_every and state.data_requests % quirks.rate_limit_every == 0:
        retry = [(b"retry-after", _seconds_header(quirks.retry_after_s))]
        return ims_error(429, "Too many requests: try again later", "server_busy", retry)
    if quirks.error_rate and state.random().random() < quirks.error_rate:
        if state.random().random() < 0.5:
            return ims_error(500, "Internal server error", "internal_server_error")
        retry = [(b"retry-after", _seconds_header(quirks.retry_after_s))]
        return ims_error(503, "Service unavailable: try again later", "server_busy", retry)
    return None


async def _token(state: SimState, scope: Scope, receive: Receive) -> Response:
    if scope["method"] != "POST":
        return ims_error(405, "Use POST to request a token", "not_allowed", [(b"allow", b"POST")])
    await _read_body(receive)  # grant_type and the like: the Basic header is what counts
    fault = state.take_fault("token", None)
    if fault is not None:
        answer = _fault_response(fault, state.quirks)
        if answer is not None:
            return answer
    stall_s = fault.stall_s if fault is not None and fault.kind == "stall" else 0.0
    invalid = json_response(
        401,
        {
            "error": "invalid_client",
            "error_description": "Request contains an invalid client ID or secret",
        },
        [(b"www-authenticate", b'Basic realm="oneroster"')],
    )
    authorization = _header(scope, b"authorization") or ""
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return invalid
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return invalid
    # The user is `rp|estab` with a literal `|`: a client that URL-encodes it as %7C fails here
    # exactly as it does against the real server.
    client, separator, secret = decoded.partition(":")
    expected = state.clients.get(client)
    if not separator or expected is None or not hmac.compare_digest(expected, secret):
        return invalid
    token, lifetime = state.issue_token(client)
    answer = json_response(
        200, {"access_token": token, "token_type": "Bearer", "expires_in": lifetime}
    )
    answer.stall_s = stall_s
    return answer


def _version(auth: bool, echo: str | None = None) -> Response:
    document = {
        "version": "1.1",
        "product": f"{PRODUCT} auth" if auth else PRODUCT,
        "build": f"sim-{__version__}",
    }
    if echo is not None:
        document["served"] = {"to": echo, "notes": [echo]}
    return json_response(200, document)


def _link_header(
    scope: Scope, params: dict[str, str], offset: int, limit: int, total: int
) -> bytes:
    host = _header(scope, b"host") or "{}:{}".format(*scope["server"])
    base = f"{scope.get('scheme', 'http')}://{host}{scope['path']}"

    def url(page_offset: int) -> str:
        query = dict(params, limit=str(limit), offset=str(page_offset))
        return f"{base}?{urlencode(query, quote_via=quote)}"

    last = max(0, (total - 1) // limit * limit)
    links = [f'<{url(0)}>; rel="first"', f'<{url(last)}>; rel="last"']
    if offset + limit < total:
        links.append(f'<{url(offset + limit)}>; rel="next"')
    if offset > 0:
        links.append(f'<{url(max(0, offset - limit))}>; rel="prev"')
    return ", ".join(links).encode("utf-8")


@dataclasses.dataclass(frozen=True)
class PageRequest:
    """The query options of a collection request, checked."""

    limit: int | None
    offset: int
    descending: bool
    filter_text: str
    where: Filter | None
    sort_path: tuple[str, ...] | None
    warnings: tuple[dict[str, Any], ...]  # statusInfoSet entries for a 200 answer


def _read_page_request(
    params: dict[str, str], served: ServedCollection, quirks: Quirks
) -> PageRequest:
    """Raises QueryError or FilterError for options the server rejects with 400."""
    limit = _int_param(params, "limit", minimum=1)
    offset = _int_param(params, "offset", minimum=0) or 0
    if quirks.ignore_offset:
        offset = 0
    if quirks.reject_sort and ("sort" in params or "orderBy" in params):
        raise QueryError("Unsupported query parameter: sort / orderBy")
    order_by = params.get("orderBy", "asc").strip().lower()
    if order_by not in ("asc", "desc"):
        raise QueryError(f"orderBy must be asc or desc, not {params['orderBy']!r}")
    filter_text = params.get("filter", "").strip()
    where = parse_filter(filter_text, served.entity) if filter_text else None
    sort_path: tuple[str, ...] | None = None
    warnings: list[dict[str, Any]] = []
    sort_text = params.get("sort", "").strip()
    if sort_text and not quirks.ignore_sort:
        try:
            sort_path = check_path(served.entity, sort_text)
        except FilterError:
            # Per the spec: a 200 with a warning, in the server's default order.
            description = f"Unknown sort field {sort_text!r}: answered in the default order"
            warnings.append(
                ims_status(description, "invalid_sort_field", "warning", code_major="success")
            )
    return PageRequest(
        limit, offset, order_by == "desc", filter_text, where, sort_path, tuple(warnings)
    )


def _variant(state: SimState) -> Variant:
    quirks = state.quirks
    credential_term = state.term if quirks.credential_fields else None
    return (quirks.booleans_as_strings, quirks.inactive_status, credential_term)


def _echo(state: SimState, scope: Scope) -> str:
    """What the `echo_credentials` quirk says back: every credential the request carries or
    stands for (the bearer token, and the shared secret of the client it was issued to)."""
    authorization = _header(scope, b"authorization") or ""
    scheme, _, token = authorization.partition(" ")
    issued = state.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
    secret = state.clients.get(issued.client) if issued is not None else None
    basic = None
    if issued is not None:
        raw = f"{issued.client}:{secret}".encode()
        basic = "Basic " + base64.b64encode(raw).decode("ascii")
    return (
        f"request authorised by {authorization or 'nothing'} (token {token.strip()}); "
        f"the client's credentials are {basic} and its secret is {secret}"
    )


def _apply_record_fault(
    fault: PageFault,
    chunk: list[bytes],
    first: dict[str, Any],
    served: ServedCollection,
    variant: Variant,
) -> None:
    """Faults that spoil records of an otherwise normal page (`first`: its first record)."""
    spoilt = copy.deepcopy(first)
    if fault.kind == "no_sourcedid":
        del spoilt["sourcedId"]
        chunk[0] = served.body_of(spoilt, variant)
    elif fault.kind == "dup_conflict":
        spoilt["metadata"] = {"conflict": True}
        for field in ("title", "familyName"):
            if field in spoilt:
                spoilt[field] = f"{spoilt[field]} (conflicting copy)"
        chunk.append(served.body_of(spoilt, variant))


def _collection(state: SimState, name: str, scope: Scope) -> Response:
    quirks = state.quirks
    served = state.collection(name)
    params = _query_params(scope)
    try:
        request = _read_page_request(params, served, quirks)
    except FilterError as error:
        return ims_error(400, str(error), "invalid_filter_field")
    except QueryError as error:
        said = str(error) + (f" ({_echo(state, scope)})" if quirks.echo_credentials else "")
        return ims_error(400, said, error.code_minor)
    offset = request.offset

    fault = state.take_fault(name, offset)
    if fault is not None:
        answer = _fault_response(fault, quirks)
        if answer is not None:
            return answer
    busy = _busy_or_failing(state)
    if busy is not None:
        return busy

    positions = state.ordering(
        served, request.where, request.filter_text, request.sort_path, request.descending
    )
    if quirks.shuffle_order and request.sort_path is None:
        positions = list(positions)
        state.random().shuffle(positions)
    if quirks.tied_order and request.sort_path is None and 2 <= offset < len(positions) - 1:
        positions = list(positions)
        swapped = positions[offset - 2], positions[offset + 1]
        positions[offset + 1], positions[offset - 2] = swapped
    total = len(positions)
    if request.sort_path is not None and quirks.sort_cost_ms_per_1000 > 0:
        # The order itself is cached (the simulator's CPU is not the model); the time an
        # unindexed sort would take holds the whole server, blocking every other request.
        sort_s = quirks.sort_cost_ms_per_1000 * total / 1_000_000
        time.sleep(sort_s)
        state.sort_time_s += sort_s
    page_size = total if request.limit is None else request.limit
    if quirks.max_page_size is not None:
        page_size = min(page_size, quirks.max_page_size)
    variant = _variant(state)
    bodies = served.bodies(variant)
    page_positions = positions[offset : offset + page_size]
    if isinstance(page_positions, range):  # the default order: a plain slice
        chunk = list(bodies[offset : offset + page_size])
    else:
        chunk = [bodies[i] for i in page_positions]

    headers: Headers = []
    if not quirks.no_total_count:
        headers.append((b"x-total-count", str(total).encode()))
        if request.limit is not None or quirks.max_page_size is not None:
            # Built from the limit asked for: a silently capped page is not admitted here.
            link_limit = request.limit or page_size
            headers.append((b"link", _link_header(scope, params, offset, link_limit, total)))

    envelope = name
    if fault is not None:
        if chunk:
            _apply_record_fault(fault, chunk, served.records[page_positions[0]], served, variant)
        if fault.kind == "wrong_envelope":
            envelope = served.entity.singular

    if "offset" in params:
        state.drift_after_page(name)
    state.records_served += len(chunk)
    warnings = list(request.warnings)
    if quirks.echo_credentials:
        warnings.append(ims_status(_echo(state, scope), "echo", "warning", code_major="success"))
    if fault is not None and fault.kind == "failed_200":
        chunk = []
        warnings.append(ims_status("Could not read the records: try again", "internal_error"))
    elif fault is not None and fault.kind == "warning":
        description = "Some records may be served from a cache up to 5 minutes old"
        warnings.append(ims_status(description, "cached", "warning", code_major="success"))
    elif not chunk and quirks.empty_page_204:
        return Response(204, b"", headers, content_type=None)
    parts = [b'{"', envelope.encode(), b'":[', b",".join(chunk), b"]"]
    if warnings:
        parts += [b',"statusInfoSet":', _compact_json(warnings)]
    parts.append(b"}")
    body = b"".join(parts)
    if fault is not None and fault.kind == "json":
        body = body[: max(2, len(body) // 2)]  # cut mid-record: unparseable
    stall_s = fault.stall_s if fault is not None and fault.kind == "stall" else 0.0
    return Response(200, body, headers, stall_s=stall_s)


def _single_record(state: SimState, name: str, sourced_id: str) -> Response:
    served = state.collection(name)
    variant = _variant(state)
    for record in served.records:
        if record.get("sourcedId") == sourced_id:
            body = b"".join(
                [
                    b'{"',
                    served.entity.singular.encode(),
                    b'":',
                    served.body_of(record, variant),
                    b"}",
                ]
            )
            return Response(200, body)
    return ims_error(
        404, f"No {served.entity.singular} with sourcedId {sourced_id!r}", "unknownobject"
    )


def _data_endpoint(state: SimState, scope: Scope, endpoint: str, rest: list[str]) -> Response:
    """A bearer-protected GET: /version, a collection, or one record of a collection."""
    if scope["method"] not in ("GET", "HEAD"):
        return ims_error(405, "Use GET", "not_allowed", [(b"allow", b"GET")])
    unauthorised = _check_bearer(state, scope)
    if unauthorised is not None:
        return unauthorised
    if endpoint in state.quirks.forbidden:
        said = f"Not authorised to read {endpoint}"
        if state.quirks.echo_credentials:
            said += f" ({_echo(state, scope)})"
        return ims_error(403, said, "forbidden")
    if endpoint == "version":
        fault = state.take_fault("version", None)
        answer = _fault_response(fault, state.quirks) if fault else None
        echo = _echo(state, scope) if state.quirks.echo_credentials else None
        return answer or _busy_or_failing(state) or _version(auth=False, echo=echo)
    if rest:
        return _single_record(state, endpoint, rest[0])
    return _collection(state, endpoint, scope)


async def _control(state: SimState, scope: Scope, receive: Receive, action: str) -> Response:
    """`/_sim/...`: switch term, change quirks, read the server's state. No auth: loopback."""
    if action == "state" and scope["method"] == "GET":
        return json_response(200, _state_summary(state))
    if action == "problems" and scope["method"] == "GET":
        # The ground truth of the planted problems at the term served ({} when none planted).
        truth = await asyncio.to_thread(_planted_truth, state)
        return json_response(200, truth)
    if scope["method"] != "POST" or action not in ("term", "quirks"):
        return ims_error(404, f"No control endpoint {scope['method']} {action!r}", "unknownobject")
    try:
        payload = json.loads(await _read_body(receive) or b"{}")
        if not isinstance(payload, dict):
            raise ValueError("expected a JSON object")
        if action == "term":
            term = payload["term"]
            if not isinstance(term, int) or term < 0:
                raise ValueError("term must be an integer, 0 or more")
            await asyncio.to_thread(state.set_term, term)
        else:
            state.quirks = quirks_from_json(state.quirks, payload)
    except (ValueError, KeyError, TypeError) as error:
        return ims_error(400, f"Bad control request: {error}", "invalid_data")
    return json_response(200, _state_summary(state))


def _planted_truth(state: SimState) -> dict[str, list[str]]:
    if not state.plant_problems:
        return {}
    from .problems import planted_problems

    return planted_problems(seed=state.seed, pupils=state.pupils, term=state.term)


def quirks_from_json(current: Quirks, payload: dict[str, Any]) -> Quirks:
    """A new Quirks: `current` with the fields in `payload` replaced (faults as objects)."""
    known = {f.name for f in dataclasses.fields(Quirks)}
    unknown = sorted(set(payload) - known)
    if unknown:
        raise ValueError(f"unknown quirk(s): {', '.join(unknown)}")
    changes = dict(payload)
    if "forbidden" in changes:
        changes["forbidden"] = frozenset(changes["forbidden"])
    if "faults" in changes:
        changes["faults"] = tuple(PageFault(**fault) for fault in changes["faults"])
    return dataclasses.replace(current, **changes)


def _state_summary(state: SimState) -> dict[str, Any]:
    quirks = dataclasses.asdict(state.quirks)
    quirks["forbidden"] = sorted(quirks["forbidden"])
    return {
        "seed": state.seed,
        "pupils": state.pupils,
        "term": state.term,
        "plant_problems": state.plant_problems,
        "counts": state.counts(),
        "requests": len(state.request_log),
        "records_served": state.records_served,
        "server_time_s": round(state.server_time_s, 6),
        "sort_time_s": round(state.sort_time_s, 6),
        "quirks": quirks,
    }


async def _route(state: SimState, scope: Scope, receive: Receive) -> Response:
    path = scope["path"].rstrip("/") or "/"
    if path.startswith(CONTROL_PREFIX + "/"):
        return await _control(state, scope, receive, path[len(CONTROL_PREFIX) + 1 :])
    if not path.startswith(API_PREFIX + "/"):
        return ims_error(404, f"Unknown path {path!r}", "unknownobject")
    parts = path[len(API_PREFIX) + 1 :].split("/")
    if parts == ["auth", "token"]:
        return await _token(state, scope, receive)
    if parts == ["auth", "version"]:
        fault = state.take_fault("auth/version", None)
        echo = _echo(state, scope) if state.quirks.echo_credentials else None
        answer = _fault_response(fault, state.quirks) if fault else None
        return answer or _version(auth=True, echo=echo)
    if parts == ["version"] or (parts[0] in ENTITY_BY_COLLECTION and len(parts) <= 2):
        return _data_endpoint(state, scope, parts[0], parts[1:])
    return ims_error(404, f"Unknown endpoint {path!r}", "unknownobject")


async def _drop_connection(receive: Receive) -> None:
    """Close the connection with no answer at all (the "drop" fault).

    ASGI has no way to say this, so reach the transport through uvicorn's request cycle.
    """
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    if transport is None:
        raise ConnectionAbortedError("drop fault: no transport to close")
    transport.close()
    for _ in range(3):  # let uvicorn see the connection is gone before we return
        await asyncio.sleep(0)


def create_app(state: SimState) -> ASGIApp:
    """The ASGI app serving `state`."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        latency_s = state.quirks.latency_s
        if latency_s > 0:
            await asyncio.sleep(latency_s)
        started = time.perf_counter()
        response = await _route(state, scope, receive)
        state.server_time_s += time.perf_counter() - started
        query = scope["query_string"].decode("latin-1")
        logged_path = scope["path"] + (f"?{query}" if query else "")
        state.request_log.append((scope["method"], logged_path, response.status))
        if response.stall_s > 0:
            await asyncio.sleep(response.stall_s)
        if response.drop:
            await _drop_connection(receive)
            return
        headers = list(response.headers)
        if response.content_type is not None:
            headers.append((b"content-type", response.content_type))
        if response.status != 204:
            headers.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        body = b"" if scope["method"] == "HEAD" else response.body
        await send({"type": "http.response.body", "body": body})

    return app


# --- running it -------------------------------------------------------------------------------


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening socket; port 0 picks a free one (read it back with getsockname())."""
    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on sockets that say so, and
    # without it every keep-alive answer waits ~40 ms on delayed ACKs.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def uvicorn_server(app: ASGIApp) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        http="h11",
        ws="none",
        server_header=False,
        timeout_graceful_shutdown=1,
    )
    return uvicorn.Server(config)


class SimServer:
    """The simulated server on a free loopback port, in a background thread.

    with SimServer(pupils=200) as sim:
        httpx.post(f"{sim.base_url}/auth/token", auth=("partner-rp|3281110", "super-secret"))
    """

    def __init__(
        self,
        pupils: int = 200,
        term: int = 0,
        seed: int = 1,
        quirks: Quirks | None = None,
        clients: dict[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        plant_problems: bool = False,
    ) -> None:
        self.state = SimState(
            seed=seed,
            pupils=pupils,
            term=term,
            clients=clients,
            quirks=quirks,
            plant_problems=plant_problems,
        )
        self._socket = bind_socket(host, port)
        bound_host, bound_port = self._socket.getsockname()[:2]
        self.root_url = f"http://{bound_host}:{bound_port}"
        self.base_url = self.root_url + API_PREFIX
        self._server = uvicorn_server(create_app(self.state))
        self._thread: threading.Thread | None = None

    @property
    def quirks(self) -> Quirks:
        return self.state.quirks

    @quirks.setter
    def quirks(self, quirks: Quirks) -> None:
        self.state.quirks = quirks

    @property
    def request_log(self) -> list[tuple[str, str, int]]:
        return self.state.request_log

    @property
    def term(self) -> int:
        return self.state.term

    def set_term(self, term: int) -> None:
        self.state.set_term(term)

    def records(self, collection: str) -> list[dict[str, Any]]:
        return self.state.records(collection)

    def start(self, timeout_s: float = 10.0) -> SimServer:
        if self._thread is not None:
            return self
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the simulated server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._thread = None
        self._socket.close()

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


__all__ = [
    "API_PREFIX",
    "COLLECTIONS",
    "CONTROL_PREFIX",
    "DEFAULT_CLIENTS",
    "SimServer",
    "SimState",
    "create_app",
    "ims_status",
    "quirks_from_json",
]
