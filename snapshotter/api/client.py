"""The HTTP client: one keep-alive `httpx.AsyncClient`, bearer auth, retries, error reading.

It fetches pages and documents and says what they held; it never decides what to keep (that is
`snapshotter.fetch`) and never writes anything.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..credentials import strip_credentials
from .auth import TokenAuthenticator
from .envelope import decode_json, records_from_envelope
from .errors import ApiError, AuthError, FetchError, describe_error_body
from .retry import RetryPolicy, parse_retry_after, retryable

TOTAL_COUNT_HEADER = "X-Total-Count"

Sleep = Callable[[float], Awaitable[None]]


@dataclass
class RequestCounter:
    """Requests and retries made for one endpoint (provenance for the snapshot metadata)."""

    requests: int = 0
    retries: int = 0
    total_counts: list[int] = field(default_factory=list)  # X-Total-Count of each answer


@dataclass(frozen=True)
class Page:
    collection: str
    offset: int
    records: list[Any]
    total_count: int | None  # X-Total-Count, when the server sent a readable one
    warnings: list[str]


def _total_count(response: httpx.Response) -> int | None:
    value = response.headers.get(TOTAL_COUNT_HEADER, "").strip()
    return int(value) if value.isdigit() else None


def _origin(url: httpx.URL | str) -> tuple[str, str, int | None]:
    parts = urlsplit(str(url))
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def _tls_verification_failed(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(
            seen
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _connection_refused(exc: BaseException) -> bool:
    """Nothing listens at the address: no amount of backoff will help, so it fails fast."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


# A refused connection is tried this many times (once more, in case the provider was just
# restarting), with at most this wait between: then it fails, seconds after it began.
REFUSED_ATTEMPTS = 2
REFUSED_WAIT_S = 0.5


def _refused_error(url: str, endpoint: str, offset: int | None, attempts: int) -> FetchError:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    # The address as tried, without any user info or query (nothing secret reaches a message).
    tried = f"{parts.scheme}://{parts.hostname}:{port}{parts.path}"
    return FetchError(
        endpoint,
        f"could not connect to {parts.hostname}:{port} (connection refused): tried {tried} "
        f"{attempts} times",
        offset=offset,
        hint="nothing is listening there: check --base-url, and that the provider is up",
    )


