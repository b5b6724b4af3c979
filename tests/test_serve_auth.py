"""Password sign-in for `snapshotter serve`: with a hash configured, every page needs a signed-in
actor (the login form of datasette-auth-passwords), a public --host is allowed, and the hash is
never shown. Through `datasette.client` against the simulated school's archive, the CLI through
CliRunner, and one real server on loopback."""

from __future__ import annotations

import asyncio
import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from datasette_auth_passwords.utils import hash_password, verify_password
from helpers_serve import Archive, build_archive, get, serving

from snapshotter.cli import cli
from snapshotter.commands.serve import bind_refusal
from snapshotter.datasette.accounts import HASH_ENV, Account
from snapshotter.datasette.app import make_datasette

PASSWORD = "correct horse battery staple"
# Fewer iterations than the 480,000 of `hash-password`: the same scheme, a faster test.
PASSWORD_HASH = hash_password(PASSWORD, salt="a1b2c3d4e5f6a7b8", iterations=2000)
HASH_PARTS = PASSWORD_HASH.split("$")[2:]  # the salt and the digest


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    return build_archive(tmp_path_factory.mktemp("archive"))


@pytest.fixture
def hash_file(tmp_path: Path) -> Path:
    path = tmp_path / "site.hash"
    path.write_text(PASSWORD_HASH + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.fixture
def site(archive: Archive, hash_file: Path) -> Any:
    return make_datasette(archive.path, [Account("admin", file=hash_file)])


def pages(archive: Archive) -> dict[str, str]:
    """One URL of each kind of page the site has."""
    snapshot = archive.snapshots[-1].stem
    run_id = archive.run_ids[-1]
    return {
        "the archive (plugin)": "/",
        "a change report (plugin)": f"/-/snapshotter/runs/{run_id}",
        "a history (plugin, another branch)": "/-/snapshotter/history/3281110/users/u1",
        "changes.db (Datasette)": "/changes",
        "a table (Datasette)": "/changes/changed_records",
        "a row (Datasette)": "/changes/changed_records/1",
        "a snapshot file (Datasette)": f"/{snapshot}",
        "a snapshot's table (Datasette)": f"/{snapshot}/users",
        "a canned query": f"/changes/class_moves_in_run?run_id={run_id}",
        "Datasette's pages": "/-/versions",
        "the password tool": "/-/password-tool",
    }


def data(archive: Archive) -> dict[str, str]:
    run_id = archive.run_ids[-1]
    return {
        "a table as JSON": "/changes/changed_records.json",
        "a canned query as JSON": f"/changes/class_moves_in_run.json?run_id={run_id}",
        "a row as JSON": "/changes/changed_records/1.json",
        "the metadata": "/-/metadata.json",
        "the databases": "/-/databases.json",
        "a table as CSV": "/changes/changed_records.csv",
        "a page asked for as JSON": "/changes/changed_records?_format=json",
    }


def sign_in(site: Any, user: str = "admin", password: str = PASSWORD) -> Any:
    """POST the login form with its CSRF token, as a browser does; the answer."""
    form = asyncio.run(site.client.get("/-/login"))
    assert form.status_code == 200
    token = re.search(r'name="csrftoken" value="([^"]+)"', form.text)[1]
    return asyncio.run(
        site.client.post(
            "/-/login",
            data={"username": user, "password": password, "csrftoken": token},
            cookies={"ds_csrftoken": form.cookies["ds_csrftoken"]},
        )
    )


def signed_in(site: Any, user: str = "admin") -> dict[str, str]:
    response = sign_in(site, user)
    assert response.status_code == 302, response.text
    return {"ds_actor": response.cookies["ds_actor"]}


def fetch(site: Any, url: str, cookies: dict[str, str] | None = None) -> Any:
    return asyncio.run(site.client.get(url, cookies=cookies))


def test_someone_not_signed_in_is_sent_to_the_login_form_from_every_page(
    archive: Archive, site: Any
) -> None:
    for what, url in pages(archive).items():
        response = get(site, url)
        assert (response.status_code, response.headers.get("location")) == (302, "/-/login"), what
        assert "Quarrendon" not in response.text


def test_someone_not_signed_in_gets_a_403_for_json_and_csv(archive: Archive, site: Any) -> None:
    for what, url in data(archive).items():
        response = get(site, url)
        assert response.status_code == 403, what
        assert "Sign in first" in response.text, what
        assert "changed_records" not in response.text
    assert get(site, "/changes/changed_records.json").json()["ok"] is False


def test_the_login_form_and_what_it_is_drawn_with_stay_open(site: Any) -> None:
    form = get(site, "/-/login")
    assert form.status_code == 200 and 'type="password"' in form.text
    for url in re.findall(r'href="(/-/static/[^"]+)"', form.text):
        assert get(site, url).status_code == 200, url
    assert get(site, "/robots.txt").text.splitlines() == ["User-agent: *", "Disallow: /"]


def test_the_right_password_opens_every_page(archive: Archive, site: Any) -> None:
    cookies = signed_in(site)
    assert fetch(site, "/-/actor.json", cookies).json() == {"actor": {"id": "admin"}}
    home = fetch(site, "/", cookies)
    assert home.status_code == 200 and "Quarrendon Academy" in home.text
    for what, url in {**pages(archive), **data(archive)}.items():
        if "another branch" in what:
            continue  # history pages come with another branch of issue 9
        assert fetch(site, url, cookies).status_code == 200, what


@pytest.mark.parametrize(
    ("user", "password"),
    [("admin", "Correct horse battery staple"), ("admin", ""), ("root", PASSWORD)],
    ids=["wrong password", "no password", "unknown user"],
)
def test_a_wrong_password_or_user_opens_nothing(
    archive: Archive, site: Any, user: str, password: str
) -> None:
    response = sign_in(site, user, password)
    assert response.status_code == 200 and "Invalid username or password" in response.text
    assert "ds_actor" not in response.cookies
    assert get(site, "/").status_code == 302


def test_a_forged_sign_in_cookie_opens_nothing(archive: Archive, site: Any) -> None:
    other_site = make_datasette(archive.path, [Account("admin", env="UNUSED_HASH")])
    forged = {"ds_actor": other_site.sign({"a": {"id": "admin"}}, "actor")}  # another secret
    assert fetch(site, "/", forged).status_code == 302
    assert fetch(site, "/changes.json", {"ds_actor": "admin"}).status_code == 403


def test_the_hash_is_on_no_page_even_signed_in(archive: Archive, site: Any) -> None:
    cookies = signed_in(site)
    urls = ["/-/metadata.json", "/-/metadata", "/-/plugins.json", "/-/settings.json"]
    urls += ["/-/actor.json", "/-/login", "/"] + list(pages(archive).values())
    for url in urls:
        text = fetch(site, url, cookies).text
        assert not any(part in text for part in HASH_PARTS), url
    metadata = fetch(site, "/-/metadata.json", cookies).json()
    assert metadata["plugins"]["datasette-auth-passwords"] == {
        "admin_password_hash": {"$file": str(site_hash_file(site))}
    }


def site_hash_file(site: Any) -> Path:
    config = site.metadata("plugins")["datasette-auth-passwords"]
    return Path(config["admin_password_hash"]["$file"])


def test_a_hash_from_the_environment_signs_in(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(HASH_ENV, PASSWORD_HASH)
    site = make_datasette(archive.path, [Account("auditor", env=HASH_ENV)])
    assert get(site, "/").status_code == 302
    cookies = signed_in(site, "auditor")
    assert fetch(site, "/", cookies).status_code == 200


def test_without_a_password_the_site_stays_open_on_loopback(archive: Archive) -> None:
    assert get(make_datasette(archive.path), "/").status_code == 200


# The decision to listen, and the command line.


def test_a_public_address_needs_a_password_and_loopback_does_not() -> None:
    for host in ("0.0.0.0", "::", "192.168.1.20", "example.org"):
        assert bind_refusal(host, password_required=True) is None
        refusal = bind_refusal(host, password_required=False)
        assert refusal is not None and "hash-password" in refusal and HASH_ENV in refusal
    for host in ("127.0.0.1", "::1", "localhost"):
        assert bind_refusal(host, password_required=False) is None


def run_cli(args: list[str], env: dict[str, str] | None = None, **kwargs: Any) -> Any:
    return CliRunner().invoke(cli, args, env={HASH_ENV: "", **(env or {})}, **kwargs)


def test_a_public_host_without_a_password_is_refused_saying_how_to_set_one(
    tmp_path: Path,
) -> None:
    result = run_cli(["serve", "--archive", str(tmp_path), "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "refusing --host 0.0.0.0" in result.output
    assert "--password-hash-file" in result.output and "hash-password" in result.output


@pytest.mark.parametrize("how", ["file", "environment"])
def test_a_public_host_with_a_password_is_not_refused(
    tmp_path: Path, hash_file: Path, how: str
) -> None:
    # The archive is missing, so the command stops right after the decision, before binding.
    missing = tmp_path / "no-archive"
    args = ["serve", "--archive", str(missing), "--host", "0.0.0.0"]
    if how == "file":
        result = run_cli([*args, "--password-hash-file", str(hash_file)])
    else:
        result = run_cli(args, env={HASH_ENV: PASSWORD_HASH})
    assert "refusing --host" not in result.output
    assert f"no archive at {missing}" in result.output


def test_a_hash_file_others_can_read_gets_a_warning(tmp_path: Path, hash_file: Path) -> None:
    hash_file.chmod(0o644)
    result = run_cli(
        ["serve", "--archive", str(tmp_path / "none"), "--password-hash-file", str(hash_file)]
    )
    assert f"is readable by others (permissions 0644); make it private: chmod 600 {hash_file}" in (
        result.output
    )
    assert not any(part in result.output for part in HASH_PARTS)


@pytest.mark.parametrize(
    "content", ["hunter2", "", "pbkdf2_sha256$480000$salt"], ids=["a password", "empty", "cut"]
)
def test_something_that_is_not_a_hash_is_refused_without_being_quoted(
    tmp_path: Path, content: str
) -> None:
    path = tmp_path / "site.hash"
    path.write_text(content, encoding="utf-8")
    path.chmod(0o600)
    result = run_cli(["serve", "--archive", str(tmp_path), "--password-hash-file", str(path)])
    assert result.exit_code == 2
    assert str(path) in result.output and "snapshotter hash-password" in result.output
    assert not content or content not in result.output
    env_result = run_cli(["serve", "--archive", str(tmp_path)], env={HASH_ENV: content or " "})
    if content:
        assert env_result.exit_code == 2 and f"${HASH_ENV}" in env_result.output
        assert content not in env_result.output


def test_the_password_is_never_an_option() -> None:
    help_text = run_cli(["serve", "--help"]).output
    assert "--password-hash-file" in help_text
    assert "--password " not in help_text and "--password-hash " not in help_text
    assert run_cli(["serve", "--password-hash", PASSWORD_HASH]).exit_code == 2


def test_the_config_file_names_several_users_each_with_a_hash_file(
    archive: Archive, tmp_path: Path
) -> None:
    for user, password in (("admin", PASSWORD), ("auditor", "another one")):
        path = tmp_path / f"{user}.hash"
        path.write_text(hash_password(password, iterations=2000), encoding="utf-8")
        path.chmod(0o600)
    config = tmp_path / "snapshotter.toml"
    config.write_text(
        '[serve]\npassword_hash_file = "admin.hash"\n[serve.users]\nauditor = "auditor.hash"\n',
        encoding="utf-8",
    )
    from snapshotter.commands.serve import read_accounts

    accounts = read_accounts(None, None, config)
    assert [(a.user, a.file) for a in accounts] == [
        ("admin", tmp_path / "admin.hash"),
        ("auditor", tmp_path / "auditor.hash"),
    ]
    site = make_datasette(archive.path, accounts)
    assert sign_in(site, "auditor", "another one").status_code == 302
    assert sign_in(site, "admin", PASSWORD).status_code == 302
    assert sign_in(site, "auditor", PASSWORD).status_code == 200  # each their own


def test_a_hash_written_into_the_config_file_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "snapshotter.toml"
    config.write_text(f"[serve]\npassword_hash = '{PASSWORD_HASH}'\n", encoding="utf-8")
    result = run_cli(["serve", "--config", str(config), "--archive", str(tmp_path)])
    assert result.exit_code == 2 and "password_hash_file" in result.output
    assert not any(part in result.output for part in HASH_PARTS)


def test_hash_password_asks_twice_without_echo_and_writes_a_private_file(tmp_path: Path) -> None:
    printed = run_cli(["hash-password"], input="s3cret pass\ns3cret pass\n")
    assert printed.exit_code == 0, printed.output
    made = printed.output.strip().splitlines()[-1]
    assert verify_password("s3cret pass", made) and "s3cret pass" not in printed.output
    target = tmp_path / "site.hash"
    written = run_cli(["hash-password", "--file", str(target)], input="abc\nabc\n")
    assert written.exit_code == 0, written.output
    assert verify_password("abc", target.read_text(encoding="utf-8").strip())
    assert target.stat().st_mode & 0o777 == 0o600
    mismatch = run_cli(["hash-password"], input="abc\nabd\nabc\nabc\n")
    assert "do not match" in mismatch.output and mismatch.exit_code == 0


# One real server on loopback, sign-in required.


def test_a_real_server_with_a_password_refuses_then_admits(archive: Archive) -> None:
    with serving(archive.path, **{HASH_ENV: PASSWORD_HASH}) as served:
        server, line = served.process, served.first_line
        assert server.stdout is not None and server.stderr is not None
        base = served.url.rstrip("/")
        assert f"{base}/" in line and "sign in as admin" in line, line
        jar = http.cookiejar.CookieJar()
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        with browser.open(f"{base}/") as response:  # redirected to the form
            assert response.url == f"{base}/-/login"
            token = re.search(r'name="csrftoken" value="([^"]+)"', response.read().decode())[1]
        with pytest.raises(urllib.error.HTTPError) as refused:
            browser.open(f"{base}/changes/changed_records.json")
        assert refused.value.code == 403
        form = urllib.parse.urlencode(
            {"username": "admin", "password": PASSWORD, "csrftoken": token}
        ).encode()
        with browser.open(f"{base}/-/login", data=form) as response:
            assert response.url == f"{base}/"
            assert "Quarrendon Academy" in response.read().decode()
        with browser.open(f"{base}/changes/changed_records.json") as response:
            assert response.status == 200
        assert served.stop() == 0
        output = line + server.stdout.read() + server.stderr.read()
        assert "Traceback" not in output
        assert not any(part in output for part in HASH_PARTS)
