"""Which snapshots `snapshotter prune` keeps: retention as a data-protection duty, keep no more
than needed and say what went.

For each school, among its complete snapshots: the newest; the last one of every academic
session it was taken in (so term-to-term comparison stays possible; `keep_terms=False` drops
them); the newest of each day for the last `keep_daily` days and of each calendar month for the
last `keep_monthly` months. An incomplete snapshot is kept only while it is newer than the
school's newest complete one (it shows what is going wrong now); older ones compare with
nothing. Files the archive cannot read as its own snapshots are never candidates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from .layout import SnapshotInfo

DEFAULT_KEEP_DAILY = 30
DEFAULT_KEEP_MONTHLY = 12

TermOf = Callable[[SnapshotInfo], str | None]


@dataclass
class Decision:
    info: SnapshotInfo
    reasons: list[str] = field(default_factory=list)

    @property
    def keep(self) -> bool:
        return bool(self.reasons)


def _day(info: SnapshotInfo) -> date:
    return date.fromisoformat(info.taken_at[:10])


def _month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def _newest_per(
    snapshots: Iterable[SnapshotInfo], key: Callable[[SnapshotInfo], object]
) -> dict[object, SnapshotInfo]:
    newest: dict[object, SnapshotInfo] = {}
    for info in snapshots:  # oldest first: the last one seen of each key is the newest
        newest[key(info)] = info
    return newest


def plan(
    snapshots: list[SnapshotInfo],
    now: datetime,
    *,
    keep_daily: int = DEFAULT_KEEP_DAILY,
    keep_monthly: int = DEFAULT_KEEP_MONTHLY,
    keep_terms: bool = True,
    term_of: TermOf = lambda info: None,
) -> list[Decision]:
    """A decision for each snapshot of ONE school (any order), oldest first."""
    ordered = sorted(snapshots, key=lambda info: info.taken_at)
    decisions = {info.path: Decision(info) for info in ordered}
    complete = [info for info in ordered if info.complete]
    if complete:
        decisions[complete[-1].path].reasons.append("newest complete")
    today = now.date()
    if keep_daily > 0:
        recent = [i for i in complete if (today - _day(i)).days < keep_daily]
        for day, info in _newest_per(recent, _day).items():
            decisions[info.path].reasons.append(f"daily ({day})")
    if keep_monthly > 0:
        first_month = _month_index(today) - keep_monthly + 1
        recent = [i for i in complete if _month_index(_day(i)) >= first_month]
        for _, info in _newest_per(recent, lambda i: _day(i).strftime("%Y-%m")).items():
            decisions[info.path].reasons.append(f"monthly ({info.taken_at[:7]})")
    if keep_terms:
        terms = {info.path: term_of(info) for info in complete}
        in_a_term = [info for info in complete if terms[info.path]]
        for term, info in _newest_per(in_a_term, lambda i: terms[i.path]).items():
            decisions[info.path].reasons.append(f"last of {term}")
    newest_complete = complete[-1].taken_at if complete else ""
    for info in ordered:
        if not info.complete and info.taken_at > newest_complete:
            decisions[info.path].reasons.append("incomplete, newer than any complete")
    return [decisions[info.path] for info in ordered]