def _describe_transport_error(exc: httpx.TransportError | httpx.DecodingError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer in time ({type(exc).__name__})"
    if isinstance(exc, httpx.DecodingError):
        return f"the answer could not be decoded ({exc})"
    detail = str(exc) or type(exc).__name__
    return f"connection failed: {detail}"


_HINTS = {
    400: "the provider refused the query; report it with the offset above",
    401: "the provider refused a freshly issued token; check the relying party's access",
    403: "this relying party may not read this endpoint for this school: ask the school or "
    "Groupcall to grant access, or use --allow-partial to keep the rest marked incomplete",
    404: "check --base-url: it should end in /api/ims/oneroster/v1p1/school",
}


class OneRosterClient:
    """Requests against one school's API root, e.g. `.../api/ims/oneroster/v1p1/school`."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        authenticator: TokenAuthenticator,
        retry_policy: RetryPolicy | None = None,
        *,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.authenticator = authenticator
        self.retry_policy = retry_policy or RetryPolicy()
        self._sleep = sleep
        self.token_counter = RequestCounter()
        # Collections whose server refused `sort`/`orderBy` with a 400 (asked without them
        # since), and those where it took them: a later 400 there is about something else.
        self.sort_refused: set[str] = set()
        self.sort_accepted: set[str] = set()

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def _redacted(self, exc: ApiError) -> ApiError:
        """The same error with anything secret the provider echoed back blanked out."""
        redact = self.authenticator.redact
        if isinstance(exc, FetchError):
            return FetchError(
                exc.endpoint,
                redact(exc.problem),
                offset=exc.offset,
                hint=exc.hint,
                status=exc.status,
            )
        return type(exc)(redact(str(exc)))

    async def bearer_token(self) -> str:
        """A valid token: fails here, once, with the provider's words for bad credentials."""
        try:
            return await self._bearer_token()
        except ApiError as exc:
            raise self._redacted(exc) from None

    async def _bearer_token(self) -> str:

        async def send_token(headers: dict[str, str]) -> httpx.Response:
            return await self._send(
                "POST",
                self.url("auth/token"),
                headers=headers,
                data={"grant_type": "client_credentials"},
                endpoint="token",
                offset=None,
                counter=self.token_counter,
            )

        return await self.authenticator.bearer(send_token)

    async def get_page(
        self,
        collection: str,
        *,
        offset: int,
        limit: int | None,
        counter: RequestCounter,
        sort: bool = False,
    ) -> Page:
        """One page in the server's own order or, with `sort`, sorted by sourcedId if the
        server obliges (checked by the caller, not trusted).

        `limit=None` asks for the whole collection in one answer (no limit, offset or sort),
        which Xporter serves; other servers may cap it, so the caller must verify it.
        """
        try:
            page = await self._get_page(collection, offset, limit, counter, sort)
        except ApiError as exc:
            raise self._redacted(exc) from None
        if page.warnings:  # the provider's words, kept in the snapshot: never a credential
            redact = self.authenticator.redact
            page = replace(page, warnings=[redact(w) for w in page.warnings])
        return page

    async def _get_page(
        self, collection: str, offset: int, limit: int | None, counter: RequestCounter, sort: bool
    ) -> Page:
        params: dict[str, Any] = {}
        if limit is not None:
            params = {"offset": offset, "limit": limit}
            if sort and collection not in self.sort_refused:
                params |= {"sort": "sourcedId", "orderBy": "asc"}
        warnings: list[str] = []
        try:
            response = await self._get(collection, collection, params, offset, counter)
        except FetchError as exc:
            # The guide lists `sort` and `orderBy`, but a server that does not support them
            # may refuse the query: ask again in its own order (the page chain copes).
            if exc.status != 400 or "sort" not in params or collection in self.sort_accepted:
                raise
            self.sort_refused.add(collection)
            del params["sort"], params["orderBy"]
            response = await self._get(collection, collection, params, offset, counter)
            warnings.append(f"sort=sourcedId refused ({exc.problem}): read in the server's order")
        else:
            if "sort" in params:
                self.sort_accepted.add(collection)
        total = _total_count(response)
        if total is not None:
            counter.total_counts.append(total)
        if response.status_code == 204 or not response.content and response.status_code != 200:
            return Page(collection, offset, [], total, warnings)
        body = decode_json(
            collection,
            response.text,
            offset=offset,
            content_type=response.headers.get("content-type", ""),
        )
        records, said = records_from_envelope(collection, body, offset=offset)
        return Page(collection, offset, records, total, warnings + said)

    async def get_document(self, path: str, *, counter: RequestCounter) -> Any:
        """A small JSON document such as `/version`, kept in the snapshot: without
        credential-like keys, and with any credential the provider echoed blanked out."""
        try:
            response = await self._get(path, path, None, None, counter)
            document = decode_json(
                path, response.text, content_type=response.headers.get("content-type", "")
            )
        except ApiError as exc:
            raise self._redacted(exc) from None
        document, _removed = strip_credentials(document)
        return self.authenticator.redact_document(document)

    async def _get(
        self,
        endpoint: str,
        path: str,
        params: dict[str, Any] | None,
        offset: int | None,
        counter: RequestCounter,
    ) -> httpx.Response:
        # A 401 means the token expired or was revoked: renew once, never loop.
        for renewed in (False, True):
            token = await self.bearer_token()
            response = await self._send(
                "GET",
                self.url(path),
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                params=params,
                endpoint=endpoint,
                offset=offset,
                counter=counter,
            )
            if response.status_code == 401 and not renewed:
                self.authenticator.invalidate(token)
                continue
            break
        if response.status_code == 401:
            raise AuthError(
                f"{endpoint}: the provider refused a freshly issued token (HTTP 401: "
                f"{self._said(response)}); check that this relying party may read this school"
            )
        if response.status_code >= 400:
            raise FetchError(
                endpoint,
                f"HTTP {response.status_code}: {self._said(response)}",
                offset=offset,
                hint=_HINTS.get(response.status_code),
                status=response.status_code,
            )
        return response

    @staticmethod
    def _said(response: httpx.Response) -> str:
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        return describe_error_body(body, response.text)

    async def _send(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        endpoint: str,
        offset: int | None,
        counter: RequestCounter,
        params: dict[str, Any] | None = None,
        data: dict[str, str] | None = None,
    ) -> httpx.Response:
        """One request, retried on 429, 5xx, timeouts and dropped connections.

        Returns the first answer that is not worth retrying; raises FetchError on a redirect
        (never followed: the Authorization header must not reach another host) and when the
        retry policy gives up.
        """
        policy = self.retry_policy
        attempts = 0
        refused = 0
        slept_s = 0.0
        while True:
            attempts += 1
            counter.requests += 1
            retry_after_s: float | None = None
            try:
                response = await self.http.request(
                    method, url, headers=headers, params=params, data=data
                )
            except (httpx.TransportError, httpx.DecodingError) as exc:
                # A body that fails to decompress is as transient as a dropped connection.
                if _tls_verification_failed(exc):
                    raise FetchError(
                        endpoint,
                        f"the server's TLS certificate could not be verified ({exc})",
                        offset=offset,
                        hint="verification is never switched off; fix the certificate, or point "
                        "SSL_CERT_FILE at the CA bundle that signed it",
                    ) from None
                if _connection_refused(exc):
                    refused += 1
                    if refused >= REFUSED_ATTEMPTS:
                        raise _refused_error(url, endpoint, offset, refused) from None
                    counter.retries += 1
                    await self._sleep(min(REFUSED_WAIT_S, policy.backoff_s(refused)))
                    continue
                problem = _describe_transport_error(exc)
            else:
                if response.is_redirect or 300 <= response.status_code < 400:
                    self._refuse_redirect(response, endpoint, offset)
                if not retryable(response.status_code):
                    return response
                problem = f"HTTP {response.status_code}: {self._said(response)}"
                retry_after_s = parse_retry_after(response.headers.get("Retry-After"))
            wait_s = policy.backoff_s(attempts, retry_after_s)
            if policy.gives_up(attempts, slept_s, wait_s):
                hint = "the provider is failing or overloaded; try again later"
                if retry_after_s is not None and retry_after_s > policy.max_retry_after_s:
                    problem += f" (Retry-After: {retry_after_s:.0f} s, longer than a fetch waits)"
                    hint = "the provider asked for a pause; try again after it"
                raise FetchError(
                    endpoint,
                    f"gave up after {attempts} attempt{'s' if attempts != 1 else ''}: {problem}",
                    offset=offset,
                    hint=hint,
                )
            counter.retries += 1
            slept_s += wait_s
            await self._sleep(wait_s)

    def _refuse_redirect(self, response: httpx.Response, endpoint: str, offset: int | None) -> None:
        location = response.headers.get("Location", "")
        target = response.url.join(location) if location else None
        elsewhere = target is None or _origin(target) != _origin(response.url)
        where = f"to {target}" if target else "without a Location"
        raise FetchError(
            endpoint,
            f"the provider redirected (HTTP {response.status_code}) {where}; redirects are not "
            "followed so that the token is never sent "
            + ("to another host" if elsewhere else "anywhere unexpected"),
            offset=offset,
            hint="set --base-url to the address the provider redirects to, if you trust it",
        )
