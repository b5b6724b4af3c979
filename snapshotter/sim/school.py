"""The synthetic school: deterministic OneRoster data for any term, and what each term changed.

    generate(seed=1, pupils=1000, term=0) -> {"users": [...], "classes": [...], ...}
    changes(seed=1, pupils=1000, term=1) -> [Change("users", "x42Y7TNMV", "changed"), ...]

The same arguments always give byte-identical data. Term 0 is Autumn 2026 (school year
2026/27); 1 is Spring, 2 Summer, 3 Autumn 2027 (the first rollover), and so on.
"""

from __future__ import annotations

import gc

from .build import GUIDE_CLASS_ID, GUIDE_PUPIL_ID, SYNTHETIC_PASSWORD, SchoolState, build_school
from .evolve import advance
from .roster import CHANGE_KINDS, HREF_BASE, ActionLog, Change, Record

__all__ = [
    "CHANGE_KINDS",
    "GUIDE_CLASS_ID",
    "GUIDE_PUPIL_ID",
    "HREF_BASE",
    "SYNTHETIC_PASSWORD",
    "Change",
    "changes",
    "generate",
]


def _school_at(seed: int, pupils: int, term: int) -> tuple[SchoolState, ActionLog | None]:
    if term < 0:
        raise ValueError(f"term must be 0 or more, not {term}")
    # Millions of small acyclic dicts: the cyclic collector would rescan them again and again
    # (a third of the time at 10,000 pupils, more at 100,000) and never free one.
    collecting = gc.isenabled()
    gc.disable()
    try:
        state = build_school(seed, pupils)
        log = None
        for step in range(1, term + 1):
            log = advance(state, step)
    finally:
        if collecting:
            gc.enable()
    return state, log


def generate(seed: int = 1, pupils: int = 1000, term: int = 0) -> dict[str, list[Record]]:
    """Every collection of the school at `term`, records exactly as Xporter's JSON holds them.

    Includes tobedeleted records. The result is freshly built on each call: the caller owns it.
    """
    state, _ = _school_at(seed, pupils, term)
    return state.roster.as_collections()


def changes(seed: int, pupils: int, term: int) -> list[Change]:
    """What differs between `generate(..., term - 1)` and `generate(..., term)`, one `Change`
    per record, from the generator's own action log, sorted by entity then sourcedId."""
    if term < 1:
        raise ValueError("changes() compares a term with the one before: term must be 1 or more")
    _, log = _school_at(seed, pupils, term)
    assert log is not None
    return log.changes()
