"""The kinds of change between two snapshots, in the order reports show them."""

from __future__ import annotations

CHANGE_KINDS: tuple[str, ...] = ("added", "changed", "tobedeleted", "reactivated", "removed")
# Only dateLastModified differs: reported only when asked for.
TOUCHED = "touched"
ALL_KINDS: tuple[str, ...] = (*CHANGE_KINDS, TOUCHED)
