"""The README cannot drift from the code: generated blocks are current, every option is named."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest

from snapshotter.cli import cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in sorted(group.commands.items()):
        full_name = f"{prefix}{name}"
        found.append((full_name, command))
        if isinstance(command, click.Group):
            found += _commands(command, full_name + " ")
    return found


def test_readme_generated_blocks_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cogapp", "--check", "README.md"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, "README is stale; run: cog -r README.md\n" + result.stderr


@pytest.mark.parametrize("name,command", _commands(cli), ids=lambda v: getattr(v, "name", v))
def test_every_command_and_option_is_documented_in_the_readme(
    name: str, command: click.Command
) -> None:
    assert f"snapshotter {name}" in README, f"`snapshotter {name}` is not in the README"
    for param in command.params:
        if isinstance(param, click.Option):
            assert any(opt in README for opt in param.opts), (
                f"option {param.opts} of `snapshotter {name}` is not in the README"
            )


def test_the_quickstart_is_two_commands_that_install_demo_and_test() -> None:
    quickstart = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = [block.strip() for block in quickstart.split("```bash")[1:]]
    commands = [block.split("```", 1)[0].strip() for block in commands]
    assert commands == ["pip install . && snapshotter demo", "pip install -e '.[test]' && pytest"]
    ci_script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert commands[1] in ci_script


def test_the_code_is_ruff_clean() -> None:
    lint = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
