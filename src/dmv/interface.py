"""A model's interface: typed input and output fields, their diff, exports and validation.

Y in ``X.Y.Z-DATA.SPLIT`` moves on any change to the interface. This module says
*what* changed and how much it matters to a client; the numbering rule lives in
the versioning module. Pure: no I/O; pandas, numpy and pydantic load on first use.

Compatibility
-------------
A change is judged by who reads the data. The model reads inputs: an input change
is compatible when every request valid before is still valid (it accepts more).
Clients read outputs: an output change is compatible when every response the
model can now send was valid before (it emits less). Row schemas are closed
(``additionalProperties: false``; :func:`validate_rows` reports ``unknown_field``),
so a new output field is "emitting more" and a removed input is "accepting less".
Each change makes a field's accepted values looser, tighter or neither:

==============================  =======  ==========  ==========
change                          effect   input       output
==============================  =======  ==========  ==========
field added, optional           looser   compatible  breaking
field added, required           neither  breaking    breaking
field removed, was optional     tighter  breaking    compatible
field removed, was required     neither  breaking    breaking
required -> optional            looser   compatible  breaking
optional -> required            tighter  breaking    compatible
not nullable -> nullable        looser   compatible  breaking
nullable -> not nullable        tighter  breaking    compatible
enum values added               looser   compatible  breaking
enum values removed             tighter  breaking    compatible
numeric widening                looser   compatible  breaking
numeric narrowing               tighter  breaking    compatible
other type change               neither  breaking    breaking
array dimension N -> -1         looser   compatible  breaking
array dimension -1 -> N         tighter  breaking    compatible
array dimension N -> M, rank    neither  breaking    breaking
map keys changed or reordered   neither  breaking    breaking
rename                          a removal plus an addition
==============================  =======  ==========  ==========

Widening is int -> float (any widths) or more bits in the same family (int32 ->
int64, float32 -> float64); narrowing is the reverse. Array element types follow
the same rule.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from dmv.errors import InvalidInput

if TYPE_CHECKING:
    from dmv._interface_validate import RowValidator

__all__ = [
    "ARRAY_ITEM_TYPES",
    "MAP_ITEM_TYPES",
    "PROBLEM_KINDS",
    "ChangeKind",
    "Compat",
    "Field",
    "FieldChange",
    "FieldType",
    "Interface",
    "InterfaceDiff",
    "Side",
    "diff_interfaces",
    "infer_interface",
    "to_json_schema",
    "to_openapi",
    "to_proto",
    "validate_rows",
]

Side = Literal["input", "output"]
MAX_NAME_LENGTH = 128
MAX_RANK = 16


class FieldType(StrEnum):
    """The fixed set of field types an interface can declare."""

    BOOL = "bool"
    INT32 = "int32"
    INT64 = "int64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    STRING = "string"
    BINARY = "binary"
    DATETIME = "datetime"
    ENUM = "enum"
    ARRAY = "array"
    MAP = "map"


ARRAY_ITEM_TYPES = frozenset(FieldType) - {FieldType.ENUM, FieldType.ARRAY, FieldType.MAP}
#: The value types a map field may hold: numbers (class probabilities, scores).
MAP_ITEM_TYPES = frozenset({FieldType.INT32, FieldType.INT64, FieldType.FLOAT32, FieldType.FLOAT64})
_TYPE_NAMES = ", ".join(t.value for t in FieldType)
# Python's own names, accepted in the compact declared form only.
_ALIASES = {"int": "int64", "float": "float64", "str": "string", "bytes": "binary"}
_NUMERIC = {
    FieldType.INT32: ("int", 32),
    FieldType.INT64: ("int", 64),
    FieldType.FLOAT32: ("float", 32),
    FieldType.FLOAT64: ("float", 64),
}


def _parse_type(value: object, where: str) -> FieldType:
    """A type name (or one of the aliases int, float, str, bytes) as a :class:`FieldType`."""
    if isinstance(value, str):
        try:
            return FieldType(_ALIASES.get(value, value))
        except ValueError:
            pass
    raise InvalidInput(
        f"{where}: unknown type {value!r}",
        hint=f"use one of {_TYPE_NAMES}",
    )


@dataclass(frozen=True)
class Field:
    """One typed input or output field.

    ``required=False`` lets the key be absent; ``nullable=True`` lets its value be
    null. Enum ``values`` are a set, kept sorted so that the stored form, the
    fingerprint and the proto numbering agree. An array has element type ``items``
    and a ``shape`` with one entry per dimension, ``-1`` for a variable one. A map
    is a JSON object with exactly the fixed ``keys`` (in their order: e.g. class
    names, in the order of the model's classes), each holding a number of type
    ``items``.
    """

    name: str
    type: FieldType
    required: bool = True
    nullable: bool = False
    description: str = ""
    values: tuple[str | int, ...] = ()
    items: FieldType | None = None
    shape: tuple[int, ...] = ()
    keys: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        name = self.name
        if not isinstance(name, str) or not name or not name.isprintable():
            raise InvalidInput(
                f"field name {name!r} must be non-empty printable text",
                hint="use the column or key name clients send, e.g. 'age'",
            )
        if len(name) > MAX_NAME_LENGTH:
            raise InvalidInput(f"field {name[:20]!r}… is {len(name)} characters; at most 128")
        where = f"field {name!r}"
        set_ = object.__setattr__
        set_(self, "type", _parse_type(self.type, where))
        for flag in ("required", "nullable"):
            if not isinstance(getattr(self, flag), bool):
                raise InvalidInput(f"{where}: {flag} must be true or false")
        if not isinstance(self.description, str):
            raise InvalidInput(f"{where}: description must be text")
        set_(self, "values", _check_values(self.type, self.values, where))
        if self.type is FieldType.MAP:
            value_type, keys = _check_map(self.items, self.keys, self.shape, where)
            set_(self, "items", value_type)
            set_(self, "keys", keys)
            return
        if self.keys:
            raise InvalidInput(f"{where}: only a map has keys, this is {self.type.value}")
        items, shape = _check_array(self.type, self.items, self.shape, where)
        set_(self, "items", items)
        set_(self, "shape", shape)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Field:
        """A field from its stored form (or a compact spec) that carries ``name``."""
        if not isinstance(data, Mapping) or "name" not in data:
            raise InvalidInput(f"a field must be an object with a 'name', got {data!r:.60}")
        return _parse_field(data["name"], data, "")

    def to_dict(self) -> dict[str, Any]:
        """The canonical stored form; only the keys the type uses."""
        out = self._structure()
        if self.description:
            out["description"] = self.description
        return out

    def _structure(self) -> dict[str, Any]:
        # Everything that constrains values, and nothing else: the fingerprint's input.
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type.value,
            "required": self.required,
            "nullable": self.nullable,
        }
        if self.type is FieldType.ENUM:
            out["values"] = list(self.values)
        elif self.type is FieldType.ARRAY:
            assert self.items is not None
            out["items"] = self.items.value
            out["shape"] = list(self.shape)
        elif self.type is FieldType.MAP:
            assert self.items is not None
            out["items"] = self.items.value
            out["keys"] = list(self.keys)  # the order is the model's (the OIP columns)
        return out

    @property
    def type_text(self) -> str:
        """``int64``, ``enum['a', 'b']``, ``array<float32>[-1, 3]``: for messages."""
        if self.type is FieldType.ENUM:
            return f"enum{list(self.values)}"
        if self.type is FieldType.ARRAY:
            assert self.items is not None
            return f"array<{self.items.value}>{list(self.shape)}"
        if self.type is FieldType.MAP:
            assert self.items is not None
            return f"map<{self.items.value}>{{{', '.join(map(repr, self.keys))}}}"
        return self.type.value


def _check_values(ftype: FieldType, values: object, where: str) -> tuple[str | int, ...]:
    if ftype is not FieldType.ENUM:
        if values:
            raise InvalidInput(f"{where}: only an enum has values, this is {ftype.value}")
        return ()
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise InvalidInput(
            f"{where}: enum values must be a list, got {values!r:.60}",
            hint='e.g. {"type": "enum", "values": ["red", "green"]}',
        )
    vals = list(values)
    if not vals:
        raise InvalidInput(f"{where}: an enum needs at least one value")
    kinds = {str if isinstance(v, str) else int for v in vals if isinstance(v, str | int)}
    if any(isinstance(v, bool) or not isinstance(v, str | int) for v in vals) or len(kinds) > 1:
        raise InvalidInput(
            f"{where}: enum values must be all text or all integers, got {vals!r:.80}",
            hint="clients compare enum values exactly; mixed kinds are ambiguous in JSON",
        )
    if len(set(vals)) != len(vals):
        dupes = sorted({v for v in vals if vals.count(v) > 1}, key=str)
        raise InvalidInput(f"{where}: enum values repeat: {dupes!r}")
    return tuple(sorted(vals))  # type: ignore[type-var]  # one kind, checked above


def _check_map(
    items: object, keys: object, shape: object, where: str
) -> tuple[FieldType, tuple[str, ...]]:
    example = '{"type": "map", "items": "float64", "keys": ["churn", "stay"]}'
    if shape:
        raise InvalidInput(f"{where}: a map has keys, not a shape", hint=f"e.g. {example}")
    if items is None:
        raise InvalidInput(f"{where}: a map needs 'items', its value type", hint=f"e.g. {example}")
    item_type = _parse_type(items, f"{where} items")
    if item_type not in MAP_ITEM_TYPES:
        raise InvalidInput(
            f"{where}: map values must be numbers, not {item_type.value}",
            hint="use int32, int64, float32 or float64",
        )
    if isinstance(keys, str | bytes) or not isinstance(keys, Iterable):
        raise InvalidInput(f"{where}: map keys must be a list of names, got {keys!r:.60}")
    names = tuple(keys)
    if not names:
        raise InvalidInput(f"{where}: a map needs at least one key", hint=f"e.g. {example}")
    if not all(isinstance(k, str) and k and k.isprintable() for k in names):
        raise InvalidInput(f"{where}: map keys must be non-empty printable text, got {names!r:.80}")
    if len(set(names)) != len(names):
        dupes = sorted({k for k in names if names.count(k) > 1})
        raise InvalidInput(f"{where}: map keys repeat: {dupes!r}")
    return item_type, names


def _check_array(
    ftype: FieldType, items: object, shape: object, where: str
) -> tuple[FieldType | None, tuple[int, ...]]:
    if ftype is not FieldType.ARRAY:
        if items is not None or shape:
            raise InvalidInput(f"{where}: only an array has items and shape, this is {ftype}")
        return None, ()
    if items is None:
        raise InvalidInput(
            f"{where}: an array needs 'items', its element type",
            hint='e.g. {"type": "array", "items": "float32", "shape": [-1, 3]}',
        )
    item_type = _parse_type(items, f"{where} items")
    if item_type not in ARRAY_ITEM_TYPES:
        raise InvalidInput(
            f"{where}: array items must be a scalar type, not {item_type.value}",
            hint="nest arrays with more dimensions in 'shape', e.g. [-1, 3]",
        )
    dims = (-1,) if shape is None or shape == () else shape
    if isinstance(dims, str | bytes) or not isinstance(dims, Iterable):
        raise InvalidInput(f"{where}: shape must be a list of dimensions, got {shape!r:.60}")
    dims = tuple(dims)
    if not dims or len(dims) > MAX_RANK:
        raise InvalidInput(f"{where}: shape needs 1 to {MAX_RANK} dimensions, got {len(dims)}")
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, int) or (d < 1 and d != -1):
            raise InvalidInput(
                f"{where}: shape {list(dims)} has a bad dimension {d!r}",
                hint="a dimension is a size ≥ 1, or -1 when it varies",
            )
    return item_type, dims


_SPEC_KEYS = frozenset(
    {"name", "type", "required", "nullable", "description", "values", "items", "shape", "keys"}
)


def _parse_field(name: object, spec: object, side: str) -> Field:
    """A field from the compact form: a type name or an object of Field's attributes."""
    where = f"{side} field {name!r}".lstrip()
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, Mapping):
        raise InvalidInput(
            f"{where}: expected a type name or an object, got {spec!r:.60}",
            hint='e.g. "int64" or {"type": "string", "nullable": true}',
        )
    unknown = sorted(set(spec) - _SPEC_KEYS, key=str)
    if unknown:
        raise InvalidInput(
            f"{where}: unknown keys {unknown}",
            hint=f"a field may have {', '.join(sorted(_SPEC_KEYS))}",
        )
    if "name" in spec and spec["name"] != name:
        raise InvalidInput(f"{where}: its 'name' says {spec['name']!r}")
    if "type" not in spec:
        raise InvalidInput(f"{where}: no 'type'", hint=f"use one of {_TYPE_NAMES}")
    items = spec.get("items")
    if isinstance(items, Mapping):  # {"items": {"type": "float32"}} reads naturally too
        items = items.get("type")
    try:
        return Field(
            name=name,  # type: ignore[arg-type]  # Field checks it
            type=_parse_type(spec["type"], where),
            required=spec.get("required", True),
            nullable=spec.get("nullable", False),
            description=spec.get("description", "") or "",
            values=spec.get("values", ()),
            items=items,
            shape=spec.get("shape", ()),
            keys=spec.get("keys", ()),
        )
    except InvalidInput as exc:
        if not side or exc.message.startswith(side):
            raise
        raise InvalidInput(f"{side} {exc.message}", hint=exc.hint, **exc.details) from None


