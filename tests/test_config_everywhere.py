"""The config file's `archive` is where every command looks, and its secrets are named."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from helpers_fetch import ESTAB, RP, SECRET

from snapshotter.cli import cli

FAST_OPTIONS = ["--page-size", "40", "--concurrency", "4", "--timeout", "2"]
CONFIG = f"""
archive = "store"

[[school]]
name = "Brook Primary"
rp = "{RP}"
estab = "{ESTAB}"
secret_env = "BROOK_SECRET"
base_url = "{{base_url}}"
"""
NO_ENV = {"SNAPSHOTTER_SECRET": "", "SNAPSHOTTER_ARCHIVE": "", "BROOK_SECRET": ""}


def _run(args: list[str], **env: str):  # noqa: ANN003, ANN202
    return CliRunner().invoke(cli, args, env={**NO_ENV, **env})


def test_snapshots_and_diff_find_what_fetch_all_wrote_through_the_default_config(
    sim_server, tmp_path: Path, monkeypatch
):
    sim = sim_server(pupils=60)
    (tmp_path / "snapshotter.toml").write_text(CONFIG.format(base_url=sim.base_url))
    monkeypatch.chdir(tmp_path)
    for term in (0, 1):
        sim.set_term(term)
        fetched = _run(["fetch", "--all", *FAST_OPTIONS, "-q"], BROOK_SECRET=SECRET)
        assert fetched.exit_code == 0, fetched.output
    listed = _run(["snapshots", "--json"])
    assert listed.exit_code == 0, listed.output
    entries = json.loads(listed.stdout)
    assert len(entries) == 2
    assert all(Path(e["path"]).resolve().parent.parent == tmp_path / "store" for e in entries)
    diffed = _run(["diff", "--no-save"])
    assert diffed.exit_code == 0, diffed.output
    assert "Brook Primary" in diffed.stdout


def test_snapshots_diff_and_import_take_config(sim_server, tmp_path: Path):
    sim = sim_server(pupils=60)
    config = tmp_path / "elsewhere.toml"
    config.write_text(CONFIG.format(base_url=sim.base_url))
    for term in (0, 1):
        sim.set_term(term)
        args = ["fetch", "--all", "--config", str(config), *FAST_OPTIONS, "-q"]
        assert _run(args, BROOK_SECRET=SECRET).exit_code == 0
    listed = _run(["snapshots", "--config", str(config), "--json"])
    assert listed.exit_code == 0, listed.output
    assert len(json.loads(listed.stdout)) == 2
    diffed = _run(["diff", "--config", str(config)])
    assert diffed.exit_code == 0, diffed.output
    assert (tmp_path / "store" / "changes.db").is_file()

    saved = tmp_path / "saved"
    saved.mkdir()
    for collection in ("orgs", "academicSessions", "courses", "classes", "users", "enrollments"):
        records = sim.records(collection)
        (saved / f"{collection}.json").write_text(json.dumps({collection: records}))
    imported = _run(["import", str(saved), "--estab", ESTAB, "--config", str(config)])
    assert imported.exit_code == 0, imported.output
    assert Path(imported.stdout.splitlines()[-1]).parent.parent == tmp_path / "store"


def test_a_configured_school_without_its_secret_names_its_variable(sim_server, tmp_path: Path):
    sim = sim_server(pupils=60)
    config = tmp_path / "snapshotter.toml"
    config.write_text(CONFIG.format(base_url=sim.base_url))
    result = _run(["fetch", "--school", "Brook Primary", "--config", str(config)])
    assert result.exit_code == 2
    assert "no shared secret for Brook Primary: set BROOK_SECRET" in result.stderr
    assert not (tmp_path / "store").exists()


def test_snapshots_of_an_archive_that_does_not_exist_says_so_and_exits_1(tmp_path: Path):
    missing = tmp_path / "no-such-archive"
    result = _run(["snapshots", "--archive", str(missing)])
    assert result.exit_code == 1
    assert f"there is no archive at {missing}: no such directory" in result.stderr
    assert not missing.exists()


def test_diff_on_an_archive_that_does_not_exist_says_so(tmp_path: Path):
    missing = tmp_path / "no-such-archive"
    result = _run(["diff", "--archive", str(missing)])
    assert result.exit_code == 1
    assert f"there is no archive at {missing}: no such directory" in result.stderr
    assert not missing.exists()
