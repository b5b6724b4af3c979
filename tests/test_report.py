"""The four forms of a diff report, as a person or a script reads them."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers_diff import PUPILS, AuditScenario, audit_scenario, sim_snapshot

from snapshotter.archive.layout import read_snapshot_info
from snapshotter.cli import cli
from snapshotter.report.as_markdown import code, escape
from snapshotter.sim.school import generate


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> AuditScenario:
    return audit_scenario(tmp_path_factory.mktemp("archive"))


def report(scenario: AuditScenario, output_format: str) -> str:
    result = CliRunner().invoke(
        cli,
        [
            "diff",
            str(scenario.old_path),
            str(scenario.new_path),
            "--archive",
            str(scenario.old_path.parent.parent),
            "--format",
            output_format,
            "--no-save",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_text_report_says_who_first_then_counts_records_then_lists_people_and_records(
    scenario: AuditScenario,
) -> None:
    text = report(scenario, "text")
    lines = text.splitlines()
    assert lines[0] == "Changes for Quarrendon Academy (estab 3281110)"
    assert lines[1].startswith("  from 3281110_2026-10-15T083000Z (taken 2026-10-15 08:30:00 UTC")
    assert "complete, stable, school year 2026/27" in lines[1]
    assert lines[4:7] == [
        "1 pupil (Year 9: 1) joined",
        "2 pupils (Year 9: 2) and 1 member of staff left",
        "1 pupil moved up a year group, 3 class moves, 1 identity change",
    ]
    assert "1 class added" in lines
    assert "1 user added, 2 users changed, 2 users marked tobedeleted, 1 user removed" in lines
    removed = scenario.hard_leaver_enrollments + 1  # hers, and the one a pupil moved out of
    assert f"1 enrollment added, 2 enrollments changed, {removed} enrollments removed" in lines
    assert "Left: 3 people" in lines
    assert f"  Zoë O'Brien (student, year 8)  [{scenario.year_group_pupil}]: 7 → 8" in lines
    assert "Identity changes: 1 person" in lines
    assert any(line.startswith("    userIds[type=UPN].identifier: ") for line in lines)
    # A class move is one line, old class → new class; its enrollments are not listed again.
    moved = [line for line in lines if f"[{scenario.moved_pupil}]" in line]
    assert [line.split("]: ")[1] for line in moved] == ["9X/Ma1 → 9X/Ma2"]
    assert not any(" in 9X/Ma2" in line for line in lines)
    held = next(line for line in lines if line.startswith("    held: "))
    assert all(code in held for code in scenario.teacher_classes)
    assert "Volume:" not in text  # a handful of changes is no mass change


def test_the_text_report_of_two_identical_snapshots_says_no_changes(tmp_path: Path) -> None:
    sim_snapshot(tmp_path, 0)
    sim_snapshot(tmp_path, 0)  # the same data, a second later: another file
    result = CliRunner().invoke(cli, ["diff", "--archive", str(tmp_path), "--no-save"])
    assert result.exit_code == 0, result.output
    assert "No changes." in result.stdout


def test_the_json_report_has_the_documented_shape(scenario: AuditScenario) -> None:
    text = report(scenario, "json")
    document = json.loads(text)
    assert list(document) == ["from", "to", "headline", "summary", "volume", "quality", "changes"]
    for side in ("from", "to"):
        snapshot = document[side]
        assert snapshot["estab"] == "3281110"
        assert snapshot["complete"] is True and snapshot["stable"] is True
        assert len(snapshot["content_hash"]) == 64
        assert snapshot["record_counts"]["users"] > 0
        assert snapshot["taken_at"].endswith("Z")
    assert document["summary"]["users"] == {
        "added": 1,
        "changed": 2,
        "tobedeleted": 2,
        "reactivated": 0,
        "removed": 1,
    }
    assert set(document["summary"]) == {
        "orgs",
        "academicSessions",
        "courses",
        "classes",
        "users",
        "enrollments",
    }
    assert len(document["changes"]) == sum(
        n for counts in document["summary"].values() for n in counts.values()
    )
    zoe = next(c for c in document["changes"] if c["sourcedId"] == scenario.year_group_pupil)
    assert zoe == {
        "entity": "users",
        "sourcedId": scenario.year_group_pupil,
        "change": "changed",
        "old_status": "active",
        "new_status": "active",
        "label": "Zoë O'Brien (student, year 8)",
        "fields": {"grades": {"old": ["7"], "new": ["8"]}},
        "details": {"user": scenario.year_group_pupil, "role": "student", "grades": ["8"]},
    }
    removed = next(c for c in document["changes"] if c["sourcedId"] == scenario.hard_leaver)
    assert removed["change"] == "removed" and removed["fields"] == {}
    assert (removed["old_status"], removed["new_status"]) == ("active", None)
    # People first: the hard and the soft leaver, and the teacher who left; the joiner.
    people = document["headline"]
    assert people["leavers"]["total"] == 3
    assert people["leavers"]["by_role"] == {"students": 2, "staff": 1, "guardians": 0, "other": 0}
    assert people["leavers"]["by_year_group"] == {"9": 2}
    assert people["joiners"]["by_year_group"] == {"9": 1} and people["purged"]["total"] == 0
    assert (people["year_group_changes"], people["class_moves"], people["identity_changes"]) == (
        1,
        3,
        1,
    )
    # One change per line: a long report can be read a line at a time.
    assert sum(1 for line in text.splitlines() if line.startswith('    {"entity"')) == len(
        document["changes"]
    )


def test_the_csv_report_has_one_row_per_changed_field(scenario: AuditScenario) -> None:
    rows = list(csv.DictReader(io.StringIO(report(scenario, "csv"))))
    assert list(rows[0]) == [
        "entity",
        "sourcedId",
        "change",
        "label",
        "path",
        "old",
        "new",
        "old_status",
        "new_status",
    ]
    changes = [r for r in rows if r["change"] not in ("new problem", "fixed problem")]
    renamed = [r for r in changes if r["sourcedId"] == scenario.renamed_pupil]
    assert {r["path"]: (r["old"], r["new"]) for r in renamed}["familyName"][1] == "Tanaka-Reyes"
    assert {r["path"] for r in renamed} == {
        "familyName",
        "email",
        "userIds[type=UPN].identifier",
    }
    grades = next(r for r in rows if r["sourcedId"] == scenario.year_group_pupil)
    assert (grades["path"], grades["old"], grades["new"]) == ("grades", '["7"]', '["8"]')
    joined = [r for r in changes if r["sourcedId"] == scenario.joiner]
    assert len(joined) == 1 and joined[0]["change"] == "added" and joined[0]["path"] == ""
    assert (joined[0]["old_status"], joined[0]["new_status"]) == ("", "active")


def test_the_markdown_report_has_a_provenance_table_a_summary_and_sections(
    scenario: AuditScenario,
) -> None:
    markdown = report(scenario, "markdown")
    assert markdown.startswith("# Changes for Quarrendon Academy (estab 3281110)\n")
    assert "| from | `3281110_2026-10-15T083000Z` | 2026-10-15 08:30:00 UTC | yes | yes |" in (
        markdown
    )
    for path in (scenario.old_path, scenario.new_path):  # the whole hash, to check the file by
        content_hash = read_snapshot_info(path).content_hash
        assert f"`{content_hash}` |" in markdown
    assert "| entity | added | changed | tobedeleted | reactivated | removed |" in markdown
    users = len(generate(seed=1, pupils=PUPILS, term=0)["users"])
    assert f"| users | 1 | 2 | 2 | 0 | 1 | {users} | {users} |" in markdown  # one left, one came
    assert "\n## People\n\n- 1 pupil (Year 9: 1) joined\n" in markdown
    assert "\n## Left: 3 people\n" in markdown
    assert f"- Zoë O'Brien (student, year 8) `{scenario.year_group_pupil}`: 7 → 8\n" in markdown
    assert "\n  - `userIds[type=UPN].identifier`: `" in markdown
    assert markdown.index("## People") < markdown.index("## Summary") < markdown.index("## Left")


def test_markdown_escapes_what_would_otherwise_be_formatting() -> None:
    assert escape("Year *8* [set_1] |x|") == "Year \\*8\\* \\[set\\_1\\] \\|x\\|"
    assert code("a`b") == "`` a`b ``"
