"""The nightly job (`snapshotter run`): for every school of the config file, fetch a snapshot,
diff it against the school's previous complete snapshot, save the report, mail the digest; then
alert the operator about every school that failed or whose newest complete snapshot is stale.

Schools are fetched concurrently and fail alone: a bad secret, a provider down or an incomplete
snapshot stops that school's later steps and nothing else. Every step's outcome is recorded in
`changes.db` (`archive.jobs`). One job at a time per archive (`archive.locks`); a job killed at
any point leaves only whole files (fetches publish by rename, diffs save in one transaction), and
the next job diffs against whatever complete snapshots exist.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

from .archive import jobs
from .archive.layout import CHANGES_DB, ArchiveError, SnapshotInfo, list_archive, read_only_uri
from .config import Config, SchoolConfig
from .digest.settings import MailError, MailSettings
from .fetch import FetchSettings, SchoolResult, SchoolTarget, fetch_schools
from .select import taken_moment

DEFAULT_STALE_AFTER = timedelta(days=3)
Say = Callable[[str], None]


@dataclass
class SchoolOutcome:
    """What the job did for one school; `steps` maps each step to `ok`, `skipped: why` or
    `failed: why`."""

    school: str
    estab: str
    ok: bool = True
    failed_step: str | None = None
    message: str | None = None
    snapshot: Path | None = None
    diff_run_id: int | None = None
    records_changed: int | None = None
    subject: str | None = None
    mailed: bool = False
    alerted: bool = False
    stale_since: str | None = None
    steps: dict[str, str] = field(default_factory=dict)

    def fail(self, step: str, why: str) -> None:
        self.ok = False
        self.failed_step = self.failed_step or step
        self.message = self.message or why
        self.steps[step] = f"failed: {why}"

    def as_row(self) -> dict[str, Any]:
        return {
            "school": self.school,
            "estab": self.estab,
            "ok": int(self.ok),
            "failed_step": self.failed_step,
            "message": self.message,
            "snapshot": str(self.snapshot) if self.snapshot else None,
            "diff_run_id": self.diff_run_id,
            "records_changed": self.records_changed,
            "mailed": int(self.mailed),
            "alerted": int(self.alerted),
            "steps": json.dumps(self.steps),
        }


@dataclass(frozen=True)
class JobSettings:
    fetch: FetchSettings
    always_mail: bool = False
    stale_after: timedelta = DEFAULT_STALE_AFTER
    base_url: str | None = None  # overrides every school's (tests, a mirror)


@dataclass
class JobReport:
    job_id: int
    outcomes: list[SchoolOutcome]

    @property
    def ok(self) -> bool:
        return all(outcome.ok for outcome in self.outcomes)


def _targets(schools: list[SchoolConfig], settings: JobSettings) -> list[SchoolTarget]:
    return [
        SchoolTarget(
            name=s.name,
            rp=s.rp,
            estab=s.estab,
            secret=s.secret(),
            base_url=settings.base_url or s.base_url,
            drop_fields=s.drop_fields,
            missing_secret_reason=f"${s.secret_env} is not set",
            allow_insecure_http=s.allow_insecure_http,
        )
        for s in schools
    ]


def _newest_complete(archive: Path, estab: str) -> SnapshotInfo | None:
    complete = [info for info in list_archive(archive, estab).snapshots if info.complete]
    return max(complete, key=lambda info: info.taken_at, default=None)


def _fetched(result: SchoolResult, outcome: SchoolOutcome) -> SnapshotInfo | None:
    from .archive.layout import read_snapshot_info

    if result.error is not None:
        outcome.fail("fetch", str(result.error))
        return None
    fetched = result.outcome
    if fetched is None or fetched.path is None:
        reason = fetched.reason if fetched is not None else "nothing fetched"
        outcome.fail("fetch", f"the snapshot was not complete, nothing kept: {reason}")
        return None
    outcome.snapshot = fetched.path
    outcome.steps["fetch"] = "ok"
    return read_snapshot_info(fetched.path)


def _index(archive: Path, snapshot: Path, say: Say) -> None:
    """The record index (history and search pages) learns the new snapshot; a failure warns."""
    from .archive.history import index_published

    warning = index_published(archive, snapshot)
    if warning is not None:
        say(warning)


# A run killed between its fetch and its diff (or whose diff failed) leaves a snapshot no report
# ends at: the next run diffs those windows too, up to this many; older ones are said.
MISSED_WINDOWS_KEPT_UP = 7


def _last_reported(archive: Path, estab: str) -> str | None:
    """The name of the school's newest snapshot that a saved diff run ends at."""
    changes_db = archive / CHANGES_DB
    if not changes_db.is_file():
        return None
    with closing(sqlite3.connect(read_only_uri(changes_db), uri=True)) as conn:
        row = conn.execute(
            "SELECT s.name FROM diff_runs d JOIN snapshots s ON s.id = d.new_snapshot "
            "WHERE d.estab = ? ORDER BY s.taken_at DESC LIMIT 1",
            (estab,),
        ).fetchone()
    return row[0] if row else None


