"""Readable names for records, for people reading a report: `Zoë O'Brien (student, year 8)`.

Pure functions of canonical records (dicts); the diff looks up the records they need.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Record = Mapping[str, Any]


def person_name(user: Record | None, fallback: str = "") -> str:
    if not user:
        return fallback
    parts = [user.get("givenName"), user.get("familyName")]
    name = " ".join(str(part) for part in parts if part)
    return name or str(user.get("username") or user.get("sourcedId") or fallback)


def year_group(grades: Any) -> str | None:
    """`["8"]` -> `year 8`; UK schools send the year group as the only grade."""
    if not grades:
        return None
    values = [str(g) for g in grades] if isinstance(grades, list) else [str(grades)]
    return ("year " if len(values) == 1 else "years ") + ", ".join(values)


def user_label(user: Record) -> str:
    details = [str(user["role"])] if user.get("role") else []
    year = year_group(user.get("grades"))
    if year:
        details.append(year)
    name = person_name(user, str(user.get("sourcedId", "")))
    return f"{name} ({', '.join(details)})" if details else name


def class_name(klass: Record | None, fallback: str = "") -> str:
    """The short name a school uses for a class: its code (`8X/Ma1`), else its title."""
    if not klass:
        return fallback
    return str(klass.get("classCode") or klass.get("title") or klass.get("sourcedId") or fallback)


def _titled(title: Any, code: Any, fallback: Any) -> str:
    if title and code and title != code:
        return f"{title} ({code})"
    return str(title or code or fallback)


def class_label(klass: Record) -> str:
    return _titled(klass.get("title"), klass.get("classCode"), klass.get("sourcedId"))


def course_label(course: Record) -> str:
    return _titled(course.get("title"), course.get("courseCode"), course.get("sourcedId"))


def org_label(org: Record) -> str:
    return _titled(org.get("name"), org.get("type"), org.get("sourcedId"))


def session_label(session: Record) -> str:
    return _titled(session.get("title"), session.get("type"), session.get("sourcedId"))


def enrollment_label(person: str, role: Any, klass: str) -> str:
    """`Zoë O'Brien (student) in 8X/Ma1`: who, in which role, in which class (`class_name`)."""
    return f"{person} ({role}) in {klass}" if role else f"{person} in {klass}"


def record_label(collection: str, record: Record) -> str:
    """The label of a record that needs nothing but itself (every entity but enrollments)."""
    labeller = _BY_COLLECTION.get(collection)
    return labeller(record) if labeller else str(record.get("sourcedId", ""))


_BY_COLLECTION = {
    "users": user_label,
    "classes": class_label,
    "courses": course_label,
    "orgs": org_label,
    "academicSessions": session_label,
}
