"""A snapshot taken by estab alone still knows its school's name, from the school's own orgs."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from helpers_fetch import ESTAB, FAST, RP, SECRET, fetch, metadata

from snapshotter.cli import cli
from snapshotter.fetch import fetch_snapshot
from snapshotter.model import COLLECTIONS


def _school_org(sim) -> dict:  # noqa: ANN001
    (school,) = [org for org in sim.records("orgs") if org["type"] == "school"]
    return school


def test_a_fetch_by_estab_records_the_one_school_orgs_name(sim_server, tmp_path: Path):
    sim = sim_server(pupils=60)
    school = _school_org(sim)
    assert school["identifier"] != ESTAB  # the path where no identifier matches
    outcome = fetch(sim, tmp_path)
    assert metadata(outcome.path)["school_name"] == school["name"]


def test_a_fetch_by_the_schools_own_identifier_records_its_name(sim_server, tmp_path: Path):
    probe = sim_server(pupils=60)
    identifier = _school_org(probe)["identifier"]
    sim = sim_server(pupils=60, clients={f"{RP}|{identifier}": SECRET})
    outcome = fetch_snapshot(sim.base_url, RP, identifier, SECRET, tmp_path, settings=FAST)
    assert metadata(outcome.path)["school_name"] == _school_org(sim)["name"]


def test_the_diff_report_names_the_school_not_the_estab(sim_server, tmp_path: Path):
    sim = sim_server(pupils=60)
    name = _school_org(sim)["name"]
    fetch(sim, tmp_path)
    sim.set_term(1)
    fetch(sim, tmp_path)
    result = CliRunner().invoke(cli, ["diff", "--archive", str(tmp_path), "--no-save"])
    assert result.exit_code == 0, result.output
    assert f"{name} (estab {ESTAB})" in result.stdout
    listed = CliRunner().invoke(cli, ["snapshots", "--archive", str(tmp_path), "--json"])
    assert {entry["school_name"] for entry in json.loads(listed.stdout)} == {name}


def _save(sim, directory: Path, extra_orgs: list[dict]) -> Path:  # noqa: ANN001
    directory.mkdir()
    for collection in COLLECTIONS:
        records = sim.records(collection) + (extra_orgs if collection == "orgs" else [])
        (directory / f"{collection}.json").write_text(json.dumps({collection: records}))
    return directory


def test_an_import_picks_the_org_whose_identifier_is_the_estab_among_several_schools(
    sim_server, tmp_path: Path
):
    sim = sim_server(pupils=60)
    school = _school_org(sim)
    neighbour = {
        "sourcedId": "xNEIGHBOUR",
        "status": "active",
        "dateLastModified": "2026-09-01T00:00:00.000Z",
        "name": "Neighbour Primary",
        "type": "school",
        "identifier": "9999999",
    }
    source = _save(sim, tmp_path / "saved", [neighbour])

    def imported(estab: str) -> str | None:
        args = ["import", str(source), "--estab", estab, "--archive", str(tmp_path / "archive")]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        return metadata(Path(result.stdout.splitlines()[-1]))["school_name"]

    assert imported(school["identifier"]) == school["name"]
    assert imported("9999999") == "Neighbour Primary"
    # Two schools and neither is the estab: no guess; the report names the estab instead.
    assert imported(ESTAB) is None


def test_a_name_given_on_the_command_line_wins_over_the_orgs(sim_server, tmp_path: Path):
    sim = sim_server(pupils=60)
    source = _save(sim, tmp_path / "saved", [])
    args = ["import", str(source), "--estab", ESTAB, "--school-name", "Given Name",
            "--archive", str(tmp_path / "archive")]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert metadata(Path(result.stdout.splitlines()[-1]))["school_name"] == "Given Name"
