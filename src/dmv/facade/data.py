"""Data: retrievals (DATA), stored splits (SPLIT), their checks and their parts."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dmv.data import catalog
from dmv.data.checks import source_matches, verify_split
from dmv.data.leakage import check_leakage
from dmv.errors import InvalidInput
from dmv.facade._base import FacadeBase
from dmv.integrations import lineage
from dmv.version import Version, parse_data_split

if TYPE_CHECKING:
    from dmv.data.catalog import QueryInfo, SplitInfo
    from dmv.data.export import ExportResult
    from dmv.data.leakage import LeakageReport
    from dmv.progress import Progress

__all__ = ["DataMixin"]


class DataMixin(FacadeBase):
    """Data: retrievals (DATA), stored splits (SPLIT), their checks and their parts."""

    def data_query(
        self,
        model: str,
        *,
        sql: str | None = None,
        source: str | None = None,
        params: Mapping[str, Any] | None = None,
        id: str | None = None,
    ) -> QueryInfo:
        """Register a retrieval method; returns it with its DATA id (``.data``).

        ``source`` defaults to the project's warehouse; any SQLAlchemy URL,
        DuckDB file or Parquet/CSV files work. The query is checked now.
        """
        with lineage.track(self.stores, "retrieval", model, f"{model}.retrieval") as lin:
            info = catalog.register_query(
                self.stores, model, sql=sql, source=source, params=params, data_id=id
            )
            if lin:  # off: not even the records it would read
                lineage.hook(lambda: lin.sources(info))
        return info

    def data_files(
        self, model: str, files: str, *, labels: str | None = None, id: str | None = None
    ) -> QueryInfo:
        """Register a set of files (path, folder or glob, local or fsspec URL) as DATA.

        ``labels`` is a CSV with a ``path`` column and key columns, for key splits.
        """
        return catalog.register_files(self.stores, model, files, labels=labels, data_id=id)

    def data_split(
        self,
        model: str,
        data: str,
        *,
        by: str = "row",
        ratios: Mapping[str, float] | None = None,
        salt: str = "",
        id: str | None = None,
        strict: bool = False,
        allow_empty: bool = False,
        min_share: float | None = None,
        progress: Progress | None = None,
    ) -> SplitInfo:
        """Run retrieval ``data`` now and store its rows split into parts (``.split``).

        ``by`` is ``key:COLUMN``, ``group:COLUMN``, ``time:COLUMN`` or ``row``.
        The parts become warehouse tables ``<model>__<DATA>__<SPLIT>__<part>``.
        An empty part, or one below ``min_share`` of its ratio, is refused unless
        ``allow_empty``; ``strict`` also refuses leakage (see docs/data.md).
        """
        with lineage.track(self.stores, "split", model, f"{model}.split") as lin:
            info = catalog.materialise(
                self.stores,
                model,
                data,
                by=by,
                ratios=ratios,
                salt=salt,
                split_id=id,
                strict=strict,
                allow_empty=allow_empty,
                min_share=min_share,
                progress=progress,
            )
            if lin:  # off: not even the records it would read
                lineage.hook(lambda: lin.sources(self.data_show(model, info.data)))
                lineage.hook(lambda: lin.parts(info, output=True))
        return info

    def data_queries(self, model: str) -> list[QueryInfo]:
        return catalog.list_queries(self.stores, model)

    def data_splits(self, model: str, data: str | None = None) -> list[SplitInfo]:
        return catalog.list_splits(self.stores, model, data)

    def data_show(self, model: str, data: str) -> QueryInfo:
        return catalog.get_query(self.stores, model, data)

    def split_info(
        self, model: str | Version, data: str | None = None, split: str | None = None
    ) -> SplitInfo:
        """A stored split, named by model, DATA and SPLIT, or by a version trained on it."""
        if isinstance(model, Version):
            return catalog.get_split(self.stores, model.name, model.data, model.split)
        d, s = parse_data_split(data) if split is None and data else (data, split)
        if d is None or s is None:
            raise InvalidInput(
                "name the split as DATA.SPLIT",
                hint="e.g. 0123.abcd; 'dmv data list MODEL' lists the stored splits",
            )
        return catalog.get_split(self.stores, model, d, s)

    def data_check(self, model: str, ref: str) -> LeakageReport:
        """Re-run the leakage checks on a stored split (``DATA.SPLIT``)."""
        info = self.split_info(model, ref)
        with catalog.warehouse(self.stores) as wh:
            return check_leakage(wh, info.split_result())

    def data_verify(
        self, model: str, ref: str, *, against_source: bool = False, full: bool = False
    ) -> dict[str, Any]:
        """Recompute a stored split's fingerprints (``full``: by md5 even where an engine
        check proves a part); optionally re-run its retrieval too."""
        d, s = parse_data_split(ref)
        report = verify_split(self.stores, model, d, s, full=full)
        if against_source:
            report["source"] = source_matches(self.stores, model, d, s)
        return report

    def data_export(
        self, model: str, ref: str, part: str, out: str | os.PathLike[str]
    ) -> ExportResult:
        """Write one part of a stored split to a Parquet file."""
        return catalog.export_part(self.stores, self.split_info(model, ref), part, os.fspath(out))

    def dataset(self, model: str, ref: str, part: str, *, format: str = "pandas") -> Any:
        """One part of a stored split as a pandas DataFrame (or ``format='arrow'``).

        The part is proven to match its recorded fingerprint first (IntegrityError if not).
        """
        info = self.split_info(model, ref)
        if info.result.get("kind") == "files":
            return catalog.read_files(self.stores, info, part)
        return catalog.read_part(self.stores, info, part, format)

    def data_drop(self, model: str, ref: str) -> None:
        """Delete a stored split that no version uses."""
        d, s = parse_data_split(ref)
        catalog.drop(self.stores, model, d, s)

    def check_data_drop(self, model: str, ref: str) -> None:
        """Refuse as :meth:`data_drop` would, deleting nothing."""
        d, s = parse_data_split(ref)
        catalog.check_droppable(self.stores, model, d, s)
