"""Conversions between :class:`dmv.interface.Interface` and other schema languages.

JSON Schema (both ways), pydantic models, pandas/numpy samples, OpenAPI 3.1 and
proto3. Private: use the functions :mod:`dmv.interface` exports.

Proto choices: datetime is ``google.protobuf.Timestamp`` (the well-known type
every gRPC stack maps to its own datetime); a rank-k array is a ``repeated``
field of wrapper messages k-1 deep, so every dimension survives; nullable or
optional scalars are ``optional``; an absent or null array is an empty one.
Field numbers follow the fields sorted by name, as the fingerprint does, so one
fingerprint always gives one wire format.
"""

from __future__ import annotations

import re
import types
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from dmv.errors import InvalidInput
from dmv.interface import (
    ARRAY_ITEM_TYPES,
    MAP_ITEM_TYPES,
    PROBLEM_KINDS,
    Field,
    FieldType,
    Interface,
    Side,
    _parse_field,
)

__all__ = [
    "JSON_SCHEMA_DIALECT",
    "PREDICT_PATH",
    "from_json_schema",
    "from_pydantic",
    "infer_interface",
    "to_json_schema",
    "to_openapi",
    "to_proto",
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


def from_json_schema(
    input_schema: Mapping[str, Any], output_schema: Mapping[str, Any] | None
) -> Interface:
    if output_schema is None:
        if not (isinstance(input_schema, Mapping) and {"input", "output"} <= input_schema.keys()):
            raise InvalidInput(
                "from_json_schema needs an input row schema and an output row schema",
                hint="pass both, or the {'input': ..., 'output': ...} pair to_json_schema returns",
            )
        input_schema, output_schema = input_schema["input"], input_schema["output"]
    return Interface(_schema_fields(input_schema, "input"), _schema_fields(output_schema, "output"))


def _schema_fields(root: Mapping[str, Any], side: Side) -> tuple[Field, ...]:
    if not isinstance(root, Mapping):
        raise InvalidInput(f"the {side} schema must be an object, got {type(root).__name__}")
    schema = _deref(root, root, f"the {side} schema")
    if schema.get("type", "object") != "object":
        raise InvalidInput(
            f"the {side} schema describes {schema.get('type')!r}, not a row object",
            hint='a row schema is {"type": "object", "properties": {...}}',
        )
    props = schema.get("properties", {})
    required = schema.get("required", [])
    if not isinstance(props, Mapping) or not isinstance(required, list):
        raise InvalidInput(f"the {side} schema's properties must be an object, required a list")
    stray = [name for name in required if name not in props]
    if stray:
        raise InvalidInput(f"the {side} schema requires {stray} but has no such properties")
    return tuple(
        _schema_field(str(name), prop, name in required, root, side) for name, prop in props.items()
    )


def _deref(schema: Any, root: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Follow local ``$ref``s and one-element ``allOf``s; sibling keywords win."""
    for _ in range(32):
        if not isinstance(schema, Mapping):
            raise InvalidInput(f"{where}: a schema must be an object, got {schema!r:.60}")
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
                    raise InvalidInput(f"{where}: reference {ref!r} points nowhere")
                target = target[part]
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**_deref(target, root, where), **siblings}
        elif isinstance(schema.get("allOf"), list) and len(schema["allOf"]) == 1:
            siblings = {k: v for k, v in schema.items() if k != "allOf"}
            schema = {**_deref(schema["allOf"][0], root, where), **siblings}
        else:
            return dict(schema)
    raise InvalidInput(f"{where}: references nest too deep (a cycle?)")


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
            raise InvalidInput(f"{where}: type {kind} must be one type, optionally with null")
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
                raise InvalidInput(f"{where}: array elements must all have one type")
        if not isinstance(items, Mapping):
            raise InvalidInput(f"{where}: an array schema needs 'items'")
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
            raise InvalidInput(f"{where}: array elements must be scalars, not {ftype.value}")
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
        raise InvalidInput(f"{where}: every key of an object field must be required")
    kinds = set()
    for key, prop in props.items():
        inner, inner_nullable = _unwrap_null(prop, root, f"{where} key {key!r}")
        if inner_nullable:
            raise InvalidInput(f"{where}: map values cannot be null in a dmv interface")
        kinds.add(_scalar_type(inner, f"{where} key {key!r}")[0])
    if len(kinds) != 1:
        raise InvalidInput(f"{where}: every key of an object field must have one type")
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


# ---------------------------------------------------------------------- pydantic

_PY_TYPES: dict[Any, FieldType] = {
    bool: FieldType.BOOL,
    int: FieldType.INT64,
    float: FieldType.FLOAT64,
    str: FieldType.STRING,
    bytes: FieldType.BINARY,
    datetime: FieldType.DATETIME,
}


def from_pydantic(input_model: type[Any], output_model: type[Any]) -> Interface:
    return Interface(_model_fields(input_model, "input"), _model_fields(output_model, "output"))


def _model_fields(model: type[Any], side: Side) -> tuple[Field, ...]:
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
                raise InvalidInput(f"{where}: json_schema_extra 'dmv' must be a type or an object")
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
            raise InvalidInput(f"{where}: {ann} needs one element type, e.g. list[float]")
        inner, nullable, _, items, shape = _annotation(args[0], where)
        if nullable:
            raise InvalidInput(f"{where}: array elements cannot be None")
        dim = len(args) if fixed else -1
        if inner is FieldType.ARRAY:
            return FieldType.ARRAY, False, [], items, [dim, *shape]
        if inner not in ARRAY_ITEM_TYPES:
            raise InvalidInput(f"{where}: array elements must be scalars, not {inner.value}")
        return FieldType.ARRAY, False, [], inner, [dim]
    if ann in _PY_TYPES:
        return _PY_TYPES[ann], False, [], None, []
    raise InvalidInput(
        f"{where}: the type {ann!r} has no dmv field type",
        hint="use bool, int, float, str, bytes, datetime, Literal, Enum, list[...] or X | None",
    )


# --------------------------------------------------------------------- inference


def infer_interface(
    sample_input: Any,
    sample_output: Any,
    output_name: str,
    output_columns: Sequence[str] | None,
) -> Interface:
    import numpy as np
    import pandas as pd

    frame = _as_frame(sample_input, "sample_input")
    inputs = tuple(
        _infer_series(str(name), frame.iloc[:, i], "input") for i, name in enumerate(frame.columns)
    )
    out = sample_output
    if isinstance(out, Mapping) or (isinstance(out, list) and out and isinstance(out[0], Mapping)):
        out = _as_frame(out, "sample_output")
    if isinstance(out, pd.DataFrame | pd.Series):
        rows = len(out)
    else:
        out = np.asarray(out)
        if out.ndim == 0:
            raise InvalidInput("sample_output is a single value; expected one per input row")
        rows = out.shape[0]
    if rows != len(frame):
        raise InvalidInput(
            f"sample_output has {rows} rows but sample_input has {len(frame)}",
            hint="pass the model's output on exactly these input rows",
        )
    outputs: tuple[Field, ...]
    if isinstance(out, pd.DataFrame):
        outputs = tuple(
            _infer_series(str(n), out.iloc[:, i], "output") for i, n in enumerate(out.columns)
        )
    elif isinstance(out, pd.Series):
        name = output_name if out.name is None else str(out.name)
        outputs = (_infer_series(name, out, "output"),)
    elif out.ndim == 1:
        outputs = (_infer_series(output_name, pd.Series(out), "output"),)
    elif output_columns is not None:
        if out.ndim != 2 or out.shape[1] != len(output_columns):
            raise InvalidInput(
                f"output_columns names {len(output_columns)} columns; "
                f"the output has shape {list(out.shape)}",
                hint="give one name per column of a 2-D output",
            )
        outputs = tuple(
            _infer_series(str(n), pd.Series(out[:, i]), "output")
            for i, n in enumerate(output_columns)
        )
    else:
        # The trailing dimensions of an ndarray are the same for every row by construction.
        items = _numpy_type(out.dtype)
        if items is None:
            raise InvalidInput(f"the output's dtype {out.dtype} has no dmv element type")
        outputs = (Field(output_name, FieldType.ARRAY, items=items, shape=out.shape[1:]),)
    return Interface(inputs, outputs)


def _as_frame(sample: Any, what: str) -> Any:
    import pandas as pd

    if isinstance(sample, pd.DataFrame):
        return sample
    if isinstance(sample, Mapping) or (
        isinstance(sample, list) and all(isinstance(r, Mapping) for r in sample)
    ):
        try:
            return pd.DataFrame(sample)
        except ValueError as exc:
            raise InvalidInput(f"{what} does not form a table: {exc}") from None
    raise InvalidInput(
        f"{what} must be a pandas DataFrame, a dict of lists or a list of dicts, "
        f"got {type(sample).__name__}",
        hint="wrap a numpy array in pd.DataFrame(array, columns=[...]) to name its columns",
    )


def _numpy_type(dtype: Any) -> FieldType | None:
    kind, size = dtype.kind, dtype.itemsize
    if kind == "b":
        return FieldType.BOOL
    if kind in "iu":
        # int64 is the default; smaller ints fit int32 (uint32 does not).
        return FieldType.INT32 if size < 4 or (kind == "i" and size == 4) else FieldType.INT64
    if kind == "f":
        return FieldType.FLOAT32 if size <= 4 else FieldType.FLOAT64
    return {"U": FieldType.STRING, "S": FieldType.BINARY, "M": FieldType.DATETIME}.get(kind)


def _infer_series(name: str, series: Any, side: Side) -> Field:
    import numpy as np
    import pandas as pd
    from pandas.api import types as pdt

    dtype = series.dtype
    nullable = bool(series.isna().any())
    where = f"{side} column {name!r}"
    if isinstance(dtype, pd.CategoricalDtype):
        values = [v.item() if isinstance(v, np.generic) else v for v in dtype.categories]
        return _parse_field(name, {"type": "enum", "values": values, "nullable": nullable}, side)
    if pdt.is_bool_dtype(dtype) or pdt.is_integer_dtype(dtype) or pdt.is_float_dtype(dtype):
        ftype = _numpy_type(np.dtype(getattr(dtype, "numpy_dtype", dtype)))
    elif pdt.is_datetime64_any_dtype(dtype):
        ftype = FieldType.DATETIME
    elif isinstance(dtype, pd.StringDtype):
        ftype = FieldType.STRING
    elif dtype == np.dtype(object):
        return _infer_objects(name, series.dropna().tolist(), nullable, side)
    else:
        ftype = None
    if ftype is None:
        raise InvalidInput(
            f"{where} has dtype {dtype}, which a dmv interface cannot express",
            hint="convert the column (e.g. to str or float64) or declare the interface",
        )
    return Field(name, ftype, nullable=nullable)


def _infer_objects(name: str, values: list[Any], nullable: bool, side: Side) -> Field:
    import numpy as np

    where = f"{side} column {name!r}"
    if not values:
        raise InvalidInput(
            f"{where} holds only nulls (or no rows), so its type is unknown",
            hint="use a sample with values in every column, or declare the interface",
        )
    ftype: FieldType | None = None
    if all(isinstance(v, str) for v in values):
        ftype = FieldType.STRING
    elif all(isinstance(v, bytes) for v in values):
        ftype = FieldType.BINARY
    elif all(isinstance(v, bool | np.bool_) for v in values):
        ftype = FieldType.BOOL
    elif all(isinstance(v, datetime) for v in values):
        ftype = FieldType.DATETIME
    elif all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in values):
        ftype = FieldType.INT64
    elif all(isinstance(v, float | int | np.number) and not isinstance(v, bool) for v in values):
        ftype = FieldType.FLOAT64
    elif all(isinstance(v, list | tuple | np.ndarray) for v in values):
        arrays = [np.asarray(v) for v in values]
        ranks = {a.ndim for a in arrays}
        items = _numpy_type(np.result_type(*arrays)) if len(ranks) == 1 else None
        if items is None:
            raise InvalidInput(
                f"{where} holds lists of differing depth or element type",
                hint="declare the array field with Interface.from_dict",
            )
        return Field(
            name, FieldType.ARRAY, nullable=nullable, items=items, shape=(-1,) * ranks.pop()
        )
    if ftype is None:
        kinds = sorted({type(v).__name__ for v in values})
        raise InvalidInput(
            f"{where} mixes values of types {kinds}",
            hint="clean the column to one type, or declare the interface",
        )
    return Field(name, ftype, nullable=nullable)


# ----------------------------------------------------------------------- OpenAPI


def to_openapi(iface: Interface, model_name: str, version_text: str) -> dict[str, Any]:
    from dmv.version import check_name

    check_name(model_name)
    if not isinstance(version_text, str) or not version_text.strip():
        raise InvalidInput("version_text must be non-empty text, e.g. '1.1.0-0123.efgh'")
    schemas = {side.title(): row_schema(iface.fields(side), side.title()) for side in _SIDES}

    def ref(name: str) -> dict[str, str]:
        return {"$ref": f"#/components/schemas/{name}"}

    def body(name: str, description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": ref(name)}}}

    schemas["PredictRequest"] = {
        "type": "object",
        "properties": {"inputs": {"type": "array", "items": ref("Input")}},
        "required": ["inputs"],
        "additionalProperties": False,
    }
    schemas["PredictResponse"] = {
        "type": "object",
        "properties": {
            "model": {"type": "string", "examples": [model_name]},
            "version": {"type": "string", "examples": [version_text]},
            "outputs": {"type": "array", "items": ref("Output")},
        },
        "required": ["model", "version", "outputs"],
    }
    schemas["Problem"] = {
        "type": "object",
        "properties": {
            "row": {"type": ["integer", "null"]},
            "field": {"type": ["string", "null"]},
            "problem": {"type": "string", "enum": list(PROBLEM_KINDS)},
            "message": {"type": "string"},
        },
        "required": ["row", "field", "problem", "message"],
    }
    schemas["Error"] = {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "hint": {"type": "string"},
                    "details": {
                        "type": "object",
                        "properties": {"problems": {"type": "array", "items": ref("Problem")}},
                    },
                },
                "required": ["code", "message"],
            }
        },
        "required": ["error"],
    }
    operation = {
        "operationId": "predict",
        "summary": f"Predict with {model_name}",
        "description": f"Interface fingerprint {iface.fingerprint}. One output row per input row.",
        "parameters": [
            {
                "name": "name",
                "in": "path",
                "required": True,
                "description": "The model name.",
                "schema": {"type": "string", "enum": [model_name]},
            },
            {
                "name": "ref",
                "in": "path",
                "required": True,
                "description": "X.Y.Z-DATA.SPLIT, X.Y.Z, X.Y, X, latest or an alias.",
                "schema": {"type": "string"},
            },
        ],
        "requestBody": {"required": True, **body("PredictRequest", "Rows to predict.")},
        "responses": {
            "200": body("PredictResponse", "The model's outputs, in input order."),
            "422": body("Error", "The request does not match the interface."),
            "default": body("Error", "Any other error, in the same shape."),
        },
    }
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": JSON_SCHEMA_DIALECT,
        "info": {"title": f"{model_name} predict API", "version": version_text},
        "paths": {PREDICT_PATH: {"post": operation}},
        "components": {"schemas": schemas},
    }


# ------------------------------------------------------------------------- proto

_PROTO_SCALARS = {
    FieldType.BOOL: "bool",
    FieldType.INT32: "int32",
    FieldType.INT64: "int64",
    FieldType.FLOAT32: "float",
    FieldType.FLOAT64: "double",
    FieldType.STRING: "string",
    FieldType.BINARY: "bytes",
    # Fully qualified: a field named "google" would otherwise shadow the package.
    FieldType.DATETIME: ".google.protobuf.Timestamp",
}
_NOT_IDENT = re.compile(r"[^A-Za-z0-9_]+")


def _ident(text: str) -> str:
    ident = _NOT_IDENT.sub("_", text).strip("_") or "field"
    return ident if ident[0].isalpha() else "f_" + ident


def _json_name(ident: str) -> str:
    # protoc's default JSON name: drop each '_' and capitalise the next letter.
    parts = ident.split("_")
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])


def _camel(ident: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in ident.split("_") if p)


def _unique(base: str, taken: set[str], json_names: set[str] | None = None) -> str:
    """``base``, or ``base_2``, ``base_3``… when the name (or its JSON name) is taken."""
    name, n = base, 2
    while name in taken or (json_names is not None and _json_name(name) in json_names):
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    if json_names is not None:
        json_names.add(_json_name(name))
    return name


def _enum_value_name(value: str | int) -> str:
    text = f"minus_{-value}" if isinstance(value, int) and value < 0 else str(value)
    return _NOT_IDENT.sub("_", text).strip("_").upper() or "EMPTY"


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else " " for c in text)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _message(title: str, fields: Sequence[Field]) -> list[str]:
    ordered = sorted(fields, key=lambda f: f.name)
    taken: set[str] = set()
    json_names: set[str] = set()
    # protoc rejects two fields whose default JSON names collide (a_b and aB).
    idents = {f.name: _unique(_ident(f.name), taken, json_names) for f in ordered}
    nested: list[str] = []
    body: list[str] = []
    for number, f in enumerate(ordered, start=1):
        ident = idents[f.name]
        # A comment ends at a newline, and protoc wants no control characters.
        notes = [_printable(f.description)] if f.description else []
        label = "optional " if f.nullable or not f.required else ""
        if f.type is FieldType.ENUM:
            ptype = _unique(_camel(ident), taken)
            # Enum values live in the message's scope, so they carry the field's name.
            prefix = ident.upper()
            nested += [f"  enum {ptype} {{", f"    {_unique(prefix + '_UNSPECIFIED', taken)} = 0;"]
            for i, value in enumerate(f.values, start=1):
                value_name = _unique(f"{prefix}_{_enum_value_name(value)}", taken)
                nested.append(f"    {value_name} = {i};  // {value!r}")
            nested.append("  }")
        elif f.type is FieldType.ARRAY:
            assert f.items is not None
            label = "repeated "
            ptype = _PROTO_SCALARS[f.items]
            for depth in range(len(f.shape) - 1, 0, -1):
                wrapper = _unique(f"{_camel(ident)}Dim{depth}", taken)
                nested.append(f"  message {wrapper} {{ repeated {ptype} values = 1; }}")
                ptype = wrapper
            notes.append(f"shape {list(f.shape)}")
            if f.nullable or not f.required:
                notes.append("null or absent is sent as empty")
        elif f.type is FieldType.MAP:
            assert f.items is not None
            label = ""
            ptype = f"map<string, {_PROTO_SCALARS[f.items]}>"
            notes.append(f"keys {list(f.keys)}")
            if f.nullable or not f.required:
                notes.append("null or absent is sent as empty")
        else:
            ptype = _PROTO_SCALARS[f.type]
        option = f" [json_name = {_quote(f.name)}]" if _json_name(ident) != f.name else ""
        note = f"  // {'; '.join(notes)}" if notes else ""
        body.append(f"  {label}{ptype} {ident} = {number}{option};{note}")
    return [f"message {title} {{", *nested, *body, "}"]


def to_proto(iface: Interface, model_name: str) -> str:
    from dmv.version import check_name

    package = "dmv.models." + check_name(model_name).replace("-", "_")
    fields = iface.inputs + iface.outputs
    lines = [
        f"// {model_name}: generated by dmv from interface {iface.fingerprint}",
        'syntax = "proto3";',
        "",
        f"package {package};",
        "",
    ]
    if any(FieldType.DATETIME in (f.type, f.items) for f in fields):
        lines += ['import "google/protobuf/timestamp.proto";', ""]
    lines += [*_message("Input", iface.inputs), "", *_message("Output", iface.outputs)]
    lines += [
        "",
        "message PredictRequest {",
        "  repeated Input inputs = 1;",
        "}",
        "",
        "message PredictResponse {",
        "  string model = 1;",
        "  string version = 2;",
        "  repeated Output outputs = 3;",
        "}",
        "",
        "service Predictor {",
        "  rpc Predict(PredictRequest) returns (PredictResponse);",
        "}",
        "",
    ]
    return "\n".join(lines)
