"""Open Inference Protocol (KServe v2) tensors ⇄ dmv's rows of named fields.

A v2 request sends named tensors, each with a ``shape``, a ``datatype`` and its
``data`` (flat in row-major order, or nested). dmv serves rows of fields, so a
tensor named after an input field becomes that field's column: ``shape[0]`` is
the number of rows and the rest is the shape of one value (a scalar field
takes ``[N]`` or ``[N, 1]``). One unnamed 2-D tensor ``[N, F]`` also works when
the interface has exactly F scalar inputs (the common KServe scikit-learn
client), its columns taken in interface order.

The binary tensor data extension is supported both ways: with the header
``Inference-Header-Content-Length: L`` the body is L bytes of JSON followed by
the raw tensors, each input saying its byte count in
``parameters.binary_data_size`` (little-endian values; ``BYTES`` elements each
prefixed by a 4-byte little-endian length). Outputs come back binary when the
request asks (``parameters.binary_data_output``, or ``binary_data`` on a
requested output), as tritonclient does by default.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dmv.errors import InvalidInput

if TYPE_CHECKING:
    from dmv.interface import Field, Interface

__all__ = [
    "HEADER_LENGTH",
    "datatype_of",
    "encode_response",
    "requested_outputs",
    "rows_from_tensors",
    "tensor_specs",
    "tensors_from_rows",
]

#: The binary extension's header: how many leading body bytes are JSON.
HEADER_LENGTH = "Inference-Header-Content-Length"

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


#: Little-endian numpy dtypes of the fixed-size datatypes (binary extension).
_NUMPY = {
    "BOOL": "?",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}


def datatype_of(f: Field) -> str:
    """The v2 datatype of a field (an array's is its element type's)."""
    kind = f.type.value
    if kind == "enum":
        return "INT64" if f.values and isinstance(f.values[0], int) else "BYTES"
    if kind in ("array", "map"):
        assert f.items is not None
        return _DATATYPES.get(f.items.value, "BYTES")
    return _DATATYPES.get(kind, "BYTES")


def tensor_specs(iface: Interface | None, side: str) -> list[dict[str, Any]]:
    """``[{"name", "datatype", "shape"}]`` for a side of the interface (-1: any size).

    A map field (class probabilities) is an ``[N, K]`` tensor; its
    ``parameters.keys`` lists the K keys in column order.
    """
    if iface is None:
        return []
    fields = iface.inputs if side == "input" else iface.outputs
    specs = []
    for f in fields:
        spec: dict[str, Any] = {"name": f.name, "datatype": datatype_of(f)}
        if f.type.value == "map":
            spec["shape"] = [-1, len(f.keys)]
            spec["parameters"] = {"keys": list(f.keys)}
        else:
            spec["shape"] = [-1, *f.shape]
        specs.append(spec)
    return specs


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


def _decode(
    where: str, datatype: str, size: int, raw: bytes, binary_field: bool
) -> list[Any] | str:
    """A binary tensor's flat values; a message saying what is wrong otherwise."""
    if datatype != "BYTES":
        import numpy as np

        dtype = np.dtype(_NUMPY[datatype])
        if len(raw) != size * dtype.itemsize:
            return (
                f"tensor {where!r}: {size} {datatype} values take {size * dtype.itemsize} "
                f"bytes, binary_data_size says {len(raw)}"
            )
        values: list[Any] = np.frombuffer(raw, dtype=dtype).tolist()
        return values
    out: list[Any] = []
    at = 0
    while at < len(raw):
        if at + 4 > len(raw):
            return f"tensor {where!r}: a BYTES element's 4-byte length is cut off"
        n = int.from_bytes(raw[at : at + 4], "little")
        item = raw[at + 4 : at + 4 + n]
        if len(item) != n:
            return f"tensor {where!r}: a BYTES element is shorter than its length"
        at += 4 + n
        if binary_field:
            import base64

            out.append(base64.b64encode(item).decode("ascii"))
        else:
            try:
                out.append(item.decode("utf-8"))
            except UnicodeDecodeError:
                return f"tensor {where!r}: a BYTES element is not UTF-8 text"
    if len(out) != size:
        return f"tensor {where!r}: shape holds {size} values, the binary data has {len(out)}"
    return out


