"""What each table and column of a snapshot file holds, for Datasette's table pages.

Snapshot files are named by school and time, so `metadata.yml` cannot list them: the plugin's
`get_metadata` hook hands these descriptions to every snapshot database. The tables and their
columns come from the entity model (`snapshotter.model`), as the snapshot schema's do; only the
words are written here.
"""

from __future__ import annotations

from typing import Any

from ..model import COMMON_SCALARS, ENTITIES, Entity, Reference

# What each collection's table holds.
ENTITY_DESCRIPTIONS: dict[str, str] = {
    "orgs": "The school and the organisations above or beside it (the trust, the local authority).",
    "academicSessions": "School years and the terms within them.",
    "courses": "Courses: a subject in a school year, which classes teach.",
    "classes": "Classes and registration groups (homeroom), each of one course.",
    "users": "Pupils, staff and contacts: one row per person, whatever their role.",
    "enrollments": "Who is in which class, as pupil or teacher, and from when to when.",
}

# Columns every collection's table has beyond the record's fields.
STORAGE_COLUMNS: dict[str, str] = {
    "metadata": "The provider's extension fields (free JSON), e.g. a pupil's SEN or FSM flags.",
    "_record": (
        "The whole record as JSON, canonical (keys and set-like arrays sorted); without "
        "credential-like or dropped fields."
    ),
    "_hash": (
        "Content hash of the record without dateLastModified and reference hrefs: what the diff "
        "compares."
    ),
}

# The OneRoster fields, by name; `(collection, field)` where a name means something else there.
FIELD_DESCRIPTIONS: dict[str | tuple[str, str], str] = {
    "sourcedId": "The record's identifier at the provider, stable across snapshots.",
    "status": "active, or tobedeleted once the provider has retired it (inactive is read so).",
    "dateLastModified": "When the provider last changed the record (UTC).",
    "name": "The organisation's name.",
    ("orgs", "type"): "The kind of organisation: school, district, local, state, national.",
    "identifier": "Another identifier: a school's estab, a pupil's UPN, a staff code.",
    "title": "The name people know it by.",
    "startDate": "First day (YYYY-MM-DD).",
    "endDate": "Last day (YYYY-MM-DD).",
    "beginDate": "First day in the class (YYYY-MM-DD), if the provider says.",
    ("enrollments", "endDate"): "Last day in the class (YYYY-MM-DD), if the provider says.",
    ("academicSessions", "type"): "schoolYear, term, semester or gradingPeriod.",
    "schoolYear": "The school year it belongs to, as the year it ends in (2027 for 2026/27).",
    "courseCode": "The course's code in the school's timetable.",
    "classCode": "The class's code in the school's timetable.",
    "classType": "homeroom for a registration group, scheduled for a taught class.",
    "location": "Where the class meets.",
    "grades": "Year groups (JSON list), in the provider's codes.",
    "subjects": "Subjects (JSON list).",
    "subjectCodes": "Subject codes (JSON list).",
    "periods": "The timetable periods it meets in (JSON).",
    "username": "The person's login name.",
    "enabledUser": "Whether the account may sign in (1 or 0).",
    "givenName": "First name.",
    "familyName": "Surname.",
    "middleName": "Middle names.",
    ("users", "role"): "student, teacher, aide, administrator, guardian, parent, relative...",
    "email": "Email address.",
    "sms": "Mobile number for text messages.",
    "phone": "Telephone number.",
    "userIds": "Identifiers in other systems (JSON list of type and identifier).",
    ("enrollments", "role"): "The person's part in the class: student, teacher, aide...",
    "primary": "For a teacher, whether they are the class's main teacher (1 or 0).",
}

