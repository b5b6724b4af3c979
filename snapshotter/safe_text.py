"""Provider text made safe to print on a terminal: control characters shown, not obeyed.

Names, titles, sourcedIds, field values and the provider's own error text come from a server we
do not control. Printed raw, an ANSI escape in a name can clear or retitle the terminal, a
newline can forge a line of a report, and a bidi override can make a line read backwards. Every
place that prints provider text (the text report, error and warning lines on stderr, the fetch's
progress notes) passes it through `printable`. Stored values (snapshots, changes.db, JSON) stay
exact: this is for display only.

Ordinary non-ASCII text (Zoë, Siobhán, Łukasz, 李) passes unchanged. Backslashes are not doubled,
so `\\x1b` typed by a provider looks like an escaped ESC: harmless, and names stay readable.

Standard library only: the CLI imports this before anything heavy.
"""

from __future__ import annotations

import re

# C0 controls (newline, carriage return and tab included), DEL, C1 controls; the line and
# paragraph separators (Python's splitlines and some editors break lines on them); the bidi
# embeddings, overrides and isolates ("Trojan Source"); lone surrogates, which a JSON `\ud800`
# can produce and which cannot be encoded for output at all.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every control, line-separator and bidi-override character written as a
    visible escape (`\\x1b`, `\\n`, `\\u202e`): one line, obeyed by no terminal."""
    if _UNSAFE.search(text) is None:  # the common case, without building a new string
        return text
    return _UNSAFE.sub(_escaped, text)