def _parse_side(data: object, side: str) -> tuple[Field, ...]:
    if isinstance(data, Mapping):
        return tuple(_parse_field(name, spec, side) for name, spec in data.items())
    if isinstance(data, list | tuple):
        fields = []
        for spec in data:
            if not isinstance(spec, Mapping) or "name" not in spec:
                raise InvalidInput(
                    f"{side}s: each field in a list needs a 'name', got {spec!r:.60}",
                    hint='e.g. [{"name": "age", "type": "int64"}]',
                )
            fields.append(_parse_field(spec["name"], spec, side))
        return tuple(fields)
    raise InvalidInput(
        f"{side}s must map field names to types or list fields, got {type(data).__name__}",
        hint='e.g. {"inputs": {"age": "int64"}, "outputs": {"price": "float64"}}',
    )


@dataclass(frozen=True)
class Interface:
    """A model's input fields and output fields.

    Field order is kept for people (and DataFrame column order) but is not part of
    the structure: :attr:`fingerprint` and :func:`diff_interfaces` ignore it, so
    compare interfaces by fingerprint, not with ``==``.
    """

    inputs: tuple[Field, ...]
    outputs: tuple[Field, ...]

    def __post_init__(self) -> None:
        for side in ("inputs", "outputs"):
            fields = getattr(self, side)
            if not isinstance(fields, list | tuple) or not all(
                isinstance(f, Field) for f in fields
            ):
                raise InvalidInput(f"{side} must be a sequence of Field objects")
            object.__setattr__(self, side, tuple(fields))
            names = [f.name for f in fields]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise InvalidInput(
                    f"{side} declare {', '.join(map(repr, dupes))} more than once",
                    hint="field names are unique on each side",
                )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Interface:
        """Read the stored form or the compact declared form.

        ``{"inputs": {"age": "int64", "note": {"type": "string", "nullable": true}},
        "outputs": {"price": "float64"}}``; each side may also be a list of field
        objects with a ``name``. Types are :class:`FieldType` names; in the compact
        form ``int``, ``float``, ``str`` and ``bytes`` mean int64, float64, string
        and binary.
        """
        if not isinstance(data, Mapping):
            raise InvalidInput(f"an interface must be an object, got {type(data).__name__}")
        unknown = sorted(set(data) - {"inputs", "outputs"}, key=str)
        missing = [k for k in ("inputs", "outputs") if k not in data]
        if unknown or missing:
            raise InvalidInput(
                f"an interface has exactly 'inputs' and 'outputs'"
                f"{'; unknown ' + str(unknown) if unknown else ''}"
                f"{'; missing ' + str(missing) if missing else ''}",
                hint='e.g. {"inputs": {"age": "int64"}, "outputs": {"price": "float64"}}',
            )
        return cls(_parse_side(data["inputs"], "input"), _parse_side(data["outputs"], "output"))

    def to_dict(self) -> dict[str, Any]:
        """The canonical stored form, plain JSON; :meth:`from_dict` reads it back."""
        return {
            "inputs": [f.to_dict() for f in self.inputs],
            "outputs": [f.to_dict() for f in self.outputs],
        }

    @classmethod
    def from_pydantic(cls, input_model: type[Any], output_model: type[Any]) -> Interface:
        """From two pydantic v2 models, one for an input row and one for an output row.

        int, float, str, bool, bytes and datetime map to int64, float64, string,
        bool, binary and datetime; ``Literal`` and ``Enum`` to enum; ``list[...]``
        to an array (a fixed ``tuple[float, float]`` gives a fixed dimension);
        ``X | None`` to nullable; a default to not required. Pick another type
        with ``Field(json_schema_extra={"dmv": "float32"})``.
        """
        from dmv._interface_export import from_pydantic

        return from_pydantic(input_model, output_model)

    @classmethod
    def from_json_schema(
        cls, input_schema: Mapping[str, Any], output_schema: Mapping[str, Any] | None = None
    ) -> Interface:
        """From JSON Schema objects for an input row and an output row.

        Reads ``properties``/``required``, local ``$ref``s and the nullable
        ``anyOf`` pydantic writes; with one argument, reads the
        ``{"input": …, "output": …}`` pair :func:`to_json_schema` returns.
        """
        from dmv._interface_export import from_json_schema

        return from_json_schema(input_schema, output_schema)

    @cached_property
    def fingerprint(self) -> str:
        """``blake3:<hex>`` of the structure: sorted keys, fields sorted by name.

        Descriptions are left out on purpose: they document a field without
        changing what a client may send or receive, so rewording one must not
        move Y.
        """
        import blake3

        payload = {
            side: [f._structure() for f in sorted(fields, key=lambda f: f.name)]
            for side, fields in (("inputs", self.inputs), ("outputs", self.outputs))
        }
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return "blake3:" + str(blake3.blake3(text.encode()).hexdigest())

    def fields(self, side: Side) -> tuple[Field, ...]:
        """The fields of one side, ``"input"`` or ``"output"``."""
        if side not in ("input", "output"):
            raise InvalidInput(f"side must be 'input' or 'output', got {side!r}")
        return self.inputs if side == "input" else self.outputs

    @cached_property
    def _validators(self) -> dict[str, RowValidator]:
        # Built once per interface: validate_rows runs on every predict request.
        from dmv._interface_validate import RowValidator

        return {side: RowValidator(self.fields(side)) for side in ("input", "output")}

    def __getstate__(self) -> dict[str, Any]:
        # The cached checkers are closures, which pickle cannot carry; they rebuild on use.
        return {k: v for k, v in self.__dict__.items() if k != "_validators"}


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
        from dmv.integrations.notebook import interface_diff_html

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


