"""Canonical records: what means the same hashes the same, what differs does not."""

from __future__ import annotations

from snapshotter.canonical import canonical_record, comparable_record, content_hash
from snapshotter.model import ENROLLMENTS, USERS


def _hash(entity, record):  # noqa: ANN001, ANN202 - tiny local helper
    return content_hash(comparable_record(entity, canonical_record(entity, record)))


PUPIL = {
    "sourcedId": "xAB12CD34",
    "status": "active",
    "dateLastModified": "2026-03-21T03:35:42.017Z",
    "givenName": "Zoë",
    "familyName": "O'Brien",
    "role": "student",
    "enabledUser": True,
    "grades": ["8"],
    "orgSourcedIds": ["xORG00001", "xORG00002"],
    "userIds": [
        {"type": "MIS", "identifier": "1234"},
        {"type": "UPN", "identifier": "A123456789012"},
    ],
}


def test_a_reordered_set_array_and_key_order_hash_the_same() -> None:
    reordered = dict(reversed(list(PUPIL.items())))
    reordered["userIds"] = list(reversed(PUPIL["userIds"]))
    reordered["orgSourcedIds"] = list(reversed(PUPIL["orgSourcedIds"]))
    assert _hash(USERS, reordered) == _hash(USERS, PUPIL)


def test_booleans_sent_as_strings_hash_as_booleans() -> None:
    assert _hash(USERS, {**PUPIL, "enabledUser": "true"}) == _hash(USERS, PUPIL)
    assert _hash(USERS, {**PUPIL, "enabledUser": "false"}) != _hash(USERS, PUPIL)
    teacher = {"sourcedId": "xE1", "status": "active", "role": "teacher", "primary": "TRUE"}
    assert canonical_record(ENROLLMENTS, teacher)["primary"] is True


def test_inactive_is_read_as_tobedeleted() -> None:
    gone = {**PUPIL, "status": "tobedeleted"}
    assert canonical_record(USERS, {**PUPIL, "status": "inactive"})["status"] == "tobedeleted"
    assert _hash(USERS, {**PUPIL, "status": "inactive"}) == _hash(USERS, gone)


def test_the_password_is_never_kept_and_dropped_fields_go_too() -> None:
    kept = canonical_record(USERS, {**PUPIL, "password": "sim-pw-1", "sms": "0"}, ["sms"])
    assert "password" not in kept and "sms" not in kept
    assert kept["givenName"] == "Zoë"


def test_a_touched_record_hashes_the_same_but_a_renamed_one_does_not() -> None:
    assert _hash(USERS, {**PUPIL, "dateLastModified": "2027-01-01T00:00:00Z"}) == _hash(
        USERS, PUPIL
    )
    assert _hash(USERS, {**PUPIL, "givenName": "Zoe"}) != _hash(USERS, PUPIL)


def test_a_reference_href_does_not_count_but_its_target_does() -> None:
    enrollment = {
        "sourcedId": "xE1",
        "status": "active",
        "user": {"href": "https://a/users/xU1", "sourcedId": "xU1", "type": "user"},
    }
    other_host = {**enrollment, "user": {**enrollment["user"], "href": "/users/xU1"}}
    other_user = {**enrollment, "user": {**enrollment["user"], "sourcedId": "xU2"}}
    assert _hash(ENROLLMENTS, other_host) == _hash(ENROLLMENTS, enrollment)
    assert _hash(ENROLLMENTS, other_user) != _hash(ENROLLMENTS, enrollment)
