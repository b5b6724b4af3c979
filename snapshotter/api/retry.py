"""When to try a request again, and how long to wait first.

Exponential backoff with full jitter (a random wait between 0 and the exponential ceiling), so
that concurrent requests do not retry in lockstep; `Retry-After` is a floor, never ignored.
Attempts and the total time asleep are bounded: a provider that stays down fails the fetch.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# 429 and the 5xx family that mean "try again later"; other 5xx are retried too (see `retryable`).
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def retryable(status_code: int) -> bool:
    return status_code in RETRY_STATUSES or status_code >= 500


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """How many times and how long: every number here bounds something."""

    max_attempts: int = 6  # tries of one request, the first included
    base_delay_s: float = 0.5  # ceiling of the first wait; doubles each retry
    max_delay_s: float = 30.0  # ceiling of any one backoff wait
    max_retry_after_s: float = 120.0  # longest Retry-After we are prepared to honour
    max_total_sleep_s: float = 300.0  # over all retries of one request
    random: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def backoff_s(self, retry_number: int, retry_after_s: float | None = None) -> float:
        """The wait before retry `retry_number` (1 for the first retry)."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (retry_number - 1))
        jittered = ceiling * self.random()
        if retry_after_s is not None:
            return max(retry_after_s, jittered)
        return jittered

    def gives_up(self, attempts_made: int, slept_s: float, next_wait_s: float) -> bool:
        """True when another attempt would break a bound (a Retry-After we will not wait out
        included: retrying sooner than the server asked would not be honouring it)."""
        return (
            attempts_made >= self.max_attempts
            or next_wait_s > max(self.max_retry_after_s, self.max_delay_s)
            or slept_s + next_wait_s > self.max_total_sleep_s
        )
