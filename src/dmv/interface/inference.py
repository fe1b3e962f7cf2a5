"""Interfaces inferred from pydantic models and from pandas/numpy samples."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from dmv.errors import InvalidInput
from dmv.interface.fields import Field, FieldType, Side, _parse_field
from dmv.interface.model import Interface

__all__ = ["infer_domain", "infer_interface", "infer_series", "learned_domain", "numpy_type"]

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
    nullable (the servability check then asks the model itself, see
    :meth:`Interface.with_nullable`); every inferred field is required. Arrays
    inside cells get variable dimensions: a sample cannot prove a length is fixed.

    What the rows only happen to hold is recorded as the interface's
    :attr:`~Interface.domain`, not as contract: a pandas ``category`` column is a
    string (or integer) field whose categories are its domain's ``values``; numbers
    get ``min``/``max``; every input notes whether it held ``nulls``.
    """
    import numpy as np
    import pandas as pd

    frame = _as_frame(sample_input, "sample_input")
    inputs = tuple(
        infer_series(str(name), frame.iloc[:, i], "input") for i, name in enumerate(frame.columns)
    )
    out = sample_output
    if isinstance(out, Mapping) or (isinstance(out, list) and out and isinstance(out[0], Mapping)):
        out = _as_frame(out, "sample_output")
    if isinstance(out, pd.DataFrame | pd.Series):
        rows = len(out)
    else:
        out = np.asarray(out)
        if out.ndim == 0:
            raise InvalidInput(
                "sample_output is a single value; expected one per input row",
                hint="pass sample_output as one value per row of sample_input (a list, Series or "
                "array)",
            )
        rows = out.shape[0]
    if rows != len(frame):
        raise InvalidInput(
            f"sample_output has {rows} rows but sample_input has {len(frame)}",
            hint="pass the model's output on exactly these input rows",
        )
    domain = infer_domain(frame)
    outputs: tuple[Field, ...]
    if isinstance(out, pd.DataFrame):
        outputs = tuple(
            infer_series(str(n), out.iloc[:, i], "output") for i, n in enumerate(out.columns)
        )
    elif isinstance(out, pd.Series):
        name = output_name if out.name is None else str(out.name)
        outputs = (infer_series(name, out, "output"),)
    elif out.ndim == 1:
        outputs = (infer_series(output_name, pd.Series(out), "output"),)
    elif output_columns is not None:
        if out.ndim != 2 or out.shape[1] != len(output_columns):
            raise InvalidInput(
                f"output_columns names {len(output_columns)} columns; "
                f"the output has shape {list(out.shape)}",
                hint="give one name per column of a 2-D output",
            )
        outputs = tuple(
            infer_series(str(n), pd.Series(out[:, i]), "output")
            for i, n in enumerate(output_columns)
        )
    else:
        # The trailing dimensions of an ndarray are the same for every row by construction.
        items = numpy_type(out.dtype)
        if items is None:
            raise InvalidInput(
                f"the output's dtype {out.dtype} has no dmv element type",
                hint="return numbers, booleans or text from the model, or declare the output "
                "with interface=",
            )
        outputs = (Field(output_name, FieldType.ARRAY, items=items, shape=out.shape[1:]),)
    return Interface(inputs, outputs, domain)


def infer_domain(sample_input: Any) -> dict[str, dict[str, Any]]:
    """The learned domain of every column of a sample frame (see :func:`learned_domain`)."""
    frame = _as_frame(sample_input, "sample_input")
    return {str(name): learned_domain(frame.iloc[:, i]) for i, name in enumerate(frame.columns)}


def learned_domain(series: Any) -> dict[str, Any]:
    """What one column's rows hold: categories, numeric range, whether any is null."""
    import numpy as np
    import pandas as pd
    from pandas.api import types as pdt

    out: dict[str, Any] = {"nulls": bool(series.isna().any())}
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        out["values"] = sorted(
            (v.item() if isinstance(v, np.generic) else v for v in dtype.categories), key=str
        )
    elif (pdt.is_integer_dtype(dtype) or pdt.is_float_dtype(dtype)) and series.notna().any():
        low, high = series.min(), series.max()
        out["min"] = low.item() if isinstance(low, np.generic) else low
        out["max"] = high.item() if isinstance(high, np.generic) else high
    return out


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
            raise InvalidInput(
                f"{what} does not form a table: {exc}",
                hint="pass a pandas DataFrame, a dict of columns or a 2-D array",
            ) from None
    raise InvalidInput(
        f"{what} must be a pandas DataFrame, a dict of lists or a list of dicts, "
        f"got {type(sample).__name__}",
        hint="wrap a numpy array in pd.DataFrame(array, columns=[...]) to name its columns",
    )


def numpy_type(dtype: Any) -> FieldType | None:
    kind, size = dtype.kind, dtype.itemsize
    if kind == "b":
        return FieldType.BOOL
    if kind in "iu":
        # int64 is the default; smaller ints fit int32 (uint32 does not).
        return FieldType.INT32 if size < 4 or (kind == "i" and size == 4) else FieldType.INT64
    if kind == "f":
        return FieldType.FLOAT32 if size <= 4 else FieldType.FLOAT64
    return {"U": FieldType.STRING, "S": FieldType.BINARY, "M": FieldType.DATETIME}.get(kind)


def infer_series(name: str, series: Any, side: Side) -> Field:
    import numpy as np
    import pandas as pd
    from pandas.api import types as pdt

    dtype = series.dtype
    nullable = bool(series.isna().any())
    where = f"{side} column {name!r}"
    if isinstance(dtype, pd.CategoricalDtype) and side == "output":
        # An output's categories are its class labels: contract.
        values = [v.item() if isinstance(v, np.generic) else v for v in dtype.categories]
        return _parse_field(name, {"type": "enum", "values": values, "nullable": nullable}, side)
    if isinstance(dtype, pd.CategoricalDtype):
        # An input's categories are what the training rows held, a domain, not a contract:
        # the field is typed by what the categories are (declare an enum to fix them).
        cats = dtype.categories
        if not len(cats):
            return Field(name, FieldType.STRING, nullable=nullable)
        if pdt.is_integer_dtype(cats.dtype):
            return Field(name, FieldType.INT64, nullable=nullable)
        if pdt.is_float_dtype(cats.dtype):
            return Field(name, FieldType.FLOAT64, nullable=nullable)
        return _infer_objects(name, [*cats.tolist()], nullable, side)
    if pdt.is_bool_dtype(dtype) or pdt.is_integer_dtype(dtype) or pdt.is_float_dtype(dtype):
        ftype = numpy_type(np.dtype(getattr(dtype, "numpy_dtype", dtype)))
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
        items = numpy_type(np.result_type(*arrays)) if len(ranks) == 1 else None
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
