"""The retry policy and the provider's error bodies, on their own."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from snapshotter.api.envelope import decode_json
from snapshotter.api.errors import (
    FetchError,
    describe_error_body,
    normalise_code_minor,
    parse_provider_statuses,
)
from snapshotter.api.retry import RetryPolicy, parse_retry_after, retryable


def test_backoff_grows_exponentially_with_full_jitter_and_a_ceiling() -> None:
    top = RetryPolicy(base_delay_s=1, max_delay_s=8, random=lambda: 0.999999)
    assert [round(top.backoff_s(n)) for n in range(1, 7)] == [1, 2, 4, 8, 8, 8]
    assert RetryPolicy(random=lambda: 0.0).backoff_s(3) == 0.0


def test_retry_after_is_a_floor_and_too_long_a_wait_gives_up() -> None:
    policy = RetryPolicy(base_delay_s=1, random=lambda: 0.5, max_retry_after_s=60)
    assert policy.backoff_s(1, retry_after_s=5) == 5
    assert policy.gives_up(attempts_made=1, slept_s=0, next_wait_s=61)
    assert not policy.gives_up(attempts_made=1, slept_s=0, next_wait_s=5)
    assert policy.gives_up(attempts_made=6, slept_s=0, next_wait_s=0)
    assert policy.gives_up(attempts_made=2, slept_s=299, next_wait_s=5)


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 3, 21, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after("Sat, 21 Mar 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Sat, 21 Mar 2026 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_429_and_5xx_are_retried_but_client_errors_are_not() -> None:
    assert all(retryable(s) for s in (429, 500, 502, 503, 504))
    assert not any(retryable(s) for s in (400, 401, 403, 404))


def test_code_minor_spellings_are_normalised() -> None:
    assert normalise_code_minor("unknown object") == "unknown_object"
    assert normalise_code_minor("unknownobject") == "unknown_object"
    assert normalise_code_minor("Server_Busy") == "server_busy"
    assert normalise_code_minor("something new") == "something_new"


def test_ims_status_objects_are_found_wherever_servers_put_them() -> None:
    minor = {"imsx_codeMinorField": [{"imsx_codeMinorFieldValue": "invalid_filter_field"}]}
    at_root = {"imsx_codeMajor": "failure", "imsx_description": "bad", "imsx_CodeMinor": minor}
    in_set = {"statusInfoSet": [at_root]}
    wrapped = {"imsx_statusInfo": at_root}
    plain = {"codeMajor": "failure", "codeMinor": "unknown object", "description": "no such"}
    for body in (at_root, in_set, wrapped):
        (status,) = parse_provider_statuses(body)
        assert (status.code_major, status.code_minor) == ("failure", "invalid_filter_field")
    assert parse_provider_statuses(plain)[0].code_minor == "unknown_object"
    assert describe_error_body(plain, "") == "unknown_object: no such"
    assert describe_error_body({"error_description": "nope"}, "") == "nope"
    assert describe_error_body(None, "<html>Bad   Gateway</html>") == "<html>Bad Gateway</html>"


def test_json_with_a_byte_order_mark_or_labelled_as_html_is_still_read() -> None:
    assert decode_json("users", '\ufeff{"users": []}') == {"users": []}
    assert decode_json("users", '{"users": []}', content_type="text/html") == {"users": []}


@pytest.mark.parametrize(
    "text,content_type,words",
    [
        ("<!DOCTYPE html><p>Down</p>", "application/json", "an HTML page"),
        ("Service unavailable", "text/html", "an HTML page"),
        ('{"users": [', "application/json", "not valid JSON"),
    ],
)
def test_an_html_page_is_told_from_broken_json(text: str, content_type: str, words: str) -> None:
    with pytest.raises(FetchError, match=words) as caught:
        decode_json("users", text, offset=40, content_type=content_type)
    assert str(caught.value).startswith("users at offset 40")