# Of each table a snapshot file holds besides the collections (see README, The snapshot file).
SNAPSHOT_FILE_TABLES: dict[str, dict[str, Any]] = {
    "snapshot_metadata": {
        "description": (
            "One row: which school, fetched or imported when and how, complete or not, record "
            "counts, what was dropped, and the content hash of the whole snapshot."
        ),
        "columns": {
            "estab": "The school's establishment number.",
            "school_name": "The school's name (the config file's, else its own org's).",
            "rp": "The relying party the snapshot was fetched as.",
            "base_url": "The provider's address.",
            "source": "fetch, import, or demo (simulated clock).",
            "started_at": "When the snapshot began (UTC).",
            "finished_at": "When it was finished (UTC).",
            "tool_version": "The snapshotter version that took it.",
            "provider_version": "The provider's /version answer.",
            "auth_version": "The provider's /auth/version answer.",
            "complete": "1 when every collection was fetched whole.",
            "stable": "1 when every collection read the same throughout.",
            "incomplete_reason": "Why it is incomplete, if it is.",
            "drop_fields": "The fields kept out by --drop-field (JSON list).",
            "record_counts": "Records per collection (JSON).",
            "endpoints": "How each collection was read (JSON: pages, order, warnings).",
            "content_hash": "SHA-256 over every record's collection, sourcedId and hash, in order.",
            "dropped_paths": "Each path left out of records, with how many records (JSON).",
        },
    },
    "snapshot_endpoints": {
        "description": "One row per collection: how it was fetched.",
        "columns": {
            "collection": "The endpoint.",
            "records": "Records saved.",
            "pages": "Pages read.",
            "requests": "Requests made, retries included.",
            "retries": "Requests retried.",
            "total_count_seen": "The provider's X-Total-Count.",
            "attempts": "Passes over the collection until it read the same twice.",
            "duration_s": "Seconds spent.",
            "complete": "1 when the collection was fetched whole.",
            "stable": "1 when it read the same throughout.",
            "note": "Anything worth knowing about how it was read.",
        },
    },
}

# Datasette shows descriptions as plain text: no Markdown in them.
GENERIC_FIELD = "The OneRoster field {field}, as the provider sent it."


def field_description(entity: Entity, name: str) -> str:
    return FIELD_DESCRIPTIONS.get(
        (entity.collection, name), FIELD_DESCRIPTIONS.get(name, GENERIC_FIELD.format(field=name))
    )


def reference_description(entity: Entity, ref: Reference) -> str:
    if ref.target is None:
        return f"The {ref.name}: JSON list of sourcedIds, of records this snapshot may not hold."
    if ref.bare_ids:  # Xporter's own list of plain ids, beside the GUIDRefs
        return f"JSON list of sourcedIds in {ref.target}, as Xporter lists them (plain ids)."
    if ref.many:
        return f"The {ref.name}: JSON list of sourcedIds in {ref.target}."
    return f"The {ref.name}: a sourcedId in {ref.target}."


def entity_columns(entity: Entity) -> dict[str, str]:
    """Each column of a collection's table, in the snapshot schema's order, described."""
    columns = {name: field_description(entity, name) for name in (*COMMON_SCALARS, *entity.scalars)}
    columns.update({ref.column: reference_description(entity, ref) for ref in entity.references})
    columns.update({name: field_description(entity, name) for name in entity.arrays})
    columns.update(STORAGE_COLUMNS)
    return columns


def _all_tables() -> dict[str, dict[str, Any]]:
    tables: dict[str, dict[str, Any]] = {
        entity.collection: {
            "description": ENTITY_DESCRIPTIONS[entity.collection],
            "columns": entity_columns(entity),
        }
        for entity in ENTITIES
    }
    tables.update(SNAPSHOT_FILE_TABLES)
    return tables


_TABLES = _all_tables()


def snapshot_tables() -> dict[str, dict[str, Any]]:
    """The `tables` metadata of a snapshot database: a new copy on each call, since Datasette
    writes into the metadata it is handed (inherited source and licence). Shallow copies: it
    is asked for on every metadata lookup, for each snapshot open."""
    return {name: {**table, "columns": dict(table["columns"])} for name, table in _TABLES.items()}
