"""`snapshotter digest`: a saved change report mailed to a real SMTP server on loopback
(aiosmtpd), read back as its reader gets it: subject, both parts, counts, privacy, links."""

from __future__ import annotations

import email
import email.policy
import re
import sqlite3
import stat
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from helpers_diff import SCHOOL, term_time, write_snapshot
from helpers_serve import Archive, build_archive, save_diff
from helpers_smtp import Mailbox, self_signed, smtp_server

from snapshotter.archive.layout import read_snapshot_info
from snapshotter.archive.people import headline
from snapshotter.cli import cli
from snapshotter.quality import RULES, Finding, check_snapshot
from snapshotter.quality.store import kept_check
from snapshotter.sim.problems import planted_problems
from snapshotter.sim.school import generate

PERSONAL_FIELDS = ("givenName", "familyName", "middleName", "preferredFirstName", "email",
                   "username", "identifier", "sms", "phone")  # fmt: skip


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    return build_archive(tmp_path_factory.mktemp("archive"))


def digest(archive: Archive, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(
        cli, ["digest", "--archive", str(archive.path), "--estab", "3281110", *args], env=env
    )


def send(archive: Archive, mailbox: Mailbox, *args: str, **kwargs: Any) -> Result:
    return digest(
        archive,
        "--smtp-host", "127.0.0.1", "--smtp-port", str(mailbox.port), "--tls", "none",
        "--from", "archive@school.example", "--to", "dm@school.example",
        *args, **kwargs,
    )  # fmt: skip


def parts(message: Any) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    return text, html


def _headline(archive: Archive, run_id: int) -> dict[str, Any]:
    with closing(sqlite3.connect(archive.path / "changes.db")) as conn:
        return headline(conn, run_id)


def personal_values(archive: Archive) -> set[str]:
    """Every name, email, username and identifier of every person in every snapshot."""
    values: set[str] = set()
    for path in archive.snapshots:
        with closing(sqlite3.connect(path)) as conn:
            columns = {row[1] for row in conn.execute("PRAGMA table_info(users)")}
            for column in PERSONAL_FIELDS:
                if column in columns:
                    values.update(
                        str(v) for (v,) in conn.execute(f'SELECT "{column}" FROM users') if v
                    )
    # A surname that is also the school's name ("Quarrendon") is the school's, in the subject.
    return {value for value in values if len(value) >= 3 and value not in SCHOOL}


def test_the_latest_report_is_mailed_with_both_parts_and_the_clis_counts(archive: Archive) -> None:
    with smtp_server() as mailbox:
        result = send(archive, mailbox)
    assert result.exit_code == 0, result.output
    assert "Sent the digest of change report" in result.output
    (message,) = mailbox.messages
    latest = archive.run_ids[-1]
    people = _headline(archive, latest)
    subject = message["Subject"]
    assert subject.startswith("Quarrendon Academy: ")
    assert f"{people['joiners']['total']} joiners" in subject
    assert f"{people['leavers']['total']} leavers" in subject
    assert "(Summer 2027 → Autumn 2027)" in subject
    assert mailbox.envelopes == [("archive@school.example", ["dm@school.example"])]
    text, html = parts(message)
    for body in (text, html):
        assert str(people["year_group_changes"]) in body
        assert "Year-group changes" in body
        assert "Joiners" in body
    assert re.search(rf"Joiners:\s+{people['joiners']['total']}\b", text)
    assert "<script" not in html and "src=" not in html and "<link" not in html


def test_at_the_default_detail_no_person_is_named(archive: Archive) -> None:
    with smtp_server() as mailbox:
        for run_id in archive.run_ids:
            assert send(archive, mailbox, "--run", str(run_id)).exit_code == 0
    personal = personal_values(archive)
    assert len(personal) > 100
    for raw in mailbox.raw:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        text, html = parts(message)
        whole = "\n".join((message["Subject"], text, html))
        leaked = sorted(value for value in personal if re.search(rf"\b{re.escape(value)}\b", whole))
        assert leaked == [], f"personal data in a digest at `ids`: {leaked[:5]}"
        assert re.search(r"\bx[0-9A-Z]{8}\b", text), "ids are shown at `ids`"


def test_counts_gives_numbers_only_and_names_is_an_opt_in(archive: Archive) -> None:
    run_id = archive.run_ids[1]
    with smtp_server() as mailbox:
        assert send(archive, mailbox, "--run", str(run_id), "--detail", "counts").exit_code == 0
        assert send(archive, mailbox, "--run", str(run_id), "--detail", "names").exit_code == 0
    counts_text, _ = parts(mailbox.messages[0])
    names_text, names_html = parts(mailbox.messages[1])
    assert not re.search(r"\bx[0-9A-Z]{8}\b", counts_text), "no sourcedId at `counts`"
    assert "Joiners: " in counts_text
    with closing(sqlite3.connect(archive.path / "changes.db")) as conn:
        joiner = conn.execute(
            "SELECT label FROM joiners WHERE run_id = ? ORDER BY role, year_group, label",
            (run_id,),
        ).fetchone()[0]
    assert joiner in names_text
    assert joiner.replace("'", "&#39;") in names_html or joiner in names_html


def test_links_go_to_the_pages_when_a_datasette_url_is_set(archive: Archive) -> None:
    latest = archive.run_ids[-1]
    with smtp_server() as mailbox:
        result = send(
            archive, mailbox, "--datasette-url", "https://archive.school.example/",
            "--max-per-section", "2",
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    text, html = parts(mailbox.messages[0])
    report = f"https://archive.school.example/-/snapshotter/runs/{latest}"
    assert report in text and f'href="{report}"' in html
    more = f"https://archive.school.example/changes/joiners?run_id={latest}"
    assert re.search(r"and \d+ more: " + re.escape(more), text)
    assert f'href="{more}"' in html


def test_the_mass_change_warning_comes_first_and_a_rollover_is_called_expected(
    archive: Archive,
) -> None:
    with smtp_server() as mailbox:
        assert send(archive, mailbox, "--run", str(archive.run_ids[-1])).exit_code == 0
    text, html = parts(mailbox.messages[0])
    assert text.index("EXPECTED at a new school year:") < text.index("People")
    assert "new school year" in text
    assert html.index("Expected at a new school year:") < html.index("People")


def test_a_report_with_no_changes_says_so(tmp_path: Path) -> None:
    school = generate(seed=3, pupils=20, term=0)
    old = write_snapshot(tmp_path, school, taken_at=term_time(0))
    new = write_snapshot(tmp_path, school, taken_at=term_time(0).replace(day=20))
    save_diff(old, new, tmp_path)
    result = CliRunner().invoke(cli, ["digest", "--archive", str(tmp_path), "--print"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Quarrendon Academy: no changes (Autumn 2026)")
    assert "No changes: the two snapshots hold the same records." in result.output


def test_a_refused_login_is_said_and_exits_non_zero(archive: Archive) -> None:
    with smtp_server(login=("archive", "right horse")) as mailbox:
        env = {"SMTP_PASSWORD": "wrong battery"}
        refused = send(
            archive, mailbox, "--smtp-user", "archive", "--smtp-password-env", "SMTP_PASSWORD",
            env=env,
        )  # fmt: skip
        env = {"SMTP_PASSWORD": "right horse"}
        accepted = send(
            archive, mailbox, "--smtp-user", "archive", "--smtp-password-env", "SMTP_PASSWORD",
            env=env,
        )  # fmt: skip
    assert refused.exit_code == 1
    assert "refused the login of archive" in refused.output
    assert "run the same command again" in refused.output
    assert "wrong battery" not in refused.output
    assert accepted.exit_code == 0, accepted.output
    assert len(mailbox.messages) == 1


def test_a_rejected_recipient_is_said_and_exits_non_zero(archive: Archive) -> None:
    with smtp_server() as mailbox:
        result = digest(
            archive, "--smtp-host", "127.0.0.1", "--smtp-port", str(mailbox.port), "--tls", "none",
            "--from", "archive@school.example", "--to", "nobody@school.example",
        )  # fmt: skip
    assert result.exit_code == 1
    assert "rejected every recipient" in result.output
    assert "nobody@school.example: 550" in result.output
    assert mailbox.messages == []


def test_an_unreachable_server_is_said_and_exits_non_zero(archive: Archive) -> None:
    with smtp_server() as mailbox:
        port = mailbox.port
    result = digest(
        archive, "--smtp-host", "127.0.0.1", "--smtp-port", str(port), "--tls", "none",
        "--to", "dm@school.example", "--from", "archive@school.example",
    )  # fmt: skip
    assert result.exit_code == 1
    assert f"cannot reach the mail server 127.0.0.1:{port}" in result.output


def test_plain_smtp_beyond_this_machine_is_refused(archive: Archive) -> None:
    result = digest(
        archive, "--smtp-host", "mail.school.example", "--tls", "none", "--to", "dm@school.example"
    )
    assert result.exit_code == 1
    assert "without TLS" in result.output


def test_starttls_and_login_from_the_config_file(archive: Archive, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    password_file = tmp_path / "smtp-password"
    password_file.write_text("right horse\n")
    config = tmp_path / "snapshotter.toml"
    with smtp_server(login=("archive", "right horse"), tls_files=(cert, key)) as mailbox:
        config.write_text(
            f'archive = "{archive.path}"\n'
            "[mail]\n"
            f'host = "127.0.0.1"\nport = {mailbox.port}\ntls = "starttls"\n'
            f'username = "archive"\npassword_file = "{password_file}"\nca_file = "{cert}"\n'
            'from = "archive@school.example"\n'
            "[[school]]\n"
            'name = "Quarrendon"\nrp = "rp"\nestab = "3281110"\nsecret_env = "X"\n'
            'to = ["head@school.example", "dm@school.example"]\n'
        )
        result = CliRunner().invoke(cli, ["digest", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert mailbox.envelopes == [
        ("archive@school.example", ["head@school.example", "dm@school.example"])
    ]


def test_eml_writes_the_message_for_the_owner_only(archive: Archive, tmp_path: Path) -> None:
    target = tmp_path / "digest.eml"
    result = digest(archive, "--eml", str(target))
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    message = email.message_from_bytes(target.read_bytes(), policy=email.policy.default)
    text, html = parts(message)
    assert message["Subject"].startswith("Quarrendon Academy:")
    assert "People" in text and "<h1" in html


def test_an_unknown_run_and_an_empty_archive_are_clear_errors(
    archive: Archive, tmp_path: Path
) -> None:
    unknown = digest(archive, "--run", "999", "--print")
    assert unknown.exit_code == 2
    assert "no diff run 999" in unknown.output
    empty = CliRunner().invoke(cli, ["digest", "--archive", str(tmp_path), "--print"])
    assert empty.exit_code == 2
    assert "run `snapshotter diff`" in empty.output


def test_a_hostile_school_name_cannot_forge_a_header_or_markup(tmp_path: Path) -> None:
    school = generate(seed=3, pupils=20, term=0)
    hostile = "Evil\r\nBcc: victim@example.org\x1b[2J <b>Academy</b>"
    old = write_snapshot(tmp_path, school, taken_at=term_time(0), school_name=hostile)
    new = write_snapshot(tmp_path, generate(seed=3, pupils=20, term=1), taken_at=term_time(1),
                         school_name=hostile)  # fmt: skip
    save_diff(old, new, tmp_path)
    target = tmp_path / "digest.eml"
    result = CliRunner().invoke(cli, ["digest", "--archive", str(tmp_path), "--eml", str(target)])
    assert result.exit_code == 0, result.output
    message = email.message_from_bytes(target.read_bytes(), policy=email.policy.default)
    assert message["Bcc"] is None
    assert "\\r\\nBcc" in message["Subject"]
    text, html = parts(message)
    assert "\x1b" not in text and "\x1b" not in html
    assert "<b>Academy</b>" not in html and "&lt;b&gt;Academy&lt;/b&gt;" in html


def test_no_sender_is_a_clear_error_and_nothing_is_sent(archive: Archive) -> None:
    with smtp_server() as mailbox:
        result = digest(
            archive, "--smtp-host", "127.0.0.1", "--smtp-port", str(mailbox.port), "--tls", "none",
            "--to", "dm@school.example",
        )  # fmt: skip
    assert result.exit_code == 1
    assert "no sender: give --from" in result.output
    assert mailbox.messages == []


@pytest.mark.parametrize(
    "args",
    [
        ["--from", "a@school.example\nBcc: evil@elsewhere.example", "--to", "dm@school.example"],
        ["--to", "dm@school.example\r\nBcc: evil@elsewhere.example"],
        ["--to", "not an address"],
    ],
)
def test_an_address_that_could_forge_a_header_is_refused(archive: Archive, args: list[str]) -> None:
    result = digest(archive, *args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output and "Invalid value" in result.output


def test_eml_into_a_missing_folder_is_a_clear_error(archive: Archive, tmp_path: Path) -> None:
    result = digest(archive, "--eml", str(tmp_path / "nowhere" / "digest.eml"))
    assert result.exit_code == 2
    assert "no directory" in result.output


# The "New data problems" section: a clean snapshot, then the same school with the simulator's
# planted problems a day later, diffed; the new problems are exactly the planted ones.
QUALITY_PUPILS = 150


@pytest.fixture(scope="module")
def problems(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    root = tmp_path_factory.mktemp("problems")
    taken = term_time(0)
    clean = write_snapshot(root, generate(pupils=QUALITY_PUPILS, term=0), taken_at=taken)
    planted = write_snapshot(
        root,
        generate(pupils=QUALITY_PUPILS, term=0, plant_problems=True),
        taken_at=taken.replace(day=16),
    )
    run_id = save_diff(clean, planted, root)
    # The clean snapshot's findings kept (as its fetch would); the planted one's never: the
    # digest computes them, and writes nothing.
    kept_check(root / "changes.db", read_snapshot_info(clean))
    return Archive(root, [clean, planted], [run_id])


def eml(archive: Archive, tmp_path: Path, *args: str) -> tuple[str, str]:
    target = tmp_path / f"digest-{len(list(tmp_path.glob('*.eml')))}.eml"
    result = CliRunner().invoke(
        cli, ["digest", "--archive", str(archive.path), "--eml", str(target), *args]
    )
    assert result.exit_code == 0, result.output
    return parts(email.message_from_bytes(target.read_bytes(), policy=email.policy.default))


def quality_lines(text: str) -> list[str]:
    """The lines of the text part's "New data problems" section, after its title."""
    lines = text.split("\nNew data problems: ", 1)[1].split("\n\n", 1)[0].splitlines()
    return [line.strip() for line in lines[1:]]


def planted_truth() -> set[tuple[str, str]]:
    truth = planted_problems(pupils=QUALITY_PUPILS, term=0)
    return {(rule, sid) for rule, ids in truth.items() for sid in ids}


def planted_findings(archive: Archive) -> list[Finding]:
    return check_snapshot(read_snapshot_info(archive.snapshots[1])).findings


def test_new_data_problems_at_ids_are_rules_and_sourced_ids_only(
    problems: Archive, tmp_path: Path
) -> None:
    changes_db = problems.path / "changes.db"
    before = changes_db.read_bytes()
    text, html = eml(problems, tmp_path, "--max-per-section", "500")
    assert changes_db.read_bytes() == before, "the digest wrote to changes.db"
    truth = planted_truth()
    assert f"Data quality: {len(truth)} new problems, 0 fixed" in text
    assert f"Data quality: {len(truth)} new problems, 0 fixed" in html
    shown = set()
    for line in quality_lines(text):
        match = re.fullmatch(r"- ([a-z-]+) \((error|warning|info)\): (\w+) (\S+)", line)
        assert match, f"not a rule, entity and sourcedId: {line!r}"
        shown.add((match[1], match[4]))
    assert shown == truth
    messages = {f.message for f in planted_findings(problems)}
    # People's labels (their names); class and term titles are shown at `ids` elsewhere.
    labels = {f.label for f in planted_findings(problems) if f.entity in ("users", "enrollments")}
    assert labels
    for body in (text, html):
        assert not [m for m in messages if m in body], "a finding's message at `ids`"
        assert not [label for label in labels if label in body], "a finding's label at `ids`"
    # No person's name, email, username or identifier in the section (a class title such as
    # "Planted empty class" elsewhere in the digest shares a surname of the planted school).
    section = "\n".join(quality_lines(text)) + html.split(">New data problems: ")[1]
    leaked = sorted(
        value
        for value in personal_values(problems)
        if re.search(rf"\b{re.escape(value)}\b", section)
    )
    assert leaked == [], f"personal data in the section at `ids`: {leaked[:5]}"


def test_new_data_problems_at_names_add_labels_and_messages(
    problems: Archive, tmp_path: Path
) -> None:
    text, _ = eml(problems, tmp_path, "--detail", "names", "--max-per-section", "500")
    lines = quality_lines(text)
    assert len(lines) == len(planted_truth())
    new = {(f.rule, f.sourcedId): f for f in planted_findings(problems)}
    for rule, sid in planted_truth():
        finding = new[(rule, sid)]
        line = f"- {rule} ({finding.severity}): {finding.label} [{finding.entity} {sid}]: "
        assert f"{line}{finding.message}" in lines


def test_new_data_problems_at_counts_are_counts_by_rule(problems: Archive, tmp_path: Path) -> None:
    text, _ = eml(problems, tmp_path, "--detail", "counts")
    truth = planted_problems(pupils=QUALITY_PUPILS, term=0)
    expected = [
        f"- {rule.id} ({rule.severity}): {len(truth[rule.id])}" for rule in RULES if truth[rule.id]
    ]
    assert quality_lines(text) == expected
    assert not re.search(r"\bx[0-9A-Z]{7,8}\b", text.split("New data problems")[1])
    linked, _ = eml(
        problems, tmp_path, "--detail", "counts", "--datasette-url", "https://a.example"
    )
    page = f"https://a.example/-/snapshotter/quality/{problems.snapshots[1].stem}"
    assert quality_lines(linked) == [*expected, f"See them: {page}"]


def test_new_data_problems_are_capped_and_link_to_the_quality_page(
    problems: Archive, tmp_path: Path
) -> None:
    text, html = eml(
        problems, tmp_path, "--max-per-section", "2", "--datasette-url", "https://a.example/"
    )
    page = f"https://a.example/-/snapshotter/quality/{problems.snapshots[1].stem}"
    lines = quality_lines(text)
    assert len([line for line in lines if line.startswith("- ")]) == 2
    assert f"... and {len(planted_truth()) - 2} more: {page}" in lines
    assert f'href="{page}"' in html


def test_fixed_problems_are_counted_and_a_pruned_snapshot_leaves_the_section_out(
    tmp_path: Path,
) -> None:
    taken = term_time(0)
    planted = write_snapshot(
        tmp_path, generate(pupils=QUALITY_PUPILS, term=0, plant_problems=True), taken_at=taken
    )
    clean = write_snapshot(
        tmp_path, generate(pupils=QUALITY_PUPILS, term=0), taken_at=taken.replace(day=16)
    )
    save_diff(planted, clean, tmp_path)
    archive = Archive(tmp_path, [planted, clean], [1])
    text, _ = eml(archive, tmp_path)
    truth = planted_truth()
    assert f"Data quality: 0 new problems, {len(truth)} fixed" in text
    assert quality_lines(text)[0].startswith(f"Fixed: {len(truth)} (")
    planted.unlink()  # pruned
    text, html = eml(archive, tmp_path)
    assert "New data problems" not in text and "Data quality:" not in text
    assert "New data problems" not in html
