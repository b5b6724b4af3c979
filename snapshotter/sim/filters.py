"""The OneRoster filter and sort options as Xporter reads them.

    filter=class.sourcedId='x11BSAT6S' and role='student'

A filter is one or more `field op 'value'` clauses joined by one kind of logical operator
(`and`/`AND` or `or`/`OR`; mixing them is an error, as the spec allows one per filter).
Operators: `=` `!=` `>` `>=` `<` `<=` and `~` (contains, case-insensitive). Values compare
as strings, so ISO dates and timestamps order correctly. On an array field (`grades`, `terms`)
a clause holds when any element satisfies it (`!=`: when none equals the value).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..model import Entity

OPERATORS = ("=", "!=", ">", ">=", "<", "<=", "~")
_CLAUSE_START = re.compile(
    r"\s*(?P<path>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?)\s*(?P<op>!=|>=|<=|=|>|<|~)\s*'"
)
# A value ends at the quote followed by the end of the filter or by a logical operator. The
# spec defines no escape for a quote inside a value; this reading lets `familyName='O'Brien'`
# through while `a='x' and b='y'` still splits.
_VALUE_END = re.compile(r"'(?=\s*\Z|\s+(?:and|or)\s+)", re.IGNORECASE)
_JOIN = re.compile(r"\s+(and|or)\s+", re.IGNORECASE)
_REFERENCE_FIELDS = ("sourcedId", "type", "href")
_USER_ID_FIELDS = ("type", "identifier")


class FilterError(ValueError):
    """A filter or sort field the server cannot read: answered with 400 invalid_filter_field."""


@dataclass(frozen=True)
class Clause:
    path: tuple[str, ...]
    op: str
    value: str


@dataclass(frozen=True)
class Filter:
    clauses: tuple[Clause, ...]
    conjunction: str  # "and" or "or"

    def matcher(self) -> Callable[[dict[str, Any]], bool]:
        tests = [_clause_test(clause) for clause in self.clauses]
        if self.conjunction == "or":
            return lambda record: any(test(record) for test in tests)
        return lambda record: all(test(record) for test in tests)


def check_path(entity: Entity, path_text: str) -> tuple[str, ...]:
    """The field path, if the entity has it: a field, `ref.sourcedId`, `userIds.type`..."""
    path = tuple(path_text.split("."))
    head = path[0]
    references = entity.reference_by_name
    if head not in entity.known_fields:
        raise FilterError(f"unknown field {head!r} for {entity.collection}")
    if len(path) == 1:
        reference = references.get(head)
        if reference is not None and not reference.bare_ids:
            raise FilterError(f"{head!r} is a reference: filter on {head}.sourcedId")
        return path
    if head in references and not references[head].bare_ids and path[1] in _REFERENCE_FIELDS:
        return path
    if head == "userIds" and path[1] in _USER_ID_FIELDS:
        return path
    if head == "metadata":
        return path
    raise FilterError(f"unknown field {path_text!r} for {entity.collection}")


def parse_filter(text: str, entity: Entity) -> Filter:
    clauses: list[Clause] = []
    joins: list[str] = []
    position = 0
    while True:
        start = _CLAUSE_START.match(text, position)
        if start is None:
            raise FilterError(
                f"malformed filter at character {position}: expected field, operator "
                f"({' '.join(OPERATORS)}) and a single-quoted value"
            )
        end = _VALUE_END.search(text, start.end())
        if end is None:
            raise FilterError("malformed filter: a value has no closing quote")
        path = check_path(entity, start.group("path"))
        clauses.append(Clause(path, start.group("op"), text[start.end() : end.start()]))
        position = end.end()
        if not text[position:].strip():
            break
        join = _JOIN.match(text, position)
        if join is None:  # pragma: no cover - _VALUE_END only stops before a join or the end
            raise FilterError(f"malformed filter at character {position}")
        joins.append(join.group(1).lower())
        position = join.end()
    if len(set(joins)) > 1:
        raise FilterError("a filter may use one logical operator, not both AND and OR")
    return Filter(tuple(clauses), joins[0] if joins else "and")


def as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def field_values(record: dict[str, Any], path: tuple[str, ...]) -> list[str]:
    """Every value at `path`, arrays flattened: `terms.sourcedId` gives one per term."""
    current: list[Any] = [record]
    for part in path:
        found: list[Any] = []
        for item in current:
            if isinstance(item, dict) and part in item:
                value = item[part]
                if isinstance(value, list):
                    found.extend(value)
                else:
                    found.append(value)
        current = found
    return [
        as_text(value) for value in current if value is not None and not isinstance(value, dict)
    ]


def _clause_test(clause: Clause) -> Callable[[dict[str, Any]], bool]:
    path, value = clause.path, clause.value
    op = clause.op
    if op == "=":
        return lambda record: value in field_values(record, path)
    if op == "!=":
        return lambda record: value not in field_values(record, path)
    if op == "~":
        needle = value.casefold()
        return lambda record: any(needle in v.casefold() for v in field_values(record, path))
    compare: Callable[[str], bool] = {
        ">": lambda v: v > value,
        ">=": lambda v: v >= value,
        "<": lambda v: v < value,
        "<=": lambda v: v <= value,
    }[op]
    return lambda record: any(compare(v) for v in field_values(record, path))


def sort_key(path: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[int, str]]:
    """Records without the field sort first (ascending); the rest by their first value."""

    def key(record: dict[str, Any]) -> tuple[int, str]:
        values = field_values(record, path)
        return (1, values[0]) if values else (0, "")

    return key
