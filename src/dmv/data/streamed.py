"""Streaming a stored part in Arrow record batches, proven as it streams.

A verified read (:mod:`dmv.data.verified`) hands over the whole part at once; a part
of tens of millions of rows needs that much memory on the client. A streamed read
asks the engine for the rows *and* each row's md5 hash (of the algorithm the part's
fingerprint names, ``md5sum-v2`` or ``md5sum-v1``) in one statement
(one snapshot: a PostgreSQL server-side cursor, DuckDB's Arrow stream, Spark
Connect's batches), keeps one batch in memory at a time, and adds the hashes up as
they arrive. The fingerprint is complete when the last row is in; the last batch is
handed over only after it matched the recorded one, so training code never sees the
whole of a changed part. A mismatch raises :class:`~dmv.errors.IntegrityError`
inside the training block, so the run fails and nothing is registered. A stream
abandoned before its end is proven in the engine (one aggregate, no rows moved) by
:meth:`StreamedPart.prove`, which a run calls before it registers.

A batch prediction reads its input part through :class:`CheckedStream`, which adds up
the engine's own row hash instead (the part's recorded engine check, cheaper than md5
per row) and is proven by :meth:`CheckedStream.finish` before anything is committed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from dmv.data._sql import quote_ident
from dmv.data.fingerprint import algorithm_of, hashed, make_fingerprint
from dmv.data.records import PartInfo
from dmv.data.verified import (
    _fail,
    _same_columns,
    check_unreserved,
    check_value,
    expected_check,
    prove,
    stream_mismatch,
)
from dmv.data.warehouse import CHECK_COLUMN, Warehouse
from dmv.errors import DataError, IntegrityError, InvalidInput

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["DEFAULT_BATCH_ROWS", "MAX_BATCH_ROWS", "CheckedStream", "StreamedPart"]

#: Rows per batch when ``batch_size`` is not given.
DEFAULT_BATCH_ROWS = 65_536
#: The largest batch a stream hands over (a bound on the client's memory).
MAX_BATCH_ROWS = 10_000_000
_MOD = 1 << 64


def check_batch_size(batch_size: int | None) -> int:
    if batch_size is None:
        return DEFAULT_BATCH_ROWS
    if isinstance(batch_size, bool) or not isinstance(batch_size, int):
        raise InvalidInput(
            f"batch_size must be a whole number, got {batch_size!r}",
            hint="e.g. run.dataset('train', format='batches', batch_size=10_000)",
        )
    if not 1 <= batch_size <= MAX_BATCH_ROWS:
        raise InvalidInput(
            f"batch_size {batch_size} is outside 1…{MAX_BATCH_ROWS}",
            hint="pick a batch that fits in memory, e.g. 10_000 rows",
        )
    return batch_size


def _rebatch(batches: Iterator[pa.RecordBatch], size: int) -> Iterator[pa.RecordBatch]:
    """The same rows in batches of exactly ``size`` rows (the last one shorter)."""
    import pyarrow as pa

    held: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        while batch.num_rows:
            take = min(size - count, batch.num_rows)
            held.append(batch.slice(0, take))
            count += take
            batch = batch.slice(take)
            if count == size:
                yield held[0] if len(held) == 1 else pa.concat_batches(held)
                held, count = [], 0
    if count:
        yield held[0] if len(held) == 1 else pa.concat_batches(held)


class StreamedPart:
    """A stored part as Arrow record batches; iterate it once per epoch.

    Every pass re-reads the part and proves it again, so a part changed between
    epochs fails the pass that read it. ``verified`` is True once a pass (or
    :meth:`prove`) matched the recorded fingerprint.
    """

    def __init__(
        self,
        open_warehouse: Callable[[], AbstractContextManager[Warehouse]],
        part: PartInfo,
        batch_size: int | None = None,
    ) -> None:
        self.part = part
        self.batch_size = check_batch_size(batch_size)
        self.verified = False
        self.rows_read = 0
        self._open = open_warehouse
        self._failure: IntegrityError | None = None
        check_unreserved(part)

    def __repr__(self) -> str:
        state = "verified" if self.verified else "not yet verified"
        return f"<StreamedPart {self.part.name} ({self.part.table}), {state}>"

    @property
    def columns(self) -> list[str]:
        return [c.name for c in self.part.columns]

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa
        import pyarrow.compute as pc

        part = self.part
        with self._open() as wh:
            _same_columns(wh, part)
            algo = algorithm_of(part.fingerprint)
            table = f"{quote_ident(part.table)} AS dmv_t"
            source, h = hashed(wh.sql, part.columns, table, algo)
            cols = ", ".join(f"dmv_hr.{quote_ident(c.name)}" for c in part.columns)
            try:
                reader = wh.reader(f"SELECT {cols}, {h} AS {CHECK_COLUMN} FROM {source}")
            except DataError as exc:
                raise _fail(
                    part, "unreadable", f"its storage cannot be read ({exc.message})"
                ) from exc
            rows = total = 0
            held: pa.RecordBatch | None = None
            try:
                for batch in _rebatch(iter(reader), self.batch_size):
                    hashes = batch.column(CHECK_COLUMN)
                    if not pa.types.is_uint64(hashes.type):  # same bits, summed mod 2^64
                        hashes = pc.cast(hashes, pa.uint64(), safe=False)
                    total = (total + int(pc.sum(hashes).as_py() or 0)) % _MOD
                    rows += batch.num_rows
                    if held is not None:
                        self.rows_read += held.num_rows
                        yield held
                    held = batch.drop_columns([CHECK_COLUMN])
            finally:
                reader.close()
            fingerprint = make_fingerprint(rows, total, algo)
            if fingerprint != part.fingerprint:
                failure = _fail(part, fingerprint, "its rows changed")
                self._failure = failure
                raise failure
        self.verified = True
        if held is not None:
            self.rows_read += held.num_rows
            yield held

    def prove(self) -> None:
        """Raise :class:`~dmv.errors.IntegrityError` unless the part matches its record.

        Free when a pass read the whole part; otherwise one aggregate in the engine.
        """
        if self._failure is not None:
            raise self._failure
        if self.verified:
            return
        with self._open() as wh:
            prove(wh, self.part)
        self.verified = True

    def torch(self) -> Any:
        """A PyTorch ``IterableDataset`` over this stream: each item is one batch as
        ``{column: tensor}`` (text columns as lists). Use it with
        ``DataLoader(ds, batch_size=None)``; one worker, as the stream is one cursor."""
        return torch_dataset(self)


def torch_dataset(stream: StreamedPart) -> Any:
    """See :meth:`StreamedPart.torch`."""
    import torch  # lazy: torch
    from torch.utils.data import IterableDataset

    def as_tensors(batch: pa.RecordBatch) -> dict[str, Any]:
        import pyarrow as pa

        out: dict[str, Any] = {}
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            kind = column.type
            if pa.types.is_integer(kind) or pa.types.is_floating(kind):
                if column.null_count:
                    column = column.cast(pa.float64())
                out[name] = torch.from_numpy(column.to_numpy(zero_copy_only=False, writable=True))
            elif pa.types.is_boolean(kind) and not column.null_count:
                out[name] = torch.from_numpy(column.to_numpy(zero_copy_only=False, writable=True))
            else:
                out[name] = column.to_pylist()
        return out

    class PartDataset(IterableDataset):  # type: ignore[type-arg]
        def __init__(self) -> None:
            super().__init__()
            self.stream = stream

        def __iter__(self) -> Iterator[dict[str, Any]]:
            info = torch.utils.data.get_worker_info()
            if info is not None and info.num_workers > 1:
                raise InvalidInput(
                    "a streamed part is one cursor: it cannot be split across DataLoader workers",
                    hint="use DataLoader(ds, batch_size=None, num_workers=0)",
                )
            for batch in stream:
                yield as_tensors(batch)

    return PartDataset()


class CheckedStream:
    """The record batches of one part, with its engine check accumulated as they pass."""

    def __init__(
        self, warehouse: Warehouse, part: PartInfo, checks: Mapping[str, str] | None = None
    ) -> None:
        self.part = part
        #: (check key, value) to record on the split, when this read measured it
        self.expected, self.record = expected_check(warehouse, part, checks)
        cols = ", ".join(f"dmv_t.{quote_ident(c.name)}" for c in part.columns)
        row_hash = warehouse.engine_row_hash(part.columns, "dmv_t")
        self._reader = warehouse.reader(
            f"SELECT {cols}, {row_hash} AS {CHECK_COLUMN} FROM {quote_ident(part.table)} AS dmv_t"
        )
        self.rows = 0
        self._total = 0

    @property
    def schema(self) -> pa.Schema:
        schema: pa.Schema = self._reader.schema
        return schema.remove(schema.get_field_index(CHECK_COLUMN))

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa
        import pyarrow.compute as pc

        for batch in self._reader:
            hashes = batch.column(CHECK_COLUMN)
            if not pa.types.is_uint64(hashes.type):  # a signed bigint: same bits mod 2^64
                hashes = pc.cast(hashes, pa.uint64(), safe=False)
            self._total = (self._total + int(pc.sum(hashes).as_py() or 0)) % (1 << 64)
            self.rows += batch.num_rows
            yield batch.drop_columns([CHECK_COLUMN])

    def finish(self) -> None:
        """Raise :class:`~dmv.errors.IntegrityError` unless the rows read are the part's."""
        got = check_value(self.rows, self._total)
        if got != self.expected:
            raise stream_mismatch(self.part, got)
