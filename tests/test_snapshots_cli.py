"""`snapshotter snapshots`: what the archive holds, for people and for programs."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from helpers_fetch import fetch

from snapshotter.cli import cli
from snapshotter.sim.quirks import Quirks


def test_snapshots_lists_each_snapshot_with_counts_and_completeness(sim_server, tmp_path: Path):
    sim = sim_server(pupils=60)
    good = fetch(sim, tmp_path, school_name="Quarrendon Academy")
    sim.quirks = Quirks(forbidden=frozenset({"users"}))
    partial = fetch(sim, tmp_path, allow_partial=True)

    listed = CliRunner().invoke(cli, ["snapshots", "--archive", str(tmp_path), "--json"])
    assert listed.exit_code == 0
    entries = json.loads(listed.stdout)
    assert [e["path"] for e in entries] == [str(good.path), str(partial.path)]
    assert entries[0]["complete"] and not entries[1]["complete"]
    assert entries[0]["record_counts"]["enrollments"] == 725
    assert entries[0]["school_name"] == "Quarrendon Academy"
    assert entries[0]["size_bytes"] == good.path.stat().st_size
    assert len(entries[0]["content_hash"]) == 64

    table = CliRunner().invoke(cli, ["snapshots", "--archive", str(tmp_path)])
    assert "Quarrendon Academy" in table.stdout and "INCOMPLETE" in table.stdout
    assert "enrollments=725" in table.stdout and str(good.path) in table.stdout


def test_an_empty_archive_lists_nothing(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["snapshots", "--archive", str(tmp_path), "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout) == []
