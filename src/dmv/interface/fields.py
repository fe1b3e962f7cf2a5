"""Interface fields: their types, shapes, enum values, and how they are parsed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from dmv.errors import InvalidInput

__all__ = ["ARRAY_ITEM_TYPES", "MAP_ITEM_TYPES", "Field", "FieldType", "Side"]

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
            raise InvalidInput(
                f"field {name[:20]!r}… is {len(name)} characters; at most 128",
                hint="use a field name of at most 128 characters",
            )
        where = f"field {name!r}"
        set_ = object.__setattr__
        set_(self, "type", _parse_type(self.type, where))
        for flag in ("required", "nullable"):
            if not isinstance(getattr(self, flag), bool):
                raise InvalidInput(
                    f"{where}: {flag} must be true or false", hint="write true or false"
                )
        if not isinstance(self.description, str):
            raise InvalidInput(
                f"{where}: description must be text", hint="write the description as text"
            )
        set_(self, "values", _check_values(self.type, self.values, where))
        if self.type is FieldType.MAP:
            value_type, keys = _check_map(self.items, self.keys, self.shape, where)
            set_(self, "items", value_type)
            set_(self, "keys", keys)
            return
        if self.keys:
            raise InvalidInput(
                f"{where}: only a map has keys, this is {self.type.value}",
                hint="drop 'keys', or make the field's type map",
            )
        items, shape = _check_array(self.type, self.items, self.shape, where)
        set_(self, "items", items)
        set_(self, "shape", shape)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Field:
        """A field from its stored form (or a compact spec) that carries ``name``."""
        if not isinstance(data, Mapping) or "name" not in data:
            raise InvalidInput(
                f"a field must be an object with a 'name', got {data!r:.60}",
                hint="e.g. {'name': 'age', 'type': 'int64'}",
            )
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
            raise InvalidInput(
                f"{where}: only an enum has values, this is {ftype.value}",
                hint="drop 'values', or make the field's type enum",
            )
        return ()
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise InvalidInput(
            f"{where}: enum values must be a list, got {values!r:.60}",
            hint='e.g. {"type": "enum", "values": ["red", "green"]}',
        )
    vals = list(values)
    if not vals:
        raise InvalidInput(
            f"{where}: an enum needs at least one value",
            hint="list the allowed values, e.g. {'type': 'enum', 'values': ['a', 'b']}",
        )
    kinds = {str if isinstance(v, str) else int for v in vals if isinstance(v, str | int)}
    if any(isinstance(v, bool) or not isinstance(v, str | int) for v in vals) or len(kinds) > 1:
        raise InvalidInput(
            f"{where}: enum values must be all text or all integers, got {vals!r:.80}",
            hint="clients compare enum values exactly; mixed kinds are ambiguous in JSON",
        )
    if len(set(vals)) != len(vals):
        dupes = sorted({v for v in vals if vals.count(v) > 1}, key=str)
        raise InvalidInput(
            f"{where}: enum values repeat: {dupes!r}", hint="list each enum value once"
        )
    return tuple(sorted(vals))  # one kind, checked above


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
        raise InvalidInput(
            f"{where}: map keys must be a list of names, got {keys!r:.60}",
            hint="e.g. {'type': 'map', 'keys': ['a', 'b']}",
        )
    names = tuple(keys)
    if not names:
        raise InvalidInput(f"{where}: a map needs at least one key", hint=f"e.g. {example}")
    if not all(isinstance(k, str) and k and k.isprintable() for k in names):
        raise InvalidInput(
            f"{where}: map keys must be non-empty printable text, got {names!r:.80}",
            hint="use printable, non-empty names as map keys",
        )
    if len(set(names)) != len(names):
        dupes = sorted({k for k in names if names.count(k) > 1})
        raise InvalidInput(f"{where}: map keys repeat: {dupes!r}", hint="list each map key once")
    return item_type, names


def _check_array(
    ftype: FieldType, items: object, shape: object, where: str
) -> tuple[FieldType | None, tuple[int, ...]]:
    if ftype is not FieldType.ARRAY:
        if items is not None or shape:
            raise InvalidInput(
                f"{where}: only an array has items and shape, this is {ftype}",
                hint="drop 'items'/'shape', or make the field's type array",
            )
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
        raise InvalidInput(
            f"{where}: shape must be a list of dimensions, got {shape!r:.60}",
            hint="e.g. 'shape': [3] or [-1] for any length",
        )
    dims = tuple(dims)
    if not dims or len(dims) > MAX_RANK:
        raise InvalidInput(
            f"{where}: shape needs 1 to {MAX_RANK} dimensions, got {len(dims)}",
            hint=f"use between 1 and {MAX_RANK} dimensions",
        )
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
        raise InvalidInput(
            f"{where}: its 'name' says {spec['name']!r}",
            hint="leave 'name' out or make it the field's key",
        )
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
