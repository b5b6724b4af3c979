"""The OneRoster v1.1 entity model as Xporter serves it: the one source of truth.

The fetcher, the snapshot schema, the diff, the reports and the simulator all read this module;
nothing else lists the endpoints or their fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Reference:
    """A field holding GUIDRef objects (`{"href", "sourcedId", "type"}`) or bare sourcedIds.

    `target` names the collection the reference points into, or None where the target is not a
    collection a school-scoped snapshot holds (agents, for instance, point at other users but
    may be outside the school).
    """

    name: str
    target: str | None
    many: bool = False
    # Xporter sends `orgSourcedIds` as a plain list of id strings rather than GUIDRefs.
    bare_ids: bool = False

    @property
    def column(self) -> str:
        """The flattened column in a snapshot table: `class_sourcedId`, `terms_sourcedIds`."""
        if self.bare_ids:
            return self.name
        return f"{self.name}_sourcedIds" if self.many else f"{self.name}_sourcedId"


@dataclass(frozen=True)
class Entity:
    """One collection endpoint and what its records hold."""

    collection: str  # endpoint and envelope key, and the snapshot table name
    singular: str  # the `type` a GUIDRef to it carries
    scalars: tuple[str, ...]  # top-level scalar fields, stored as columns of the same name
    references: tuple[Reference, ...] = ()
    arrays: tuple[str, ...] = ()  # non-reference arrays and objects, stored as JSON
    # Arrays whose order means nothing: compared and hashed as sets.
    set_arrays: frozenset[str] = field(default_factory=frozenset)
    booleans: frozenset[str] = field(default_factory=frozenset)  # "true"/"false" normalised
    never_store: frozenset[str] = field(default_factory=frozenset)

    @property
    def reference_by_name(self) -> dict[str, Reference]:
        return {ref.name: ref for ref in self.references}

    @property
    def known_fields(self) -> tuple[str, ...]:
        return (
            *COMMON_SCALARS,
            *self.scalars,
            *(ref.name for ref in self.references),
            *self.arrays,
            "metadata",
        )


# Every entity carries these; `metadata` is free JSON, stored with the arrays.
COMMON_SCALARS: tuple[str, ...] = ("sourcedId", "status", "dateLastModified")

STATUSES = ("active", "tobedeleted")
# OneRoster v1.1 removed `inactive`; the spec says to read it as `tobedeleted`.
STATUS_ALIASES = {"inactive": "tobedeleted"}

ORGS = Entity(
    collection="orgs",
    singular="org",
    scalars=("name", "type", "identifier"),
    references=(
        Reference("parent", "orgs"),
        Reference("children", "orgs", many=True),
    ),
    set_arrays=frozenset({"children"}),
)

ACADEMIC_SESSIONS = Entity(
    collection="academicSessions",
    singular="academicSession",
    scalars=("title", "startDate", "endDate", "type", "schoolYear"),
    references=(
        Reference("parent", "academicSessions"),
        Reference("children", "academicSessions", many=True),
    ),
    set_arrays=frozenset({"children"}),
)

COURSES = Entity(
    collection="courses",
    singular="course",
    scalars=("title", "courseCode"),
    references=(
        # A ref here, unlike the "YYYY" string on academicSession.
        Reference("schoolYear", "academicSessions"),
        Reference("org", "orgs"),
    ),
    arrays=("grades", "subjects", "subjectCodes"),
    set_arrays=frozenset({"grades", "subjects", "subjectCodes"}),
)

CLASSES = Entity(
    collection="classes",
    singular="class",
    scalars=("title", "classCode", "classType", "location"),
    references=(
        Reference("course", "courses"),
        Reference("school", "orgs"),
        Reference("terms", "academicSessions", many=True),
    ),
    # `periods` may arrive as a string or a list: stored as JSON either way.
    arrays=("grades", "subjects", "subjectCodes", "periods"),
    set_arrays=frozenset({"grades", "subjects", "subjectCodes", "terms", "periods"}),
)

USERS = Entity(
    collection="users",
    singular="user",
    scalars=(
        "username",
        "enabledUser",
        "givenName",
        "familyName",
        "middleName",
        "role",
        "identifier",
        "email",
        "sms",
        "phone",
    ),
    references=(
        Reference("orgSourcedIds", "orgs", many=True, bare_ids=True),
        Reference("orgs", "orgs", many=True),
        Reference("agents", None, many=True),
    ),
    arrays=("userIds", "grades"),
    set_arrays=frozenset({"orgSourcedIds", "orgs", "agents", "userIds", "grades"}),
    booleans=frozenset({"enabledUser"}),
    never_store=frozenset({"password"}),
)

ENROLLMENTS = Entity(
    collection="enrollments",
    singular="enrollment",
    scalars=("role", "primary", "beginDate", "endDate"),
    references=(
        Reference("user", "users"),
        Reference("class", "classes"),
        Reference("school", "orgs"),
    ),
    booleans=frozenset({"primary"}),
)

# In dependency order: what a record references comes before it.
ENTITIES: tuple[Entity, ...] = (ORGS, ACADEMIC_SESSIONS, COURSES, CLASSES, USERS, ENROLLMENTS)
ENTITY_BY_COLLECTION: dict[str, Entity] = {e.collection: e for e in ENTITIES}
COLLECTIONS: tuple[str, ...] = tuple(e.collection for e in ENTITIES)

# Paths Xporter accepts in a filter beyond a record's own scalar fields.
NESTED_FILTER_PATHS = ("class.sourcedId", "school.sourcedId", "user.sourcedId")


def entity(collection: str) -> Entity:
    """The entity for an endpoint name, with a clear error for an unknown one."""
    try:
        return ENTITY_BY_COLLECTION[collection]
    except KeyError:
        known = ", ".join(COLLECTIONS)
        raise KeyError(f"unknown collection {collection!r}; expected one of: {known}") from None
