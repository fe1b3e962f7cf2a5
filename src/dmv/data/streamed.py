"""Streaming a stored part batch by batch, proven intact as it streams.

:func:`dmv.data.verified.read_verified` materialises a part; a batch prediction
over millions of rows must not. Here the engine's row hash travels beside each
row (``__dmv_check``), its sum is accumulated batch by batch, and :meth:`finish`
compares it with the check the part must add up to (recorded, or measured now
after the md5 fingerprint proved the part). A reader calls :meth:`finish` before
it commits anything: a changed part fails there, with nothing written.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from dmv.data._sql import quote_ident
from dmv.data.records import PartInfo
from dmv.data.verified import check_value, expected_check, stream_mismatch
from dmv.data.warehouse import CHECK_COLUMN, Warehouse

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["CheckedStream"]


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
