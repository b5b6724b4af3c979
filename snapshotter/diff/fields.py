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


def _item_key(items: list[Any]) -> str | None:
    """The key that names each item of a set-array uniquely, if there is one."""
    if not items or not all(isinstance(item, dict) for item in items):
        return None
    for key in _ITEM_KEYS:
        values = [item.get(key) for item in items]
        if all(isinstance(v, str) for v in values) and len(set(values)) == len(values):
            return key
    return None


class _Step:
    """Readable names for the steps of a path into one side's value."""

    def __init__(self, root: Any, set_array: bool) -> None:
        self.root = root
        self.set_array = set_array

    def render(self, steps: list[Any]) -> str:
        text = ""
        container = self.root
        for depth, step in enumerate(steps):
            if isinstance(step, int):
                key = _item_key(container) if (self.set_array and depth == 0) else None
                if key is not None and step < len(container):
                    text += f"[{key}={container[step][key]}]"
                else:
                    text += f"[{step}]"
            else:
                text += _key_step(str(step))
            try:
                container = container[step]
            except (KeyError, IndexError, TypeError):
                container = None
        return text


def _identity(value: Any, key: str | None) -> Any:
    return value.get(key) if key is not None and isinstance(value, dict) else None


def _nested_changes(name: str, old: Any, new: Any, set_array: bool) -> list[FieldChange]:
    # Imported here: deepdiff costs a tenth of a second to import, and most diffs never need it.
    from deepdiff import DeepDiff
    from deepdiff.helper import CannotCompare, notpresent

    old_key = _item_key(old) if set_array and isinstance(old, list) else None
    new_key = _item_key(new) if set_array and isinstance(new, list) else None
    item_key = old_key if old_key == new_key else None

    def same_item(x: Any, y: Any, level: Any = None) -> bool:
        if item_key is not None and isinstance(x, dict) and isinstance(y, dict):
            return x.get(item_key) == y.get(item_key)
        raise CannotCompare()

    options: dict[str, Any] = {"view": "tree"}
    if set_array:
        options["ignore_order"] = True
        if item_key is not None:
            options["iterable_compare_func"] = same_item
    tree = DeepDiff(old, new, **options)
    old_steps, new_steps = _Step(old, set_array), _Step(new, set_array)
    found: list[FieldChange] = []
    for levels in tree.values():
        for level in levels:
            # deepdiff marks the missing side of an added or removed item with `notpresent`.
            old_value = None if level.t1 is notpresent else level.t1
            new_value = None if level.t2 is notpresent else level.t2
            # deepdiff numbers an added item in the new list and a removed one in the old list.
            old_path = old_steps.render(level.path(output_format="list"))
            new_path = new_steps.render(level.path(output_format="list", use_t2=True))
            if (
                old_value is not None
                and new_value is not None
                and _identity(old_value, item_key) != _identity(new_value, item_key)
            ):
                # One set item replaced by another: a removal and an addition, each at its name.
                found.append(FieldChange(name, name + old_path, old_value, None))
                found.append(FieldChange(name, name + new_path, None, new_value))
                continue
            path = old_path if new_value is None else new_path
            found.append(FieldChange(name, name + path, old_value, new_value))
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


def _flat_object_changes(name: str, old: dict[str, Any], new: dict[str, Any]) -> list[FieldChange]:
    changes = []
    for key in sorted(set(old) | set(new)):
        old_value, new_value = old.get(key), new.get(key)
        if old_value != new_value or (key in old) != (key in new):
            changes.append(FieldChange(name, name + _key_step(key), old_value, new_value))
    return changes


def _nested_pair(old: Any, new: Any, set_array: bool) -> bool:
    if isinstance(old, dict) and isinstance(new, dict):
        return True
    if isinstance(old, list) and isinstance(new, list):
        # A set of plain values reads best whole: `grades: ["7"] -> ["8"]`.
        return not (set_array and all(_is_scalar(v) for v in [*old, *new]))
    return False
