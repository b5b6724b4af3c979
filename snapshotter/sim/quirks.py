"""Switchable quirks and faults of the simulated Xporter server.

Every switch is off by default. Real providers show each of these somewhere (see
`shared/brief/oneroster-notes.md`); the fetcher's tests turn them on one at a time, and the
server reads them on every request, so a test may change them while the server runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PageFault:
    """A fault on chosen requests: `endpoint` (collection name or "token"), at `offset`
    (None: any offset), for the first `times` matching requests.

    kind: "500", "503", "429", "json" (malformed JSON, status 200), "html" (an HTML error page
    with status 200), "drop" (connection closed with no answer), "stall" (answer after
    `stall_s` seconds), "no_sourcedid" (a record without sourcedId), "dup_conflict" (two
    different records with one sourcedId), "wrong_envelope" (the wrong envelope key), "400",
    "401" (the bearer token refused), "failed_200" (status 200, no records, and an IMS failure
    status in `statusInfoSet`), "warning" (a normal page with a warning in `statusInfoSet`).
    `endpoint` may also be "version" or "auth/version" (status, "html" and "drop" kinds).
    `description`: the provider's own words in a status fault's answer, in place of the usual
    ones (a hostile provider's escape codes, say).
    """

    endpoint: str
    kind: str
    offset: int | None = None
    times: int = 1
    stall_s: float = 5.0
    description: str | None = None


@dataclass
class Quirks:
    latency_s: float = 0.0  # added before every answer
    error_rate: float = 0.0  # share of data requests answered 500 or 503 at random
    rate_limit_every: int = 0  # every Nth data request answers 429 (0: never)
    retry_after_s: float = 1.0  # the Retry-After sent with 429 (and 503)
    token_lifetime_s: int = 3600  # expires_in of issued tokens; honoured by the server
    forbidden: frozenset[str] = frozenset()  # collections answering 403
    max_page_size: int | None = None  # silently caps `limit` (and a missing limit)
    no_total_count: bool = False  # omit X-Total-Count (and Link)
    empty_page_204: bool = False  # 204 No Content, no body, for an empty page
    ignore_sort: bool = False  # accept `sort`/`orderBy` but answer in the default order
    reject_sort: bool = False  # answer 400 to any request carrying `sort` or `orderBy`
    ignore_offset: bool = False  # answer every request from the start, whatever `offset` says
    booleans_as_strings: bool = False  # enabledUser / primary as "true"/"false"
    inactive_status: bool = False  # send the pre-v1.1 `inactive` instead of `tobedeleted`
    shuffle_order: bool = False  # default order differs between requests (no sort sent)
    # The default order is by a key with ties (an ORDER BY on a non-unique column): tied records
    # change places with the offset asked, yet each request answers the same every time. A
    # page at offset N >= 2 serves the record at N - 2 where N + 1's belongs, so that record is
    # never served, while the overlap record at N still chains the pages.
    tied_order: bool = False
    # Server time a sort costs, in ms per 1,000 records sorted, on every request that sorts: an
    # unindexed ORDER BY sorts the whole (filtered) collection again for each page. The server
    # is held (blocked) that long, as a database's CPU would be. 5.6 / 12 models 5.6 ms per
    # request on a 12,000-record collection.
    sort_cost_ms_per_1000: float = 0.0
    # Offset drift: after each page request of `drift_endpoint`, insert and/or remove this many
    # records near the start of the collection (new records persist; removed ones are gone).
    drift_endpoint: str | None = None
    drift_insert_per_page: int = 0
    drift_remove_per_page: int = 0
    drift_pages: int = 1_000_000  # stop drifting after this many page requests
    drift_at_end: bool = False  # insert at the end of the default order instead (new joiners)
    # Users carry credentials under other names (`Password`, `userPassword`, `api_token`,
    # `pinCode`, `metadata.password`, `metadata.pwd`, a token in a list of objects), with
    # values that change every term: the fetcher must store none of them.
    credential_fields: bool = False
    # The server echoes the bearer token, the Basic credential and the client's shared secret
    # in a warning beside every 200 page, in the `/version` and `/auth/version` documents, in
    # the 403 of `forbidden` and in the 400 that refuses `sort` (with `reject_sort`): none may
    # reach the archive.
    echo_credentials: bool = False
    faults: tuple[PageFault, ...] = field(default_factory=tuple)
    seed: int = 0  # for the random choices above (error_rate, shuffle_order)
