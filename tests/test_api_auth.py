"""Tokens: the literal `|`, renewal before expiry and once on a 401, and bad secrets."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from helpers_fetch import ESTAB, FAST, RP, SECRET, assert_complete_and_exact, fetch, tree

from snapshotter.api.auth import TokenAuthenticator, basic_authorization
from snapshotter.api.errors import AuthError, FetchError
from snapshotter.fetch import FetchSettings, fetch_snapshot
from snapshotter.sim.quirks import Quirks


def _token_requests(sim) -> list[int]:  # noqa: ANN001
    return [status for _, path, status in sim.request_log if path.endswith("/auth/token")]


def test_the_basic_username_keeps_the_pipe_literal() -> None:
    header = basic_authorization("partner-rp", "3281110", "super-secret")
    assert base64.b64decode(header.split()[1]) == b"partner-rp|3281110:super-secret"
    assert header == "Basic cGFydG5lci1ycHwzMjgxMTEwOnN1cGVyLXNlY3JldA=="  # the guide's example


def test_a_bad_secret_fails_at_once_with_the_providers_words(sim_server, tmp_path: Path):
    sim = sim_server(pupils=60)
    with pytest.raises(AuthError) as caught:
        fetch_snapshot(sim.base_url, RP, ESTAB, "wrong", tmp_path, settings=FAST)
    assert "Request contains an invalid client ID or secret" in str(caught.value)
    assert "wrong" not in str(caught.value)
    assert _token_requests(sim) == [401]  # not retried
    assert len(sim.request_log) == 1
    assert tree(tmp_path) == {}


def test_an_unknown_school_fails_as_bad_credentials(sim_server, tmp_path: Path):
    sim = sim_server(pupils=60)
    with pytest.raises(AuthError, match="partner-rp\\|9999999"):
        fetch_snapshot(sim.base_url, RP, "9999999", "super-secret", tmp_path, settings=FAST)


def test_a_token_is_renewed_before_it_expires(sim_server, tmp_path: Path):
    # A two-second token and a fetch that takes longer: renewed at 90% of its life, so the
    # server never has to refuse one.
    sim = sim_server(pupils=60, quirks=Quirks(token_lifetime_s=2, latency_s=0.02))
    slow = FetchSettings(page_size=10, concurrency=1, retry_policy=FAST.retry_policy)
    outcome = fetch(sim, tmp_path, settings=slow)
    assert_complete_and_exact(outcome, sim)
    assert len(_token_requests(sim)) >= 2
    assert not [entry for entry in sim.request_log if entry[2] == 401]


def test_a_revoked_token_is_renewed_once_on_a_401(sim_server, tmp_path: Path):
    sim = sim_server(pupils=60)
    revoked = []

    def revoke_once(event) -> None:  # noqa: ANN001 - a progress callback
        if not revoked and event.collection == "enrollments" and event.records > 100:
            revoked.append(True)
            sim.state.tokens.clear()

    outcome = fetch(sim, tmp_path, progress=revoke_once)
    assert_complete_and_exact(outcome, sim)
    assert revoked and len(_token_requests(sim)) == 2
    assert [status for *_, status in sim.request_log].count(401) >= 1


def test_a_token_refused_again_after_renewal_fails_without_looping(sim_server, tmp_path: Path):
    # Tokens that are dead on arrival: each request renews once, then gives up.
    sim = sim_server(pupils=60, quirks=Quirks(token_lifetime_s=0))
    with pytest.raises(AuthError, match="refused a freshly issued token"):
        fetch(sim, tmp_path)
    assert len(_token_requests(sim)) <= 2 * 8  # two per request at most, requests cut short
    assert tree(tmp_path) == {}


def test_a_base_url_with_no_token_endpoint_says_to_check_the_url_not_the_secret(
    sim_server, tmp_path: Path
):
    sim = sim_server(pupils=60)
    with pytest.raises(FetchError) as caught:
        fetch_snapshot(sim.root_url + "/api/oneroster", RP, ESTAB, SECRET, tmp_path, settings=FAST)
    message = str(caught.value)
    assert message.startswith("token: HTTP 404") and "check --base-url" in message
    assert "shared secret" not in message
    assert tree(tmp_path) == {}


def test_a_very_short_secret_is_not_blanked_out_of_every_word_of_a_message() -> None:
    # Redaction blanks secrets and tokens out of the provider's words; one letter long, it
    # would leave messages unreadable ("gave up after 6 attempt[redacted]").
    assert TokenAuthenticator(RP, ESTAB, "s").redact("gave up after 6 attempts") == (
        "gave up after 6 attempts"
    )
    assert TokenAuthenticator(RP, ESTAB, SECRET).redact(f"no {SECRET} here") == "no [redacted] here"
