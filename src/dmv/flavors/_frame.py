"""The request frame is the training frame: rows become exactly the frame a model saw.

A :class:`FrameSpec` records, per input column in order, the pandas dtype of the
sample the model was logged with (and, for ``category``, its categories in their
order, which is what a tree model's category codes refer to). Serving rebuilds
that frame from JSON rows with :func:`build_frame`; when no sample was recorded,
:func:`spec_from_interface` derives the dtypes from the interface's field types.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from dmv.interface import FieldType, Interface

__all__ = [
    "Column",
    "FrameSpec",
    "build_frame",
    "float_matrix",
    "json_rows",
    "spec_from_frame",
    "spec_from_interface",
]


@dataclass(frozen=True)
class Column:
    """One input column: its name, pandas dtype and, for ``category``, its categories."""

    name: str
    dtype: str
    categories: tuple[Any, ...] = ()
    categories_dtype: str = ""
    ordered: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "dtype": self.dtype}
        if self.dtype == "category":
            out["categories"] = list(self.categories)
            out["categories_dtype"] = self.categories_dtype
            out["ordered"] = self.ordered
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Column:
        return cls(
            name=str(data["name"]),
            dtype=str(data["dtype"]),
            categories=tuple(data.get("categories") or ()),
            categories_dtype=str(data.get("categories_dtype") or ""),
            ordered=bool(data.get("ordered", False)),
        )


@dataclass(frozen=True)
class FrameSpec:
    """The model's input frame: columns in order, with their dtypes."""

    columns: tuple[Column, ...] = field(default_factory=tuple)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def to_list(self) -> list[dict[str, Any]]:
        return [c.to_dict() for c in self.columns]

    @classmethod
    def from_list(cls, data: Sequence[Mapping[str, Any]]) -> FrameSpec:
        return cls(tuple(Column.from_dict(c) for c in data))


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        value = value.item()
    return value


def spec_from_frame(frame: Any) -> FrameSpec | None:
    """The spec of a pandas DataFrame (None for anything else: arrays have no columns)."""
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        return None
    columns = []
    for name in frame.columns:
        dtype = frame[name].dtype
        if isinstance(dtype, pd.CategoricalDtype):
            cats = dtype.categories
            columns.append(
                Column(
                    str(name),
                    "category",
                    tuple(_plain(v) for v in cats.tolist()),
                    str(cats.dtype),
                    bool(dtype.ordered),
                )
            )
        else:
            columns.append(Column(str(name), str(dtype)))
    return FrameSpec(tuple(columns))


def spec_from_interface(iface: Interface) -> FrameSpec:
    """Dtypes for the interface's inputs when no sample frame was recorded."""
    numpy_names = {
        FieldType.INT32: ("int32", "Int32"),
        FieldType.INT64: ("int64", "Int64"),
        FieldType.FLOAT32: ("float32", "float32"),
        FieldType.FLOAT64: ("float64", "float64"),
        FieldType.BOOL: ("bool", "boolean"),
    }
    columns = []
    for f in iface.inputs:
        loose = f.nullable or not f.required
        if f.type in numpy_names:
            strict, nullable = numpy_names[f.type]
            columns.append(Column(f.name, nullable if loose else strict))
        elif f.type is FieldType.ENUM:
            kind = "object" if isinstance(f.values[0], str) else "int64"
            columns.append(Column(f.name, "category", tuple(f.values), kind))
        elif f.type is FieldType.DATETIME:
            columns.append(Column(f.name, "datetime64[ns]"))
        else:  # strings, base64 binary and arrays travel as Python objects
            columns.append(Column(f.name, "object"))
    return FrameSpec(tuple(columns))


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _series(values: list[Any], col: Column) -> Any:
    import numpy as np
    import pandas as pd

    dtype = col.dtype
    if dtype == "category":
        cats = pd.Index(list(col.categories), dtype=col.categories_dtype or None)
        return pd.Categorical(
            [None if _is_null(v) else v for v in values], categories=cats, ordered=col.ordered
        )
    if dtype.startswith("datetime64"):
        stamps = pd.to_datetime(
            pd.Series(values, dtype=object), utc="UTC" in dtype, format="ISO8601"
        )
        if ", " in dtype:  # tz-aware: datetime64[ns, Europe/Paris]
            tz = dtype.split(", ", 1)[1].rstrip("]")
            stamps = stamps.dt.tz_convert(tz)
        return stamps.astype(cast(Any, dtype))
    if dtype in ("object", "str"):
        return pd.Series(values, dtype=object)
    if dtype.startswith("float"):
        return np.asarray([np.nan if v is None else v for v in values], dtype=dtype)
    try:
        np_dtype = np.dtype(dtype)
    except TypeError:  # a pandas extension dtype: Int64, boolean, string…
        return pd.array([pd.NA if _is_null(v) else v for v in values], dtype=cast(Any, dtype))
    return np.asarray(values, dtype=np_dtype)


def build_frame(rows: Sequence[Mapping[str, Any]], spec: FrameSpec) -> Any:
    """The DataFrame the model was trained on, made from JSON rows (absent keys are null)."""
    import pandas as pd

    data = {c.name: _series([r.get(c.name) for r in rows], c) for c in spec.columns}
    frame = pd.DataFrame(data, index=pd.RangeIndex(len(rows)))
    return frame[list(spec.names)] if spec.columns else frame


def float_matrix(
    columns: Mapping[str, list[Any]],
    names: Sequence[str],
    n: int,
    codes: Mapping[str, Mapping[Any, float]] | None = None,
    order: str = "C",
) -> Any:
    """Validated columns as one float64 matrix, nulls as NaN, categories as their codes.

    ``codes`` maps a categorical column's values to their training codes (a value
    not among them is NaN, as in a pandas ``Categorical``). ``order`` is the memory
    layout: "F" is what a single-dtype DataFrame hands a library, "C" a stacked array.
    """
    import numpy as np

    out = np.empty((n, len(names)), dtype=np.float64, order=cast(Any, order))
    nan = math.nan
    for j, name in enumerate(names):
        values = columns[name]
        mapping = codes.get(name) if codes else None
        if mapping is not None:
            out[:, j] = [nan if v is None else mapping.get(v, nan) for v in values]
        else:
            out[:, j] = np.asarray(values, dtype=np.float64)  # None becomes NaN
    return out


def _json_value(value: Any) -> Any:
    if value is None:
        return None
    try:
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return None
    except ImportError:  # pragma: no cover
        pass
    value = _plain(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode("ascii")
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def json_rows(frame: Any, limit: int | None = None) -> list[dict[str, Any]]:
    """A sample frame as the JSON rows a client would send for it."""
    part = frame if limit is None else frame.head(limit)
    names = [str(c) for c in part.columns]
    columns = [part[c].astype(object).tolist() for c in part.columns]
    return (
        [
            {n: _json_value(v) for n, v in zip(names, values, strict=True)}
            for values in zip(*columns, strict=True)
        ]
        if names
        else [{} for _ in range(len(part))]
    )
