"""Private data and secrets never reach disk or a report: a provider that sends passwords under
other names or echoes our credentials back, dotted `--drop-field`s, plain HTTP, a secret file
others can read. Against the simulator over real HTTP, into real snapshot files."""

from __future__ import annotations

import json
import os
import re
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from helpers_fetch import ESTAB, FAST, RP, SECRET, fetch, metadata, tree

from snapshotter.api.auth import basic_authorization
from snapshotter.api.errors import FetchError
from snapshotter.cli import cli
from snapshotter.fetch import InsecureTransportError, fetch_snapshot
from snapshotter.sim.quirks import Quirks
from snapshotter.sim.served import CREDENTIAL_MARK

FAST_OPTIONS = ["--page-size", "40", "--concurrency", "4", "--timeout", "2"]
LEAKY = Quirks(credential_fields=True)


def _run(args: list[str | Path], env: dict[str, str] | None = None) -> Result:
    environment = {"SNAPSHOTTER_SECRET": "", "SNAPSHOTTER_ARCHIVE": "", **(env or {})}
    return CliRunner().invoke(cli, [str(a) for a in args], env=environment)


def _fetch_args(base_url: str, archive: Path, *extra: str | Path) -> list[str | Path]:
    return ["fetch", "--base-url", base_url, "--rp", RP, "--estab", ESTAB,
            "--archive", archive, *FAST_OPTIONS, *extra]  # fmt: skip


def _every_byte(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())


def _column_texts(path: Path) -> list[str]:
    """Every text cell of a snapshot's tables."""
    texts = []
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                texts += [cell for cell in row if isinstance(cell, str)]
    return texts


# --- credential-like fields --------------------------------------------------------------


def test_passwords_under_other_names_and_at_any_depth_never_reach_the_snapshot(
    sim_server, tmp_path: Path
):
    sim = sim_server(pupils=60, quirks=LEAKY)
    outcome = fetch(sim, tmp_path)
    assert outcome.complete
    assert CREDENTIAL_MARK.encode() not in outcome.path.read_bytes()
    users = len(sim.records("users"))
    dropped = json.loads(metadata(outcome.path)["dropped_paths"])
    assert dropped == {
        "users.Password": users,
        "users.api_token": users,
        "users.metadata.logins[].token": users,
        "users.metadata.password": users,
        "users.metadata.pwd": users,
        "users.pinCode": users,
        "users.userPassword": users,
        "users.password": sum("password" in user for user in sim.records("users")),
    }
    with sqlite3.connect(outcome.path) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(users)")}
        metadata_cell = conn.execute("SELECT metadata FROM users LIMIT 1").fetchone()[0]
    assert not {"Password", "userPassword", "api_token", "pinCode"} & columns
    # What merely looks alike is kept.
    assert json.loads(metadata_cell) == {"house": "Kestrel", "logins": [{"service": "vle"}],
                                         "pinned": True}  # fmt: skip


def test_an_import_drops_them_too_in_one_process_and_in_worker_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from snapshotter import importer
    from snapshotter.sim.school import generate
    from snapshotter.sim.served import credential_fields

    # No server here: worker processes are only forked while this process has one thread.
    school = generate(seed=1, pupils=60, term=0)
    source = tmp_path / "saved"
    source.mkdir()
    for collection, records in school.items():
        if collection != "users":
            (source / f"{collection}.json").write_text(json.dumps({collection: records}))
    # The users as a leaky provider sends them, one a line.
    users = [{**user, **credential_fields(user, 0)} for user in school["users"]]
    (source / "users.ndjson").write_text("".join(json.dumps(user) + "\n" for user in users))
    sequential = importer.import_snapshot(source, ESTAB, tmp_path / "one")
    workers_used = []
    in_parallel = importer._save_in_parallel
    monkeypatch.setattr(importer, "PARALLEL_FROM_BYTES", 0)
    monkeypatch.setattr(importer, "CHUNK_BYTES", 20_000)
    monkeypatch.setattr(
        importer, "_save_in_parallel", lambda *a: workers_used.append(a[1]) or in_parallel(*a)
    )
    parallel = importer.import_snapshot(source, ESTAB, tmp_path / "workers")
    assert workers_used == ["users"]
    for path in (sequential, parallel):
        assert CREDENTIAL_MARK.encode() not in path.read_bytes()
        dropped = json.loads(metadata(path)["dropped_paths"])
        assert dropped["users.metadata.pwd"] == dropped["users.Password"] == len(users)
    assert metadata(parallel)["content_hash"] == metadata(sequential)["content_hash"]
    assert metadata(parallel)["dropped_paths"] == metadata(sequential)["dropped_paths"]


