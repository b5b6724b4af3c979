"""Everyday mistakes get messages that say what is wrong and where, not the provider's fault."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from click.testing import CliRunner
from helpers_fetch import ESTAB, RP, tree

from snapshotter.cli import cli
from snapshotter.model import COLLECTIONS


def test_nothing_listening_at_the_base_url_fails_fast_naming_host_and_port(tmp_path: Path):
    # A socket bound but not listening: connecting to its port is refused, and no other
    # program can take the port while the test runs.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        base_url = f"http://127.0.0.1:{port}/api/ims/oneroster/v1p1/school"
        args = ["fetch", "--base-url", base_url, "--rp", RP, "--estab", ESTAB,
                "--archive", str(tmp_path / "archive")]  # fmt: skip
        result = CliRunner().invoke(cli, args, env={"SNAPSHOTTER_SECRET": "x"})
    assert result.exit_code == 1
    assert f"could not connect to 127.0.0.1:{port} (connection refused)" in result.stderr
    assert f"tried http://127.0.0.1:{port}/api/ims/oneroster/v1p1/school/auth/token" in (
        result.stderr
    )
    assert "2 times" in result.stderr  # one retry, not six with backoff
    assert "check --base-url" in result.stderr
    assert "overloaded" not in result.stderr
    assert not (tmp_path / "archive").exists()


def _saved(sim, directory: Path) -> Path:  # noqa: ANN001
    directory.mkdir()
    for collection in COLLECTIONS:
        records = sim.records(collection)
        (directory / f"{collection}.json").write_text(json.dumps({collection: records}))
    return directory


def test_a_garbage_file_given_to_import_is_named_with_what_is_wrong(sim_server, tmp_path: Path):
    source = _saved(sim_server(pupils=20), tmp_path / "saved")
    archive = tmp_path / "archive"
    cases = {
        b"garbage{": "not valid JSON at line 1, column 1",
        b"\xff\xfe{}": "not UTF-8 text",
        b"": "the file is empty",
        b'{"people": []}': "expected {\"users\": [...]} but got a JSON object with keys 'people'",
    }
    for content, problem in cases.items():
        (source / "users.json").write_bytes(content)
        args = ["import", str(source), "--estab", ESTAB, "--archive", str(archive)]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 1, (content, result.output)
        assert f"{source / 'users.json'} is not a saved users response: {problem}" in (
            result.stderr
        )
        assert "provider" not in result.stderr
        assert tree(archive) == {}


def test_sim_generate_changes_at_term_0_refuses_before_writing(tmp_path: Path):
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["sim", "generate", "--term", "0", "--changes",
                                      "--pupils", "20", "--out", str(out)])  # fmt: skip
    assert result.exit_code == 2
    assert "--changes needs --term 1 or more" in result.stderr
    assert not out.exists()