def _binary_size(tensor: dict[str, Any]) -> int | str | None:
    params = tensor.get("parameters")
    if not isinstance(params, dict) or "binary_data_size" not in params:
        return None
    size = params["binary_data_size"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        return "'parameters.binary_data_size' must be a byte count ≥ 0"
    return size


def _columns(
    tensor: Any,
    problems: list[dict[str, Any]],
    binary: _Binary,
    binary_fields: frozenset[str] = frozenset(),
) -> tuple[str, list[Any], int, list[int]] | None:
    """A tensor as (name, one value per row, rows, shape); None after a problem."""
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
    if not isinstance(datatype, str) or datatype not in _KNOWN:
        problems.append(
            _problem(where, "wrong_type", f"tensor {where!r}: unknown datatype {datatype!r}")
        )
        return None
    size = math.prod(shape)
    nbytes = _binary_size(tensor)
    if isinstance(nbytes, str):
        problems.append(_problem(where, "wrong_type", f"tensor {where!r}: {nbytes}"))
        return None
    if nbytes is not None:
        if binary.data is None:
            problems.append(
                _problem(
                    where,
                    "bad_shape",
                    f"tensor {where!r} has binary data but the request has no "
                    f"{HEADER_LENGTH} header",
                )
            )
            return None
        raw = binary.take(nbytes)
        if raw is None:
            problems.append(
                _problem(where, "bad_shape", f"tensor {where!r}: the binary data is too short")
            )
            return None
        decoded = _decode(where, datatype, size, raw, where in binary_fields)
        if isinstance(decoded, str):
            problems.append(_problem(where, "bad_shape", decoded))
            return None
        data = decoded
    if not isinstance(data, list):
        problems.append(_problem(where, "wrong_type", f"tensor {where!r}: 'data' must be a list"))
        return None
    flat = _flatten(data)
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
        return where, flat, rows, shape
    per_row = size // rows if rows else 0
    return (
        where,
        [_nest(flat[i * per_row : (i + 1) * per_row], shape[1:]) for i in range(rows)],
        rows,
        shape,
    )


class _Binary:
    """The binary part of a request body, read in the order the tensors name it."""

    def __init__(self, data: bytes | None) -> None:
        self.data = data
        self.at = 0

    def take(self, n: int) -> bytes | None:
        assert self.data is not None
        if self.at + n > len(self.data):
            return None
        chunk = self.data[self.at : self.at + n]
        self.at += n
        return chunk


def rows_from_tensors(
    body: Any, iface: Interface | None, binary: bytes | None = None
) -> list[dict[str, Any]]:
    """The rows a v2 ``infer`` request body describes; :class:`InvalidInput` if it can't.

    ``binary`` is what follows the JSON header when the request uses the
    binary tensor extension.
    """
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInput(
            "a v2 infer request needs 'inputs', a non-empty list of tensors",
            hint='e.g. {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", '
            '"data": [1.0]}]}',
            problems=[_problem("inputs", "missing", "'inputs' must be a non-empty list")],
        )
    problems: list[dict[str, Any]] = []
    fields = {f.name: f for f in iface.inputs} if iface else {}
    binary_fields = frozenset(n for n, f in fields.items() if f.type.value == "binary")
    reader = _Binary(binary)
    columns = [
        c for c in (_columns(t, problems, reader, binary_fields) for t in inputs) if c is not None
    ]
    if problems:
        raise InvalidInput(
            _summary(problems),
            problems=problems,
            hint="send the fields the interface names: GET the model's metadata lists them",
        )
    if reader.data is not None and reader.at != len(reader.data):
        extra = len(reader.data) - reader.at
        raise InvalidInput(
            f"{extra} bytes of binary data follow the tensors that were described",
            hint="each binary input needs parameters.binary_data_size",
        )
    if (
        iface is not None
        and len(columns) == 1
        and columns[0][0] not in fields
        and all(f.type.value not in ("array", "map") for f in iface.inputs)
    ):
        # One [N, F] tensor for F scalar fields, in interface order.
        name, values, n, shape = columns[0]
        width = len(iface.inputs)
        if width == 1 and len(shape) == 1:
            values = [[v] for v in values]
        if not all(isinstance(v, list) and len(v) == width for v in values):
            raise InvalidInput(
                f"tensor {name!r} is not an input field; as one tensor for all inputs its "
                f"shape must be [N, {width}]",
                problems=[_problem(name, "bad_shape", f"expected shape [N, {width}]")],
                hint="send one tensor per input field, or one [N, width] tensor in field order",
            )
        return [dict(zip((f.name for f in iface.inputs), row, strict=True)) for row in values]
    counts = {n for _, _, n, _ in columns}
    if len(counts) > 1:
        problems = [
            _problem(name, "bad_shape", f"tensor {name!r} has {n} rows; all need the same")
            for name, _, n, _ in columns
        ]
        raise InvalidInput(
            "the input tensors disagree on the number of rows",
            problems=problems,
            hint="give every input tensor the same number of rows",
        )
    n = counts.pop()
    rows: list[dict[str, Any]] = [{} for _ in range(n)]
    for name, values, _, shape in columns:
        f = fields.get(name)
        if f is not None and f.type.value == "map" and shape[1:] == [len(f.keys)]:
            values = [dict(zip(f.keys, v, strict=True)) for v in values]  # [N, K]: key order
        elif f is not None and f.type.value != "array" and shape[1:] == [1]:
            values = [v[0] for v in values]  # [N, 1] for a scalar field
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


def requested_outputs(body: Any, available: Sequence[str]) -> tuple[list[str], set[str]]:
    """The outputs a v2 request asks for, in its order, and which of them go binary.

    No ``outputs`` means every output; the request-wide
    ``parameters.binary_data_output`` makes every output binary.
    """
    params = body.get("parameters") if isinstance(body, dict) else None
    every_binary = isinstance(params, dict) and params.get("binary_data_output") is True
    asked = body.get("outputs") if isinstance(body, dict) else None
    if asked is None:
        names = list(available)
        return names, set(names) if every_binary else set()
    if not isinstance(asked, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in asked
    ):
        raise InvalidInput(
            "'outputs' must be a list of objects with a 'name'",
            hint='e.g. "outputs": [{"name": "' + (available[0] if available else "y") + '"}]',
            problems=[_problem("outputs", "wrong_type", "each requested output needs a name")],
        )
    unknown = [o["name"] for o in asked if o["name"] not in available]
    if unknown:
        raise InvalidInput(
            f"this model has no output {', '.join(map(repr, unknown))}",
            hint=f"its outputs are {', '.join(available)}",
            problems=[_problem(n, "unknown_field", f"no output named {n!r}") for n in unknown],
        )
    names = list(dict.fromkeys(o["name"] for o in asked))
    binary = set(names) if every_binary else set()
    for o in asked:
        p = o.get("parameters")
        if isinstance(p, dict) and "binary_data" in p:
            (binary.add if p["binary_data"] is True else binary.discard)(o["name"])
    return names, binary


def tensors_from_rows(
    rows: list[dict[str, Any]],
    iface: Interface | None,
    names: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Output rows as one v2 tensor per output field (``names``: only these, in order).

    A value that is an object (class probabilities keyed by class) becomes an
    ``[N, K]`` tensor whose ``parameters.keys`` says the order of the K columns.
    """
    if names is None:
        names = list(rows[0]) if rows else []
    declared = {f.name: f for f in iface.outputs} if iface else {}
    tensors = []
    for name in names:
        values = [r.get(name) for r in rows]
        tensor: dict[str, Any] = {"name": name}
        f = declared.get(name)
        if values and isinstance(values[0], dict):
            keys = list(f.keys) if f is not None and f.keys else list(values[0])
            values = [[v.get(k) if isinstance(v, dict) else None for k in keys] for v in values]
            tensor["parameters"] = {"keys": keys}
        inner: list[int] = []
        probe = values[0] if values else None
        while isinstance(probe, list):
            inner.append(len(probe))
            probe = probe[0] if probe else None
        datatype = (
            datatype_of(f)
            if f is not None and ("parameters" not in tensor or f.type.value == "map")
            else _infer_datatype(values)
        )
        tensor.update(
            datatype=datatype,
            shape=[len(values), *inner],
            data=_flatten(values) if inner else values,
        )
        tensors.append(tensor)
    return tensors


def _encode(tensor: dict[str, Any]) -> bytes:
    datatype, flat = tensor["datatype"], tensor["data"]
    if datatype == "BYTES":
        parts = []
        for v in flat:
            raw = v if isinstance(v, bytes) else ("" if v is None else str(v)).encode("utf-8")
            parts.append(len(raw).to_bytes(4, "little") + raw)
        return b"".join(parts)
    import numpy as np

    if datatype.startswith("FP"):
        flat = [math.nan if v is None else v for v in flat]
    elif any(v is None for v in flat):
        raise InvalidInput(
            f"output {tensor['name']!r} has missing values, which {datatype} cannot hold",
            hint=f'ask for it as JSON: "outputs": [{{"name": "{tensor["name"]}", '
            '"parameters": {"binary_data": false}}]',
        )
    try:
        return np.asarray(flat, dtype=np.dtype(_NUMPY[datatype])).tobytes()
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInput(
            f"output {tensor['name']!r} does not fit {datatype}: {exc}",
            hint="ask for it as JSON (parameters.binary_data: false)",
        ) from None


def encode_response(content: dict[str, Any], binary: set[str]) -> tuple[bytes, int | None]:
    """The response body, and the JSON header's length when some outputs are binary."""
    import json

    tail = []
    if binary:
        for tensor in content["outputs"]:
            if tensor["name"] in binary:
                raw = _encode(tensor)
                del tensor["data"]
                tensor["parameters"] = {
                    **tensor.get("parameters", {}),
                    "binary_data_size": len(raw),
                }
                tail.append(raw)
    head = json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if not tail:
        return head, None
    return head + b"".join(tail), len(head)
