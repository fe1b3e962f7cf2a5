"""Interfaces as JSON Schema (Draft 2020-12), both ways."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dmv.errors import InvalidInput
from dmv.interface.fields import ARRAY_ITEM_TYPES, MAP_ITEM_TYPES, Field, FieldType, Side

if TYPE_CHECKING:
    from dmv.interface.model import Interface

__all__ = [
    "JSON_SCHEMA_DIALECT",
    "field_schema",
    "json_schema_fields",
    "row_schema",
    "to_json_schema",
]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
PREDICT_PATH = "/models/{name}/versions/{ref}/predict"
_SIDES: tuple[Side, ...] = ("input", "output")

# ------------------------------------------------------------------- JSON Schema

_SCALAR_SCHEMAS: dict[FieldType, dict[str, str]] = {
    FieldType.BOOL: {"type": "boolean"},
    FieldType.INT32: {"type": "integer", "format": "int32"},
    FieldType.INT64: {"type": "integer", "format": "int64"},
    FieldType.FLOAT32: {"type": "number", "format": "float"},
    FieldType.FLOAT64: {"type": "number", "format": "double"},
    FieldType.STRING: {"type": "string"},
    FieldType.BINARY: {"type": "string", "contentEncoding": "base64"},
    FieldType.DATETIME: {"type": "string", "format": "date-time"},
}


def field_schema(f: Field) -> dict[str, Any]:
    """The JSON Schema of one field's value."""
    schema: dict[str, Any]
    if f.type is FieldType.ENUM:
        kind = "string" if isinstance(f.values[0], str) else "integer"
        schema = {"type": kind, "enum": list(f.values)}
    elif f.type is FieldType.ARRAY:
        assert f.items is not None
        schema = dict(_SCALAR_SCHEMAS[f.items])
        for size in reversed(f.shape):
            schema = {"type": "array", "items": schema}
            if size != -1:
                schema["minItems"] = schema["maxItems"] = size
    elif f.type is FieldType.MAP:
        assert f.items is not None
        value = _SCALAR_SCHEMAS[f.items]
        schema = {
            "type": "object",
            "properties": {k: dict(value) for k in f.keys},
            "required": list(f.keys),
            "additionalProperties": False,
        }
    else:
        schema = dict(_SCALAR_SCHEMAS[f.type])
    if f.nullable:
        schema["type"] = [schema["type"], "null"]
        if "enum" in schema:
            schema["enum"].append(None)
    if f.description:
        schema = {"description": f.description, **schema}
    return schema


def row_schema(fields: Sequence[Field], title: str) -> dict[str, Any]:
    """A closed object schema for one row: unknown keys are errors."""
    return {
        "title": title,
        "type": "object",
        "properties": {f.name: field_schema(f) for f in fields},
        "required": [f.name for f in fields if f.required],
        "additionalProperties": False,
    }


def to_json_schema(iface: Interface) -> dict[str, Any]:
    return {
        side: {"$schema": JSON_SCHEMA_DIALECT, **row_schema(iface.fields(side), side.title())}
        for side in _SIDES
    }


def json_schema_fields(
    input_schema: Mapping[str, Any], output_schema: Mapping[str, Any] | None
) -> tuple[tuple[Field, ...], tuple[Field, ...]]:
    """The input and output fields of two row schemas (or of one ``{input, output}`` pair)."""
    if output_schema is None:
        if not (isinstance(input_schema, Mapping) and {"input", "output"} <= input_schema.keys()):
            raise InvalidInput(
                "from_json_schema needs an input row schema and an output row schema",
                hint="pass both, or the {'input': ..., 'output': ...} pair to_json_schema returns",
            )
        input_schema, output_schema = input_schema["input"], input_schema["output"]
    return _schema_fields(input_schema, "input"), _schema_fields(output_schema, "output")


