"""A project's data, as verify, fsck, diff, explain, reproduce and runs use it.

:class:`ProjectData` is handed down to the code above the data layer: each method
reads the registry's records of retrievals and stored splits or opens the warehouse
for one operation, through :mod:`dmv.data.catalog` and :mod:`dmv.data.checks`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dmv.data import catalog, checks
from dmv.version import parse_data_split

if TYPE_CHECKING:
    from dmv.data.catalog import ProjectStores
    from dmv.data.checks import TableFindings
    from dmv.data.records import QueryInfo, SplitInfo
    from dmv.version import Version

__all__ = ["ProjectData"]


class ProjectData:
    """The data operations of one project, over its registry, artifacts and warehouse."""

    def __init__(self, stores: ProjectStores) -> None:
        self.stores = stores

    def query(self, model: str, data: str) -> QueryInfo:
        """A registered retrieval (DATA)."""
        return catalog.get_query(self.stores, model, data)

    def split(self, model: str, data: str, split: str) -> SplitInfo:
        """A stored split (DATA.SPLIT)."""
        return catalog.get_split(self.stores, model, data, split)

    def splits(self, model: str, data: str | None = None) -> list[SplitInfo]:
        """Every stored split of a model (of one retrieval, given ``data``)."""
        return catalog.list_splits(self.stores, model, data)

    def verify(
        self, model: str, ref: str, *, against_source: bool = False, full: bool = False
    ) -> dict[str, Any]:
        """A stored split's (``DATA.SPLIT``) fingerprints recomputed (see
        :func:`dmv.data.checks.verify_split`)."""
        data, split = parse_data_split(ref)
        return checks.verify_split(
            self.stores, model, data, split, full=full, against_source=against_source
        )

    def source_matches(self, model: str, data: str, split: str) -> dict[str, Any]:
        """Does the source still give the rows the split was made from?"""
        return checks.source_matches(self.stores, model, data, split)

    def split_checks(self, version: Version) -> list[tuple[str, str, str]]:
        """``verify`` lines for the split a version was trained on."""
        return checks.split_checks(self.stores, version)

    def fsck_tables(self, repair: bool, grace_seconds: float) -> TableFindings:
        """The warehouse's split tables checked against the registry."""
        return checks.fsck_tables(self.stores, repair=repair, grace_seconds=grace_seconds)

    def diff(self, a: Version, b: Version) -> dict[str, Any]:
        """What changed in the data between two versions."""
        return checks.data_diff(self.stores, a, b)

    def read_part(
        self,
        model: str,
        ref: str,
        part: str,
        format: str = "pandas",
        batch_size: int | None = None,
    ) -> Any:
        """One part of the stored split ``ref`` (``DATA.SPLIT``), proven intact first
        (``format="batches"``: streamed, proven as it streams)."""
        info = catalog.find_split(self.stores, model, ref)
        if format == "batches":
            return catalog.stream_part(self.stores, info, part, batch_size)
        return catalog.read_dataset(self.stores, info, part, format)
