"""The config file: schools for `fetch --all`, secrets only by the name of their variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from snapshotter.api.defaults import PRODUCTION_BASE_URL
from snapshotter.config import ConfigError, load_config

EXAMPLE = """
archive = "/srv/rostering/archive"
drop_fields = ["users.sms"]

[[school]]
name = "Hillside Academy"
rp = "partner-rp"
estab = "3281110"
secret_env = "HILLSIDE_SECRET"

[[school]]
name = "Brook Primary"
rp = "partner-rp"
estab = "3281111"
secret_env = "BROOK_SECRET"
base_url = "https://staging.example/api/ims/oneroster/v1p1/school"
drop_fields = ["users.phone"]
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "snapshotter.toml"
    path.write_text(text)
    return path


def test_the_readme_example_loads(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, EXAMPLE))
    hillside, brook = config.schools
    assert config.archive == Path("/srv/rostering/archive")
    assert hillside.base_url == PRODUCTION_BASE_URL and hillside.drop_fields == ("users.sms",)
    assert brook.drop_fields == ("users.sms", "users.phone")
    assert brook.secret({"BROOK_SECRET": "s"}) == "s" and brook.secret({}) is None
    assert config.school("3281111") is brook


@pytest.mark.parametrize(
    "text,words",
    [
        ('secret = "x"', "secrets do not belong"),
        ('[[school]]\nname = "A"\nrp = "r"\nestab = "1"\nsecret = "s"', "secrets do not belong"),
        ('[[school]]\nname = "A"\nrp = "r"\nestab = "1"', "`secret_env` must be"),
        ('drop_fields = ["pupils.x"]', "COLLECTION.FIELD"),
        ("not toml at all [", "not valid TOML"),
        (
            '[[school]]\nname="A"\nrp="r"\nestab="1"\nsecret_env="E"\n'
            '[[school]]\nname="A"\nrp="r"\nestab="2"\nsecret_env="F"',
            "must be unique",
        ),
    ],
    ids=["a secret", "a school's secret", "no secret_env", "bad drop", "bad toml", "twins"],
)
def test_a_bad_config_is_refused_with_a_clear_message(tmp_path: Path, text: str, words: str):
    with pytest.raises(ConfigError, match=words):
        load_config(_write(tmp_path, text))


def test_a_relative_archive_is_relative_to_the_config_file(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, 'archive = "arch"'))
    assert config.archive == tmp_path / "arch"


def test_mail_addresses_that_could_forge_a_header_are_refused(tmp_path: Path) -> None:
    from snapshotter.config import ConfigError, parse_config

    school = {"name": "A", "rp": "r", "estab": "1", "secret_env": "S"}
    for mail in (
        {"host": "mail.example", "alert_to": ["it@example.org\nBcc: e@elsewhere.example"]},
        {"host": "mail.example", "from": "archive@example.org\r\nBcc: e@elsewhere.example"},
    ):
        with pytest.raises(ConfigError, match="control character"):
            parse_config({"mail": mail, "school": [school]}, tmp_path / "c.toml")
    with pytest.raises(ConfigError, match="control character"):
        parse_config({"school": [{**school, "to": ["a@b.example\nX: y"]}]}, tmp_path / "c.toml")
