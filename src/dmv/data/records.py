"""The records of data versioning, apart from the algorithms that compute them.

:class:`QueryInfo` (a registered retrieval, the DATA part), :class:`SplitInfo` (a
stored split, the SPLIT part, as the registry keeps it) and :class:`SplitResult`
(what a split computed: its spec, tables, fingerprints and profiles).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dmv.errors import NotFound

if TYPE_CHECKING:
    from dmv.data.fingerprint import PartInfo
    from dmv.data.leakage import LeakageReport
    from dmv.data.split import SplitSpec
    from dmv.data.warehouse import Column

__all__ = ["QueryInfo", "SplitInfo", "SplitResult"]


@dataclass(frozen=True)
class QueryInfo:
    """A registered retrieval method: the DATA part of a version."""

    model: str
    data: str
    kind: str
    definition: dict[str, Any]
    columns: list[dict[str, str]]
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        from dmv.registry.records import iso

        return {
            "model": self.model,
            "data": self.data,
            "kind": self.kind,
            "definition": self.definition,
            "columns": self.columns,
            "created_at": iso(self.created_at),
        }


@dataclass(frozen=True)
class SplitInfo:
    """A stored split: the SPLIT part of a version, its tables and their fingerprints."""

    model: str
    data: str
    split: str
    spec: dict[str, Any]
    result: dict[str, Any]
    leakage: dict[str, Any] | None
    created_at: float

    @property
    def ref(self) -> str:
        return f"{self.data}.{self.split}"

    def _repr_html_(self) -> str:
        from dmv.reprs import split_html

        return split_html(self)

    @property
    def parts(self) -> list[dict[str, Any]]:
        """``[{name, table, rows, fingerprint}]`` for each part (files: manifest digests)."""
        keys = ("name", "table", "rows", "fingerprint", "digest", "files")
        parts = self.result.get("parts", [])
        total = sum(int(p.get("rows") or 0) for p in parts)
        out = []
        for p in parts:
            entry = {k: p[k] for k in keys if p.get(k) is not None}
            entry["share"] = round(int(p.get("rows") or 0) / total, 6) if total else 0.0
            span = self._range(p)
            if span is not None:
                entry["range"] = span
            out.append(entry)
        return out

    @property
    def warnings(self) -> list[str]:
        """What the split stored although it was short (``allow_empty``)."""
        return [str(w) for w in self.result.get("warnings") or []]

    def _range(self, part: Mapping[str, Any]) -> dict[str, Any] | None:
        """The key or time column's range in a part (text keys: a distinct count only)."""
        column = self.spec.get("column")
        profile = (part.get("profile") or {}).get(column) if column else None
        if not profile:
            return None
        low = profile.get("min")
        if isinstance(low, str) and low.startswith("md5:"):
            return {"column": column, "distinct": profile.get("distinct")}
        return {"column": column, "min": low, "max": profile.get("max")}

    def table(self, part: str) -> str:
        for p in self.result.get("parts", []):
            if p["name"] == part:
                return str(p.get("table") or "")
        names = ", ".join(p["name"] for p in self.result.get("parts", []))
        raise NotFound(f"split {self.ref} of {self.model} has no part {part!r} (parts: {names})")

    def split_result(self) -> SplitResult:
        return SplitResult.from_dict(self.result)

    def to_dict(self) -> dict[str, Any]:
        from dmv.registry.records import iso

        return {
            "model": self.model,
            "data": self.data,
            "split": self.split,
            "ref": self.ref,
            "spec": self.spec,
            "parts": self.parts,
            "columns": self.result.get("columns", []),
            "content_fingerprint": self.result.get("content_fingerprint"),
            "leakage": self.leakage,
            "warnings": self.warnings,
            "storage": self.result.get("storage") or {"kind": "tables"},
            "created_at": iso(self.created_at),
        }


@dataclass(frozen=True)
class SplitResult:
    """What a stored split is: its spec, tables, fingerprints and profiles."""

    spec: SplitSpec
    table_prefix: str
    parts: tuple[PartInfo, ...]
    content_fingerprint: str
    columns: tuple[Column, ...]
    dialect: str
    assignment_sql: str
    cutoffs: tuple[str, ...] = ()
    leakage: LeakageReport | None = None
    warnings: tuple[str, ...] = ()
    #: how the parts are stored: ``{"kind": "tables"}`` or shared segments and their rows
    storage: Mapping[str, Any] = field(default_factory=lambda: {"kind": "tables"})

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.parts)

    def part(self, name: str) -> PartInfo:
        for p in self.parts:
            if p.name == name:
                return p
        raise NotFound(f"no part {name!r}; parts: {', '.join(p.name for p in self.parts)}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec.to_dict(),
            "table_prefix": self.table_prefix,
            "parts": [p.to_dict() for p in self.parts],
            "content_fingerprint": self.content_fingerprint,
            "columns": [c.to_dict() for c in self.columns],
            "dialect": self.dialect,
            "assignment_sql": self.assignment_sql,
            "cutoffs": list(self.cutoffs),
            "rows": self.rows,
            "leakage": self.leakage.to_dict() if self.leakage else None,
            "warnings": list(self.warnings),
            "storage": dict(self.storage),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SplitResult:
        from dmv.data.fingerprint import PartInfo
        from dmv.data.leakage import LeakageReport
        from dmv.data.split import SplitSpec
        from dmv.data.warehouse import Column

        return cls(
            spec=SplitSpec.from_dict(data["spec"]),
            table_prefix=str(data["table_prefix"]),
            parts=tuple(PartInfo.from_dict(p) for p in data["parts"]),
            content_fingerprint=str(data["content_fingerprint"]),
            columns=tuple(Column.from_dict(c) for c in data["columns"]),
            dialect=str(data["dialect"]),
            assignment_sql=str(data["assignment_sql"]),
            cutoffs=tuple(data.get("cutoffs") or ()),
            leakage=LeakageReport.from_dict(data["leakage"]) if data.get("leakage") else None,
            warnings=tuple(data.get("warnings") or ()),
            storage=dict(data.get("storage") or {"kind": "tables"}),
        )
