"""JSON rows straight into typed columns, validated on the way: the serving fast path.

A :class:`Decoder` is compiled once per interface (the server caches it by the
interface's fingerprint). :meth:`Decoder.columns` makes one pass over the rows and
answers ``{field: [value per row]}`` in the interface's field order, absent fields
as None. It only *accepts*: any row that is not plainly valid makes it answer
None, and the caller then runs :func:`~dmv.interface.validate_rows`, whose
problems (row, field, kind, message) are the precise error the client gets. So
the fast pass never has to explain anything, and can never disagree with the
full validator about what is valid: every value it accepts, the validator does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from dmv.interface.fields import Field, FieldType
from dmv.interface.validate import _checker

__all__ = ["Decoder", "merge_columns"]

_Ok = Callable[[Any], bool]
_FLOAT32_MAX = 3.4028234663852886e38


def _float_ok(limit: float) -> _Ok:
    def ok(v: Any) -> bool:
        t = type(v)
        # JSON floats are finite (the request parser refuses NaN, Infinity and overflow).
        return (t is float or t is int) and -limit <= v <= limit

    return ok


def _int_ok(bound: int) -> _Ok:
    return lambda v: type(v) is int and -bound <= v < bound


def _ok(f: Field) -> _Ok:
    """A quick yes for a non-null value of field ``f`` (False: let the validator say why)."""
    if f.type is FieldType.FLOAT64:
        return _float_ok(1.7976931348623157e308)
    if f.type is FieldType.FLOAT32:
        return _float_ok(_FLOAT32_MAX)
    if f.type is FieldType.INT64:
        return _int_ok(2**63)
    if f.type is FieldType.INT32:
        return _int_ok(2**31)
    if f.type is FieldType.BOOL:
        return lambda v: v is True or v is False
    if f.type is FieldType.STRING:
        return lambda v: type(v) is str
    if f.type is FieldType.ENUM:
        allowed = frozenset(f.values)
        return lambda v: type(v) in (str, int, float) and v in allowed
    check = _checker(f)  # binary, datetime, arrays and maps: the validator's own check
    return lambda v: check(v) is None


def _all_ok(f: Field) -> Callable[[list[Any]], bool]:
    """A yes for a whole column at C speed (no null, every value plainly valid), or False.

    False only means "look at each value": the per-value checks then decide.
    """
    if f.type in (FieldType.FLOAT64, FieldType.FLOAT32):
        limit = 1.7976931348623157e308 if f.type is FieldType.FLOAT64 else _FLOAT32_MAX

        def floats(values: list[Any]) -> bool:
            # JSON floats are finite: only float32's range needs a look.
            return (
                set(map(type, values)) == {float} and -limit <= min(values) and max(values) <= limit
            )

        return floats
    if f.type in (FieldType.INT64, FieldType.INT32):
        bound = 2**63 if f.type is FieldType.INT64 else 2**31

        def ints(values: list[Any]) -> bool:
            return set(map(type, values)) == {int} and -bound <= min(values) and max(values) < bound

        return ints
    if f.type is FieldType.BOOL:
        return lambda values: set(map(type, values)) == {bool}
    if f.type is FieldType.STRING:
        return lambda values: set(map(type, values)) == {str}
    if f.type is FieldType.ENUM:
        allowed = frozenset(f.values)
        return lambda values: set(map(type, values)) <= {str, int, float} and set(values) <= allowed
    return lambda values: False


class Decoder:
    """One interface's inputs, compiled: rows in, typed columns out (None when not valid)."""

    def __init__(self, fields: Sequence[Field]) -> None:
        self.names = tuple(f.name for f in fields)
        self._required = frozenset(f.name for f in fields if f.required)
        self._known = frozenset(self.names)
        # (name, accepts a whole column, accepts a non-null value, may be null)
        self._plan = tuple((f.name, _all_ok(f), _ok(f), f.nullable) for f in fields)

    def columns(self, rows: Sequence[Any]) -> dict[str, list[Any]] | None:
        """``{field: values}`` for valid ``rows``; None as soon as one row is not plainly valid."""
        if not rows or set(map(type, rows)) != {dict}:
            return None
        table = self._complete(rows)
        if table is not None:  # every row has every field and nothing else
            return self._check(rows, table)
        known, required = self._known, self._required
        for row in rows:
            keys = row.keys()
            if not (keys <= known and required <= keys):
                return None
        return self._check(rows, [[row.get(name) for row in rows] for name in self.names])

    def _complete(self, rows: Sequence[dict[str, Any]]) -> list[list[Any]] | None:
        """The columns when every row holds exactly the fields (at C speed), else None."""
        n = len(self.names)
        if n == 0 or sum(map(len, rows)) != len(rows) * n:
            return None
        try:
            found = list(map(itemgetter(*self.names), rows))
        except KeyError:
            return None
        if n == 1:
            return [found]
        return [list(column) for column in zip(*found, strict=True)]

    def _check(
        self, rows: Sequence[dict[str, Any]], table: list[list[Any]]
    ) -> dict[str, list[Any]] | None:
        out: dict[str, list[Any]] = {}
        for (name, all_ok, ok, nullable), values in zip(self._plan, table, strict=True):
            if all_ok(values):
                out[name] = values
                continue
            for row, v in zip(rows, values, strict=True):
                if v is None:
                    # Absent is null too; an explicit null only where the field allows it.
                    if not nullable and name in row:
                        return None
                elif not ok(v):
                    return None
            out[name] = values
        return out


def merge_columns(parts: Sequence[Mapping[str, list[Any]]]) -> dict[str, list[Any]]:
    """Several requests' columns as one batch, rows in request order."""
    if len(parts) == 1:
        return dict(parts[0])
    return {name: [v for p in parts for v in p[name]] for name in parts[0]}
