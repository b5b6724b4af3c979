"""An archive whose path holds characters that mean something in a URI (`#`, `?`, `%`, a
space) works like any other: SQLite is given a properly encoded URI."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result
from helpers_fetch import ESTAB, RP, SECRET

from snapshotter.cli import cli


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(
        cli, list(map(str, args)), env={"SNAPSHOTTER_SECRET": SECRET}, catch_exceptions=False
    )


def test_fetch_snapshots_and_diff_work_in_an_archive_under_a_uri_like_name(
    sim_server,
    tmp_path: Path,  # noqa: ANN001
) -> None:
    sim = sim_server(pupils=30)
    archive = tmp_path / "a#b?c d%20" / "archive"
    fetch = ["fetch", "--base-url", sim.base_url, "--rp", RP, "--estab", ESTAB, "--quiet"]
    first = run(*fetch, "--archive", archive)
    assert first.exit_code == 0, first.output
    sim.set_term(1)
    second = run(*fetch, "--archive", archive)
    assert second.exit_code == 0, second.output

    listed = run("snapshots", "--archive", archive, "--json")
    assert listed.exit_code == 0, listed.output
    assert [Path(s["path"]) for s in json.loads(listed.stdout)] == [
        Path(first.stdout.strip()),
        Path(second.stdout.strip()),
    ]
    diffed = run("diff", "--archive", archive, "--format", "json")
    assert diffed.exit_code == 0, diffed.output
    report = json.loads(diffed.stdout)
    assert report["to"]["name"] == Path(second.stdout.strip()).stem
    assert report["summary"]["enrollments"]

    # Nothing was created outside the archive (the old URI opened, and made, ".../a").
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a#b?c d%20"]
    assert sorted(p.name for p in (tmp_path / "a#b?c d%20").iterdir()) == ["archive"]
