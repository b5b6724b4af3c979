"""References: records pointing at records the snapshot does not hold (or that have gone)."""

from __future__ import annotations

import json
from collections.abc import Iterator

from .context import CheckContext, Raw


def findings(ctx: CheckContext) -> Iterator[Raw]:
    # One pass over the enrollments for both of their references.
    for sid, user_id, user_status, class_id, class_status in ctx.rows(
        """SELECT e.sourcedId, e.user_sourcedId, u.status, e.class_sourcedId, c.status
        FROM enr e
        LEFT JOIN users u ON u.sourcedId = e.user_sourcedId
        LEFT JOIN classes c ON c.sourcedId = e.class_sourcedId
        WHERE e.status = 'active' AND (u.status IS NOT 'active' OR c.status IS NOT 'active')"""
    ):
        if user_status != "active":
            yield Raw(
                "enrollment-without-user",
                "enrollments",
                sid,
                _missing_user(user_id, user_status),
                _ids(user_id),
            )
        if class_status != "active":
            yield Raw(
                "enrollment-without-class",
                "enrollments",
                sid,
                _missing_class(class_id, class_status),
                _ids(class_id),
            )

    for sid, course_id in ctx.rows(
        """SELECT c.sourcedId, c.course_sourcedId FROM classes c
        WHERE c.status = 'active' AND c.course_sourcedId IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM courses k WHERE k.sourcedId = c.course_sourcedId)"""
    ):
        yield Raw(
            "class-without-course",
            "classes",
            sid,
            f"belongs to course {course_id}, which is not in the snapshot: link the class to "
            "its course in the MIS",
            (course_id,),
        )

    for sid, school_id in ctx.rows(
        """SELECT c.sourcedId, c.school_sourcedId FROM classes c
        WHERE c.status = 'active' AND (c.school_sourcedId IS NULL
          OR NOT EXISTS (SELECT 1 FROM orgs o WHERE o.sourcedId = c.school_sourcedId))"""
    ):
        message = (
            "names no school: set its school in the MIS"
            if school_id is None
            else f"belongs to school {school_id}, which is not in the snapshot: set its school"
        )
        yield Raw("class-without-school", "classes", sid, message, _ids(school_id))

    for sid, missing, has_terms in ctx.rows(
        """SELECT c.sourcedId,
          (SELECT group_concat(t.value, char(31)) FROM json_each(c.terms_sourcedIds) t
           WHERE NOT EXISTS (SELECT 1 FROM academicSessions s WHERE s.sourcedId = t.value)),
          coalesce(json_array_length(c.terms_sourcedIds), 0) > 0
        FROM classes c WHERE c.status = 'active'"""
    ):
        if not has_terms:
            message = "has no terms: give it the terms it runs in, in the MIS"
        elif missing:
            message = (
                f"runs in term {', '.join(_split(missing))}, not in the snapshot: give it "
                "terms that exist"
            )
        else:
            continue
        yield Raw("class-without-terms", "classes", sid, message, _split(missing))

    # Few orgs, one user at a time: parsed here rather than joined, which would need an index
    # on a JSON expansion.
    known_orgs = {sid for (sid,) in ctx.rows("SELECT sourcedId FROM orgs")}
    for sid, bare_ids, ref_ids in ctx.rows(
        "SELECT sourcedId, orgSourcedIds, orgs_sourcedIds FROM users WHERE status = 'active'"
    ):
        orgs = _json_ids(bare_ids) | _json_ids(ref_ids)
        missing = tuple(sorted(orgs - known_orgs))
        if not orgs:
            message = "belongs to no org: add the school to the person in the MIS"
        elif missing:
            message = (
                f"belongs to org {', '.join(missing)}, not in the snapshot: correct the "
                "person's school"
            )
        else:
            continue
        yield Raw("user-without-org", "users", sid, message, missing)

    for sid, parent in ctx.rows(
        """SELECT s.sourcedId, s.parent_sourcedId FROM academicSessions s
        WHERE s.status = 'active' AND s.parent_sourcedId IS NOT NULL AND NOT EXISTS
          (SELECT 1 FROM academicSessions p WHERE p.sourcedId = s.parent_sourcedId)"""
    ):
        yield Raw(
            "session-without-parent",
            "academicSessions",
            sid,
            f"belongs to session {parent}, which is not in the snapshot: set its school year "
            "in the MIS calendar",
            (parent,),
        )


def _missing_user(user_id: str | None, status: str | None) -> str:
    if user_id is None:
        return "names no user: add the person to the enrollment or delete it in the MIS"
    if status is None:
        return (
            f"is for user {user_id}, who is not in the snapshot: restore the person or end the "
            "enrollment in the MIS"
        )
    return f"is for user {user_id}, who is {status}: end the enrollment too, or reinstate them"


def _missing_class(class_id: str | None, status: str | None) -> str:
    if class_id is None:
        return "names no class: put it in a class or delete it in the MIS"
    if status is None:
        return (
            f"is in class {class_id}, which is not in the snapshot: move it to a class that "
            "exists, or end it"
        )
    return f"is in class {class_id}, which is {status}: end it, or move it"


def _json_ids(text: str | None) -> set[str]:
    if not text:
        return set()
    try:
        value = json.loads(text)
    except ValueError:
        return set()
    return {str(item) for item in value if item} if isinstance(value, list) else set()


def _ids(sourced_id: str | None) -> tuple[str, ...]:
    return (sourced_id,) if sourced_id else ()


def _split(text: str | None) -> tuple[str, ...]:
    return tuple(sorted(set(text.split("\x1f")))) if text else ()
