"""Uniqueness: one email, username or UPN on two active people (across roles)."""

from __future__ import annotations

from collections.abc import Iterator

from .context import CheckContext, Raw, split_ids

# Emails and usernames compare without case or surrounding spaces, as sign-in does.
_DUPLICATES = """
SELECT value, group_concat(sourcedId, char(31)) FROM (
  SELECT sourcedId, lower(trim({column})) AS value FROM users
  WHERE status = 'active' AND {column} IS NOT NULL AND trim({column}) != '')
GROUP BY value HAVING count(*) > 1
"""
_DUPLICATE_UPNS = """
SELECT value, group_concat(sourcedId, char(31)) FROM (
  SELECT DISTINCT u.sourcedId, upper(trim(i.value ->> 'identifier')) AS value
  FROM users u, json_each(u.userIds) i
  WHERE u.status = 'active' AND json_valid(u.userIds) AND i.type = 'object'
    AND upper(i.value ->> 'type') = 'UPN' AND trim(i.value ->> 'identifier') != '')
GROUP BY value HAVING count(*) > 1
"""


def findings(ctx: CheckContext) -> Iterator[Raw]:
    for rule, column, what in (
        ("duplicate-email", "email", "email address"),
        ("duplicate-username", "username", "username"),
    ):
        for value, ids in ctx.rows(_DUPLICATES.format(column=column)):
            yield from _each(rule, what, value, split_ids(ids))
    for value, ids in ctx.rows(_DUPLICATE_UPNS):
        yield from _each("duplicate-upn", "UPN", value, split_ids(ids))


def _each(rule: str, what: str, value: str, ids: tuple[str, ...]) -> Iterator[Raw]:
    for sid in ids:
        others = tuple(other for other in ids if other != sid)
        yield Raw(
            rule,
            "users",
            sid,
            f"shares the {what} {value!r} with {len(others)} other active "
            f"{'person' if len(others) == 1 else 'people'}: give each their own in the MIS",
            others,
        )
