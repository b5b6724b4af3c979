"""The HTTP client: one keep-alive `httpx.AsyncClient`, bearer auth, retries, error reading.

It fetches pages and documents and says what they held; it never decides what to keep (that is
`snapshotter.fetch`) and never writes anything.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from .auth import TokenAuthenticator
from .envelope import decode_json, records_from_envelope
from .errors import AuthError, FetchError, describe_error_body
from .retry import RetryPolicy, parse_retry_after, retryable

PRODUCTION_BASE_URL = "https://xporter.groupcall.com/api/ims/oneroster/v1p1/school"
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


def _describe_transport_error(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer in time ({type(exc).__name__})"
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

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    async def bearer_token(self) -> str:
        """A valid token: fails here, once, with the provider's words for bad credentials."""

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
        self, collection: str, *, offset: int, limit: int, counter: RequestCounter
    ) -> Page:
        """One page, sorted by sourcedId if the server obliges (checked, not trusted)."""
        params = {"limit": limit, "offset": offset, "sort": "sourcedId", "orderBy": "asc"}
        response = await self._get(collection, collection, params, offset, counter)
        total = _total_count(response)
        if total is not None:
            counter.total_counts.append(total)
        if response.status_code == 204 or not response.content and response.status_code != 200:
            return Page(collection, offset, [], total, [])
        body = decode_json(
            collection,
            response.text,
            offset=offset,
            content_type=response.headers.get("content-type", ""),
        )
        records, warnings = records_from_envelope(collection, body, offset=offset)
        return Page(collection, offset, records, total, warnings)

    async def get_document(self, path: str, *, counter: RequestCounter) -> Any:
        """A small JSON document such as `/version`."""
        response = await self._get(path, path, None, None, counter)
        return decode_json(
            path, response.text, content_type=response.headers.get("content-type", "")
        )

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
        slept_s = 0.0
        while True:
            attempts += 1
            counter.requests += 1
            retry_after_s: float | None = None
            try:
                response = await self.http.request(
                    method, url, headers=headers, params=params, data=data
                )
            except httpx.TransportError as exc:
                if _tls_verification_failed(exc):
                    raise FetchError(
                        endpoint,
                        f"the server's TLS certificate could not be verified ({exc})",
                        offset=offset,
                        hint="verification is never switched off; fix the certificate, or point "
                        "SSL_CERT_FILE at the CA bundle that signed it",
                    ) from None
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
                raise FetchError(
                    endpoint,
                    f"gave up after {attempts} attempt{'s' if attempts != 1 else ''}: {problem}",
                    offset=offset,
                    hint="the provider is failing or overloaded; try again later",
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
