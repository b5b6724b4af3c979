"""The snapshot writer on its own: names, dedupe, conflicts, unknown fields, cleanup."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from snapshotter.archive.layout import clean_stale_partials, read_snapshot_info
from snapshotter.archive.snapshot import (
    ConflictingRecordsError,
    SnapshotDataError,
    SnapshotMeta,
    SnapshotWriter,
)
from snapshotter.canonical import canonical_record, canonical_with_hash, comparable_record
from snapshotter.canonical import content_hash as record_hash
from snapshotter.model import ENTITIES, USERS
from snapshotter.sim.school import generate

TAKEN = datetime(2026, 9, 14, 6, 30, 5, tzinfo=UTC)
PUPIL = {"sourcedId": "xP1", "status": "active", "givenName": "Ann", "role": "student"}


def _finish(writer: SnapshotWriter) -> Path:
    meta = SnapshotMeta(estab="3281110", source="import", started_at=TAKEN)
    return writer.finish(meta, complete=True, stable=True)


def test_the_fast_path_hashes_exactly_as_the_canonical_functions_do() -> None:
    school = generate(seed=2, pupils=40)
    for entity in ENTITIES:
        for record in school[entity.collection]:
            canonical, fast_hash = canonical_with_hash(entity, record)
            assert canonical == canonical_record(entity, record)
            assert fast_hash == record_hash(comparable_record(entity, canonical))


def test_snapshot_names_are_unique_url_safe_and_sort_by_time(tmp_path: Path) -> None:
    first = _finish(SnapshotWriter(tmp_path, "3281110", started_at=TAKEN))
    second = _finish(SnapshotWriter(tmp_path, "3281110", started_at=TAKEN))
    assert first.name == "3281110_2026-09-14T063005Z.db"
    assert second.name == "3281110_2026-09-14T063005Z-2.db"
    assert read_snapshot_info(second).estab == "3281110"


def test_identical_repeats_are_kept_once_and_conflicts_refused(tmp_path: Path) -> None:
    with SnapshotWriter(tmp_path, "3281110") as writer:
        assert writer.save_records("users", [PUPIL], offset=0).inserted == 1
        again = writer.save_records("users", [dict(PUPIL, dateLastModified="x")], offset=1)
        assert (again.inserted, again.duplicates) == (0, 1)
        with pytest.raises(ConflictingRecordsError) as caught:
            writer.save_records("users", [dict(PUPIL, givenName="Anne")], offset=7)
        assert not caught.value.within_page and "offset 7" in str(caught.value)
        with pytest.raises(ConflictingRecordsError) as within:
            writer.save_records("users", [PUPIL, dict(PUPIL, givenName="Bo")], offset=9)
        assert within.value.within_page and "offset 10" in str(within.value)
        with pytest.raises(SnapshotDataError, match="offset 4: a record has no sourcedId"):
            writer.save_records("users", [{"status": "active"}], offset=4)
        with pytest.raises(SnapshotDataError, match="offset 5: a record's sourcedId is 42, not"):
            writer.save_records("users", [dict(PUPIL, sourcedId=42)], offset=5)


def test_unknown_fields_get_columns_without_clashing_with_known_ones(tmp_path: Path) -> None:
    with SnapshotWriter(tmp_path, "3281110") as writer:
        odd = dict(PUPIL, pronouns="she/her", Status="x", _record="y")
        writer.save_records("users", [odd])
        path = _finish(writer)
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT pronouns, status, _record FROM users").fetchone()
    assert row[0] == "she/her" and row[1] == "active" and '"Status":"x"' in row[2]


def test_an_aborted_snapshot_leaves_no_file_and_no_new_directory(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    with SnapshotWriter(archive, "3281110") as writer:
        writer.save_records("users", [PUPIL])
    assert not archive.exists()


def test_a_temporary_file_of_a_dead_process_is_cleaned_up(tmp_path: Path) -> None:
    school = tmp_path / "3281110"
    school.mkdir()
    dead = school / ".3281110_2026-09-14T063005Z.abcd.999999999.partial"
    alive = school / f".3281110_2026-09-14T063005Z.abcd.{os.getppid()}.partial"
    dead.write_bytes(b"x")
    alive.write_bytes(b"x")
    assert clean_stale_partials(school) == [dead]
    assert alive.exists()


def test_password_is_not_a_column_and_drop_fields_are_not_stored(tmp_path: Path) -> None:
    with SnapshotWriter(tmp_path, "3281110", drop_fields=["users.sms"]) as writer:
        writer.save_records("users", [dict(PUPIL, password="pw", sms="07700")])
        path = _finish(writer)
    with sqlite3.connect(path) as conn:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(users)")]
        record = conn.execute("SELECT _record, sms FROM users").fetchone()
    assert "password" not in columns and record[1] is None
    assert "pw" not in record[0] and "07700" not in record[0]
    assert USERS.never_store == {"password"}
