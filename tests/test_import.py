"""`snapshotter import`: saved responses replayed through the same path as a live fetch."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from helpers_fetch import ESTAB, fetch, metadata, server_truth, stored, tree

from snapshotter.cli import cli
from snapshotter.model import COLLECTIONS
from snapshotter.sim.school import SYNTHETIC_PASSWORD


def _save_responses(sim, directory: Path) -> Path:  # noqa: ANN001
    """Half the collections as API envelopes, half as one record a line."""
    directory.mkdir()
    for index, collection in enumerate(COLLECTIONS):
        records = sim.records(collection)
        if index % 2 == 0:
            lines = "".join(json.dumps(r) + "\n" for r in records)
            (directory / f"{collection}.ndjson").write_text(lines)
        else:
            (directory / f"{collection}.json").write_text(json.dumps({collection: records}))
    return directory


def _import(*args: str):  # noqa: ANN202
    return CliRunner().invoke(cli, ["import", *args])


def test_an_import_holds_the_same_content_as_a_fetch_of_the_same_data(sim_server, tmp_path: Path):
    sim = sim_server(pupils=60)
    fetched = fetch(sim, tmp_path / "fetched")
    source = _save_responses(sim, tmp_path / "saved")
    result = _import(str(source), "--estab", ESTAB, "--archive", str(tmp_path / "imported"))
    assert result.exit_code == 0, result.output
    path = Path(result.stdout.splitlines()[-1])
    assert stored(path) == server_truth(sim)
    row = metadata(path)
    assert row["source"] == "import" and row["complete"] == 1
    assert row["content_hash"] == metadata(fetched.path)["content_hash"]
    # The path of what was left out is recorded, never the value.
    assert SYNTHETIC_PASSWORD.encode() not in path.read_bytes()
    assert row["dropped_paths"] == metadata(fetched.path)["dropped_paths"]
    assert json.loads(row["dropped_paths"]) == {"users.password": _with_password(sim)}


def _with_password(sim) -> int:  # noqa: ANN001
    return sum("password" in user for user in sim.records("users"))


def test_a_missing_collection_fails_unless_partial_is_allowed(sim_server, tmp_path: Path):
    source = _save_responses(sim_server(pupils=60), tmp_path / "saved")
    (source / "users.ndjson").unlink()
    archive = tmp_path / "archive"
    refused = _import(str(source), "--estab", ESTAB, "--archive", str(archive))
    assert refused.exit_code == 1 and "no saved responses for users" in refused.stderr
    assert tree(archive) == {}
    kept = _import(str(source), "--estab", ESTAB, "--archive", str(archive), "--allow-partial")
    assert kept.exit_code == 0
    assert metadata(Path(kept.stdout.strip()))["complete"] == 0


def test_a_bad_record_fails_naming_the_file_and_the_record(sim_server, tmp_path: Path):
    source = _save_responses(sim_server(pupils=60), tmp_path / "saved")
    lines = (source / "users.ndjson").read_text().splitlines()
    record = json.loads(lines[5])
    del record["sourcedId"]
    lines[5] = json.dumps(record)
    (source / "users.ndjson").write_text("\n".join(lines))
    result = _import(str(source), "--estab", ESTAB, "--archive", str(tmp_path / "archive"))
    assert result.exit_code == 1
    assert "users.ndjson: users at offset 5: a record has no sourcedId" in result.stderr
    assert tree(tmp_path / "archive") == {}


def test_a_wrong_envelope_in_a_saved_file_is_refused(sim_server, tmp_path: Path):
    source = _save_responses(sim_server(pupils=60), tmp_path / "saved")
    (source / "classes.json").write_text(json.dumps({"class": []}))
    result = _import(str(source), "--estab", ESTAB, "--archive", str(tmp_path / "archive"))
    assert (
        result.exit_code == 1
        and 'classes.json is not a saved classes response: expected {"classes": [...]}'
        in result.stderr
    )


def _school_source(directory: Path, repeat: int = 3) -> Path:
    """Saved responses without a server (so this process has no threads and may fork)."""
    from snapshotter.sim.school import generate

    school = generate(seed=3, pupils=60)
    directory.mkdir()
    for collection in COLLECTIONS:
        records = school[collection]
        if collection == "enrollments":
            records = [
                dict(r, sourcedId=f"{r['sourcedId']}-{n}") for n in range(repeat) for r in records
            ]
        with open(directory / f"{collection}.ndjson", "w") as out:
            out.writelines(json.dumps(r) + "\n" for r in records)
    return directory


def test_a_big_file_imported_by_worker_processes_gives_the_sequential_result(
    tmp_path: Path, monkeypatch
):
    from snapshotter import importer

    source = _school_source(tmp_path / "saved")
    sequential = importer.import_snapshot(source, ESTAB, tmp_path / "one")
    monkeypatch.setattr(importer, "PARALLEL_FROM_BYTES", 0)
    monkeypatch.setattr(importer, "CHUNK_BYTES", 20_000)  # many chunks
    parallel = importer.import_snapshot(source, ESTAB, tmp_path / "many")
    assert stored(parallel) == stored(sequential)
    assert metadata(parallel)["content_hash"] == metadata(sequential)["content_hash"]
    assert metadata(parallel)["endpoints"] != metadata(sequential)["endpoints"]  # pages differ


def test_worker_processes_report_bad_records_at_their_place_in_the_file(
    tmp_path: Path, monkeypatch
):
    from snapshotter import importer

    source = _school_source(tmp_path / "saved")
    path = source / "enrollments.ndjson"
    lines = path.read_text().splitlines()
    conflicting = json.loads(lines[10])
    conflicting["role"] = "teacher" if conflicting["role"] != "teacher" else "student"
    lines[1500] = json.dumps(conflicting)
    path.write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(importer, "PARALLEL_FROM_BYTES", 0)
    monkeypatch.setattr(importer, "CHUNK_BYTES", 20_000)
    result = _import(str(source), "--estab", ESTAB, "--archive", str(tmp_path / "archive"))
    assert result.exit_code == 1
    assert "two different records share sourcedId" in result.stderr
    assert tree(tmp_path / "archive") == {}
    broken = json.loads(lines[2000])
    del broken["sourcedId"]
    lines[1500] = json.dumps(json.loads(lines[11]))  # restore a harmless (repeated) line
    lines[2000] = json.dumps(broken)
    path.write_text("\n".join(lines) + "\n")
    again = _import(str(source), "--estab", ESTAB, "--archive", str(tmp_path / "archive"))
    assert "enrollments.ndjson: enrollments at offset 2000: a record has no sourcedId" in (
        again.stderr
    )