def test_changed_passwords_leave_no_trace_in_any_report_or_in_changes_db(
    sim_server, tmp_path: Path
):
    sim = sim_server(pupils=60, quirks=LEAKY)
    archive = tmp_path / "archive"
    fetch(sim, archive)
    sim.set_term(1)  # every credential value changes, and the school moves on a term
    fetch(sim, archive)
    reports = []
    for form in ("text", "json", "csv", "markdown"):
        result = _run(["diff", "--archive", archive, "--format", form])
        assert result.exit_code == 0, result.output
        reports.append(result.stdout)
        written = tmp_path / f"report.{form}"
        assert (
            _run(["diff", "--archive", archive, "--format", form, "--output", written]).exit_code
            == 0
        )
        reports.append(written.read_text())
    changes = json.loads(reports[2])["changes"]
    assert changes  # the school did change: the reports are not empty
    paths = {path for change in changes for path in change["fields"]}
    assert not [path for path in paths if re.search("(?i)pass|pwd|token|pin", path)]
    assert (archive / "changes.db").is_file()
    for text in reports:
        assert CREDENTIAL_MARK not in text
    assert CREDENTIAL_MARK.encode() not in _every_byte(archive)


# --- dotted --drop-field -----------------------------------------------------------------


def test_a_dotted_drop_field_drops_the_nested_field_for_real_and_says_so(
    sim_server, tmp_path: Path
):
    sim = sim_server(pupils=60, quirks=LEAKY)
    args = _fetch_args(sim.base_url, tmp_path, "--drop-field", "users.metadata.house", "-q")
    result = _run(args, env={"SNAPSHOTTER_SECRET": SECRET})
    assert result.exit_code == 0, result.output
    path = Path(result.stdout.strip())
    assert not [text for text in _column_texts(path) if '"house"' in text]
    assert [text for text in _column_texts(path) if '"pinned"' in text]  # its neighbour stays
    row = metadata(path)
    assert json.loads(row["drop_fields"]) == ["users.metadata.house"]
    assert json.loads(row["dropped_paths"])["users.metadata.house"] == len(sim.records("users"))


def test_the_metadata_never_claims_a_nested_password_was_dropped_when_it_was_stored(
    sim_server, tmp_path: Path
):
    # Before, `users.metadata.password` was accepted and recorded as dropped, and stored.
    sim = sim_server(pupils=60, quirks=LEAKY)
    outcome = fetch(sim, tmp_path, drop_fields=["users.metadata.password"])
    row = metadata(outcome.path)
    assert json.loads(row["drop_fields"]) == ["users.metadata.password"]
    assert "users.metadata.password" in json.loads(row["dropped_paths"])
    assert not [text for text in _column_texts(outcome.path) if "metadata.password-" in text]


@pytest.mark.parametrize(
    "spec", ["users.", "users.metadata..sen", "users.sourcedId", "pupils.metadata.sen"]
)
def test_a_drop_field_path_it_cannot_honour_is_a_usage_error(tmp_path: Path, spec: str):
    result = _run(_fetch_args("https://example.invalid", tmp_path, "--drop-field", spec),
                  env={"SNAPSHOTTER_SECRET": SECRET})  # fmt: skip
    assert result.exit_code == 2 and f"--drop-field {spec!r}" in result.stderr
    config = tmp_path / "snapshotter.toml"
    config.write_text(f'drop_fields = ["{spec}"]\n')
    result = _run(["fetch", "--config", config, "--all"])
    assert result.exit_code == 2 and spec in result.stderr
    assert tree(tmp_path) == {"snapshotter.toml": config.read_bytes()}


# --- credentials echoed back by the provider ---------------------------------------------


def test_credentials_the_provider_echoes_back_never_reach_a_snapshot_byte(
    sim_server, tmp_path: Path
):
    # Records inserted under the cursor make the server's own order fail a pass, so the fetch
    # asks for `sort`, which this server refuses: the "sort refused" warning is one more door.
    quirks = Quirks(
        echo_credentials=True,
        reject_sort=True,
        forbidden=frozenset({"courses"}),
        drift_endpoint="users",
        drift_insert_per_page=1,
        drift_pages=2,
    )
    sim = sim_server(pupils=60, quirks=quirks)
    outcome = fetch(sim, tmp_path, allow_partial=True)
    assert outcome.path is not None and not outcome.complete
    raw = outcome.path.read_bytes()
    credentials = [SECRET, basic_authorization(RP, ESTAB, SECRET).split()[1], *sim.state.tokens]
    assert len(credentials) >= 3
    for credential in credentials:
        assert credential.encode() not in raw, credential
    # The echoes did arrive, through every door: blanked out, the rest of the words kept.
    row = metadata(outcome.path)
    endpoints = json.loads(row["endpoints"])
    assert "[redacted]" in row["provider_version"] and "[redacted]" in row["auth_version"]
    assert any("sort=sourcedId refused" in w and "[redacted]" in w
               for w in endpoints["users"]["warnings"])  # fmt: skip
    assert any("request authorised by Bearer [redacted]" in w
               for w in endpoints["orgs"]["warnings"])  # fmt: skip
    assert "Not authorised to read courses" in row["incomplete_reason"]
    assert "[redacted]" in row["incomplete_reason"] and "[redacted]" in endpoints["courses"]["note"]
    for credential in credentials:
        assert credential not in (outcome.reason or "")


