"""The provider's own words reach stderr shown, not obeyed: an error description holding escape
codes cannot clear the terminal, and one holding a newline cannot forge a line of output."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner, Result
from helpers_fetch import ESTAB, RP, SECRET

from snapshotter.cli import cli
from snapshotter.sim.quirks import PageFault, Quirks

FAST_OPTIONS = ["--page-size", "40", "--concurrency", "4", "--timeout", "2"]
# What a hostile (or broken) provider says about a refused request.
SAID = "bad\x1b[2J\x1b]0;owned\x07 request\nError: forged line\u202e"
SHOWN = "bad\\x1b[2J\\x1b]0;owned\\x07 request\\nError: forged line\\u202e"
CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _fetch(sim, archive: Path, *extra: str) -> Result:  # noqa: ANN001
    args = ["fetch", "--base-url", sim.base_url, "--rp", RP, "--estab", ESTAB,
            "--archive", str(archive), *FAST_OPTIONS, *extra]  # fmt: skip
    return CliRunner().invoke(cli, args, env={"SNAPSHOTTER_SECRET": SECRET})


def assert_shown_not_obeyed(stderr: str) -> None:
    assert CONTROL.search(stderr) is None, stderr
    assert SHOWN in stderr
    assert not any(line.startswith("Error: forged") for line in stderr.splitlines())


def test_a_providers_error_description_is_escaped_on_stderr(sim_server, tmp_path: Path) -> None:
    fault = PageFault("users", "400", times=1000, description=SAID)
    sim = sim_server(pupils=60, quirks=Quirks(faults=(fault,)))
    result = _fetch(sim, tmp_path)
    assert result.exit_code == 1, result.output
    assert "users at offset 0" in result.stderr
    assert_shown_not_obeyed(result.stderr)


def test_a_token_refusal_is_escaped_on_stderr(sim_server, tmp_path: Path) -> None:
    fault = PageFault("token", "401", times=1000, description=SAID)
    sim = sim_server(pupils=60, quirks=Quirks(faults=(fault,)))
    result = _fetch(sim, tmp_path)
    assert result.exit_code == 2, result.output
    assert_shown_not_obeyed(result.stderr)


def test_a_partial_snapshots_reason_is_escaped_by_fetch_and_by_diff(
    sim_server, tmp_path: Path
) -> None:
    sim = sim_server(pupils=60)
    complete = _fetch(sim, tmp_path, "-q")
    assert complete.exit_code == 0, complete.output
    sim.quirks = Quirks(faults=(PageFault("classes", "400", times=1000, description=SAID),))
    partial = _fetch(sim, tmp_path, "--allow-partial")  # progress notes and the warning
    assert partial.exit_code == 3, partial.output
    assert "INCOMPLETE" in partial.stderr
    assert_shown_not_obeyed(partial.stderr)
    # The reason is kept in the snapshot; the diff that refuses it quotes it (a click error).
    old, new = complete.stdout.strip(), partial.stdout.splitlines()[-1]
    refused = CliRunner().invoke(cli, ["diff", old, new, "--archive", str(tmp_path)])
    assert refused.exit_code == 1 and "is incomplete" in refused.stderr
    assert_shown_not_obeyed(refused.stderr)


def test_fetch_all_escapes_each_schools_error(sim_server, tmp_path: Path) -> None:
    fault = PageFault("users", "400", times=1000, description=SAID)
    sim = sim_server(pupils=60, quirks=Quirks(faults=(fault,)))
    config = tmp_path / "snapshotter.toml"
    config.write_text(
        f'[[school]]\nname = "Quarrendon Academy"\nrp = "{RP}"\nestab = "{ESTAB}"\n'
        f'secret_env = "QUARRENDON_SECRET"\nbase_url = "{sim.base_url}"\n'
    )
    env = {"QUARRENDON_SECRET": SECRET, "SNAPSHOTTER_ARCHIVE": str(tmp_path / "archive")}
    args = ["fetch", "--all", "--config", str(config), *FAST_OPTIONS, "-q"]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 1, result.output
    assert "Error: Quarrendon Academy: users at offset 0" in result.stderr
    assert_shown_not_obeyed(result.stderr)
