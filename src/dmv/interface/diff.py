"""What changed between two interfaces, field by field, and how much it matters."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any

from dmv.interface.fields import _NUMERIC, Field, FieldType, Side
from dmv.interface.model import Interface
from dmv.reprs import interface_diff_html

__all__ = [
    "ChangeKind",
    "Compat",
    "FieldChange",
    "InterfaceDiff",
    "diff_domains",
    "diff_interfaces",
]

# ---------------------------------------------------------------------------- diff


class Compat(StrEnum):
    """How a change affects clients, ordered ``none < compatible < breaking``."""

    NONE = "none"
    COMPATIBLE = "compatible"
    BREAKING = "breaking"

    @property
    def rank(self) -> int:
        return _COMPAT_RANK[self]

    # str's own ordering is alphabetical, which would put "breaking" first.
    def __lt__(self, other: object) -> bool:
        return self.rank < Compat(other).rank if isinstance(other, str) else NotImplemented

    def __le__(self, other: object) -> bool:
        return self.rank <= Compat(other).rank if isinstance(other, str) else NotImplemented

    def __gt__(self, other: object) -> bool:
        return self.rank > Compat(other).rank if isinstance(other, str) else NotImplemented

    def __ge__(self, other: object) -> bool:
        return self.rank >= Compat(other).rank if isinstance(other, str) else NotImplemented


_COMPAT_RANK = {Compat.NONE: 0, Compat.COMPATIBLE: 1, Compat.BREAKING: 2}


class ChangeKind(StrEnum):
    """What happened to one field."""

    ADDED = "added"
    REMOVED = "removed"
    MADE_OPTIONAL = "made_optional"
    MADE_REQUIRED = "made_required"
    MADE_NULLABLE = "made_nullable"
    MADE_NOT_NULLABLE = "made_not_nullable"
    ENUM_VALUES_ADDED = "enum_values_added"
    ENUM_VALUES_REMOVED = "enum_values_removed"
    WIDENED = "widened"
    NARROWED = "narrowed"
    TYPE_CHANGED = "type_changed"
    SHAPE_CHANGED = "shape_changed"
    RANK_CHANGED = "rank_changed"
    KEYS_CHANGED = "keys_changed"


class _Effect(Enum):
    LOOSER = "looser"  # the field accepts every value it did, and more
    TIGHTER = "tighter"  # the field accepts a subset of what it did
    NEITHER = "neither"


@dataclass(frozen=True)
class FieldChange:
    """One change to one field, with its compatibility class for clients."""

    side: Side
    field: str
    kind: ChangeKind
    detail: str
    compat: Compat

    def to_dict(self) -> dict[str, str]:
        return {
            "side": self.side,
            "field": self.field,
            "kind": self.kind.value,
            "detail": self.detail,
            "compat": self.compat.value,
        }


@dataclass(frozen=True)
class InterfaceDiff:
    """Every structural change between two interfaces, inputs first, by field name."""

    changes: tuple[FieldChange, ...]

    @property
    def changed(self) -> bool:
        """Whether the structure changed at all (descriptions don't count)."""
        return bool(self.changes)

    @property
    def compat(self) -> Compat:
        """The worst change's class; ``none`` when nothing changed."""
        return max((c.compat for c in self.changes), default=Compat.NONE)

    def _repr_html_(self) -> str:

        return interface_diff_html(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "compat": self.compat.value,
            "changes": [c.to_dict() for c in self.changes],
        }


def diff_interfaces(old: Interface, new: Interface) -> InterfaceDiff:
    """What changed from ``old`` to ``new``, each change classed for clients."""
    changes: list[FieldChange] = []
    sides: tuple[Side, ...] = ("input", "output")
    for side in sides:
        before = {f.name: f for f in old.fields(side)}
        after = {f.name: f for f in new.fields(side)}
        for name in sorted(before.keys() | after.keys()):
            for kind, detail, effect in _field_changes(before.get(name), after.get(name)):
                changes.append(FieldChange(side, name, kind, detail, _classify(side, effect)))
    return InterfaceDiff(tuple(changes))


def diff_domains(old: Interface, new: Interface) -> list[dict[str, str]]:
    """What changed in the learned value domains (never the contract, never Y).

    One ``{"side", "field", "kind", "detail", "compat": "domain"}`` per change:
    ``values_added``/``values_removed`` (a category set), ``range`` (min/max),
    ``nulls`` (whether the rows held nulls).
    """
    out: list[dict[str, str]] = []
    for name in sorted(old.domain.keys() & new.domain.keys()):
        a, b = old.domain[name], new.domain[name]

        def add(kind: str, detail: str, name: str = name) -> None:
            out.append(
                {"side": "input", "field": name, "kind": kind, "detail": detail, "compat": "domain"}
            )

        va, vb = a.get("values"), b.get("values")
        if isinstance(va, list) and isinstance(vb, list):
            added = sorted(set(vb) - set(va), key=str)
            removed = sorted(set(va) - set(vb), key=str)
            if added:
                add("values_added", f"values seen added: {added}")
            if removed:
                add("values_removed", f"values seen removed: {removed}")
        ra, rb = (a.get("min"), a.get("max")), (b.get("min"), b.get("max"))
        if ra != rb and None not in ra + rb:
            add("range", f"range {ra[0]}..{ra[1]} -> {rb[0]}..{rb[1]}")
        if "nulls" in a and "nulls" in b and a["nulls"] != b["nulls"]:
            add("nulls", "rows held nulls" if b["nulls"] else "rows held no nulls")
    return out


def _classify(side: Side, effect: _Effect) -> Compat:
    if effect is _Effect.NEITHER:
        return Compat.BREAKING
    # The model reads inputs, so looser inputs are fine; clients read outputs,
    # so tighter outputs are fine.
    fine = _Effect.LOOSER if side == "input" else _Effect.TIGHTER
    return Compat.COMPATIBLE if effect is fine else Compat.BREAKING


_Change = tuple[ChangeKind, str, _Effect]


def _field_changes(old: Field | None, new: Field | None) -> list[_Change]:
    if old is None:
        assert new is not None
        how = "required" if new.required else "optional"
        effect = _Effect.NEITHER if new.required else _Effect.LOOSER
        return [(ChangeKind.ADDED, f"added, {how} {new.type_text}", effect)]
    if new is None:
        how = "required" if old.required else "optional"
        effect = _Effect.NEITHER if old.required else _Effect.TIGHTER
        return [(ChangeKind.REMOVED, f"removed, was {how} {old.type_text}", effect)]
    out: list[_Change] = []
    if old.required != new.required:
        out.append(
            (ChangeKind.MADE_OPTIONAL, "required -> optional", _Effect.LOOSER)
            if old.required
            else (ChangeKind.MADE_REQUIRED, "optional -> required", _Effect.TIGHTER)
        )
    if old.nullable != new.nullable:
        out.append(
            (ChangeKind.MADE_NULLABLE, "not nullable -> nullable", _Effect.LOOSER)
            if new.nullable
            else (ChangeKind.MADE_NOT_NULLABLE, "nullable -> not nullable", _Effect.TIGHTER)
        )
    if old.type is not new.type:
        out.append(_type_change(old.type, new.type, f"{old.type_text} -> {new.type_text}"))
    elif old.type is FieldType.ENUM:
        added = sorted(set(new.values) - set(old.values), key=str)
        removed = sorted(set(old.values) - set(new.values), key=str)
        if added:
            out.append((ChangeKind.ENUM_VALUES_ADDED, f"values added: {added}", _Effect.LOOSER))
        if removed:
            out.append(
                (ChangeKind.ENUM_VALUES_REMOVED, f"values removed: {removed}", _Effect.TIGHTER)
            )
    elif old.type is FieldType.ARRAY:
        assert old.items is not None and new.items is not None
        if old.items is not new.items:
            detail = f"elements {old.items.value} -> {new.items.value}"
            out.append(_type_change(old.items, new.items, detail))
        if old.shape != new.shape:
            out.append(_shape_change(old.shape, new.shape))
    elif old.type is FieldType.MAP:
        assert old.items is not None and new.items is not None
        if old.items is not new.items:
            detail = f"values {old.items.value} -> {new.items.value}"
            out.append(_type_change(old.items, new.items, detail))
        if old.keys != new.keys:
            # Every key is always present, so any change to them (or their order,
            # which is the column order of an OIP tensor) breaks readers and writers.
            detail = f"keys {list(old.keys)} -> {list(new.keys)}"
            out.append((ChangeKind.KEYS_CHANGED, detail, _Effect.NEITHER))
    return out


def _type_change(old: FieldType, new: FieldType, detail: str) -> _Change:
    if old in _NUMERIC and new in _NUMERIC:
        (fam_a, bits_a), (fam_b, bits_b) = _NUMERIC[old], _NUMERIC[new]
        wider = (fam_a, fam_b) == ("int", "float") or (fam_a == fam_b and bits_b > bits_a)
        if wider:
            return ChangeKind.WIDENED, detail, _Effect.LOOSER
        return ChangeKind.NARROWED, detail, _Effect.TIGHTER
    return ChangeKind.TYPE_CHANGED, detail, _Effect.NEITHER


def _shape_change(old: tuple[int, ...], new: tuple[int, ...]) -> _Change:
    detail = f"shape {list(old)} -> {list(new)}"
    if len(old) != len(new):
        return ChangeKind.RANK_CHANGED, detail, _Effect.NEITHER
    effects = set()
    for a, b in zip(old, new, strict=True):
        if a != b:
            effects.add(_Effect.LOOSER if b == -1 else _Effect.TIGHTER if a == -1 else None)
    effect = effects.pop() if len(effects) == 1 else None
    return ChangeKind.SHAPE_CHANGED, detail, effect or _Effect.NEITHER
