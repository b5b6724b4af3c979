"""Identifiers: UPNs (the DfE check letter, through python-stdnum), pupils without one, emails
that are not addresses. The candidates come from SQL; the few thousand values are checked in
Python, which costs less than calling a Python function from SQLite for each."""

from __future__ import annotations

import re
from collections.abc import Iterator

from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidLength, ValidationError
from stdnum.gb import upn

from .context import CheckContext, Raw

# An address as sign-in systems accept one: one @, something before it, a dotted domain after
# it, no spaces. Deliberately not RFC 5322: "a b@c" is legal there and useless here.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")


def upn_problem(value: str) -> str | None:
    """What is wrong with a UPN, in words, or None when the census would accept it."""
    try:
        upn.validate(value)
    except InvalidLength:
        return f"is {len(upn.compact(value))} characters long, not 13"
    except InvalidComponent:
        return f"has the LA number {value[1:4]}, which is not a local authority's"
    except InvalidChecksum:
        return f"has the check letter {value[:1]}, where its digits give {_check(value)}"
    except ValidationError:
        return "is not a letter, 11 digits and a letter or digit"
    return None


def _check(value: str) -> str:
    return upn.calc_check_digit(upn.compact(value)[1:])


def findings(ctx: CheckContext) -> Iterator[Raw]:
    for sid, value in ctx.rows(
        """SELECT u.sourcedId, i.value ->> 'identifier' FROM users u, json_each(u.userIds) i
        WHERE u.status = 'active' AND json_valid(u.userIds) AND i.type = 'object'
          AND upper(i.value ->> 'type') = 'UPN'"""
    ):
        problem = upn_problem(str(value or ""))
        if problem is not None:
            yield Raw(
                "invalid-upn",
                "users",
                sid,
                f"has the UPN {value!r}, which {problem}: correct it in the MIS",
            )
    for (sid,) in ctx.rows(
        """SELECT u.sourcedId FROM users u
        WHERE u.status = 'active' AND u.role = 'student' AND NOT EXISTS (
          SELECT 1 FROM json_each(CASE WHEN json_valid(u.userIds) THEN u.userIds END) i
          WHERE i.type = 'object' AND upper(i.value ->> 'type') = 'UPN'
            AND trim(coalesce(i.value ->> 'identifier', '')) != '')"""
    ):
        yield Raw("pupil-without-upn", "users", sid, "has no UPN: enter it in the MIS")
    for sid, email in ctx.rows(
        "SELECT sourcedId, email FROM users WHERE status = 'active' AND email IS NOT NULL "
        "AND email != ''"
    ):
        if not _EMAIL.match(str(email)):
            yield Raw(
                "invalid-email",
                "users",
                sid,
                f"has the email {email!r}, which is not an address: correct it in the MIS",
            )
