"""Natural order for the names a school gives things: Year 7 before Year 10, 7A before 10A.

A key function rather than the natsort library: our names are short codes and year groups, and
this is all of it we need (digits compare as numbers, the rest case-insensitively).
"""

from __future__ import annotations

import re

_DIGITS = re.compile(r"(\d+)")


def natural_key(text: object) -> tuple[tuple[int, int | str], ...]:
    """Sort key: `"10A"` -> ((0, 10), (1, "a")); runs of digits compare by value."""
    parts = _DIGITS.split("" if text is None else str(text))
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part.casefold()) for part in parts if part
    )
