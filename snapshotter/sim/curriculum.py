"""What a UK secondary school teaches, to whom, and when: subjects, year groups, the calendar.

Term numbers count from 0 = Autumn 2026 (school year 2026/27). Every third term is an Autumn
term, when the school year rolls over.
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass

YEARS: tuple[int, ...] = (7, 8, 9, 10, 11, 12, 13)
# Relative size of each year group: the sixth form (12, 13) is smaller.
YEAR_WEIGHTS: dict[int, float] = {7: 1.0, 8: 1.0, 9: 1.0, 10: 1.0, 11: 1.0, 12: 0.6, 13: 0.6}
FORM_SIZE = 30
SET_SIZE = 28  # teaching sets in years 7 to 11
SIXTH_FORM_SET_SIZE = 16
SETS_PER_TEACHER = 9
FIRST_SCHOOL_YEAR_END = 2027  # term 0 is in school year 2026/27, schoolYear "2027"


@dataclass(frozen=True)
class Subject:
    code: str  # short code used in class codes: "Ma" in "8X/Ma1"
    name: str
    room_prefix: str


SUBJECTS: dict[str, Subject] = {
    s.code: s
    for s in (
        Subject("Ma", "Mathematics", "M"),
        Subject("FM", "Further Mathematics", "M"),
        Subject("En", "English", "E"),
        Subject("EL", "English Literature", "E"),
        Subject("Sc", "Science", "S"),
        Subject("Bi", "Biology", "S"),
        Subject("Ch", "Chemistry", "S"),
        Subject("Ph", "Physics", "S"),
        Subject("Hi", "History", "H"),
        Subject("Gg", "Geography", "H"),
        Subject("Fr", "French", "L"),
        Subject("Sp", "Spanish", "L"),
        Subject("Ar", "Art and Design", "A"),
        Subject("Mu", "Music", "A"),
        Subject("Dr", "Drama", "A"),
        Subject("PE", "Physical Education", "G"),
        Subject("Cp", "Computing", "C"),
        Subject("Cs", "Computer Science", "C"),
        Subject("RE", "Religious Education", "H"),
        Subject("Dt", "Design and Technology", "T"),
        Subject("Fn", "Food Preparation and Nutrition", "T"),
        Subject("Bs", "Business", "B"),
        Subject("Ps", "Psychology", "B"),
        Subject("So", "Sociology", "B"),
        Subject("Ec", "Economics", "B"),
        Subject("Po", "Politics", "B"),
    )
}

KS3_SUBJECTS = ("Ma", "En", "Sc", "Hi", "Gg", "Fr", "Ar", "Mu", "PE", "Cp", "RE")
KS4_CORE = ("Ma", "En", "EL", "Sc", "PE", "RE")
KS4_OPTIONS = ("Hi", "Gg", "Fr", "Sp", "Ar", "Mu", "Cs", "Dt", "Dr", "Bs", "Fn")
KS4_OPTION_COUNT = 4
KS5_OPTIONS = ("Ma", "FM", "Bi", "Ch", "Ph", "EL", "Hi", "Gg", "Ps", "So", "Ec", "Ar", "Cs", "Fr")
KS5_OPTION_COUNT = 3

# Which subjects a year group studies: fixed ones, plus options chosen when a pupil enters
# year 10 (kept into 11) or year 12 (kept into 13).
CORE_BY_YEAR: dict[int, tuple[str, ...]] = {
    7: KS3_SUBJECTS,
    8: KS3_SUBJECTS,
    9: KS3_SUBJECTS,
    10: KS4_CORE,
    11: KS4_CORE,
    12: (),
    13: (),
}
OPTIONS_BY_YEAR: dict[int, tuple[tuple[str, ...], int]] = {
    10: (KS4_OPTIONS, KS4_OPTION_COUNT),
    11: (KS4_OPTIONS, KS4_OPTION_COUNT),
    12: (KS5_OPTIONS, KS5_OPTION_COUNT),
    13: (KS5_OPTIONS, KS5_OPTION_COUNT),
}
# Options are chosen on entering these years and carried into the next.
OPTION_ENTRY_YEARS = (10, 12)


def set_size(year: int) -> int:
    return SIXTH_FORM_SET_SIZE if year >= 12 else SET_SIZE


def year_sizes(pupils: int) -> dict[int, int]:
    """How many pupils each year group holds, summing exactly to `pupils`."""
    total_weight = sum(YEAR_WEIGHTS.values())
    sizes = {year: int(pupils * YEAR_WEIGHTS[year] / total_weight) for year in YEARS}
    # Hand the rounding remainder to the lower years, one each.
    for year in YEARS[: pupils - sum(sizes.values())]:
        sizes[year] += 1
    return sizes


def form_letters(index: int) -> str:
    """Registration group letters: A..Z, then AA, AB, ... for very large schools."""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


# --- calendar ---------------------------------------------------------------------------------

TERM_NAMES = ("Autumn", "Spring", "Summer")


@dataclass(frozen=True)
class SchoolYearDates:
    end_year: int  # 2027 for 2026/27: the academicSession `schoolYear`
    title: str  # "2026/27"
    start: str  # yyyy-MM-dd
    end: str
    terms: tuple[tuple[str, str, str], ...]  # (title, startDate, endDate) for each term


def school_year_index(term: int) -> int:
    return term // 3


def is_rollover(term: int) -> bool:
    """Term `term` starts a new school year (term 0 is the first, so it is no rollover)."""
    return term > 0 and term % 3 == 0


def school_year_dates(index: int) -> SchoolYearDates:
    end_year = FIRST_SCHOOL_YEAR_END + index
    start_year = end_year - 1
    return SchoolYearDates(
        end_year=end_year,
        title=f"{start_year}/{str(end_year)[-2:]}",
        start=f"{start_year}-09-01",
        end=f"{end_year}-08-31",
        terms=(
            (f"Autumn {start_year}", f"{start_year}-09-01", f"{start_year}-12-18"),
            (f"Spring {end_year}", f"{end_year}-01-04", f"{end_year}-03-26"),
            (f"Summer {end_year}", f"{end_year}-04-12", f"{end_year}-07-21"),
        ),
    )


# When the snapshot of each term is taken: mid-term, 06:00 UTC. Records changed during term t
# carry timestamps between the snapshot of term t-1 and that of term t, so "touched" and
# "changed" records always get a dateLastModified they never had before.
_SNAPSHOT_MONTH_DAY = ((10, 15), (2, 10), (5, 20))
# Records existing at term 0 were last modified between this moment and the first snapshot.
HISTORY_START_S = calendar.timegm((2025, 6, 1, 0, 0, 0))


def snapshot_time_s(term: int) -> int:
    """Seconds since the epoch (UTC) at which term `term`'s snapshot is taken."""
    phase = term % 3
    year = FIRST_SCHOOL_YEAR_END - 1 + school_year_index(term) + (0 if phase == 0 else 1)
    month, day = _SNAPSHOT_MONTH_DAY[phase]
    return calendar.timegm((year, month, day, 6, 0, 0))


def change_window_s(term: int) -> tuple[int, int]:
    """The span (start, end) in whole seconds in which term `term`'s changes are stamped."""
    start = HISTORY_START_S if term == 0 else snapshot_time_s(term - 1) + 1
    return start, snapshot_time_s(term) - 1


def format_timestamp(epoch_ms: int) -> str:
    """`2026-03-21T03:35:42.017Z`: Xporter's dateLastModified."""
    seconds, millis = divmod(epoch_ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def format_date(epoch_s: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(epoch_s))
