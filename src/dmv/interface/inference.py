"""Interfaces inferred from pydantic models and from pandas/numpy samples."""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from dmv.errors import InvalidInput
from dmv.interface.fields import ARRAY_ITEM_TYPES, Field, FieldType, Side, _parse_field
from dmv.interface.model import Interface

__all__ = ["from_pydantic", "infer_interface"]

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