def windows_to_diff(
    archive: Path, new: SnapshotInfo
) -> tuple[list[tuple[SnapshotInfo, SnapshotInfo]], int]:
    """The pairs of consecutive complete snapshots to diff, oldest first, ending at `new`: from
    the newest snapshot a saved report ends at (windows a killed run left unreported included),
    else just the last pair; and how many older unreported windows were left out."""
    complete = sorted(
        (
            i
            for i in list_archive(archive, new.estab).snapshots
            if i.complete and i.taken_at <= new.taken_at
        ),
        key=lambda info: info.taken_at,
    )
    names = [info.path.stem for info in complete]
    if new.path.stem not in names or len(complete) < 2:
        return [], 0
    end = names.index(new.path.stem)
    reported = _last_reported(archive, new.estab)
    start = names.index(reported) if reported in names[:end] else end - 1
    pairs = list(zip(complete[start:end], complete[start + 1 : end + 1], strict=True))
    left_out = max(len(pairs) - MISSED_WINDOWS_KEPT_UP, 0)
    return pairs[left_out:], left_out


def _diff(archive: Path, new: SnapshotInfo, outcome: SchoolOutcome) -> list[tuple[int, int]]:
    """Diff and save the new snapshot's window (and any left unreported before it); the
    (run id, records changed) of each, oldest first."""
    from .diff.run import diff_and_save

    runs: list[tuple[int, int]] = []
    try:
        pairs, left_out = windows_to_diff(archive, new)
        if not pairs:
            outcome.steps["diff"] = "skipped: the school's first complete snapshot"
            return runs
        for old, newer in pairs:
            result = diff_and_save(old, newer, archive / CHANGES_DB)
            changed = sum(n for kinds in result.summary.values() for n in kinds.values())
            runs.append((result.run_id, changed))
    except (ArchiveError, sqlite3.Error, OSError) as exc:
        outcome.fail("diff", str(exc))
        return runs
    outcome.diff_run_id, outcome.records_changed = runs[-1]
    caught_up = [str(run_id) for run_id, _ in runs[:-1]]
    outcome.steps["diff"] = "ok" + (
        f" (and {len(caught_up)} window(s) an earlier run left unreported: runs "
        f"{', '.join(caught_up)})"
        if caught_up
        else ""
    )
    if left_out:
        outcome.fail(
            "diff",
            f"{left_out} older window(s) between snapshots were never reported: diff them with "
            "`snapshotter diff OLD NEW`",
        )
    return runs


def _mail_digests(
    archive: Path,
    school: SchoolConfig,
    mail: MailSettings | None,
    outcome: SchoolOutcome,
    runs: list[tuple[int, int]],
    always: bool,
) -> None:
    from .digest.content import DigestError, read_digest
    from .digest.message import build_message
    from .digest.smtp import send

    to_mail = [run_id for run_id, changed in runs if changed or always]
    if not runs:
        return
    if not to_mail:
        outcome.steps["mail"] = "skipped: nothing changed"
        return
    if not school.to:
        outcome.steps["mail"] = "skipped: no `to` for this school in the config file"
        return
    if mail is None:
        outcome.fail("mail", "the config file has no [mail] server for the digest")
        return
    for run_id in to_mail:
        try:
            digest = read_digest(
                archive / CHANGES_DB,
                run_id=run_id,
                detail=school.detail,
                datasette_url=school.datasette_url,
            )
            outcome.subject = digest.subject
            send(build_message(digest, mail.sender, list(school.to)), mail, list(school.to))
        except (DigestError, MailError) as exc:
            outcome.fail(
                "mail",
                f"{exc} (the report is saved: `snapshotter digest --run {run_id}` sends it again)",
            )
            return
    outcome.mailed = True
    outcome.steps["mail"] = f"ok: to {', '.join(school.to)}" + (
        f" ({len(to_mail)} digests)" if len(to_mail) > 1 else ""
    )


