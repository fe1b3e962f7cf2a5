"""Request validation against an :class:`~dmv.interface.Interface`, precomputed per field.

Every served request goes through here, so each field's check is built once
per interface and reused.
"""

from __future__ import annotations

import base64
import binascii
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from dmv.interface.fields import Field, FieldType

__all__ = ["RowValidator"]


_Check = Callable[[Any], tuple[str, str] | None]  # value -> (problem kind, reason) or None
_INT_RANGES = {FieldType.INT32: 2**31, FieldType.INT64: 2**63}
_FLOAT32_MAX = 3.4028234663852886e38


def _short(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def _scalar_reason(ftype: FieldType) -> Callable[[Any], str | None]:
    """A function returning why a non-null value is not of ``ftype``, or None."""
    if ftype is FieldType.BOOL:
        return lambda v: None if v is True or v is False else f"expected bool, got {_short(v)}"
    if ftype in _INT_RANGES:
        bound = _INT_RANGES[ftype]

        def check_int(v: Any) -> str | None:
            if type(v) is not int and (isinstance(v, bool) or not isinstance(v, numbers.Integral)):
                return f"expected {ftype.value}, got {_short(v)}"
            if not -bound <= int(v) < bound:
                return f"{v} is out of the {ftype.value} range"
            return None

        return check_int
    if ftype in (FieldType.FLOAT32, FieldType.FLOAT64):
        limit = _FLOAT32_MAX if ftype is FieldType.FLOAT32 else math.inf

        def check_float(v: Any) -> str | None:
            if (
                type(v) is not float
                and type(v) is not int
                and (isinstance(v, bool) or not isinstance(v, numbers.Real))
            ):
                return f"expected {ftype.value}, got {_short(v)}"
            try:
                x = float(v)
            except OverflowError:  # an int too big for any float
                return f"{_short(v)} is out of the {ftype.value} range"
            if math.isfinite(x) and abs(x) > limit:
                return f"{_short(v)} is out of the {ftype.value} range"
            return None

        return check_float
    if ftype is FieldType.STRING:
        return lambda v: None if isinstance(v, str) else f"expected string, got {_short(v)}"
    if ftype is FieldType.BINARY:
        return _binary_reason
    if ftype is FieldType.DATETIME:
        return _datetime_reason
    raise AssertionError(ftype)  # enum and array have checkers of their own


def _binary_reason(v: Any) -> str | None:
    if isinstance(v, bytes | bytearray | memoryview):
        return None
    if isinstance(v, str):
        try:
            base64.b64decode(v, validate=True)
            return None
        except (binascii.Error, ValueError):
            return "expected base64 text for binary, got text that is not base64"
    return f"expected binary (base64 text), got {_short(v)}"


def _datetime_reason(v: Any) -> str | None:
    if isinstance(v, datetime):
        return None
    if isinstance(v, str):
        try:
            datetime.fromisoformat(v)
            return None
        except ValueError:
            pass
    return f"expected an ISO 8601 datetime, got {_short(v)}"


def _checker(f: Field) -> _Check:
    if f.type is FieldType.ENUM:
        allowed = frozenset(f.values)
        shown = list(f.values)

        def check_enum(v: Any) -> tuple[str, str] | None:
            try:
                ok = not isinstance(v, bool) and v in allowed
            except TypeError:  # unhashable, e.g. a list
                ok = False
            return None if ok else ("not_in_enum", f"{_short(v)} is not one of {shown}")

        return check_enum
    if f.type is FieldType.ARRAY:
        assert f.items is not None
        return _array_checker(_scalar_reason(f.items), f.shape)
    if f.type is FieldType.MAP:
        assert f.items is not None
        return _map_checker(_scalar_reason(f.items), f.keys)
    reason = _scalar_reason(f.type)

    def check(v: Any) -> tuple[str, str] | None:
        why = reason(v)
        return None if why is None else ("wrong_type", why)

    return check


def _map_checker(reason: Callable[[Any], str | None], keys: tuple[str, ...]) -> _Check:
    wanted = frozenset(keys)
    shown = list(keys)

    def check_map(v: Any) -> tuple[str, str] | None:
        if not isinstance(v, Mapping):
            return "wrong_type", f"expected an object with keys {shown}, got {_short(v)}"
        if v.keys() != wanted:
            missing = [k for k in keys if k not in v]
            extra = sorted(str(k) for k in v if k not in wanted)
            said = "; ".join(
                part
                for part in (
                    f"missing {missing}" if missing else "",
                    f"unknown {extra[:5]}" if extra else "",
                )
                if part
            )
            return "bad_shape", f"the object's keys must be exactly {shown}: {said}"
        for k in keys:
            x = v[k]
            why = "null value" if x is None else reason(x)
            if why is not None:
                return "wrong_type", f"key {k!r}: {why}"
        return None

    return check_map


def _array_checker(reason: Callable[[Any], str | None], shape: tuple[int, ...]) -> _Check:
    rank = len(shape)

    def walk(v: Any, depth: int, path: str) -> tuple[str, str] | None:
        if not isinstance(v, list | tuple) and hasattr(v, "tolist"):
            v = v.tolist()  # a numpy array, from Python callers
        if not isinstance(v, list | tuple):
            kind = "wrong_type" if depth == 0 else "bad_shape"
            return kind, f"expected a list at {path or 'the top'}, shape {list(shape)}"
        size = shape[depth]
        if size != -1 and len(v) != size:
            where = f" at {path}" if path else ""
            return "bad_shape", f"{len(v)} items{where}, shape {list(shape)} wants {size}"
        if depth + 1 == rank:
            for i, x in enumerate(v):
                why = "null element" if x is None else reason(x)
                if why is not None:
                    return "wrong_type", f"element {path}[{i}]: {why}"
            return None
        for i, x in enumerate(v):
            bad = walk(x, depth + 1, f"{path}[{i}]")
            if bad is not None:
                return bad
        return None

    return lambda v: walk(v, 0, "")


class RowValidator:
    """Per-field checkers for one side of an interface, built once."""

    def __init__(self, fields: Sequence[Field]) -> None:
        self.required = tuple(f.name for f in fields if f.required)
        self.nullable = {f.name: f.nullable for f in fields}
        self.checks = {f.name: _checker(f) for f in fields}

    def problems(self, rows: Sequence[Any], limit: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        checks, nullable = self.checks, self.nullable

        def add(i: int, name: str | None, kind: str, message: str) -> None:
            out.append({"row": i, "field": name, "problem": kind, "message": message})

        for i, row in enumerate(rows):
            if len(out) >= limit:
                break
            if not isinstance(row, Mapping):
                add(i, None, "wrong_type", f"row {i} must be an object, got {_short(row)}")
                continue
            for name in self.required:
                if name not in row:
                    add(i, name, "missing", f"row {i}: {name!r} is required")
            for key, value in row.items():
                check = checks.get(key)
                if check is None:
                    add(i, str(key), "unknown_field", f"row {i}: {key!r} is not a field")
                elif value is None:
                    if not nullable[key]:
                        add(i, key, "null", f"row {i}: {key!r} may not be null")
                else:
                    bad = check(value)
                    if bad is not None:
                        kind, why = bad
                        add(i, key, kind, f"row {i}: {key!r}: {why}")
        return out[:limit]
