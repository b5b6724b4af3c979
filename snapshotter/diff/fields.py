"""Which fields of one record changed, from what to what, at the path that changed.

Both sides are comparable records (`canonical.comparable_record`): `dateLastModified` and
reference hrefs are already gone and set-arrays already sorted, so plain equality says whether a
field changed at all; deepdiff is asked only about nested values that really differ.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..model import Entity

_MISSING = object()
_SIMPLE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Items of a set-array are told apart by these keys, in this order: references by sourcedId,
# `userIds` entries by their type.
_ITEM_KEYS = ("sourcedId", "type")


@dataclass(frozen=True)
class FieldChange:
    """One changed value: `field` is the top-level field, `path` where inside it (e.g.
    `userIds[type=UPN].identifier`, `class.sourcedId`); None stands for "not present"."""

    field: str
    path: str
    old: Any
    new: Any


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, dict | list)


def _key_step(key: str) -> str:
    return f".{key}" if _SIMPLE_KEY.match(key) else f"[{_quote(key)}]"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _common_item_key(old: list[Any], new: list[Any]) -> str | None:
    """The key that names each item uniquely on both sides of a set-array, if there is one."""
    for key in _ITEM_KEYS:
        if all(_unique_by(side, key) for side in (old, new)):
            return key
    return None


def _unique_by(items: list[Any], key: str) -> bool:
    values = [item.get(key) if isinstance(item, dict) else None for item in items]
    return all(isinstance(v, str) for v in values) and len(set(values)) == len(values)


def _keyed_set_changes(name: str, old: list[Any], new: list[Any], key: str) -> list[FieldChange]:
    """A set-array of objects named by `key` (`userIds` by type, references by sourcedId):
    items matched by that name, so each added, removed or changed item is reported once, at
    `name[key=value]`, and a changed one at the path inside it."""
    old_items = {item[key]: item for item in old}
    new_items = {item[key]: item for item in new}
    found: list[FieldChange] = []
    for value in sorted(old_items.keys() | new_items.keys()):
        before, after = old_items.get(value), new_items.get(value)
        if before == after:
            continue
        path = f"{name}[{key}={value}]"
        if before is None or after is None:
            found.append(FieldChange(name, path, before, after))
        elif _flat_object_pair(before, after):
            found += _flat_object_changes(name, before, after, path)
        else:
            found += _nested_changes(name, before, after, set_array=False, path=path)
    return found


def _render_steps(steps: list[Any]) -> str:
    """A path deepdiff found, as `.key`, `["odd key"]` and `[index]` steps."""
    return "".join(f"[{step}]" if isinstance(step, int) else _key_step(str(step)) for step in steps)


def _nested_changes(
    name: str, old: Any, new: Any, set_array: bool, path: str | None = None
) -> list[FieldChange]:
    """Differences inside nested values, at the paths deepdiff finds, below `path` (the field)."""
    if set_array and isinstance(old, list) and isinstance(new, list):
        key = _common_item_key(old, new)
        if key is not None:
            return _keyed_set_changes(name, old, new, key)
        # Items with no name to match them by: positions in a set mean nothing, so the set is
        # reported whole (as a set of plain values is).
        return [FieldChange(name, path or name, old, new)]
    # Imported here: deepdiff costs a tenth of a second to import, and most diffs never need it.
    from deepdiff import DeepDiff
    from deepdiff.helper import notpresent

    prefix = path or name
    tree = DeepDiff(old, new, view="tree")
    found: list[FieldChange] = []
    for levels in tree.values():
        for level in levels:
            # deepdiff marks the missing side of an added or removed item with `notpresent`.
            old_value = None if level.t1 is notpresent else level.t1
            new_value = None if level.t2 is notpresent else level.t2
            # deepdiff numbers an added item in the new list and a removed one in the old list.
            use_t2 = old_value is None
            where = _render_steps(level.path(output_format="list", use_t2=use_t2))
            found.append(FieldChange(name, prefix + where, old_value, new_value))
    return sorted(found, key=lambda change: change.path)


class _FieldOrder:
    """Fields in the model's order, then unknown ones by name."""

    def __init__(self, entity: Entity) -> None:
        self.ranks = {name: rank for rank, name in enumerate(entity.known_fields)}

    def get_rank(self, name: str) -> tuple[int, str]:
        return (self.ranks.get(name, len(self.ranks)), name)


_FIELD_ORDERS: dict[str, _FieldOrder] = {}


def _field_order(entity: Entity) -> _FieldOrder:
    # Keyed by name: hashing an Entity walks all its fields on every call.
    order = _FIELD_ORDERS.get(entity.collection)
    if order is None:
        order = _FIELD_ORDERS[entity.collection] = _FieldOrder(entity)
    return order


def field_changes(
    entity: Entity, old: Mapping[str, Any], new: Mapping[str, Any]
) -> list[FieldChange]:
    """Every difference between two comparable records of one entity, field by field.

    Scalars, and arrays of scalars that are sets (`grades`), are reported whole at the field;
    objects and arrays of objects at the path inside them that changed.
    """
    changes: list[FieldChange] = []
    differing = [n for n in old.keys() | new.keys() if old.get(n, _MISSING) != new.get(n, _MISSING)]
    for name in sorted(differing, key=_field_order(entity).get_rank):
        old_value = old.get(name, _MISSING)
        new_value = new.get(name, _MISSING)
        if old_value is _MISSING:
            old_value = None
        if new_value is _MISSING:
            new_value = None
        set_array = name in entity.set_arrays
        if _flat_object_pair(old_value, new_value):
            changes += _flat_object_changes(name, old_value, new_value)
        elif _nested_pair(old_value, new_value, set_array):
            changes += _nested_changes(name, old_value, new_value, set_array)
        else:
            changes.append(FieldChange(name, name, old_value, new_value))
    return changes


def _flat_object_pair(old: Any, new: Any) -> bool:
    """Two objects of scalars, like a reference `{sourcedId, type}`: no need for deepdiff."""
    return (
        isinstance(old, dict)
        and isinstance(new, dict)
        and all(_is_scalar(v) for v in old.values())
        and all(_is_scalar(v) for v in new.values())
    )


def _flat_object_changes(
    name: str, old: dict[str, Any], new: dict[str, Any], path: str | None = None
) -> list[FieldChange]:
    prefix = path or name
    changes = []
    for key in sorted(set(old) | set(new)):
        old_value, new_value = old.get(key), new.get(key)
        if old_value != new_value or (key in old) != (key in new):
            changes.append(FieldChange(name, prefix + _key_step(key), old_value, new_value))
    return changes


def _nested_pair(old: Any, new: Any, set_array: bool) -> bool:
    if isinstance(old, dict) and isinstance(new, dict):
        return True
    if isinstance(old, list) and isinstance(new, list):
        # A set of plain values reads best whole: `grades: ["7"] -> ["8"]`.
        return not (set_array and all(_is_scalar(v) for v in [*old, *new]))
    return False
