"""The simulator's UPNs are real, and its planted data problems cover every rule of `check`."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from click.testing import CliRunner
from stdnum.gb import upn

from snapshotter.cli import cli
from snapshotter.quality.rules import RULES
from snapshotter.sim.problems import PROBLEMS_FILE, planted_problems
from snapshotter.sim.school import generate, people_changes


def _upns(school: dict) -> dict[str, str]:
    return {
        user["sourcedId"]: entry["identifier"]
        for user in school["users"]
        for entry in user.get("userIds", [])
        if entry["type"] == "UPN"
    }


def test_every_pupil_has_a_valid_upn_of_their_own_that_stays_theirs() -> None:
    before = generate(pupils=300, term=0)
    pupils = [u for u in before["users"] if u["role"] == "student"]
    upns = _upns(before)
    assert set(upns) == {u["sourcedId"] for u in pupils}
    assert all(upn.is_valid(value) for value in upns.values())
    assert len(set(upns.values())) == len(upns)
    for term in (1, 3):  # the next term, and the first rollover
        later = _upns(generate(pupils=300, term=term))
        assert all(upn.is_valid(value) for value in later.values())
        assert len(set(later.values())) == len(later)
        corrected = people_changes(seed=1, pupils=300, term=term).identity_changes
        if term == 1:
            kept = {sid for sid in upns if sid in later and sid not in corrected}
            assert kept and all(later[sid] == upns[sid] for sid in kept)


def test_a_planted_school_holds_a_problem_of_every_rule() -> None:
    truth = planted_problems(pupils=120, term=0)
    assert set(truth) == {rule.id for rule in RULES}
    assert all(truth.values())


def test_sim_generate_writes_the_planted_ground_truth_beside_the_data(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["sim", "generate", "--pupils", "120", "--out", str(tmp_path), "--plant-problems"]
    )
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / PROBLEMS_FILE).read_text())
    assert written == planted_problems(pupils=120, term=0)
    users = json.loads((tmp_path / "users.json").read_text())["users"]
    assert any(u["sourcedId"] in written["teacher-without-classes"] for u in users)


def test_sim_serve_plants_problems_and_tells_their_truth(sim_server) -> None:
    sim = sim_server(pupils=120, plant_problems=True)
    truth = httpx.get(f"{sim.root_url}/_sim/problems").json()
    assert truth == planted_problems(pupils=120, term=0)
    plain = sim_server(pupils=120)
    assert httpx.get(f"{plain.root_url}/_sim/problems").json() == {}
