"""Validating Arrow record batches against an interface's inputs, column by column.

A batch prediction checks millions of rows, so the checks run on whole columns:
an Arrow type proves every value of its column at once (an ``int64`` column holds
only int64 values), and what a type cannot prove — a null where none is allowed,
an enum value outside the set, an int64 outside int32's range, a float32 overflow
— is one vectorised compute per column. Values Arrow types say little about
(arrays, maps, binary as text, datetimes as text) go through the same per-row
checks a served request does (:class:`~dmv.interface.validate.RowValidator`).

A column whose type can never hold the field (text for a number) or a required
field with no column is the input's fault, not a row's: :func:`check_schema`
refuses it whole. Each bad row gets its first problem, in the served shape
(``row``, ``field``, ``problem``, ``message``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dmv.errors import InvalidInput
from dmv.interface.fields import Field, FieldType
from dmv.interface.validate import RowValidator

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = ["BatchValidator", "check_schema"]

_INTS = (FieldType.INT32, FieldType.INT64)
_FLOATS = (FieldType.FLOAT32, FieldType.FLOAT64)
_FLOAT32_MAX = 3.4028234663852886e38


def _fits(f: Field, t: pa.DataType) -> bool | None:
    """Whether Arrow type ``t`` proves the field's type (None: check each value)."""
    found = _fits_any(f, t)
    return None if found is None else bool(found)


def _fits_any(f: Field, t: pa.DataType) -> Any:
    import pyarrow as pa

    if pa.types.is_null(t):
        return True  # all null: the null check decides
    if f.type is FieldType.BOOL:
        return pa.types.is_boolean(t)
    if f.type in _INTS:
        return pa.types.is_integer(t)
    if f.type in _FLOATS:
        return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
    if f.type is FieldType.STRING:
        return pa.types.is_string(t) or pa.types.is_large_string(t)
    if f.type is FieldType.ENUM:
        if isinstance(f.values[0], str):
            return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t)
        return pa.types.is_integer(t)
    if f.type is FieldType.DATETIME:
        if pa.types.is_timestamp(t) or pa.types.is_date(t):
            return True
        return None if pa.types.is_string(t) or pa.types.is_large_string(t) else False
    if f.type is FieldType.BINARY:
        if pa.types.is_binary(t) or pa.types.is_large_binary(t):
            return True
        return None if pa.types.is_string(t) or pa.types.is_large_string(t) else False
    if f.type is FieldType.ARRAY:
        return None if pa.types.is_list(t) or pa.types.is_large_list(t) else False
    return None if pa.types.is_struct(t) or pa.types.is_map(t) else False


def check_schema(fields: Sequence[Field], schema: pa.Schema) -> None:
    """Refuse an input that lacks a required field or holds one in a type it never takes."""
    names = set(schema.names)
    missing = [f.name for f in fields if f.required and f.name not in names]
    if missing:
        raise InvalidInput(
            f"the input has no column for the required input(s) {', '.join(missing)}",
            hint="select every input field of the version's interface "
            "('dmv interface show REF' lists them)",
            missing=missing,
        )
    for f in fields:
        if f.name in names and _fits(f, schema.field(f.name).type) is False:
            got = schema.field(f.name).type
            raise InvalidInput(
                f"column {f.name!r} is {got}; the interface declares it {f.type_text}",
                hint="cast the column in the query (or the file) to the declared type",
                field=f.name,
            )


class BatchValidator:
    """The checks of one interface's input fields, built once, run per batch."""

    def __init__(self, fields: Sequence[Field]) -> None:
        self.fields = tuple(fields)
        self._rows = {f.name: RowValidator([f]) for f in fields}

    def problems(
        self, batch: pa.RecordBatch, offset: int = 0
    ) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """``(bad, problems)``: a bool mask of the batch's bad rows and each one's first
        problem (``row`` counted from ``offset``)."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        n = batch.num_rows
        bad = np.zeros(n, dtype=bool)
        first: dict[int, dict[str, Any]] = {}

        def flag(mask: Any, f: Field, kind: str, why: str) -> None:
            arr = np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)
            for i in np.flatnonzero(arr & ~bad):
                first.setdefault(int(i), _problem(offset + int(i), f, kind, why))
            bad[arr] = True

        names = set(batch.schema.names)
        for f in self.fields:
            if f.name not in names:
                continue  # an optional field left out (check_schema refused required ones)
            col = batch.column(f.name)
            if col.null_count and not f.nullable:
                flag(pc.is_null(col), f, "null", f"{f.name!r} may not be null")
            fits = _fits(f, col.type)
            if pa.types.is_null(col.type):
                continue
            if fits:
                self._domain(col, f, flag)
                continue
            rows = self._rows[f.name]
            values = col.to_pylist()
            for i, value in enumerate(values):
                if value is None or bad[i]:
                    continue
                found = rows.problems([{f.name: _plain(value)}], 1)
                if found:
                    bad[i] = True
                    message = found[0]["message"].removeprefix("row 0: ")
                    first.setdefault(i, _problem(offset + i, f, found[0]["problem"], message))
        return bad, [first[i] for i in sorted(first)]

    def _domain(self, col: Any, f: Field, flag: Any) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        if f.type is FieldType.ENUM:
            values = pa.array(list(f.values))
            if pa.types.is_dictionary(col.type):
                col = col.cast(col.type.value_type)
            outside = pc.invert(pc.is_in(col, value_set=values.cast(col.type)))
            flag(outside, f, "not_in_enum", f"value is not one of {list(f.values)}")
        elif (
            f.type is FieldType.INT32 and (col.type.bit_width > 32 or col.type == pa.uint32())
        ) or (f.type is FieldType.INT64 and col.type == pa.uint64()):
            low, high = (-(2**31), 2**31 - 1) if f.type is FieldType.INT32 else (0, 2**63 - 1)
            big = pc.or_(pc.less(col, low), pc.greater(col, high)) if low else pc.greater(col, high)
            flag(big, f, "wrong_type", f"value is out of the {f.type.value} range")
        elif f.type is FieldType.FLOAT32 and pa.types.is_float64(col.type):
            finite = pc.is_finite(col)
            over = pc.and_(finite, pc.greater(pc.abs(col), _FLOAT32_MAX))
            flag(over, f, "wrong_type", "value is out of the float32 range")


def _wider_than_int32(t: Any) -> bool:
    import pyarrow as pa

    return bool(t.bit_width > 32 or t == pa.uint32())


def _plain(value: Any) -> Any:
    if isinstance(value, list) and value and isinstance(value[0], tuple):
        return dict(value)  # an Arrow map as a list of (key, value) pairs
    return value


def _problem(row: int, f: Field, kind: str, why: str) -> dict[str, Any]:
    return {"row": row, "field": f.name, "problem": kind, "message": f"row {row}: {why}"}
