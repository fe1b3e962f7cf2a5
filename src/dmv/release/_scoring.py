"""Scoring one Arrow batch with a model: the frame it was trained on, its outputs as columns.

Shared by every way ``dmv predict`` runs: in this process over batches (DuckDB,
PostgreSQL, files) and on Spark's executors (:mod:`dmv.release._spark_predict`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dmv.errors import BadRows, InvalidInput, PredictionError

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from dmv.flavors import Model

__all__ = ["ROW_COLUMN", "VERSION_COLUMN", "bad_rows", "reasons", "scored_batch"]

VERSION_COLUMN = "dmv_version"
ROW_COLUMN = "dmv_row"


def scored_batch(
    model: Model,
    batch: pa.RecordBatch,
    fields: Sequence[str],
    keys: Sequence[str],
    version: str,
    rows: pa.Array | None = None,
) -> pa.RecordBatch:
    """The output of ``batch`` (good rows only): its key columns (or ``rows`` as
    ``dmv_row`` when there is no key), the model's outputs and the version."""
    import pyarrow as pa

    frame = _frame(batch, model, fields)
    columns = _outputs(model, frame, batch.num_rows)
    arrays: list[pa.Array] = [batch.column(k) for k in keys]
    names = list(keys)
    if rows is not None:
        arrays.append(rows)
        names.append(ROW_COLUMN)
    for name, arr in columns:
        if name in names:
            raise InvalidInput(
                f"output {name!r} has the name of a key column",
                hint="rename the key column in the query",
            )
        arrays.append(_arrow(arr))
        names.append(name)
    arrays.append(pa.repeat(pa.scalar(version, pa.string()), batch.num_rows))
    names.append(VERSION_COLUMN)
    return pa.RecordBatch.from_arrays(arrays, names=names)


def _frame(batch: pa.RecordBatch, model: Model, fields: Sequence[str]) -> Any:
    """The good rows as the frame the model was trained on (dtypes from its spec)."""
    import pandas as pd

    present = [n for n in fields if n in batch.schema.names]
    frame = batch.select(present).to_pandas()
    spec = model.spec
    if spec is None:
        return frame
    data: dict[str, Any] = {}
    for col in spec.columns:
        values = frame[col.name] if col.name in frame else pd.Series([None] * len(frame))
        dtype = col.dtype
        try:
            if dtype == "category":
                cats = pd.Index(list(col.categories), dtype=col.categories_dtype or None)
                data[col.name] = pd.Categorical(values, categories=cats, ordered=col.ordered)
            elif dtype.startswith("datetime64"):
                aware = "UTC" in dtype or ", " in dtype
                stamps = pd.to_datetime(values, utc=aware, format="ISO8601")
                if ", " in dtype:
                    stamps = stamps.dt.tz_convert(dtype.split(", ", 1)[1].rstrip("]"))
                data[col.name] = stamps.astype(dtype)  # type: ignore[call-overload]
            elif dtype in ("object", "str"):
                data[col.name] = values.astype(object)
            else:
                data[col.name] = values.astype(dtype)  # type: ignore[call-overload]
        except (TypeError, ValueError):  # e.g. a null in a column trained without any
            data[col.name] = values
    return pd.DataFrame(data, index=frame.index)[list(spec.names)]


def _safe_name(text: str) -> str:
    name = re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_")
    return name if name and name[0].isalpha() else f"c_{name}"


def _outputs(model: Model, frame: Any, n: int) -> list[tuple[str, Any]]:
    """The model's outputs on ``frame`` as named columns (a keyed output: one per key)."""
    import numpy as np

    columns = model.columns(frame)
    names = model.output_names
    if len(columns) == 1 and hasattr(columns[0], "columns"):
        out_frame = columns[0]
        return [(str(c), np.asarray(out_frame[c])) for c in out_frame.columns]
    if len(columns) == 1 and columns[0].ndim == 2 and len(names) > 1:
        arr = columns[0]
        if arr.shape[1] == len(names):
            columns = [arr[:, i] for i in range(arr.shape[1])]
    if len(columns) != len(names):
        raise PredictionError(
            f"the model answered {len(columns)} outputs; its interface names {len(names)}",
            hint="log the model with an interface whose outputs match what its predict returns",
        )
    out: list[tuple[str, Any]] = []
    for name, col in zip(names, columns, strict=True):
        arr = np.asarray(col)
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if len(arr) != n:
            raise PredictionError(
                f"the model returned {len(arr)} rows for {n} inputs",
                hint="the model's predict must return one answer per input row",
            )
        if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
            row = int(np.argwhere(~np.isfinite(arr))[0][0])
            raise PredictionError(
                f"the model answered a non-finite value for output {name!r} of row {row}",
                hint="the inputs are likely outside what the model was trained on",
            )
        if arr.ndim == 2:
            keys = model.keyed.get(name) or tuple(str(i) for i in range(arr.shape[1]))
            out.extend((f"{name}_{_safe_name(str(k))}", arr[:, i]) for i, k in enumerate(keys))
        else:
            out.append((name, arr))
    return out


def _arrow(arr: Any) -> pa.Array:
    import pyarrow as pa

    if arr.dtype.kind == "O":
        return pa.array(arr.tolist())
    return pa.array(arr)


def bad_rows(count: int, problems: list[dict[str, Any]]) -> BadRows:
    """The error of ``--on-bad-rows refuse``: ``count`` bad rows, the first problems."""
    return BadRows(
        f"{count} row(s) of the input break the interface, first {problems[0]['message']}",
        hint="fix those rows, or pass --on-bad-rows reject to write them to "
        "a rejects table (with each row's problem) and score the others",
        problems=problems[:20],
    )


def reasons(problems: list[dict[str, Any]], bad: np.ndarray, offset: int) -> list[str]:
    """Each bad row's first problem, in the order of the rows (the rejects' column)."""
    import numpy as np

    by_row = {int(p["row"]) - offset: str(p["message"]) for p in problems}
    return [by_row.get(int(i), "breaks the interface") for i in np.flatnonzero(bad)]