def _schema_fields(root: Mapping[str, Any], side: Side) -> tuple[Field, ...]:
    if not isinstance(root, Mapping):
        raise InvalidInput(
            f"the {side} schema must be an object, got {type(root).__name__}",
            hint="pass a JSON Schema object with type 'object' and properties",
        )
    schema = _deref(root, root, f"the {side} schema")
    if schema.get("type", "object") != "object":
        raise InvalidInput(
            f"the {side} schema describes {schema.get('type')!r}, not a row object",
            hint='a row schema is {"type": "object", "properties": {...}}',
        )
    props = schema.get("properties", {})
    required = schema.get("required", [])
    if not isinstance(props, Mapping) or not isinstance(required, list):
        raise InvalidInput(
            f"the {side} schema's properties must be an object, required a list",
            hint="write 'properties' as an object and 'required' as a list of names",
        )
    stray = [name for name in required if name not in props]
    if stray:
        raise InvalidInput(
            f"the {side} schema requires {stray} but has no such properties",
            hint="add the property, or remove its name from 'required'",
        )
    return tuple(
        _schema_field(str(name), prop, name in required, root, side) for name, prop in props.items()
    )


def _deref(schema: Any, root: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Follow local ``$ref``s and one-element ``allOf``s; sibling keywords win."""
    for _ in range(32):
        if not isinstance(schema, Mapping):
            raise InvalidInput(
                f"{where}: a schema must be an object, got {schema!r:.60}",
                hint="write each schema as a JSON object, e.g. {'type': 'number'}",
            )
        if "$ref" in schema:
            ref = schema["$ref"]
            if not isinstance(ref, str) or not ref.startswith("#/"):
                raise InvalidInput(
                    f"{where}: only local references ('#/...') are supported, got {ref!r}",
                    hint="bundle the schema so that its definitions live under $defs",
                )
            target: Any = root
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                if not isinstance(target, Mapping) or part not in target:
                    raise InvalidInput(
                        f"{where}: reference {ref!r} points nowhere",
                        hint="point $ref at a definition in the schema's $defs",
                    )
                target = target[part]
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**_deref(target, root, where), **siblings}
        elif isinstance(schema.get("allOf"), list) and len(schema["allOf"]) == 1:
            siblings = {k: v for k, v in schema.items() if k != "allOf"}
            schema = {**_deref(schema["allOf"][0], root, where), **siblings}
        else:
            return dict(schema)
    raise InvalidInput(
        f"{where}: references nest too deep (a cycle?)",
        hint="resolve the $ref chain, or inline the referenced schema",
    )


def _unwrap_null(schema: Any, root: Mapping[str, Any], where: str) -> tuple[dict[str, Any], bool]:
    """The non-null part of a schema, and whether null is allowed."""
    schema = _deref(schema, root, where)
    nullable = False
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [_deref(o, root, where) for o in schema[key]]
            rest = [o for o in options if o.get("type") != "null"]
            if len(rest) != 1:
                raise InvalidInput(
                    f"{where}: {key} with {len(rest)} non-null alternatives is not supported",
                    hint="a field has one type; only 'X or null' is understood",
                )
            nullable = len(rest) < len(options)
            schema = {**rest[0], **{k: v for k, v in schema.items() if k != key}}
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        if len(kinds) != 1:
            raise InvalidInput(
                f"{where}: type {kind} must be one type, optionally with null",
                hint="e.g. {'type': ['number', 'null']}",
            )
        nullable = nullable or len(kinds) < len(kind)
        schema["type"] = kinds[0]
    for key in ("enum", "const"):
        if key == "enum" and isinstance(schema.get(key), list) and None in schema[key]:
            nullable = True
            schema[key] = [v for v in schema[key] if v is not None]
    return schema, nullable


def _scalar_type(schema: Mapping[str, Any], where: str) -> tuple[FieldType, list[Any]]:
    if "const" in schema:
        return FieldType.ENUM, [schema["const"]]
    if "enum" in schema:
        return FieldType.ENUM, list(schema["enum"])
    kind, fmt = schema.get("type"), schema.get("format")
    if kind == "boolean":
        return FieldType.BOOL, []
    if kind == "integer":
        return (FieldType.INT32 if fmt == "int32" else FieldType.INT64), []
    if kind == "number":
        return (FieldType.FLOAT32 if fmt == "float" else FieldType.FLOAT64), []
    if kind == "string":
        if fmt == "date-time":
            return FieldType.DATETIME, []
        if fmt in ("binary", "byte") or schema.get("contentEncoding") == "base64":
            return FieldType.BINARY, []
        return FieldType.STRING, []
    raise InvalidInput(
        f"{where}: JSON Schema type {kind!r} has no dmv field type",
        hint="use boolean, integer, number, string, an enum or an array of those",
    )


def _schema_field(
    name: str, prop: Any, required: bool, root: Mapping[str, Any], side: Side
) -> Field:
    where = f"{side} field {name!r}"
    schema, nullable = _unwrap_null(prop, root, where)
    description = schema.get("description", "")
    shape: list[int] = []
    while schema.get("type") == "array":
        low, high = schema.get("minItems"), schema.get("maxItems")
        shape.append(low if isinstance(low, int) and low == high and low >= 1 else -1)
        items = schema.get("items")
        prefix = schema.get("prefixItems")
        if not isinstance(items, Mapping) and isinstance(prefix, list) and prefix:
            items = prefix[0]  # pydantic writes tuple[float, float] this way
            if any(p != items for p in prefix):
                raise InvalidInput(
                    f"{where}: array elements must all have one type",
                    hint="give the array's items one type",
                )
        if not isinstance(items, Mapping):
            raise InvalidInput(
                f"{where}: an array schema needs 'items'",
                hint="e.g. {'type': 'array', 'items': {'type': 'number'}}",
            )
        schema, element_nullable = _unwrap_null(items, root, where)
        if element_nullable:
            raise InvalidInput(
                f"{where}: array elements cannot be null in a dmv interface",
                hint="make the whole field nullable instead",
            )
    if not shape and schema.get("type") == "object":
        return _map_field(name, schema, required, nullable, description, root, where)
    ftype, values = _scalar_type(schema, where)
    if shape:
        if ftype not in ARRAY_ITEM_TYPES:
            raise InvalidInput(
                f"{where}: array elements must be scalars, not {ftype.value}",
                hint="use numbers, booleans or text as array elements",
            )
        return Field(
            name, FieldType.ARRAY, required, nullable, description, items=ftype, shape=tuple(shape)
        )
    return Field(name, ftype, required, nullable, description, values=tuple(values))


def _map_field(
    name: str,
    schema: Mapping[str, Any],
    required: bool,
    nullable: bool,
    description: str,
    root: Mapping[str, Any],
    where: str,
) -> Field:
    """An object with fixed, required number properties (what :func:`field_schema` writes)."""
    props = schema.get("properties")
    if not isinstance(props, Mapping) or not props:
        raise InvalidInput(
            f"{where}: an object field needs 'properties', its fixed keys",
            hint="dmv reads objects as maps with fixed keys and number values",
        )
    if set(schema.get("required") or ()) != set(props):
        raise InvalidInput(
            f"{where}: every key of an object field must be required",
            hint="list every key of the object in 'required'",
        )
    kinds = set()
    for key, prop in props.items():
        inner, inner_nullable = _unwrap_null(prop, root, f"{where} key {key!r}")
        if inner_nullable:
            raise InvalidInput(
                f"{where}: map values cannot be null in a dmv interface",
                hint="drop 'null' from the map's value type",
            )
        kinds.add(_scalar_type(inner, f"{where} key {key!r}")[0])
    if len(kinds) != 1:
        raise InvalidInput(
            f"{where}: every key of an object field must have one type",
            hint="give the object's values one type (additionalProperties)",
        )
    if not kinds <= MAP_ITEM_TYPES:
        raise InvalidInput(
            f"{where}: map values must be numbers, not {kinds.pop().value}",
            hint="dmv reads objects as maps with fixed keys and number values",
        )
    return Field(
        name,
        FieldType.MAP,
        required,
        nullable,
        description,
        items=kinds.pop(),
        keys=tuple(str(k) for k in props),
    )
