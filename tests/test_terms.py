"""`--term` and the school year a report prints agree; the README's examples work on the demo."""

from __future__ import annotations

import json
import re
import shlex
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers_fetch import fetch, metadata

from snapshotter.cli import cli

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def _at(moment: datetime):  # noqa: ANN202
    return lambda: moment


def test_a_snapshot_the_report_puts_in_a_school_year_is_found_by_that_years_title(
    sim_server, tmp_path: Path
):
    # Both taken in December 2026 (inside Autumn 2026 by date), the second of the school as it
    # is after the rollover: its data, and so its report, is in 2027/28.
    sim = sim_server(pupils=60)
    old = fetch(sim, tmp_path, clock=_at(datetime(2026, 12, 1, 8, tzinfo=UTC)))
    sim.set_term(3)
    new = fetch(sim, tmp_path, clock=_at(datetime(2026, 12, 2, 8, tzinfo=UTC)))
    args = ["diff", "--archive", str(tmp_path), "--no-save", "--format", "json"]
    report = json.loads(CliRunner().invoke(cli, args).stdout)
    assert (report["from"]["school_year"], report["to"]["school_year"]) == ("2026/27", "2027/28")

    by_year = CliRunner().invoke(cli, [*args, "previous", "2027/28"])
    assert by_year.exit_code == 0, by_year.output
    assert json.loads(by_year.stdout)["to"]["path"] == str(new.path)
    by_years = CliRunner().invoke(cli, [*args, "--term", "2026/27", "--term", "2027/28"])
    assert by_years.exit_code == 0, by_years.output
    assert json.loads(by_years.stdout)["from"]["path"] == str(old.path)


def _readme_diff_examples() -> list[list[str]]:
    """Every `snapshotter diff` command in the README's bash blocks that names no file."""
    examples = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words[:2] == ["snapshotter", "diff"] and not any(".db" in w for w in words):
                examples.append(words[2:])
    return examples


@pytest.fixture(scope="module")
def demo_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's demo runs: `snapshotter demo --no-serve`, then again with `--terms 3`."""
    archive = tmp_path_factory.mktemp("demo") / "demo-archive"
    for extra in ([], ["--terms", "3"]):
        args = ["demo", "--no-serve", "--pupils", "150", "--archive", str(archive), *extra]
        result = CliRunner().invoke(cli, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
    return archive


def test_the_demo_stamps_its_snapshots_with_the_simulated_schools_dates(demo_archive: Path):
    names = sorted(p.name for p in (demo_archive / "3281110").glob("*.db"))
    assert names == [
        "3281110_2026-10-15T060000Z.db",  # Autumn 2026, first run
        "3281110_2026-10-15T060100Z.db",  # Autumn 2026, a minute later on the second run
        "3281110_2027-02-10T060000Z.db",  # Spring 2027
        "3281110_2027-10-15T060000Z.db",  # Autumn 2027, after the rollover
    ]
    for path in (demo_archive / "3281110").glob("*.db"):
        row = metadata(path)
        assert row["source"] == "demo (simulated clock)"
        assert row["started_at"][:10] == path.stem.split("_")[1][:10]
        assert row["finished_at"] >= row["started_at"]


@pytest.mark.parametrize("example", _readme_diff_examples(), ids=shlex.join)
def test_every_readme_diff_example_works_on_the_demo_archive(
    demo_archive: Path, example: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)  # `--output report.md` lands here
    env = {"SNAPSHOTTER_ARCHIVE": str(demo_archive)}
    result = CliRunner().invoke(cli, ["diff", *example, "--no-save"], env=env)
    assert result.exit_code == 0, result.output


def test_the_readme_names_its_diff_examples(demo_archive: Path):
    examples = [shlex.join(words) for words in _readme_diff_examples()]
    assert "previous 2027/28" in examples
    assert "--term 'Autumn 2026' --term 'Spring 2027'" in examples
    with sqlite3.connect(demo_archive / "changes.db") as conn:
        assert conn.execute("SELECT count(*) FROM diff_runs").fetchone()[0] == 2
