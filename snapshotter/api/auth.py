"""Bearer tokens from the provider's token endpoint, renewed before they expire.

The shared secret lives only in this object's memory: never in a log line, a repr, an error
message or a file.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from .envelope import decode_json
from .errors import AuthError, FetchError, describe_error_body

# Renew this long before `expires_in` runs out (a tenth of short lifetimes).
RENEW_MARGIN_S = 60.0

SendToken = Callable[[dict[str, str]], Awaitable[httpx.Response]]
# Values at least this long are blanked out wherever they appear. A shorter one (a weak secret
# such as "q7z") is blanked out only where it stands as a word of its own, between characters
# that are not letters or digits: inside a longer word it cannot be told from the word ("s"
# in "attempts"), and a secret echoed back stands apart from the words around it.
_SHORTEST_REDACTED = 6
REDACTED = "[redacted]"


def basic_authorization(rp: str, estab: str, secret: str) -> str:
    """`Basic base64(rp|estab:secret)` with the `|` literal: URL-encoding it breaks Xporter."""
    raw = f"{rp}|{estab}:{secret}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


class TokenAuthenticator:
    """Holds one bearer token at a time; concurrent callers share a single renewal."""

    def __init__(
        self,
        rp: str,
        estab: str,
        secret: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rp = rp
        self.estab = estab
        self._authorization = basic_authorization(rp, estab, secret)
        # Everything that must never reach a message: the secret, the Basic credentials and
        # every token issued (a provider may echo any of them back in an error body).
        self._never_shown = {secret, self._authorization.split()[1]}
        self._clock = clock
        self._token: str | None = None
        self._renew_at: float | None = None
        self._lock = asyncio.Lock()
        self.tokens_issued = 0

    def __repr__(self) -> str:
        return f"TokenAuthenticator(rp={self.rp!r}, estab={self.estab!r})"

    def _fresh(self) -> bool:
        return self._token is not None and (
            self._renew_at is None or self._clock() < self._renew_at
        )

    async def bearer(self, send_token: SendToken) -> str:
        """A token good for at least the renewal margin; asks for a new one when needed."""
        async with self._lock:
            if self._fresh():
                assert self._token is not None
                return self._token
            headers = {"Authorization": self._authorization, "Accept": "application/json"}
            response = await send_token(headers)
            self._token, lifetime_s = self._read_token(response)
            self._never_shown.add(self._token)
            self.tokens_issued += 1
            if lifetime_s is None:
                self._renew_at = None  # no expiry given: renew when the provider says 401
            else:
                margin = min(RENEW_MARGIN_S, lifetime_s / 10)
                self._renew_at = self._clock() + lifetime_s - margin
            return self._token

    def redact(self, text: str) -> str:
        """`text` with the secret, the Basic credentials and any token issued blanked out
        (short values only where they stand as a word, see `_SHORTEST_REDACTED`)."""
        for value in sorted(self._never_shown, key=len, reverse=True):
            if not value:
                continue
            if len(value) >= _SHORTEST_REDACTED:
                if value in text:
                    text = text.replace(value, REDACTED)
            elif value in text:
                alone = rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])"
                text = re.sub(alone, REDACTED, text)
        return text

    def redact_document(self, document: Any) -> Any:
        """A JSON document (`/version`) with every string in it, keys too, redacted."""
        if isinstance(document, str):
            return self.redact(document)
        if isinstance(document, list):
            return [self.redact_document(item) for item in document]
        if isinstance(document, dict):
            return {
                self.redact(str(key)): self.redact_document(value)
                for key, value in document.items()
            }
        return document

    def invalidate(self, token: str) -> None:
        """Forget a token the provider refused (unless another caller already replaced it)."""
        if self._token == token:
            self._token = None

    def _read_token(self, response: httpx.Response) -> tuple[str, float | None]:
        text = response.text
        if response.status_code != 200:
            try:
                body: Any = response.json()
            except ValueError:
                body = None
            said = describe_error_body(body, text)
            if response.status_code in (404, 405):
                # Not a verdict on the credentials: nothing answers for tokens at this address.
                raise FetchError(
                    "token",
                    f"HTTP {response.status_code} from the token endpoint: {said}",
                    hint="check --base-url: it should end in /api/ims/oneroster/v1p1/school",
                    status=response.status_code,
                )
            raise AuthError(
                f"the provider refused the credentials for {self.rp}|{self.estab} "
                f"(HTTP {response.status_code}): {said}. Check the relying party, the "
                "establishment and the shared secret."
            )
        body = decode_json("token", text, content_type=response.headers.get("content-type", ""))
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise FetchError(
                "token",
                "the token endpoint answered 200 without an access_token",
                hint="check the base URL points at Xporter's OneRoster school API",
            )
        expires_in = body.get("expires_in")
        try:
            lifetime_s = float(expires_in) if expires_in is not None else None
        except (TypeError, ValueError):
            lifetime_s = None
        return token, lifetime_s
