"""`snapshotter fetch` on the command line: secrets, output, exit statuses, several schools."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers_fetch import ESTAB, RP, SECRET, metadata, tree

from snapshotter.cli import cli
from snapshotter.sim.quirks import Quirks

FAST_OPTIONS = ["--page-size", "40", "--concurrency", "4", "--timeout", "2"]


def _run(args: list[str], env: dict[str, str] | None = None, **kw):  # noqa: ANN003, ANN202
    runner = CliRunner()
    return runner.invoke(cli, args, env={"SNAPSHOTTER_SECRET": "", **(env or {})}, **kw)


def _fetch_args(sim, archive: Path, *extra: str) -> list[str]:  # noqa: ANN001
    return ["fetch", "--base-url", sim.base_url, "--rp", RP, "--estab", ESTAB,
            "--archive", str(archive), *FAST_OPTIONS, *extra]  # fmt: skip


def test_fetch_prints_the_new_snapshots_path_as_the_last_line(sim_server, tmp_path: Path):
    sim = sim_server(pupils=60)
    result = _run(_fetch_args(sim, tmp_path), env={"SNAPSHOTTER_SECRET": SECRET})
    assert result.exit_code == 0, result.output
    path = Path(result.stdout.splitlines()[-1])
    assert path.is_file() and path.parent == tmp_path / ESTAB
    assert metadata(path)["complete"] == 1
    assert "enrollments 725/725" in result.stderr  # one progress line per endpoint


def test_quiet_prints_only_the_path(sim_server, tmp_path: Path):
    sim = sim_server(pupils=60)
    result = _run(_fetch_args(sim, tmp_path, "--quiet"), env={"SNAPSHOTTER_SECRET": SECRET})
    assert result.exit_code == 0
    assert result.stderr == "" and len(result.stdout.splitlines()) == 1


def test_the_secret_can_come_from_a_file(sim_server, tmp_path: Path):
    sim = sim_server(pupils=60)
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    result = _run(_fetch_args(sim, tmp_path / "a", "--secret-file", str(secret_file), "-q"))
    assert result.exit_code == 0, result.output


def test_the_secret_is_never_a_command_line_argument(sim_server, tmp_path: Path):
    sim = sim_server(pupils=60)
    result = _run(_fetch_args(sim, tmp_path, "--secret", SECRET))
    assert result.exit_code == 2 and "No such option" in result.stderr


def test_without_a_secret_or_a_terminal_fetch_says_where_to_put_one(sim_server, tmp_path: Path):
    sim = sim_server(pupils=60)
    result = _run(_fetch_args(sim, tmp_path))
    assert result.exit_code == 2
    assert "SNAPSHOTTER_SECRET" in result.stderr and "--secret-file" in result.stderr
    assert sim.request_log == []


def test_a_bad_secret_exits_2_with_the_providers_message(sim_server, tmp_path: Path):
    sim = sim_server(pupils=60)
    result = _run(_fetch_args(sim, tmp_path), env={"SNAPSHOTTER_SECRET": "wrong"})
    assert result.exit_code == 2
    assert "Request contains an invalid client ID or secret" in result.stderr
    assert result.stdout == "" and tree(tmp_path) == {}


def test_a_forbidden_endpoint_exits_1_naming_it(sim_server, tmp_path: Path):
    sim = sim_server(pupils=60, quirks=Quirks(forbidden=frozenset({"classes"})))
    result = _run(_fetch_args(sim, tmp_path), env={"SNAPSHOTTER_SECRET": SECRET})
    assert result.exit_code == 1
    assert "classes at offset 0: HTTP 403" in result.stderr
    assert "Nothing was added to the archive" in result.stderr
    assert result.stdout == "" and tree(tmp_path) == {}


def test_allow_partial_keeps_the_snapshot_exits_3_and_prints_its_path(sim_server, tmp_path: Path):
    sim = sim_server(pupils=60, quirks=Quirks(forbidden=frozenset({"classes"})))
    args = _fetch_args(sim, tmp_path, "--allow-partial")
    result = _run(args, env={"SNAPSHOTTER_SECRET": SECRET})
    assert result.exit_code == 3
    assert "INCOMPLETE" in result.stderr and "classes" in result.stderr
    assert metadata(Path(result.stdout.splitlines()[-1]))["complete"] == 0


def test_an_unstable_collection_exits_1_and_says_why(sim_server, tmp_path: Path):
    quirks = Quirks(drift_endpoint="users", drift_remove_per_page=1)
    sim = sim_server(pupils=60, quirks=quirks)
    result = _run(_fetch_args(sim, tmp_path), env={"SNAPSHOTTER_SECRET": SECRET})
    assert result.exit_code == 1
    assert "users: not stable after 3 attempts" in result.stderr
    assert tree(tmp_path) == {}


def test_drop_field_is_applied_and_recorded(sim_server, tmp_path: Path):
    sim = sim_server(pupils=60)
    args = _fetch_args(sim, tmp_path, "--drop-field", "users.email", "-q")
    result = _run(args, env={"SNAPSHOTTER_SECRET": SECRET})
    path = Path(result.stdout.strip())
    assert metadata(path)["drop_fields"] == '["users.email"]'
    assert b"@pupils." not in path.read_bytes()
    bad = _run(_fetch_args(sim, tmp_path, "--drop-field", "pupils.email"),
               env={"SNAPSHOTTER_SECRET": SECRET})  # fmt: skip
    assert bad.exit_code == 2 and "COLLECTION.FIELD" in bad.stderr


CONFIG = """
archive = "archive"
drop_fields = ["users.sms"]

