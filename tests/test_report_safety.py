"""Reports are safe to open: a hostile provider's names cannot run a formula in a spreadsheet,
drive the terminal, forge a line of a report or put live HTML into rendered Markdown, and the
JSON keeps every value exactly."""

from __future__ import annotations

import copy
import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers_diff import PUPILS, term_time, write_snapshot
from markdown_it import MarkdownIt

from snapshotter.cli import cli
from snapshotter.report.as_markdown import code, escape
from snapshotter.safe_text import printable
from snapshotter.sim.school import generate

FORMULAS = ('=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0")
AT_ID = "@SUM(1+1)*cmd|' /C calc'!A0"
TERMINAL = (
    "\x1b[2J\x1b[HGotcha",  # clears the screen
    "Eve\nForged Person (student, year 9)  [xFORGED]",  # a report line of its own
    "\x1b]0;owned\x07Mallory",  # retitles the terminal
    "\u202eevil\u202c",  # reads right to left
    "\x9b31mRed",  # C1 CSI
    "Del\x7f",
    "Carol\rOverwritten",
    "Sep\u2028arated",
)
MARKDOWN = (
    "# Forged heading",
    "``</code><script>alert(1)</script>``",
    "<img src=x onerror=alert(1)>",
    "a|b|c",
    "*bold* _it_ [x](http://evil.example) ~~gone~~ $x$",
    "Nat\n# Forged via newline",
    "Row\n| forged | row | row | row |",
    "1. ordered",
    "> quoted",
    "+ plus",
    "    indented",
    "&lt;script&gt; &amp;",
    "trailing #",
    "back\\slash\\",
)
ORDINARY = ("Zoë", "Siobhán", "Łukasz", "李")
HOSTILE_IDS = (AT_ID, "x\x1b[2Jid", "x``<script>id", "x\n# forged id", "x|y")
SCHOOL = "Evil\x1b[2J Academy\n# Forged | school <script>"
PROVIDER_VERSION = "1.1``<script>alert(1)</script>|x\n# v"
TAB_VALUE = "\t=1+1"
CR_VALUE = "\r=1+1"
BAD_KEY = "\x1b[31mkey`` <b>|"
BAD_PATH = f'metadata["{BAD_KEY}"]'  # how the diff names a key that is not an identifier
CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class Hostile:
    old_path: Path
    new_path: Path
    renamed: dict[str, str]  # sourcedId -> hostile givenName
    family: dict[str, str]  # sourcedId -> familyName
    tab_user: str
    number_user: str


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Hostile:
    """A school whose provider put every kind of dangerous text into names, ids and values."""
    archive = tmp_path_factory.mktemp("archive")
    old = generate(seed=1, pupils=PUPILS, term=0)
    students = [u for u in old["users"] if u["role"] == "student" and u["status"] == "active"]
    for user in students:
        user["metadata"] = {**(user.get("metadata") or {}), "score": 3, "debt": "5"}
    new = copy.deepcopy(old)
    users = {u["sourcedId"]: u for u in new["users"]}
    names = FORMULAS + TERMINAL + MARKDOWN + ORDINARY
    renamed = {}
    for user, name in zip(students, names, strict=False):
        users[user["sourcedId"]]["givenName"] = name
        renamed[user["sourcedId"]] = name
    rest = students[len(names) :]
    tab_user, number_user = rest[0]["sourcedId"], rest[1]["sourcedId"]
    users[tab_user].update(middleName=TAB_VALUE, email=CR_VALUE)
    users[number_user]["metadata"] = {**users[number_user]["metadata"], "score": -5}
    users[number_user]["metadata"].update(debt="-5", **{BAD_KEY: "<b>x</b>"})
    for sourced_id in HOSTILE_IDS:
        new["users"].append({**copy.deepcopy(rest[2]), "sourcedId": sourced_id})
    taken_at = term_time(0)
    return Hostile(
        old_path=write_snapshot(archive, old, taken_at=taken_at, school_name=SCHOOL),
        new_path=write_snapshot(
            archive,
            new,
            taken_at=taken_at.replace(day=20),
            school_name=SCHOOL,
            provider_version=PROVIDER_VERSION,
        ),
        renamed=renamed,
        family={s["sourcedId"]: s["familyName"] for s in students},
        tab_user=tab_user,
        number_user=number_user,
    )


def report(hostile: Hostile, output_format: str) -> str:
    result = CliRunner().invoke(
        cli,
        [
            "diff",
            str(hostile.old_path),
            str(hostile.new_path),
            "--archive",
            str(hostile.old_path.parent.parent),
            "--format",
            output_format,
            "--limit",
            "0",  # every entry: each must be safe
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return result.stdout


def test_csv_cells_that_a_spreadsheet_would_run_as_formulas_are_neutralised(
    hostile: Hostile,
) -> None:
    rows = list(csv.reader(io.StringIO(report(hostile, "csv"))))
    header, body = rows[0], rows[1:]
    by_id: dict[str, list[dict[str, str]]] = {}
    for row in body:
        cells = dict(zip(header, row, strict=True))
        if cells["change"] not in ("new problem", "fixed problem"):  # data quality: below
            by_id.setdefault(cells["sourcedId"], []).append(cells)
        for cell in row:
            if re.fullmatch(r"-\d+", cell):
                continue  # a JSON number: a spreadsheet reads it as the number it is
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), row
    for sourced_id, name in hostile.renamed.items():
        if name not in FORMULAS:
            continue
        (row,) = by_id[sourced_id]
        assert row["label"].startswith("'" + name + " ")  # the text itself, marked as text
        assert row["new"] == "'" + name and row["path"] == "givenName"
    (added,) = by_id["'" + AT_ID]
    assert added["change"] == "added"
    tabbed = {r["path"]: r["new"] for r in by_id[hostile.tab_user]}
    assert tabbed == {"middleName": "'" + TAB_VALUE, "email": "'" + CR_VALUE}
    numbers = {r["path"]: (r["old"], r["new"]) for r in by_id[hostile.number_user]}
    assert numbers["metadata.score"] == ("3", "-5")  # numbers stay numbers
    assert numbers["metadata.debt"] == ("5", "'-5")  # a string that looks like one does not


def test_a_carriage_return_in_a_value_cannot_split_a_csv_row(hostile: Hostile) -> None:
    rows = list(csv.reader(io.StringIO(report(hostile, "csv"), newline="")))
    assert all(len(row) == 9 for row in rows)  # no row cut in two
    cells = {(row[1], row[4]): row for row in rows[1:]}
    assert cells[(hostile.tab_user, "email")][6] == "'" + CR_VALUE


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[2J", "\\x1b[2J"),
        ("a\nb\rc\td", "a\\nb\\rc\\td"),
        ("\x00\x7f\x85\x9b", "\\x00\\x7f\\x85\\x9b"),
        ("\u202eabc\u202c\u2066\u2069", "\\u202eabc\\u202c\\u2066\\u2069"),
        ("line\u2028sep", "line\\u2028sep"),
        ("lone \ud800", "lone \\ud800"),
        ("Zoë Siobhán Łukasz 李 O'Brien-Smith", "Zoë Siobhán Łukasz 李 O'Brien-Smith"),
        ("emoji 👩‍🏫 and zero\u200dwidth joiner", "emoji 👩‍🏫 and zero\u200dwidth joiner"),
    ],
)
def test_printable_shows_what_a_terminal_would_obey(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_the_text_report_shows_control_characters_instead_of_obeying_them(
    hostile: Hostile,
) -> None:
    text = report(hostile, "text")
    assert CONTROL.search(text) is None
    lines = text.splitlines()
    assert lines[0] == f"Changes for {printable(SCHOOL)} (estab 3281110)"
    assert "\\x1b[2J\\x1b[HGotcha" in text
    assert not any(line.startswith(("Forged Person", "  Forged Person")) for line in lines)
    assert "  Eve\\nForged Person (student, year 9)  [xFORGED] " in text
    assert "\\u202eevil\\u202c" in text and "\\x9b31mRed" in text and "Carol\\rOverwritten" in text
    assert "  [x\\x1b[2Jid]" in text and "  [x\\n# forged id]" in text
    assert f"    {printable(BAD_PATH)}: (none) → " in text
    # One line per changed user, each ending in its own sourcedId: none forged. (The
    # data-quality part closes the report; its lines are checked below.)
    quality_at = lines.index(next(line for line in lines if line.startswith("Data quality: ")))
    listed = [
        line
        for line in lines[3:quality_at]
        if line.startswith("  ") and " → " not in line and not line.startswith("  ... ")
    ]
    expected = [*hostile.renamed, hostile.tab_user, hostile.number_user, *HOSTILE_IDS]
    assert sorted(listed[i].rsplit("  [", 1)[1] for i in range(len(listed))) == sorted(
        printable(sourced_id) + "]" for sourced_id in expected
    )


def test_ordinary_names_in_any_script_print_unchanged(hostile: Hostile) -> None:
    text = report(hostile, "text")
    for sourced_id, name in hostile.renamed.items():
        if name in ORDINARY:
            assert f"  {name} {hostile.family[sourced_id]} (student, " in text
            assert f' → "{name}"\n' in text  # the value, as it is


def _outside_code_spans(line: str) -> str:
    """`line` with its CommonMark code spans and backslash escapes blanked out."""
    kept, i = [], 0
    while i < len(line):
        if line[i] == "\\" and i + 1 < len(line):
            kept.append(" ")
            i += 2
        elif line[i] == "`":
            run = len(re.match(r"`+", line[i:]).group())
            close = re.compile(rf"(?<!`)`{{{run}}}(?!`)").search(line, i + run)
            if close is None:
                kept.append(line[i : i + run])
                i += run
            else:
                kept.append(" ")
                i = close.end()
        else:
            kept.append(line[i])
            i += 1
    return "".join(kept)


_OUR_HEADING = re.compile(
    r"# Changes for .*|## (People|Summary)|## [A-Za-z ]+: \d+[a-z ,]*"
    r"|## [A-Za-z ]+ \(\d+([;,] [a-z0-9 ]+ in the class moves above)?\)"
    r"|## Data quality"
)


def test_markdown_keeps_its_shape_and_holds_no_live_html_or_links(hostile: Hostile) -> None:
    markdown = report(hostile, "markdown")
    assert CONTROL.search(markdown) is None
    lines = markdown.splitlines()
    for line in lines:
        if line.startswith("#"):
            assert _OUR_HEADING.fullmatch(line), line  # no heading forged by a name
        if line.startswith("- "):
            assert not re.match(r"- (\d+[.)]|[-+*>#]|\s)", line), line  # no nested block
        assert line == "" or line.startswith(("#", "|", "- ", "  - ")), line
        outside = _outside_code_spans(line)
        assert "`" not in outside, line  # every code span closed where it opened
        assert not re.search(r"[<>\[\]*_~$]", outside), line  # no live HTML, link, emphasis
    # Every row of a table has as many cell borders as its header.
    tables: list[list[str]] = []
    for previous, line in zip(["", *lines], lines, strict=False):
        if line.startswith("|"):
            if not previous.startswith("|"):
                tables.append([])
            tables[-1].append(line)
    assert len(tables) == 2
    for table in tables:
        borders = {len(re.findall(r"(?<!\\)\|", row)) for row in table}
        assert len(borders) == 1, table
    # What each name was is still there to read.
    assert escape("*bold* _it_ [x](http://evil.example) ~~gone~~ $x$") in markdown
    assert "&lt;img src=x onerror=alert(1)&gt;" in markdown


def test_rendered_markdown_holds_only_the_reports_own_markup(hostile: Hostile) -> None:
    # A CommonMark renderer with raw HTML allowed, as a wiki or a mail client may be.
    html = (
        MarkdownIt("commonmark", {"html": True}).enable("table").render(report(hostile, "markdown"))
    )
    tags = set(re.findall(r"<([a-z0-9]+)", html))
    assert tags <= {
        "h1",
        "h2",
        "h3",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "ul",
        "li",
        "code",
    }
    assert re.findall(r"<h\d>[^<]*</h\d>", html)[1:] == [
        "<h2>People</h2>",
        "<h2>Summary</h2>",
        f"<h2>Joined: {len(HOSTILE_IDS)} people</h2>",
        f"<h2>Identity changes: {len(hostile.renamed) + 1} people</h2>",
        "<h2>Other changes to users (1)</h2>",
        "<h2>Data quality</h2>",
    ]
    for table in re.findall(r"<table>.*?</table>", html, re.S):
        rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)
        assert {len(re.findall(r"<t[hd][ >]", row)) for row in rows} == {8}
    records = len(hostile.renamed) + 2 + len(HOSTILE_IDS)
    fields = len(hostile.renamed) + 2 + 3  # givenName; middleName, email; three in metadata
    headline = 3  # who joined, who left, the rest
    changes_part, quality_part = html.split("<h2>Data quality</h2>")
    assert changes_part.count("<li>") == headline + records + fields  # none forged, none lost
    # The data-quality part: the hostile emails are new problems, listed as list items too.
    assert "<li>New: <code>invalid-email (error)</code>: " in quality_part


def test_markdown_code_spans_hold_any_text() -> None:
    assert code("plain") == "`plain`"
    assert code("a`b") == "`` a`b ``"
    assert code("x``<script>") == "``` x``<script> ```"
    assert code("`") == "`` ` ``"
    assert code(" padded ") == "`  padded  `"  # CommonMark strips one space a side
    assert code("a\nb") == "`a\\nb`"
    assert code("a|b", in_table=True) == "`a\\|b`"
    assert escape("# x") == "\\# x" and escape("1. x") == "1\\. x" and escape("- x") == "\\- x"
    assert escape("a\n# b") == "a\\n\\# b"
    assert escape("<a href='x'>&amp;") == "&lt;a href='x'&gt;&amp;amp;"


def test_the_json_report_keeps_every_hostile_value_exactly(hostile: Hostile) -> None:
    text = report(hostile, "json")
    assert CONTROL.search(text.replace("\n", "")) is None  # escaped as JSON, not raw
    changes = {c["sourcedId"]: c for c in json.loads(text)["changes"]}
    for sourced_id, name in hostile.renamed.items():
        change = changes[sourced_id]
        assert change["label"].startswith(name + " ")
        assert change["fields"]["givenName"]["new"] == name
    assert set(HOSTILE_IDS) <= set(changes)
    fields = changes[hostile.number_user]["fields"]
    assert fields["metadata.score"] == {"old": 3, "new": -5}
    assert fields[BAD_PATH] == {"old": None, "new": "<b>x</b>"}
    assert changes[hostile.tab_user]["fields"]["middleName"]["new"] == TAB_VALUE
    assert json.loads(text)["to"]["provider_version"] == PROVIDER_VERSION
