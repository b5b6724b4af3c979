"""The text and Markdown reports are short by default and complete on request: people first,
then the record counts, then capped sections where many records with the same change are said
once, in natural order. On a 1,000-pupil simulated school, a normal term and a rollover."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers_diff import sim_snapshot

from snapshotter.cli import cli
from snapshotter.natural import natural_key

PUPILS = 1000
MORE = re.compile(r"^  … and (\d+) more: `--format csv` or the Datasette page has them all$")


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    archive = tmp_path_factory.mktemp("archive")
    return {term: sim_snapshot(archive, term, pupils=PUPILS) for term in (0, 1, 2, 3)}


def report(snapshots: dict[int, Path], old: int, new: int, *options: str) -> str:
    result = CliRunner().invoke(
        cli,
        [
            "diff",
            str(snapshots[old]),
            str(snapshots[new]),
            "--archive",
            str(snapshots[old].parent.parent),
            "--no-save",
            *options,
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return result.stdout


def _year_groups(line: str) -> list[str]:
    return re.findall(r"Year (\d+): \d+", line)


@pytest.mark.parametrize(
    ("old", "new"),
    [(0, 1), (2, 3), (0, 3)],
    ids=["autumn-to-spring", "rollover", "a-year-with-the-rollover"],
)
def test_the_default_text_report_opens_with_people_and_fits_in_300_lines(
    snapshots: dict[int, Path], old: int, new: int
) -> None:
    text = report(snapshots, old, new)
    lines = text.splitlines()
    assert len(lines) <= 300
    headline = json.loads(report(snapshots, old, new, "--format", "json"))["headline"]
    joined, left = headline["joiners"], headline["leavers"]
    pupils_joined = joined["by_role"]["students"]
    # People first, with the JSON headline's numbers, year groups in natural order.
    assert lines[4].startswith(f"{pupils_joined} pupils (Year ")
    staff = joined["by_role"]["staff"]
    assert lines[4].endswith(f" and {staff} {'member of staff' if staff == 1 else 'staff'} joined")
    assert lines[5].startswith(f"{left['by_role']['students']} pupils (Year ")
    for line, block in ((lines[4], joined), (lines[5], left)):
        assert _year_groups(line) == list(block["by_year_group"])
        assert _year_groups(line) == sorted(_year_groups(line), key=int)
    purged = headline["purged"]["total"]
    assert (
        lines[6] == f"{purged} people who had left before were purged: their records are gone now"
    )
    assert lines[7].endswith(
        f"{headline['class_moves']} class moves, {headline['identity_changes']} identity changes"
    )
    # Then the record counts, as before.
    assert any(re.fullmatch(r"\d+ users added, \d+ users changed.*", line) for line in lines)
    # Each section shows at most 20 entries, then says where the rest are.
    hidden = [int(m.group(1)) for line in lines if (m := MORE.match(line))]
    assert hidden


def test_the_rollover_says_each_mass_change_once(snapshots: dict[int, Path]) -> None:
    lines = report(snapshots, 2, 3).splitlines()
    headline = json.loads(report(snapshots, 2, 3, "--format", "json"))["headline"]
    moved_up = headline["year_group_changes"]
    assert lines[7].startswith(f"{moved_up} pupils moved up a year group, 0 class moves")
    assert f"  {moved_up} pupils: 7 → 8 … 12 → 13 (the rollover)" in lines
    assert "Year group changes: " + f"{moved_up} people" in lines
    classes = next(line for line in lines if line.startswith("classes marked tobedeleted ("))
    count = int(re.search(r"\((\d+)\)", classes).group(1))
    at = lines.index(classes)
    assert lines[at + 1] == f'  {count} classes: status: "active" → "tobedeleted"'
    # Most of last year's enrollments ended on its last day: one line for thousands of records.
    ended = next(line for line in lines if line.startswith("enrollments marked tobedeleted ("))
    big = lines[lines.index(ended) + 1]
    assert re.fullmatch(
        r'  \d{4,} enrollments: status: "active" → "tobedeleted"; endDate: \(none\) → "2027-07-21"',
        big,
    )


def test_a_class_move_is_one_line_and_its_enrollments_are_not_listed_again(
    snapshots: dict[int, Path],
) -> None:
    lines = report(snapshots, 0, 1, "--limit", "0").splitlines()
    start = lines.index("Class moves: 39")
    moves = lines[start + 1 : lines.index("", start)]
    assert len(moves) == 39
    assert all(
        re.fullmatch(r"  .+  \[x\w{8}\]: \S+ → \S+(  \(registration group\))?", m) for m in moves
    )
    # The move's old and new enrollment are in that line, not one here and one there.
    assert "enrollments changed (39, all in the class moves above)" in lines
    added = lines.index(next(line for line in lines if line.startswith("enrollments added (")))
    added_lines = lines[added + 1 : lines.index("", added)]
    for move in moves:
        pupil, classes = re.fullmatch(r"  .+  \[(x\w{8})\]: (\S+ → \S+).*", move).groups()
        to_class = classes.split(" → ")[1]
        theirs = [line for line in added_lines if f"[{pupil}]" in line]
        assert not any(re.search(rf"[ :]{re.escape(to_class)}(,|  |$)", line) for line in theirs)


def test_limit_caps_each_section_and_zero_shows_everything(snapshots: dict[int, Path]) -> None:
    capped = report(snapshots, 0, 1, "--limit", "5").splitlines()
    start = capped.index(next(line for line in capped if line.startswith("Joined: ")))
    joined = int(re.search(r"Joined: (\d+) people", capped[start]).group(1))
    assert capped[start + 6] == (
        f"  … and {joined - 5} more: `--format csv` or the Datasette page has them all"
    )
    everything = report(snapshots, 0, 1, "--limit", "0")
    assert "… and " not in everything
    start = everything.index("Joined: ")
    section = everything[start:].split("\n\n")[0].splitlines()
    assert len(section) == 1 + joined


def test_classes_and_year_groups_sort_naturally(snapshots: dict[int, Path]) -> None:
    lines = report(snapshots, 2, 3, "--limit", "0").splitlines()
    start = lines.index(next(line for line in lines if line.startswith("classes added (")))
    forms = [line.split()[0] for line in lines[start + 1 :] if "(REG-" in line][:30]
    assert forms == sorted(forms, key=natural_key)
    assert forms.index("7A") < forms.index("10A") and forms.index("9A") < forms.index("10A")
    assert sorted(["Year 10", "Year 7", "10A", "7B", "7A"], key=natural_key) == [
        "7A",
        "7B",
        "10A",
        "Year 7",
        "Year 10",
    ]


def test_the_markdown_report_has_the_same_short_shape(snapshots: dict[int, Path]) -> None:
    markdown = report(snapshots, 2, 3, "--format", "markdown")
    lines = markdown.splitlines()
    assert len(lines) <= 300
    people = lines.index("## People")
    assert lines[people + 2].startswith("- ") and " pupils (Year 7: " in lines[people + 2]
    assert (
        people
        < lines.index("## Summary")
        < lines.index(
            "## Year group changes: "
            + lines[people + 5].split(" pupils")[0].removeprefix("- ")
            + " people"
        )
    )
    assert any(line.startswith("- … and ") for line in lines)
    complete = report(snapshots, 2, 3, "--format", "markdown", "--limit", "0")
    assert len(complete.splitlines()) > 5 * len(lines)
