"""Every fault the simulator can throw: a complete snapshot identical to the server's data, or a
clear failure naming endpoint and offset with the archive exactly as it was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers_fetch import assert_complete_and_exact, fetch, metadata, tree

from snapshotter.api.errors import FetchError
from snapshotter.sim.quirks import PageFault, Quirks
from snapshotter.sim.school import SYNTHETIC_PASSWORD


@pytest.fixture
def archive_with_a_snapshot(sim_server, tmp_path: Path) -> Path:
    """An archive already holding one good snapshot, which no failure may touch."""
    archive = tmp_path / "archive"
    fetch(sim_server(pupils=60), archive)
    return archive


@pytest.mark.parametrize(
    "quirks",
    [
        Quirks(faults=(PageFault("users", "500", offset=39, times=2),)),
        Quirks(faults=(PageFault("enrollments", "503", times=3),)),
        Quirks(faults=(PageFault("classes", "429", times=2),), retry_after_s=0.01),
        Quirks(rate_limit_every=7, retry_after_s=0.01),
        Quirks(error_rate=0.2, retry_after_s=0.01, seed=3),
        Quirks(faults=(PageFault("enrollments", "drop", offset=78, times=2),)),
        Quirks(faults=(PageFault("courses", "stall", offset=0, stall_s=3.0),)),
        Quirks(faults=(PageFault("token", "503"), PageFault("token", "drop"))),
    ],
    ids=[
        "500 twice on one page",
        "503 three times",
        "429 with Retry-After",
        "every 7th request rate limited",
        "a fifth of requests failing at random",
        "connection dropped",
        "an answer that stalls past the timeout",
        "the token endpoint failing at first",
    ],
)
def test_a_transient_failure_is_retried_and_the_snapshot_is_complete(
    sim_server, tmp_path: Path, quirks: Quirks
):
    sim = sim_server(pupils=60, quirks=quirks)
    outcome = fetch(sim, tmp_path)
    assert_complete_and_exact(outcome, sim)
    assert sum(stats.retries for stats in outcome.endpoints.values()) >= 1 or "token" in str(
        quirks.faults
    )


def test_retries_resume_at_the_failing_page_not_from_page_one(sim_server, tmp_path: Path):
    sim = sim_server(pupils=60, quirks=Quirks(faults=(PageFault("enrollments", "500", 78, 3),)))
    fetch(sim, tmp_path)
    asked = [path for _, path, _ in sim.request_log if "/enrollments?" in path]
    assert sum("offset=0&" in p for p in asked) == 1
    assert sum("offset=78&" in p for p in asked) == 4


def test_a_failure_that_persists_fails_clearly_and_leaves_the_archive_untouched(
    sim_server, archive_with_a_snapshot: Path
):
    before = tree(archive_with_a_snapshot)
    sim = sim_server(pupils=60, quirks=Quirks(faults=(PageFault("users", "503", 39, 100),)))
    with pytest.raises(FetchError) as caught:
        fetch(sim, archive_with_a_snapshot)
    message = str(caught.value)
    assert "users at offset 39" in message and "gave up after 6 attempts" in message
    assert "try again later" in message
    assert tree(archive_with_a_snapshot) == before


@pytest.mark.parametrize(
    "quirks,endpoint,words",
    [
        (Quirks(forbidden=frozenset({"enrollments"})), "enrollments", "HTTP 403"),
        (Quirks(faults=(PageFault("classes", "400", offset=39),)), "classes at offset 39", "400"),
        (Quirks(faults=(PageFault("users", "json", offset=39),)), "users at offset 39", "JSON"),
        (Quirks(faults=(PageFault("courses", "html", offset=0),)), "courses at offset 0", "HTML"),
        (
            Quirks(faults=(PageFault("enrollments", "no_sourcedid", offset=39),)),
            "enrollments at offset 39",
            "no sourcedId",
        ),
        (
            Quirks(faults=(PageFault("classes", "dup_conflict", offset=0),)),
            "classes at offset",
            "two different records share sourcedId",
        ),
        (
            Quirks(faults=(PageFault("users", "wrong_envelope", offset=0),)),
            "users at offset 0",
            'expected {"users": [...]}',
        ),
        (
            Quirks(faults=(PageFault("users", "failed_200", offset=39),)),
            "users at offset 39",
            "answered 200 with 0 records but said the request failed",
        ),
    ],
    ids=[
        "403",
        "400",
        "malformed JSON",
        "an HTML page",
        "no sourcedId",
        "conflict",
        "envelope",
        "a 200 that says it failed",
    ],
)
def test_a_broken_answer_fails_naming_endpoint_and_offset_and_keeps_nothing(
    sim_server, archive_with_a_snapshot: Path, quirks: Quirks, endpoint: str, words: str
):
    before = tree(archive_with_a_snapshot)
    sim = sim_server(pupils=60, quirks=quirks)
    with pytest.raises(FetchError) as caught:
        fetch(sim, archive_with_a_snapshot)
    assert str(caught.value).startswith(endpoint)
    assert words in str(caught.value)
    assert tree(archive_with_a_snapshot) == before


def test_a_forbidden_endpoint_says_what_to_do(sim_server, tmp_path: Path):
    sim = sim_server(pupils=60, quirks=Quirks(forbidden=frozenset({"users"})))
    with pytest.raises(FetchError, match="grant access.*--allow-partial"):
        fetch(sim, tmp_path)
    assert tree(tmp_path) == {}


def test_allow_partial_keeps_the_other_endpoints_marked_incomplete(sim_server, tmp_path: Path):
    sim = sim_server(pupils=60, quirks=Quirks(forbidden=frozenset({"enrollments"})))
    outcome = fetch(sim, tmp_path, allow_partial=True)
    assert outcome.path is not None and not outcome.complete
    row = metadata(outcome.path)
    assert row["complete"] == 0 and "enrollments" in row["incomplete_reason"]
    assert outcome.record_counts["users"] == len(sim.records("users"))
    assert outcome.record_counts["enrollments"] == 0
    assert not outcome.endpoints["enrollments"].complete and outcome.endpoints["users"].complete


def test_allow_partial_still_refuses_to_call_malformed_data_complete(sim_server, tmp_path: Path):
    quirks = Quirks(faults=(PageFault("users", "no_sourcedid", offset=0),))
    outcome = fetch(sim_server(pupils=60, quirks=quirks), tmp_path, allow_partial=True)
    assert not outcome.complete and "users at offset 0" in outcome.reason


def test_the_snapshot_never_holds_passwords_the_secret_or_a_token(sim_server, tmp_path: Path):
    sim = sim_server(pupils=60)
    assert any("password" in user for user in sim.records("users"))
    outcome = fetch(sim, tmp_path, drop_fields=["users.sms"])
    raw = outcome.path.read_bytes()
    assert SYNTHETIC_PASSWORD.encode() not in raw and b"super-secret" not in raw
    for token in sim.state.tokens:
        assert token.encode() not in raw
    row = metadata(outcome.path)
    assert row["drop_fields"] == '["users.sms"]' and row["rp"] == "partner-rp"


def test_the_metadata_records_provenance_per_endpoint(sim_server, tmp_path: Path):
    sim = sim_server(pupils=60, quirks=Quirks(faults=(PageFault("users", "500"),)))
    outcome = fetch(sim, tmp_path, school_name="Quarrendon Academy")
    row = metadata(outcome.path)
    assert row["school_name"] == "Quarrendon Academy" and row["base_url"] == sim.base_url
    assert '"version"' in row["provider_version"] and row["auth_version"]
    assert row["started_at"] <= row["finished_at"] and row["started_at"].endswith("Z")
    users = outcome.endpoints["users"]
    assert users.retries == 1 and users.requests == users.pages + 1
    assert users.total_count_seen == len(sim.records("users")) == users.records


def test_files_are_private_to_their_owner(sim_server, tmp_path: Path):
    outcome = fetch(sim_server(pupils=60), tmp_path / "archive")
    assert outcome.path.stat().st_mode & 0o777 == 0o600
    assert outcome.path.parent.stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "archive").stat().st_mode & 0o777 == 0o700


def test_one_token_serves_the_whole_fetch_when_it_does_not_expire(sim_server, tmp_path: Path):
    sim = sim_server(pupils=60, quirks=Quirks(latency_s=0.01))
    fetch(sim, tmp_path)
    tokens = [path for method, path, _ in sim.request_log if path.endswith("/auth/token")]
    assert len(tokens) == 1


def test_warnings_beside_a_200_are_kept_in_the_metadata(sim_server, tmp_path: Path):
    sim = sim_server(pupils=60, quirks=Quirks(faults=(PageFault("classes", "warning"),)))
    outcome = fetch(sim, tmp_path)
    assert_complete_and_exact(outcome, sim)
    endpoints = json.loads(metadata(outcome.path)["endpoints"])
    assert endpoints["classes"]["warnings"] == [
        "cached: Some records may be served from a cache up to 5 minutes old"
    ]
    assert endpoints["users"]["warnings"] == []


@pytest.mark.parametrize(
    "fault",
    [PageFault("auth/version", "401", times=9), PageFault("version", "html", times=9)],
    ids=["/auth/version refuses the token", "/version answers an HTML page"],
)
def test_a_version_endpoint_that_fails_is_recorded_and_the_snapshot_still_completes(
    sim_server, tmp_path: Path, fault: PageFault
):
    sim = sim_server(pupils=60, quirks=Quirks(faults=(fault,)))
    outcome = fetch(sim, tmp_path)
    assert_complete_and_exact(outcome, sim)
    row = metadata(outcome.path)
    failed, answered = ("auth_version", "provider_version")
    if fault.endpoint == "version":
        failed, answered = answered, failed
    assert json.loads(row[failed])["error"].startswith(fault.endpoint)
    assert json.loads(row[answered])["version"] == "1.1"


def test_a_retry_after_longer_than_a_fetch_waits_fails_at_once_saying_so(
    sim_server, tmp_path: Path
):
    quirks = Quirks(faults=(PageFault("users", "503", offset=0),), retry_after_s=3600)
    with pytest.raises(FetchError) as caught:
        fetch(sim_server(pupils=60, quirks=quirks), tmp_path)
    message = str(caught.value)
    assert message.startswith("users at offset 0: gave up after 1 attempt: HTTP 503")
    assert "Retry-After: 3600 s" in message and "try again after it" in message
    assert tree(tmp_path) == {}