def test_a_short_secret_is_blanked_out_where_it_stands_alone(sim_server, tmp_path: Path):
    short = "q7z"
    sim = sim_server(pupils=60, quirks=Quirks(echo_credentials=True),
                     clients={f"{RP}|{ESTAB}": short})  # fmt: skip
    outcome = fetch_snapshot(sim.base_url, RP, ESTAB, short, tmp_path, settings=FAST)
    alone = re.compile(rf"(?<![A-Za-z0-9]){short}(?![A-Za-z0-9])")
    texts = _column_texts(outcome.path)
    said = [t for t in texts if "its secret is" in t]
    assert said and all("its secret is [redacted]" in t for t in said)
    assert not [t for t in texts if "authorised by" in t and alone.search(t)]
    assert not alone.search(metadata(outcome.path)["provider_version"])


# --- plain HTTP off this machine ---------------------------------------------------------


def test_plain_http_to_another_machine_is_refused_before_anything_is_asked_or_sent(
    tmp_path: Path,
):
    result = _run(_fetch_args("http://oneroster.example.invalid/api", tmp_path / "archive"))
    assert result.exit_code == 2
    assert "in clear" in result.stderr and "--allow-insecure-http" in result.stderr
    assert "SNAPSHOTTER_SECRET" not in result.stderr  # refused before asking for the secret
    assert tree(tmp_path) == {}
    with pytest.raises(InsecureTransportError):
        fetch_snapshot("http://10.1.2.3/api", RP, ESTAB, SECRET, tmp_path, settings=FAST)
    assert tree(tmp_path) == {}


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.8.9.10", "localhost", "LOCALHOST", "[::1]", "[::ffff:127.0.0.1]"]
)
def test_plain_http_to_this_machine_and_https_anywhere_are_fine(host: str, tmp_path: Path):
    from snapshotter.fetch import refuse_plain_http

    refuse_plain_http(f"http://{host}:8080/api", allow_insecure_http=False)
    refuse_plain_http("https://oneroster.example.invalid/api", allow_insecure_http=False)


def test_allow_insecure_http_lets_it_through(sim_server, tmp_path: Path):
    sim = sim_server(pupils=60)
    # 0.0.0.0 is not a loopback address, yet connecting to it reaches this machine's loopback
    # listener: a non-loopback http:// URL that a test can really fetch from.
    elsewhere = sim.base_url.replace("127.0.0.1", "0.0.0.0")
    refused = _run(_fetch_args(elsewhere, tmp_path), env={"SNAPSHOTTER_SECRET": SECRET})
    assert refused.exit_code == 2 and sim.request_log == []
    allowed = _run(_fetch_args(elsewhere, tmp_path, "--allow-insecure-http", "-q"),
                   env={"SNAPSHOTTER_SECRET": SECRET})  # fmt: skip
    assert allowed.exit_code == 0, allowed.output
    assert Path(allowed.stdout.strip()).is_file()
    with pytest.raises(FetchError):  # allowed, so it is tried (and there is nothing there)
        fetch_snapshot("http://oneroster.example.invalid/api", RP, ESTAB, SECRET, tmp_path,
                       settings=FAST, allow_insecure_http=True)  # fmt: skip


CONFIG = """
{top}
[[school]]
name = "Loopback School"
rp = "partner-rp"
estab = "3281110"
secret_env = "LOOPBACK_SECRET"
base_url = "{loopback}"

[[school]]
name = "Remote School"
rp = "partner-rp"
estab = "3281110"
secret_env = "LOOPBACK_SECRET"
base_url = "{remote}"
{per_school}
"""


