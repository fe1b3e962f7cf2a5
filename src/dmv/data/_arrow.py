"""DB-API cursors as Arrow record batch streams (``fetchmany``, never all rows at once)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from dmv.errors import DataError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["cursor_reader", "with_progress"]

BATCH_ROWS = 100_000


def _column(values: Sequence[Any], name: str, hint: pa.DataType | None) -> pa.Array:
    import pyarrow as pa

    try:
        return pa.array(values, type=hint) if hint is not None else pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        raise DataError(
            f"column {name!r} mixes value types ({exc})",
            hint=f"CAST {name} to one type in the query",
        ) from exc


def cursor_reader(
    cursor: Any,
    names: Sequence[str],
    hints: Sequence[pa.DataType | None] | None = None,
    *,
    on_close: Callable[[], None] | None = None,
    batch_rows: int = BATCH_ROWS,
) -> pa.RecordBatchReader:
    """Wrap an executed DB-API cursor as a RecordBatchReader.

    Column types come from ``hints`` where given, else from the first batch; a
    column that is all NULL in the first batch takes its type from the first
    batch that has a value (earlier batches are cast to it).
    """
    import pyarrow as pa

    types: list[pa.DataType | None] = list(hints) if hints else [None] * len(names)

    def fetch() -> Any:
        try:
            return cursor.fetchmany(batch_rows)
        except Exception as exc:  # the driver's own error class: say what failed, keep cause
            if on_close is not None:
                on_close()
            text = str(exc).strip()
            hint = (
                "raise the source_timeout setting (seconds), or make the query cheaper"
                if "statement timeout" in text
                else None
            )
            raise DataError(f"reading rows failed: {text}", hint=hint) from exc

    first = fetch()
    pending = [first] if first else []
    columns = list(zip(*first, strict=True)) if first else [() for _ in names]
    for i, values in enumerate(columns):
        if types[i] is None:
            arr = _column(values, names[i], None)
            types[i] = arr.type if not pa.types.is_null(arr.type) else None
    # Columns still unknown (all NULL so far) become text, which every value can be cast to.
    final = [t if t is not None else pa.string() for t in types]
    schema = pa.schema([pa.field(n, t) for n, t in zip(names, final, strict=True)])

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            rows = pending.pop() if pending else fetch()
            while rows:
                cols = zip(*rows, strict=True)
                arrays = [
                    _column(v if t != pa.string() else _as_text(v), n, t)
                    for v, n, t in zip(cols, names, final, strict=True)
                ]
                yield pa.RecordBatch.from_arrays(arrays, schema=schema)
                rows = fetch()
        finally:
            if on_close is not None:
                on_close()

    return pa.RecordBatchReader.from_batches(schema, batches())


def _as_text(values: Sequence[Any]) -> list[str | None]:
    return [v if v is None or isinstance(v, str) else str(v) for v in values]


def with_progress(
    reader: pa.RecordBatchReader, progress: Callable[[str, int, int | None], None] | None, step: str
) -> pa.RecordBatchReader:
    """Pass batches through, reporting the running row count to ``progress``."""
    import pyarrow as pa

    if progress is None:
        return reader

    def batches() -> Iterator[pa.RecordBatch]:
        done = 0
        for batch in reader:
            done += batch.num_rows
            progress(step, done, None)
            yield batch

    return pa.RecordBatchReader.from_batches(reader.schema, batches())
