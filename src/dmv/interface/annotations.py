"""Interface fields from Python type annotations: the fields of a pydantic model class."""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from dmv.errors import InvalidInput
from dmv.interface.fields import ARRAY_ITEM_TYPES, Field, FieldType, Side, _parse_field

__all__ = ["pydantic_fields"]

_PY_TYPES: dict[Any, FieldType] = {
    bool: FieldType.BOOL,
    int: FieldType.INT64,
    float: FieldType.FLOAT64,
    str: FieldType.STRING,
    bytes: FieldType.BINARY,
    datetime: FieldType.DATETIME,
}


def pydantic_fields(model: type[Any], side: Side) -> tuple[Field, ...]:
    """The fields of one side from a pydantic v2 model class (its annotations and defaults)."""
    from pydantic import BaseModel

    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise InvalidInput(
            f"the {side} model must be a pydantic BaseModel class, got {model!r:.60}",
            hint="pass the class itself, e.g. Interface.from_pydantic(Request, Response)",
        )
    fields = []
    for attr, info in model.model_fields.items():
        name = info.alias or attr
        where = f"{side} field {name!r}"
        ftype, nullable, values, items, shape = _annotation(info.annotation, where)
        spec: dict[str, Any] = {
            "type": ftype.value,
            "required": info.is_required(),
            "nullable": nullable,
            "description": info.description or "",
        }
        if values:
            spec["values"] = values
        if items is not None:
            spec["items"], spec["shape"] = items.value, shape
        extra = info.json_schema_extra
        override = extra.get("dmv") if isinstance(extra, Mapping) else None
        if override is not None:
            # The annotation can't say float32 or int32; the override can.
            for key in ("values", "items", "shape"):
                spec.pop(key, None)
            if not isinstance(override, str | Mapping):
                raise InvalidInput(
                    f"{where}: json_schema_extra 'dmv' must be a type or an object",
                    hint="e.g. json_schema_extra={'dmv': 'float32'} or {'dmv': {'type': 'enum', "
                    "'values': [...]}}",
                )
            spec.update({"type": override} if isinstance(override, str) else override)
        fields.append(_parse_field(name, spec, side))
    return tuple(fields)


_Mapped = tuple[FieldType, bool, list[Any], FieldType | None, list[int]]


def _annotation(ann: Any, where: str) -> _Mapped:
    """(type, nullable, enum values, array items, array shape) of a type annotation."""
    origin, args = get_origin(ann), get_args(ann)
    if origin is Annotated:
        return _annotation(args[0], where)
    if origin in (Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1:
            raise InvalidInput(
                f"{where}: the union {ann} has more than one non-None type",
                hint="a field has one type; only 'X | None' is understood",
            )
        ftype, _, values, items, shape = _annotation(rest[0], where)
        return ftype, len(rest) < len(args), values, items, shape
    if origin is Literal:
        values = [a for a in args if a is not None]
        return FieldType.ENUM, len(values) < len(args), values, None, []
    if isinstance(ann, type) and issubclass(ann, Enum):
        return FieldType.ENUM, False, [m.value for m in ann], None, []
    if origin in (list, tuple, Sequence):
        fixed = origin is tuple and Ellipsis not in args
        if not args or (fixed and len(set(args)) != 1):
            raise InvalidInput(
                f"{where}: {ann} needs one element type, e.g. list[float]",
                hint="annotate it with one element type, e.g. list[float]",
            )
        inner, nullable, _, items, shape = _annotation(args[0], where)
        if nullable:
            raise InvalidInput(
                f"{where}: array elements cannot be None",
                hint="drop None from the element type, or make the whole field Optional",
            )
        dim = len(args) if fixed else -1
        if inner is FieldType.ARRAY:
            return FieldType.ARRAY, False, [], items, [dim, *shape]
        if inner not in ARRAY_ITEM_TYPES:
            raise InvalidInput(
                f"{where}: array elements must be scalars, not {inner.value}",
                hint="use numbers, booleans or text as array elements",
            )
        return FieldType.ARRAY, False, [], inner, [dim]
    if ann in _PY_TYPES:
        return _PY_TYPES[ann], False, [], None, []
    raise InvalidInput(
        f"{where}: the type {ann!r} has no dmv field type",
        hint="use bool, int, float, str, bytes, datetime, Literal, Enum, list[...] or X | None",
    )