[[school]]
name = "Quarrendon Academy"
rp = "partner-rp"
estab = "3281110"
secret_env = "QUARRENDON_SECRET"
base_url = "{base_url}"

[[school]]
name = "Second School"
rp = "partner-rp"
estab = "4000001"
secret_env = "SECOND_SECRET"
base_url = "{base_url}"

[[school]]
name = "No Secret School"
rp = "partner-rp"
estab = "4000002"
secret_env = "MISSING_SECRET"
base_url = "{base_url}"
"""


@pytest.fixture
def two_school_sim(sim_server):  # noqa: ANN001, ANN201
    clients = {"partner-rp|3281110": SECRET, "partner-rp|4000001": "second-secret"}
    return sim_server(pupils=60, clients=clients)


def test_fetch_all_snapshots_every_school_and_one_failure_stops_no_other(
    two_school_sim, tmp_path: Path
):
    config = tmp_path / "snapshotter.toml"
    config.write_text(CONFIG.format(base_url=two_school_sim.base_url))
    env = {"QUARRENDON_SECRET": SECRET, "SECOND_SECRET": "second-secret", "SNAPSHOTTER_ARCHIVE": ""}
    result = _run(["fetch", "--all", "--config", str(config), *FAST_OPTIONS, "-q"], env=env)
    assert result.exit_code == 2  # one school had no secret
    assert "No Secret School: $MISSING_SECRET is not set" in result.stderr
    paths = [Path(line) for line in result.stdout.splitlines()]
    assert sorted(p.parent.name for p in paths) == ["3281110", "4000001"]
    assert all(p.parent.parent == tmp_path / "archive" for p in paths)  # relative to the file
    names = {metadata(p)["school_name"] for p in paths}
    assert names == {"Quarrendon Academy", "Second School"}
    assert all(metadata(p)["drop_fields"] == '["users.sms"]' for p in paths)


def test_fetch_school_picks_one_from_the_config(two_school_sim, tmp_path: Path):
    config = tmp_path / "snapshotter.toml"
    config.write_text(CONFIG.format(base_url=two_school_sim.base_url))
    env = {"SECOND_SECRET": "second-secret", "SNAPSHOTTER_ARCHIVE": ""}
    args = ["fetch", "--school", "Second School", "--config", str(config), *FAST_OPTIONS, "-q"]
    result = _run(args, env=env)
    assert result.exit_code == 0, result.output
    assert Path(result.stdout.strip()).parent.name == "4000001"


def test_an_unwritable_archive_fails_with_a_message_not_a_traceback(sim_server, tmp_path: Path):
    sim = sim_server(pupils=60)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = _run(_fetch_args(sim, blocker / "archive"), env={"SNAPSHOTTER_SECRET": SECRET})
    assert result.exit_code == 1 and "Error:" in result.stderr
    assert "Traceback" not in result.output