def _staleness(archive: Path, outcome: SchoolOutcome, now: datetime, limit: timedelta) -> None:
    newest = _newest_complete(archive, outcome.estab)
    if newest is None:
        outcome.stale_since = "never"
        outcome.fail("stale", "the archive holds no complete snapshot of this school")
        return
    age = now - taken_moment(newest)
    if age > limit:
        outcome.stale_since = newest.taken_at
        outcome.fail(
            "stale",
            f"its newest complete snapshot was taken {newest.taken_at[:16].replace('T', ' ')} "
            f"UTC, {age.days} days ago (more than {limit.days}): the sync may have stopped",
        )


def alert_message(outcome: SchoolOutcome, sender: str | None, to: list[str]) -> EmailMessage:
    """A short message to the operator: which school, which step, why, what to do."""
    from .safe_text import printable

    message = EmailMessage()
    step = outcome.failed_step or "?"
    what = "is stale" if step == "stale" else f"failed at {step}"
    message["Subject"] = printable(f"snapshotter: {outcome.school} (estab {outcome.estab}) {what}")
    if sender:
        message["From"] = sender
    message["To"] = ", ".join(to)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain="snapshotter.invalid")
    lines = [f"School: {outcome.school} (estab {outcome.estab})"]
    lines += [f"{name}: {state}" for name, state in outcome.steps.items()]
    lines += [
        "",
        "Nothing of the other schools is affected. Run `snapshotter run --school "
        f'"{outcome.school}"` again once the cause is fixed; `snapshotter snapshots --estab '
        f"{outcome.estab}` lists what the archive holds.",
    ]
    message.set_content(printable_lines(lines))
    return message


def printable_lines(lines: list[str]) -> str:
    from .safe_text import printable

    return "\n".join(printable(line) for line in lines) + "\n"


def _alert(config: Config, outcome: SchoolOutcome, say: Say) -> None:
    from .digest.smtp import send

    if not config.alert_to or config.mail is None:
        say(f"{outcome.school}: no alert mailed (no `alert_to` and [mail] in the config file)")
        return
    try:
        send(alert_message(outcome, config.mail.sender, list(config.alert_to)), config.mail,
             list(config.alert_to))  # fmt: skip
    except MailError as exc:
        say(f"{outcome.school}: the alert could not be mailed: {exc}")
        return
    outcome.alerted = True


def run_job(
    config: Config,
    archive: Path,
    schools: list[SchoolConfig],
    settings: JobSettings,
    *,
    say: Say,
    progress: Any = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> JobReport:
    """Run the job for `schools` (the caller holds the run lock)."""
    changes_db = archive / CHANGES_DB
    job_id = jobs.start_job(changes_db, [s.name for s in schools], now())
    outcomes: list[SchoolOutcome] = []
    results = fetch_schools(_targets(schools, settings), archive, settings=settings.fetch,
                            progress=progress)  # fmt: skip
    if progress is not None:
        progress.close()
    for school, result in zip(schools, results, strict=True):
        outcome = SchoolOutcome(school.name, school.estab)
        outcomes.append(outcome)
        try:
            new = _fetched(result, outcome)
            if new is not None:
                _index(archive, new.path, say)
                runs = _diff(archive, new, outcome)
                _mail_digests(archive, school, config.mail, outcome, runs, settings.always_mail)
            _staleness(archive, outcome, now(), settings.stale_after)
        except Exception as exc:  # one school's surprise must not stop the others
            outcome.fail("unexpected", f"{type(exc).__name__}: {exc}")
        if not outcome.ok:
            try:
                _alert(config, outcome, say)
            except Exception as exc:  # noqa: BLE001 - the next school must still run
                say(f"{outcome.school}: the alert could not be made: {exc}")
        jobs.record_school(changes_db, job_id, outcome.as_row())
    status = "ok" if all(o.ok for o in outcomes) else "failed"
    jobs.finish_job(changes_db, job_id, status, now())
    return JobReport(job_id, outcomes)