# ---------------------------------------------------------------------- validation

PROBLEM_KINDS = ("missing", "wrong_type", "not_in_enum", "bad_shape", "null", "unknown_field")


def validate_rows(
    iface: Interface, rows: Sequence[Any], *, side: Side = "input", limit: int = 100
) -> list[dict[str, Any]]:
    """Every way ``rows`` break the interface, as ``{"row", "field", "problem", "message"}``.

    ``problem`` is one of :data:`PROBLEM_KINDS`; an empty list means valid. JSON
    shapes are expected (binary as base64 text, datetime as ISO 8601 text), as
    are their Python equivalents. Stops after ``limit`` problems.
    """
    if not isinstance(rows, list | tuple):
        raise InvalidInput(
            f"rows must be a list of objects, got {type(rows).__name__}",
            hint='send {"inputs": [{"field": value, ...}, ...]}',
        )
    iface.fields(side)  # checks the side's name
    return iface._validators[side].problems(rows, limit)


# ------------------------------------------------- conversions in the helper module


def infer_interface(
    sample_input: Any,
    sample_output: Any,
    *,
    output_name: str = "prediction",
    output_columns: Sequence[str] | None = None,
) -> Interface:
    """Infer the interface from sample input rows and the model's output on them.

    ``sample_input``: a pandas DataFrame, a dict of lists or a list of dicts.
    ``sample_output``: a numpy array (1-D: one field ``output_name``; 2-D: an
    array field of fixed width, or one field per name in ``output_columns``), a
    Series (its name) or a DataFrame (its columns). A column with nulls is
    nullable; every inferred field is required. Arrays inside cells get variable
    dimensions: a sample cannot prove a length is fixed.
    """
    from dmv._interface_export import infer_interface as infer

    return infer(sample_input, sample_output, output_name, output_columns)


def to_json_schema(iface: Interface) -> dict[str, Any]:
    """``{"input": schema, "output": schema}``: Draft 2020-12 schemas for one row each."""
    from dmv._interface_export import to_json_schema as export

    return export(iface)


def to_openapi(iface: Interface, model_name: str, version_text: str) -> dict[str, Any]:
    """An OpenAPI 3.1 document for ``POST /models/{name}/versions/{ref}/predict``."""
    from dmv._interface_export import to_openapi as export

    return export(iface, model_name, version_text)


def to_proto(iface: Interface, model_name: str) -> str:
    """A proto3 file with ``Input``, ``Output`` and a ``Predictor`` service."""
    from dmv._interface_export import to_proto as export

    return export(iface, model_name)
