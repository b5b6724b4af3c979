"""`snapshotter sim ...`: run the simulated Xporter server."""

from __future__ import annotations

import click


@click.group()
def sim() -> None:
    """The simulated Xporter OneRoster server and its synthetic school."""
