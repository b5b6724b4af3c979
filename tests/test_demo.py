"""`snapshotter demo`: the whole job, end to end, against the built-in simulated school."""

from __future__ import annotations

import email
import email.policy
import os
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from snapshotter.cli import cli
from snapshotter.demo import DEMO_MARKER


def test_the_demo_snapshots_advances_diffs_saves_and_prints_the_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_archive = tmp_path / "real-archive"
    runner = CliRunner(env={"SNAPSHOTTER_ARCHIVE": str(real_archive)})
    cwd = tmp_path / "work"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # the demo's default archive is relative to where it runs
    result = runner.invoke(cli, ["demo", "--no-serve", "--pupils", "150"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    archive = Path(cwd) / "demo-archive"
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Simulated Xporter server for ")
    assert "(150 pupils) at http://127.0.0.1:" in lines[0]
    assert lines[1].startswith("Snapshot of term 0: ")
    assert any(line.startswith("Snapshot of term 1: ") for line in lines)
    assert any(line.startswith("Changes for ") for line in lines)
    assert any("users removed" in line for line in lines)
    assert (
        '  snapshotter diff --archive demo-archive --term "Autumn 2026" --term "Spring 2027" '
        "--limit 0" in lines
    )
    snapshots = sorted((archive / "3281110").glob("*.db"))
    assert len(snapshots) == 2
    with sqlite3.connect(archive / "changes.db") as conn:
        assert conn.execute("SELECT count(*) FROM diff_runs").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM changed_records").fetchone()[0] > 0
    # Its digest is in the archive, as the demo says, and names nobody (the default detail).
    (eml,) = archive.glob("digest-run-*.eml")
    assert (
        f"Its email digest (text and HTML, sourcedIds and no names): demo-archive/{eml.name}"
        in lines
    )
    digest = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert digest["Subject"].startswith("Fallowmere Academy: ")
    assert "(Autumn 2026 → Spring 2027)" in digest["Subject"]
    assert digest.get_body(preferencelist=("html",)) is not None
    # The full report is one command away, as the demo says.
    full = runner.invoke(cli, ["diff", "--archive", "demo-archive", "--no-save", "--limit", "0"])
    assert full.exit_code == 0
    assert "… and " in result.stdout and "… and " not in full.stdout
    assert not real_archive.exists()


def test_three_terms_include_the_year_rollover_and_say_it_is_expected(tmp_path: Path) -> None:
    archive = tmp_path / "demo"
    result = CliRunner().invoke(
        cli,
        ["demo", "--no-serve", "--pupils", "150", "--terms", "3", "--archive", str(archive)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "moved on 3 terms (a new school year)" in result.stdout
    assert "expected, the new snapshot is in a new school year (2027/28)" in result.stdout
    assert "… and " in result.stdout  # long sections show a few examples


def test_the_demo_refuses_a_directory_that_is_not_its_own(tmp_path: Path) -> None:
    real = tmp_path / "archive"
    real.mkdir()
    (real / "changes.db").write_bytes(b"")
    result = CliRunner().invoke(
        cli, ["demo", "--no-serve", "--pupils", "150", "--archive", str(real)]
    )
    assert result.exit_code == 1
    assert "never writes into a real archive" in result.stderr
    assert os.listdir(real) == ["changes.db"]


def test_the_demo_runs_again_in_its_own_archive(tmp_path: Path) -> None:
    archive = tmp_path / "demo"
    for _ in range(2):
        result = CliRunner().invoke(
            cli,
            ["demo", "--no-serve", "--pupils", "150", "--archive", str(archive)],
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.output
    assert (archive / DEMO_MARKER).is_file()
    assert len(list((archive / "3281110").glob("*.db"))) == 4
