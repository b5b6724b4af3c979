"""`snapshotter run`: the nightly job over two simulated schools, with a real SMTP server on
loopback for the digests and the operator's alerts."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from helpers_diff import write_snapshot
from helpers_fetch import ESTAB, RP, SECRET
from helpers_serve import get
from helpers_smtp import Mailbox, smtp_server

from snapshotter.archive.layout import list_archive
from snapshotter.archive.locks import RUN_LOCK, hold
from snapshotter.cli import cli
from snapshotter.datasette.app import make_datasette
from snapshotter.sim.quirks import Quirks
from snapshotter.sim.school import generate

OTHER_ESTAB = "3281111"
FAST = ["--page-size", "40", "--concurrency", "4", "--timeout", "2", "-q"]
NO_ENV = {"SNAPSHOTTER_SECRET": "", "SNAPSHOTTER_ARCHIVE": ""}


def write_config(path: Path, good: Any, bad: Any, mailbox: Mailbox, archive: Path) -> Path:
    path.write_text(
        f'archive = "{archive}"\n'
        "[mail]\n"
        f'host = "127.0.0.1"\nport = {mailbox.port}\ntls = "none"\n'
        'from = "archive@trust.example"\nalert_to = ["it@trust.example"]\n'
        "[[school]]\n"
        f'name = "Hillside Academy"\nrp = "{RP}"\nestab = "{ESTAB}"\n'
        f'secret_env = "HILLSIDE_SECRET"\nbase_url = "{good.base_url}"\n'
        'to = ["head@hillside.example"]\n'
        "[[school]]\n"
        f'name = "Brook Primary"\nrp = "{RP}"\nestab = "{OTHER_ESTAB}"\n'
        f'secret_env = "BROOK_SECRET"\nbase_url = "{bad.base_url}"\n'
        'to = ["head@brook.example"]\n'
    )
    return path


def run(config: Path, *args: str) -> Result:
    env = {**NO_ENV, "HILLSIDE_SECRET": SECRET, "BROOK_SECRET": "not-the-secret"}
    return CliRunner().invoke(cli, ["run", "--config", str(config), *FAST, *args], env=env)


def test_one_schools_bad_secret_is_alerted_and_the_other_gets_its_report_and_digest(
    sim_server: Any, tmp_path: Path
) -> None:
    good = sim_server(pupils=60)
    bad = sim_server(pupils=40, seed=2, clients={f"{RP}|{OTHER_ESTAB}": "brook-secret"})
    archive = tmp_path / "archive"
    with smtp_server() as mailbox:
        config = write_config(tmp_path / "snapshotter.toml", good, bad, mailbox, archive)
        first = run(config)
        good.set_term(1)
        second = run(config)
    assert first.exit_code == 1 and second.exit_code == 1
    assert "Brook Primary: failed at fetch" in second.output
    assert "Hillside Academy: snapshot" in second.output
    # The good school: two snapshots, a saved report, a digest to its recipient.
    snapshots = list_archive(archive, ESTAB).snapshots
    assert len(snapshots) == 2 and all(info.complete for info in snapshots)
    with closing(sqlite3.connect(archive / "history.db")) as conn:  # the pages' record index
        assert conn.execute("SELECT count(*) FROM people").fetchone()[0] > 0
    assert list_archive(archive, OTHER_ESTAB).snapshots == []
    digests = [m for m, (_, to) in zip(mailbox.messages, mailbox.envelopes, strict=True)
               if to == ["head@hillside.example"]]  # fmt: skip
    assert len(digests) == 1, "no digest after the first snapshot: nothing to compare with"
    assert "joiners" in digests[0]["Subject"]
    # The bad school: alerted after each run, naming the step and the reason.
    alerts = [m for m, (_, to) in zip(mailbox.messages, mailbox.envelopes, strict=True)
              if to == ["it@trust.example"]]  # fmt: skip
    assert len(alerts) == 2
    assert (
        alerts[0]["Subject"] == f"snapshotter: Brook Primary (estab {OTHER_ESTAB}) failed at fetch"
    )
    body = alerts[0].get_content()
    assert "fetch: failed:" in body and "not-the-secret" not in body
    # Each job is recorded, with each school's steps.
    with closing(sqlite3.connect(archive / "changes.db")) as conn:
        jobs = conn.execute("SELECT status FROM job_runs ORDER BY id").fetchall()
        rows = conn.execute(
            "SELECT school, ok, failed_step, diff_run_id IS NOT NULL, mailed, alerted "
            "FROM job_schools WHERE job_id = 2 ORDER BY school"
        ).fetchall()
    assert jobs == [("failed",), ("failed",)]
    home = get(make_datasette(archive), "/").text  # the site links the job's history
    assert 'href="/changes/job_runs?_sort_desc=id"' in home
    assert rows == [("Brook Primary", 0, "fetch", 0, 0, 1), ("Hillside Academy", 1, None, 1, 1, 0)]


def test_a_school_whose_sync_stopped_is_alerted_as_stale(sim_server: Any, tmp_path: Path) -> None:
    provider = sim_server(pupils=40)
    archive = tmp_path / "archive"
    five_days_ago = datetime.now(UTC) - timedelta(days=5)
    write_snapshot(archive, generate(seed=1, pupils=40, term=0), taken_at=five_days_ago)
    provider.stop()  # the provider went away five days ago: every fetch since has failed
    with smtp_server() as mailbox:
        config = write_config(tmp_path / "snapshotter.toml", provider, provider, mailbox, archive)
        within = run(config, "--school", "Hillside Academy", "--stale-after", "6")
        beyond = run(config, "--school", "Hillside Academy", "--stale-after", "3")
    assert within.exit_code == 1 and beyond.exit_code == 1
    first, second = (m.get_content() for m in mailbox.messages)
    assert "fetch: failed:" in first and "stale" not in first
    assert "fetch: failed:" in second
    assert "stale: failed: its newest complete snapshot was taken" in second
    assert "5 days ago (more than 3): the sync may have stopped" in second


def test_a_second_run_while_one_holds_the_archive_stops_and_says_so(
    sim_server: Any, tmp_path: Path
) -> None:
    good = sim_server(pupils=40)
    archive = tmp_path / "archive"
    with smtp_server() as mailbox:
        config = write_config(tmp_path / "snapshotter.toml", good, good, mailbox, archive)
        with hold(archive, RUN_LOCK):
            blocked = run(config, "--school", "Hillside Academy")
    assert blocked.exit_code == 5
    assert "Another `snapshotter run` is working on the archive" in blocked.output
    assert list_archive(archive).snapshots == []


def test_two_overlapping_runs_one_waits_out_and_the_archive_stays_whole(
    sim_server: Any, tmp_path: Path
) -> None:
    """Two real processes: the first runs against a provider slowed down until the second has
    tried; the second finds the lock, exits 5 and leaves the archive as the first made it."""
    slow = sim_server(pupils=40, quirks=Quirks(latency_s=1.0))
    archive = tmp_path / "archive"
    with smtp_server() as mailbox:
        config = write_config(tmp_path / "snapshotter.toml", slow, slow, mailbox, archive)
        env = {**os.environ, **NO_ENV, "HILLSIDE_SECRET": SECRET}
        command = [sys.executable, "-c", "from snapshotter.cli import cli; cli()", "run",
                   "--config", str(config), "--school", "Hillside Academy", *FAST]  # fmt: skip
        first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while not (archive / RUN_LOCK).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        slow.quirks = Quirks()  # the first may finish now
        out, err = first.communicate(timeout=300)
    assert second.returncode == 5, second.stderr
    assert "Another `snapshotter run`" in second.stderr
    assert first.returncode == 0, err.decode()
    (info,) = list_archive(archive).snapshots
    assert info.complete


def test_a_run_killed_half_way_leaves_a_consistent_archive_and_the_next_picks_up(
    sim_server: Any, tmp_path: Path
) -> None:
    """SIGKILL during the fetch: no snapshot half-made, the job marked interrupted by the next
    run, which fetches and finishes as if nothing happened."""
    slow = sim_server(pupils=40, quirks=Quirks(latency_s=1.0))
    archive = tmp_path / "archive"
    with smtp_server() as mailbox:
        config = write_config(tmp_path / "snapshotter.toml", slow, slow, mailbox, archive)
        env = {**os.environ, **NO_ENV, "HILLSIDE_SECRET": SECRET}
        command = [sys.executable, "-c", "from snapshotter.cli import cli; cli()", "run",
                   "--config", str(config), "--school", "Hillside Academy", *FAST]  # fmt: skip
        doomed = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while not list(archive.glob("*/.*.partial")) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert list(archive.glob("*/.*.partial")), "the run never began writing a snapshot"
        doomed.kill()
        doomed.communicate(timeout=60)
        assert list_archive(archive).snapshots == []  # nothing that looks like a snapshot
        slow.quirks = Quirks()
        again = run(config, "--school", "Hillside Academy")
    assert again.exit_code == 0, again.output
    (info,) = list_archive(archive).snapshots
    assert info.complete
    assert list(archive.glob("*/.*.partial")) == []  # the dead run's file is cleared
    with closing(sqlite3.connect(archive / "changes.db")) as conn:
        jobs = conn.execute("SELECT status FROM job_runs ORDER BY id").fetchall()
    assert jobs == [("interrupted",), ("ok",)]


def test_a_window_a_run_left_unreported_is_reported_by_the_next(
    sim_server: Any, tmp_path: Path
) -> None:
    """A snapshot fetched but never diffed (a run killed between its fetch and its diff, or a
    diff that failed): the next run reports that window too, and mails its digest."""
    school = sim_server(pupils=60)
    archive = tmp_path / "archive"
    env = {**NO_ENV, "HILLSIDE_SECRET": SECRET}
    with smtp_server() as mailbox:
        config = write_config(tmp_path / "snapshotter.toml", school, school, mailbox, archive)
        for term in (0, 1):
            school.set_term(term)
            assert run(config, "--school", "Hillside Academy").exit_code == 0
        school.set_term(2)
        fetched = CliRunner().invoke(
            cli, ["fetch", "--config", str(config), "--school", "Hillside Academy", *FAST], env=env
        )
        assert fetched.exit_code == 0, fetched.output
        school.set_term(3)
        result = run(config, "--school", "Hillside Academy")
    assert result.exit_code == 0, result.output
    assert "window(s) an earlier run left unreported" in result.output
    snapshots = [info.path.stem for info in list_archive(archive, ESTAB).snapshots]
    with closing(sqlite3.connect(archive / "changes.db")) as conn:
        pairs = conn.execute(
            "SELECT o.name, n.name FROM diff_runs d JOIN snapshots o ON o.id = d.old_snapshot "
            "JOIN snapshots n ON n.id = d.new_snapshot ORDER BY n.taken_at"
        ).fetchall()
    assert pairs == list(zip(snapshots, snapshots[1:], strict=False))
    subjects = [m["Subject"] for m in mailbox.messages if m["To"] == "head@hillside.example"]
    assert len(subjects) == 3  # term 0 → 1, then 1 → 2 and 2 → 3 by the last run
