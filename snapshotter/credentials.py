"""Credential-like keys: recognising them and taking them out of records and documents.

A provider may send a password, a PIN or a token under any name, at any depth: `password`,
`Password`, `userPassword`, `metadata.pwd`, `api_token`, `pinCode`, inside a list of objects.
None of them may reach the archive. A key is credential-like when one of its word pieces
(split at camelCase humps, `_`, `-`, `.`, spaces and digits; ASCII letters, any case) is one of
`CREDENTIAL_WORDS`, contains `password`, `passwd`, `pwd`, `token`, `pincode` or `passcode`, ends
in `secret` or `pin` (but is not `spin`), or two
neighbouring pieces make one of `CREDENTIAL_PHRASES` (`apiKey`). Otherwise whole pieces only,
so ordinary words that merely contain a short one (`spinning`, `shipping`, `Opinion`, `typing`,
`secretary`) and `pinned` (a state, not a PIN) are kept.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

CREDENTIAL_WORDS = frozenset(
    {
        "password",
        "passwords",
        "passwd",
        "pwd",
        "pw",
        "passcode",
        "passphrase",
        "secret",
        "secrets",
        "token",
        "tokens",
        "pin",
        "pins",
        "credential",
        "credentials",
    }
)
# Inside a longer piece (`userpassword`, `accesstoken`, `PINCODE`) these still name a
# credential: no ordinary word holds them. `secret` and `pin` only end one (`clientsecret`,
# `loginpin`; `secretary` is a job, `pinned` a state), and `spin` is a word of its own.
_CREDENTIAL_STEMS = ("password", "passwd", "pwd", "token", "pincode", "passcode")
_CREDENTIAL_ENDINGS = ("secret", "secrets", "pin", "pins")
_ORDINARY_WORDS = frozenset({"spin", "spins"})
CREDENTIAL_PHRASES = frozenset({("api", "key"), ("private", "key"), ("access", "key")})
_JOINED_PHRASES = frozenset("".join(phrase) for phrase in CREDENTIAL_PHRASES)

# Plural acronyms (`PINs`), runs of capitals before a capitalised word (`API` in `APIToken`),
# capitalised or lower-case words, remaining capitals: anything else (digits, `_`, `-`, `.`)
# only separates.
_PIECES = re.compile(r"[A-Z]{2,}s(?![a-z])|[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+")


# Bounded: a provider inventing a new key per record must not grow it forever.
@functools.lru_cache(maxsize=65_536)
def credential_like(key: str) -> bool:
    """Whether a field of this name may hold a password, PIN, secret or token."""
    pieces = [piece.lower() for piece in _PIECES.findall(key)]
    for index, piece in enumerate(pieces):
        if (
            piece in CREDENTIAL_WORDS
            or piece in _JOINED_PHRASES
            or (piece.endswith(_CREDENTIAL_ENDINGS) and piece not in _ORDINARY_WORDS)
            or any(stem in piece for stem in _CREDENTIAL_STEMS)
            or (index and (pieces[index - 1], piece) in CREDENTIAL_PHRASES)
        ):
            return True
    return False


# Keys already found not credential-like: most records are checked by one subset test against
# it, in C. Capped, so that a provider inventing a new key per record cannot grow it forever.
SAFE_KEYS: set[str] = set()
_SAFE_KEYS_MAX = 50_000


def keys_are_safe(keys: Iterable[Any]) -> bool:
    """Whether none of `keys` is credential-like (remembering the ones that are not)."""
    safe = True
    for key in keys:
        if key in SAFE_KEYS:
            continue
        if not isinstance(key, str) or credential_like(key):
            safe = False
        elif len(SAFE_KEYS) < _SAFE_KEYS_MAX:
            SAFE_KEYS.add(key)
    return safe


def holds_no_credentials(value: dict[str, Any] | list[Any]) -> bool:
    """Whether a JSON object or array holds no credential-like key at any depth.

    The snapshot writer's second look, for records its quick test cannot vouch for (see
    `canonical.Canonicaliser`); the safe keys it meets join `SAFE_KEYS`, so that the quick
    test vouches for records like them from then on.
    """
    if type(value) is dict:
        if not (value.keys() <= SAFE_KEYS) and not keys_are_safe(value):
            return False
        items: Iterable[Any] = value.values()
    else:
        items = value
    try:
        "".join(items)  # in C: only strings inside, so nothing nested to look into
        return True
    except TypeError:
        pass
    for item in items:
        if (type(item) is dict or type(item) is list) and not holds_no_credentials(item):
            return False
    return True


def strip_credentials(value: Any, path: str = "") -> tuple[Any, list[str]]:
    """`value` without credential-like keys at any depth, and the paths taken out.

    Paths are dotted from `value`'s root (`metadata.pwd`), with `[]` for "in every item of a
    list" (`metadata.logins[].token`). Containers holding nothing to take out are returned as
    they are, not copied.
    """
    found: list[str] = []
    return _strip(value, path, found), found


def _strip(value: Any, path: str, found: list[str]) -> Any:
    if isinstance(value, dict):
        kept: dict[Any, Any] = {}
        changed = False
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and credential_like(key):
                if where not in found:
                    found.append(where)
                changed = True
                continue
            stripped = _strip(item, where, found)
            changed = changed or stripped is not item
            kept[key] = stripped
        return kept if changed else value
    if isinstance(value, list):
        items = [_strip(item, f"{path}[]", found) for item in value]
        if any(new is not old for new, old in zip(items, value, strict=True)):
            return items
        return value
    return value