@pytest.mark.parametrize(
    ("top", "per_school"), [("", "allow_insecure_http = true"), ("allow_insecure_http = true", "")]
)
def test_fetch_all_refuses_the_whole_run_unless_the_config_allows_it(
    sim_server, tmp_path: Path, top: str, per_school: str
):
    sim = sim_server(pupils=60)
    remote = sim.base_url.replace("127.0.0.1", "0.0.0.0")
    config = tmp_path / "snapshotter.toml"
    env = {"LOOPBACK_SECRET": SECRET}
    command = ["fetch", "--all", "--config", config, "--archive", tmp_path / "a", *FAST_OPTIONS]
    config.write_text(CONFIG.format(top="", per_school="", loopback=sim.base_url, remote=remote))
    refused = _run(command, env=env)
    assert refused.exit_code == 2
    assert "Remote School" in refused.stderr and "allow_insecure_http" in refused.stderr
    assert sim.request_log == [] and not (tmp_path / "a").exists()
    text = CONFIG.format(top=top, per_school=per_school, loopback=sim.base_url, remote=remote)
    config.write_text(text)
    allowed = _run([*command, "-q"], env=env)
    assert allowed.exit_code == 0, allowed.output
    assert len(allowed.stdout.splitlines()) == 2


# --- a secret file others can read -------------------------------------------------------


def test_a_secret_file_others_can_read_is_warned_about_and_the_fetch_goes_on(
    sim_server, tmp_path: Path
):
    sim = sim_server(pupils=60)
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    os.chmod(secret_file, 0o644)
    loose = _run(_fetch_args(sim.base_url, tmp_path / "a", "--secret-file", secret_file, "-q"))
    assert loose.exit_code == 0, loose.output
    assert f"--secret-file {secret_file} is readable by others" in loose.stderr
    assert f"chmod 600 {secret_file}" in loose.stderr and "0644" in loose.stderr
    os.chmod(secret_file, 0o600)
    private = _run(_fetch_args(sim.base_url, tmp_path / "b", "--secret-file", secret_file, "-q"))
    assert private.exit_code == 0 and private.stderr == ""


def test_allow_insecure_http_in_the_config_must_be_true_or_false(tmp_path: Path):
    config = tmp_path / "snapshotter.toml"
    config.write_text('allow_insecure_http = "yes"\n')
    result = _run(["fetch", "--config", config, "--all"])
    assert result.exit_code == 2 and "`allow_insecure_http` must be true or false" in result.stderr


def test_a_password_in_a_snapshot_from_before_never_shows_in_a_diff(tmp_path: Path):
    from helpers_diff import generate, term_time, write_snapshot

    school = generate(seed=1, pupils=60, term=0)
    old = write_snapshot(tmp_path, school, taken_at=term_time(0))
    new = write_snapshot(tmp_path, school, taken_at=term_time(0).replace(day=20))
    # As an older version stored it: the field in `_record`, hashed with it.
    with sqlite3.connect(old) as conn:
        conn.execute(
            "UPDATE users SET _record = json_set(_record, '$.userPassword', 'old-hunter2'), "
            "_hash = 'from-an-older-version' WHERE rowid = 1"
        )
    for form in ("text", "json", "csv", "markdown"):
        result = _run(["diff", old, new, "--format", form, "--no-save"])
        assert result.exit_code == 0, result.output
        assert "hunter2" not in result.stdout and "userPassword" not in result.stdout
    assert (
        json.loads(_run(["diff", old, new, "--format", "json", "--no-save"]).stdout)["changes"]
        == []
    )


def test_a_credential_nested_in_a_changed_value_is_taken_out_of_the_report(tmp_path: Path):
    from helpers_diff import edited, first, generate, term_time, write_snapshot

    school = generate(seed=1, pupils=60, term=0)
    pupil = first(school, "users", role="student")
    old = write_snapshot(tmp_path, school, taken_at=term_time(0))
    moved = edited(school, "users", pupil["sourcedId"], metadata={"house": "Kite"})
    new = write_snapshot(tmp_path, moved, taken_at=term_time(0).replace(day=20))
    with sqlite3.connect(old) as conn:  # as an older version stored it
        leaky = {"house": "Owl", "logins": [{"pin": "9876"}]}
        conn.execute(
            "UPDATE users SET _record = json_set(_record, '$.metadata', json(?)) "
            "WHERE sourcedId = ?",
            (json.dumps(leaky), pupil["sourcedId"]),
        )
    result = _run(["diff", old, new, "--format", "json", "--no-save"])
    (change,) = json.loads(result.stdout)["changes"]
    assert "9876" not in result.stdout
    assert change["fields"] == {"metadata.house": {"old": "Owl", "new": "Kite"},
                                "metadata.logins": {"old": [{}], "new": None}}  # fmt: skip
