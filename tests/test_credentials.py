"""Credential-like keys never get into a snapshot, at any depth; ordinary fields always do."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from snapshotter.archive.snapshot import SnapshotMeta, SnapshotWriter, parse_drop_fields
from snapshotter.canonical import canonical_record, canonical_with_hash, canonicalise
from snapshotter.credentials import credential_like, strip_credentials
from snapshotter.model import ENROLLMENTS, ENTITIES, USERS

TAKEN = datetime(2026, 9, 14, 6, 30, 5, tzinfo=UTC)
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
    "metadata": {"sen": {"status": "K"}},
}
ENROLMENT = {
    "sourcedId": "xE1",
    "status": "active",
    "dateLastModified": "2026-03-21T03:35:42.017Z",
    "role": "student",
    "primary": "false",
    "beginDate": "2026-09-01",
    "user": {"href": "https://x/users/xAB12CD34", "sourcedId": "xAB12CD34", "type": "user"},
    "class": {"href": "https://x/classes/xC1", "sourcedId": "xC1", "type": "class"},
    "school": {"href": "https://x/orgs/xO1", "sourcedId": "xO1", "type": "org"},
}
CREDENTIAL_KEYS = [
    "password",
    "Password",
    "PASSWORD",
    "userPassword",
    "user_password",
    "passwd",
    "pwd",
    "pwdLastSet",
    "secret",
    "clientSecret",
    "client-secret",
    "token",
    "api_token",
    "accessToken",
    "APIToken",
    "refresh.token",
    "pin",
    "PIN",
    "pinCode",
    "userPIN",
    "PINs",
    "pin2",
    "passcode",
    "credentials",
    "apiKey",
    "api_key",
    "pincode",
    "PINCODE",
    "loginpin",
    "userpasscode",
    "pw",
]
# `pinned` is kept on purpose: a state ("pinned to the top"), not a PIN. So is `secretary`.
ORDINARY_KEYS = [
    "spinning",
    "mapping",
    "shipping",
    "Opinion",
    "typing",
    "sourcedId",
    "givenName",
    "userIds",
    "identifier",
    "pinned",
    "secretary",
    "passage",
    "compass",
    "keyStage",
    "primaryKey",
    "Pinto",
    "spin",
]


@pytest.mark.parametrize("key", CREDENTIAL_KEYS)
def test_credential_like_keys_are_recognised_in_any_case_and_inside_compound_names(key: str):
    assert credential_like(key)


@pytest.mark.parametrize("key", ORDINARY_KEYS)
def test_ordinary_fields_that_merely_contain_such_letters_are_kept(key: str):
    assert not credential_like(key)


def test_no_field_of_the_entity_model_looks_like_a_credential() -> None:
    for entity in ENTITIES:
        assert not [name for name in entity.known_fields if credential_like(name)]
        assert all(credential_like(name) for name in entity.never_store)


def test_credentials_are_dropped_at_any_depth_and_the_paths_named_never_the_values() -> None:
    record = {
        **PUPIL,
        "Password": "v1",
        "userPassword": "v2",
        "pinCode": "v3",
        "spinning": "kept",
        "metadata": {
            "pwd": "v4",
            "password": "v5",
            "house": "Kestrel",
            "pinned": True,
            "logins": [{"service": "vle", "token": "v6"}, {"service": "mail", "api_token": "v7"}],
        },
    }
    canonical, canonical_json, _hash, removed = canonicalise(USERS, record)
    assert not any(f"v{n}" in canonical_json.replace("vle", "") for n in range(1, 8))
    assert canonical["spinning"] == "kept"
    assert canonical["metadata"] == {
        "house": "Kestrel",
        "pinned": True,
        "logins": [{"service": "vle"}, {"service": "mail"}],
    }
    assert removed == (
        "Password",
        "metadata.logins[].api_token",
        "metadata.logins[].token",
        "metadata.password",
        "metadata.pwd",
        "pinCode",
        "userPassword",
    )


def test_a_record_with_credentials_hashes_as_the_same_record_without_them() -> None:
    leaky = {**PUPIL, "PASSWORD": "x", "metadata": {**PUPIL["metadata"], "pwd": "y"}}
    assert canonical_with_hash(USERS, leaky) == canonical_with_hash(USERS, PUPIL)
    changed_password = {**leaky, "PASSWORD": "z"}
    assert canonical_with_hash(USERS, changed_password)[1] == canonical_with_hash(USERS, PUPIL)[1]


def test_credentials_hidden_in_references_and_odd_places_are_found_too() -> None:
    odd = {
        **ENROLMENT,
        "class": {**ENROLMENT["class"], "token": "t1"},
        "user": {**ENROLMENT["user"], "href": {"secret": "t2"}},
        "dateLastModified": {"pin": "t3"},
    }
    _canonical, canonical_json, _hash, removed = canonicalise(ENROLLMENTS, odd)
    assert "t1" not in canonical_json and "t2" not in canonical_json and "t3" not in canonical_json
    assert removed == ("class.token", "dateLastModified.pin", "user.href.secret")


def test_records_without_credentials_hash_as_they_always_have() -> None:
    # Snapshots taken before this check must diff clean against those taken after it.
    assert canonical_with_hash(USERS, PUPIL)[1] == "062d35b8fc838b4e5453879ff36a3ad7"
    assert canonical_with_hash(ENROLLMENTS, ENROLMENT)[1] == "49690eaa86d873364d229d0898e97997"


def test_strip_credentials_returns_an_untouched_value_as_it_is() -> None:
    assert strip_credentials(PUPIL) == (PUPIL, [])
    assert strip_credentials(PUPIL)[0] is PUPIL


def test_a_dotted_drop_field_drops_the_nested_field_and_every_list_items_field() -> None:
    kept = canonical_record(USERS, PUPIL, ["metadata.sen", "userIds.identifier"])
    assert kept["metadata"] == {}
    assert kept["userIds"] == [{"type": "MIS"}, {"type": "UPN"}]
    _c, _j, _h, removed = canonicalise(USERS, PUPIL, frozenset({"metadata.sen.status", "sms"}))
    assert removed == ("metadata.sen.status",)  # `sms` was not there to drop


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("users.", "expected COLLECTION.FIELD"),
        ("pupils.metadata.sen", "expected COLLECTION.FIELD"),
        ("users.metadata..sen", "a step of the path is empty"),
        ("users.metadata.", "a step of the path is empty"),
        ("users.sourcedId", "sourcedId identifies every record"),
    ],
)
def test_a_drop_field_path_that_cannot_be_honoured_is_refused(spec: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_drop_fields([spec])


def _write(tmp_path: Path, records: list[dict], drop_fields: list[str] = ()) -> Path:
    with SnapshotWriter(tmp_path, "3281110", started_at=TAKEN, drop_fields=drop_fields) as writer:
        writer.save_records("users", records[:1], offset=0)
        writer.save_records("users", records, offset=0)  # overlapping pages count once
        meta = SnapshotMeta(estab="3281110", source="import", started_at=TAKEN)
        return writer.finish(meta, complete=True, stable=True)


def test_the_metadata_counts_the_records_each_path_was_dropped_from(tmp_path: Path) -> None:
    records = [
        {**PUPIL, "sourcedId": "x1", "Password": "pw-one", "metadata": {"pwd": "pw-two"}},
        {**PUPIL, "sourcedId": "x2", "Password": "pw-three"},
        {**PUPIL, "sourcedId": "x3", "sms": "07700 900123"},
    ]
    path = _write(tmp_path, records, ["users.sms"])
    with sqlite3.connect(path) as conn:
        dropped = json.loads(
            conn.execute("SELECT dropped_paths FROM snapshot_metadata").fetchone()[0]
        )
    assert dropped == {"users.Password": 2, "users.metadata.pwd": 1, "users.sms": 1}
    assert b"pw-" not in path.read_bytes() and b"07700" not in path.read_bytes()


def test_an_unknown_credential_like_field_gets_no_column_of_its_own(tmp_path: Path) -> None:
    path = _write(tmp_path, [{**PUPIL, "userPassword": "hunter2", "house": "Kestrel"}])
    with sqlite3.connect(path) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(users)")]
        (record,) = conn.execute("SELECT _record FROM users").fetchone()
    assert "house" in columns and "userPassword" not in columns
    assert "hunter2" not in record and b"hunter2" not in path.read_bytes()
