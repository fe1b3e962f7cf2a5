"""Open Inference Protocol (KServe v2) tensors ⇄ dmv's rows of named fields.

A v2 request sends named tensors, each with a ``shape``, a ``datatype`` and its
``data`` (flat in row-major order, or nested). dmv serves rows of fields, so a
tensor named after an input field becomes that field's column: ``shape[0]`` is
the number of rows and the rest is the shape of one value. One unnamed 2-D
tensor ``[N, F]`` also works when the interface has exactly F scalar inputs
(the common KServe scikit-learn client), its columns taken in interface order.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from dmv.errors import InvalidInput

if TYPE_CHECKING:
    from dmv.interface import Field, Interface

__all__ = ["datatype_of", "rows_from_tensors", "tensor_specs", "tensors_from_rows"]

_DATATYPES = {
    "bool": "BOOL",
    "int32": "INT32",
    "int64": "INT64",
    "float32": "FP32",
    "float64": "FP64",
    "string": "BYTES",
    "binary": "BYTES",
    "datetime": "BYTES",
}
_KNOWN = {
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
}


def datatype_of(f: Field) -> str:
    """The v2 datatype of a field (an array's is its element type's)."""
    kind = f.type.value
    if kind == "enum":
        return "INT64" if f.values and isinstance(f.values[0], int) else "BYTES"
    if kind == "array":
        assert f.items is not None
        return _DATATYPES[f.items.value]
    return _DATATYPES[kind]


def tensor_specs(iface: Interface | None, side: str) -> list[dict[str, Any]]:
    """``[{"name", "datatype", "shape"}]`` for a side of the interface (-1: any size)."""
    if iface is None:
        return []
    fields = iface.inputs if side == "input" else iface.outputs
    return [{"name": f.name, "datatype": datatype_of(f), "shape": [-1, *f.shape]} for f in fields]


def _problem(field: str | None, problem: str, message: str) -> dict[str, Any]:
    return {"row": None, "field": field, "problem": problem, "message": message}


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    if not data or not isinstance(data[0], list):
        return data
    out: list[Any] = []
    for item in data:
        out.extend(_flatten(item))
    return out


def _nest(flat: list[Any], shape: list[int]) -> Any:
    if len(shape) == 1:
        return flat
    step = len(flat) // shape[0] if shape[0] else 0
    return [_nest(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


def _columns(tensor: Any, problems: list[dict[str, Any]]) -> tuple[str, list[Any], int] | None:
    """A tensor as (name, one value per row, number of rows); None after a problem."""
    if not isinstance(tensor, dict):
        problems.append(_problem(None, "wrong_type", "each input tensor must be an object"))
        return None
    name = tensor.get("name")
    shape, datatype, data = tensor.get("shape"), tensor.get("datatype"), tensor.get("data")
    where = str(name) if isinstance(name, str) else None
    if where is None:
        problems.append(_problem(None, "missing", "an input tensor has no 'name'"))
        return None
    if (
        not isinstance(shape, list)
        or not shape
        or any(isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in shape)
    ):
        problems.append(
            _problem(where, "bad_shape", f"tensor {where!r}: 'shape' must list sizes ≥ 0")
        )
        return None
    if datatype not in _KNOWN:
        problems.append(
            _problem(where, "wrong_type", f"tensor {where!r}: unknown datatype {datatype!r}")
        )
        return None
    if not isinstance(data, list):
        problems.append(_problem(where, "wrong_type", f"tensor {where!r}: 'data' must be a list"))
        return None
    flat = _flatten(data)
    size = math.prod(shape)
    if len(flat) != size:
        problems.append(
            _problem(
                where,
                "bad_shape",
                f"tensor {where!r}: shape {shape} holds {size} values, 'data' has {len(flat)}",
            )
        )
        return None
    rows = shape[0]
    if len(shape) == 1:
        return where, flat, rows
    per_row = size // rows if rows else 0
    return (
        where,
        [_nest(flat[i * per_row : (i + 1) * per_row], shape[1:]) for i in range(rows)],
        rows,
    )


def rows_from_tensors(body: Any, iface: Interface | None) -> list[dict[str, Any]]:
    """The rows a v2 ``infer`` request body describes; :class:`InvalidInput` if it can't."""
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInput(
            "a v2 infer request needs 'inputs', a non-empty list of tensors",
            hint='e.g. {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", '
            '"data": [1.0]}]}',
            problems=[_problem("inputs", "missing", "'inputs' must be a non-empty list")],
        )
    problems: list[dict[str, Any]] = []
    columns = [c for c in (_columns(t, problems) for t in inputs) if c is not None]
    if problems:
        raise InvalidInput(_summary(problems), problems=problems)
    names = {f.name for f in iface.inputs} if iface else None
    if (
        iface is not None
        and len(columns) == 1
        and names is not None
        and columns[0][0] not in names
        and all(f.type.value != "array" for f in iface.inputs)
    ):
        # One [N, F] tensor for F scalar fields, in interface order.
        name, values, n = columns[0]
        width = len(iface.inputs)
        if not all(isinstance(v, list) and len(v) == width for v in values):
            raise InvalidInput(
                f"tensor {name!r} is not an input field; as one tensor for all inputs its "
                f"shape must be [N, {width}]",
                problems=[_problem(name, "bad_shape", f"expected shape [N, {width}]")],
            )
        return [dict(zip((f.name for f in iface.inputs), row, strict=True)) for row in values]
    counts = {n for _, _, n in columns}
    if len(counts) > 1:
        problems = [
            _problem(name, "bad_shape", f"tensor {name!r} has {n} rows; all need the same")
            for name, _, n in columns
        ]
        raise InvalidInput("the input tensors disagree on the number of rows", problems=problems)
    n = counts.pop()
    rows: list[dict[str, Any]] = [{} for _ in range(n)]
    for name, values, _ in columns:
        for row, value in zip(rows, values, strict=True):
            row[name] = value
    return rows


def _summary(problems: list[dict[str, Any]]) -> str:
    return "; ".join(str(p["message"]) for p in problems[:5])


def _infer_datatype(values: list[Any]) -> str:
    flat = _flatten(values)
    sample = next((v for v in flat if v is not None), None)
    if isinstance(sample, bool):
        return "BOOL"
    if isinstance(sample, int):
        return "INT64"
    if isinstance(sample, float):
        return "FP64"
    return "BYTES"


def tensors_from_rows(rows: list[dict[str, Any]], iface: Interface | None) -> list[dict[str, Any]]:
    """Output rows as one v2 tensor per output field."""
    names = list(rows[0]) if rows else []
    declared = {f.name: f for f in iface.outputs} if iface else {}
    tensors = []
    for name in names:
        values = [r.get(name) for r in rows]
        inner: list[int] = []
        probe = values[0] if values else None
        while isinstance(probe, list):
            inner.append(len(probe))
            probe = probe[0] if probe else None
        f = declared.get(name)
        tensors.append(
            {
                "name": name,
                "datatype": datatype_of(f) if f is not None else _infer_datatype(values),
                "shape": [len(values), *inner],
                "data": _flatten(values) if inner else values,
            }
        )
    return tensors
