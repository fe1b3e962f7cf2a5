"""The records of data versioning, apart from the algorithms that compute them.

:class:`QueryInfo` (a registered retrieval, the DATA part), :class:`SplitInfo` (a
stored split, the SPLIT part, as the registry keeps it) and :class:`SplitResult`
(what a split computed), and what they are made of: :class:`SplitSpec` (how to
split), :class:`PartInfo` and :class:`ColumnProfile` (a stored part, its fingerprint
and profile) and :class:`LeakageReport` (the leakage checks' findings).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

from dmv.data.warehouse import Column
from dmv.errors import InvalidInput, NotFound
from dmv.reprs import split_html

__all__ = [
    "DEFAULT_RATIOS",
    "ColumnProfile",
    "LeakageCheck",
    "LeakageReport",
    "PartInfo",
    "QueryInfo",
    "SplitBy",
    "SplitInfo",
    "SplitResult",
    "SplitSpec",
]

SplitBy = Literal["key", "group", "time", "row"]
DEFAULT_RATIOS: Mapping[str, float] = {"train": 0.8, "valid": 0.1, "test": 0.1}
HASHES = ("md5-v1",)
_PART_RE = re.compile(r"[a-z][a-z0-9_]*")

JSONValue = str | int | float | bool | None


@dataclass(frozen=True)
class SplitSpec:
    """How to split: by what, into which parts with which ratios, with which hash."""

    by: SplitBy
    column: str | None = None
    ratios: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_RATIOS))
    salt: str = ""
    hash: str = "md5-v1"
    cutoffs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.by not in ("key", "group", "time", "row"):
            raise InvalidInput(
                f"cannot split by {self.by!r}",
                hint="use key:COLUMN, group:COLUMN, time:COLUMN or row",
            )
        if self.by == "row":
            if self.column is not None:
                raise InvalidInput(
                    "a row split hashes every column; it takes no column",
                    hint="use --by row without a column, or --by key:COLUMN to hash one column",
                )
        elif not self.column:
            raise InvalidInput(f"a {self.by} split needs a column", hint=f"--by {self.by}:COLUMN")
        if not self.ratios:
            raise InvalidInput(
                "a split needs at least one part",
                hint="pass ratios such as train=0.8 valid=0.1 test=0.1",
            )
        object.__setattr__(self, "ratios", dict(self.ratios))
        for name, ratio in self.ratios.items():
            if not isinstance(name, str) or not _PART_RE.fullmatch(name):
                raise InvalidInput(
                    f"part name {name!r} must match [a-z][a-z0-9_]*",
                    hint="lowercase letters, digits and '_', starting with a letter, e.g. train",
                )
            if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not ratio > 0:
                raise InvalidInput(
                    f"ratio of part {name!r} must be a number above 0, got {ratio!r}",
                    hint="write it as NAME=NUMBER with a number above 0, e.g. train=0.8",
                )
        total = sum(Fraction(repr(float(r))) for r in self.ratios.values())
        if abs(float(total) - 1.0) > 1e-9:
            raise InvalidInput(
                f"ratios add up to {float(total):g}, not 1",
                hint="e.g. train=0.8,valid=0.1,test=0.1",
            )
        if self.hash not in HASHES:
            raise InvalidInput(f"unknown split hash {self.hash!r}", hint="use 'md5-v1'")
        if not isinstance(self.salt, str) or "\x00" in self.salt:
            raise InvalidInput(
                "the salt must be text without NUL characters",
                hint="use a salt of plain text, e.g. 'v2'",
            )
        object.__setattr__(self, "cutoffs", tuple(str(c) for c in self.cutoffs))
        if self.cutoffs and (self.by != "time" or len(self.cutoffs) != len(self.ratios) - 1):
            raise InvalidInput(
                "cutoffs belong to time splits: one fewer than the parts",
                hint="pass cutoffs only with --by time:COLUMN, one fewer than the parts",
            )

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.to_dict().items(), key=str)).__repr__())

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.ratios)

    @property
    def hashes(self) -> str:
        """What the bucket hash reads, said in words (stored with the spec)."""
        if self.by == "row":
            return "whole row: every column's canonical text in column order, joined by U+001F"
        if self.by == "time":
            return "none: parts are cut at time boundaries"
        return f"{self.by} column {self.column!r}: its canonical text"

    def to_dict(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "column": self.column,
            "ratios": dict(self.ratios),
            "salt": self.salt,
            "hash": self.hash,
            "hashes": self.hashes,
            "cutoffs": list(self.cutoffs),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SplitSpec:
        return cls(
            by=data["by"],
            column=data.get("column"),
            ratios=dict(data.get("ratios") or DEFAULT_RATIOS),
            salt=str(data.get("salt", "")),
            hash=str(data.get("hash", "md5-v1")),
            cutoffs=tuple(data.get("cutoffs") or ()),
        )


@dataclass(frozen=True, slots=True)
class ColumnProfile:
    """Nulls, minimum and maximum of one column (min/max only for ordered types).

    A text column's values never leave the warehouse: its min and max are recorded
    as ``md5:<hex>`` digests (equal values, equal digests), with the distinct count
    (an estimate, on DuckDB) and the shortest and longest length instead.
    """

    nulls: int
    min: JSONValue = None
    max: JSONValue = None
    distinct: int | None = None
    min_length: int | None = None
    max_length: int | None = None

    def to_dict(self) -> dict[str, JSONValue]:
        body: dict[str, JSONValue] = {"nulls": self.nulls, "min": self.min, "max": self.max}
        for key in ("distinct", "min_length", "max_length"):
            value = getattr(self, key)
            if value is not None:
                body[key] = value
        return body

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnProfile:
        def number(key: str) -> int | None:
            return None if data.get(key) is None else int(data[key])

        return cls(
            int(data["nulls"]),
            data.get("min"),
            data.get("max"),
            number("distinct"),
            number("min_length"),
            number("max_length"),
        )


@dataclass(frozen=True)
class PartInfo:
    """One stored part: table, row count, schema, fingerprint and profile."""

    name: str
    table: str
    rows: int
    columns: tuple[Column, ...]
    fingerprint: str
    profile: Mapping[str, ColumnProfile] = field(default_factory=dict)
    #: engine checks of the same rows, ``{check key: "rows:sum"}`` (see dmv.data.verified)
    checks: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "table": self.table,
            "rows": self.rows,
            "columns": [c.to_dict() for c in self.columns],
            "fingerprint": self.fingerprint,
            "profile": {k: v.to_dict() for k, v in self.profile.items()},
        }
        if self.checks:
            body["checks"] = dict(self.checks)
        return body

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PartInfo:
        return cls(
            name=str(data["name"]),
            table=str(data["table"]),
            rows=int(data["rows"]),
            columns=tuple(Column.from_dict(c) for c in data["columns"]),
            fingerprint=str(data["fingerprint"]),
            profile={k: ColumnProfile.from_dict(v) for k, v in data.get("profile", {}).items()},
            checks={str(k): str(v) for k, v in (data.get("checks") or {}).items()},
        )


@dataclass(frozen=True)
class LeakageCheck:
    """One check: what was looked at, how many offenders, a few examples."""

    kind: str  # shared_key | identical_rows | time_overlap
    column: str | None
    count: int
    examples: tuple[Mapping[str, Any], ...] = ()
    #: ``value``: the rows were compared; ``construction``: it follows from how the
    #: parts were assigned, and every part was proven to hold the rows assigned to it
    proof: str = "value"

    @property
    def ok(self) -> bool:
        return self.count == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "column": self.column,
            "count": self.count,
            "ok": self.ok,
            "examples": [dict(e) for e in self.examples],
            "proof": self.proof,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LeakageCheck:
        return cls(
            str(data["kind"]),
            data.get("column"),
            int(data["count"]),
            tuple(dict(e) for e in data.get("examples", ())),
            str(data.get("proof", "value")),
        )


@dataclass(frozen=True)
class LeakageReport:
    """All checks run on a split; ``ok`` when none found anything."""

    checks: tuple[LeakageCheck, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [c.to_dict() for c in self.checks]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LeakageReport:
        return cls(tuple(LeakageCheck.from_dict(c) for c in data["checks"]))


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
        from dmv.registry.records import iso  # lazy: sqlalchemy

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
    #: this split was stored already: the call wrote no rows (see ``rebuilt``)
    already_stored: bool = False
    #: stored already, but its parts were missing or damaged and were rebuilt
    rebuilt: bool = False

    @property
    def ref(self) -> str:
        return f"{self.data}.{self.split}"

    def _repr_html_(self) -> str:
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
        """The key or time column's range in a part.

        Text values never leave the warehouse: a text column gets the engine's estimate
        of its distinct values instead (``approximate``), or, on an engine without a
        cheap estimate (PostgreSQL), a ``note`` saying so.
        """
        column = self.spec.get("column")
        profile = (part.get("profile") or {}).get(column) if column else None
        if not profile:
            return None
        low = profile.get("min")
        if isinstance(low, str) and low.startswith("md5:"):
            distinct = profile.get("distinct")
            if distinct is not None:
                return {"column": column, "distinct": distinct, "approximate": True}
            engine = self.result.get("dialect") or "this warehouse"
            return {
                "column": column,
                "distinct": None,
                "note": f"text values; their distinct count is not estimated on {engine}",
            }
        return {"column": column, "min": low, "max": profile.get("max")}

    def table(self, part: str) -> str:
        for p in self.result.get("parts", []):
            if p["name"] == part:
                return str(p.get("table") or "")
        names = ", ".join(p["name"] for p in self.result.get("parts", []))
        raise NotFound(
            f"split {self.ref} of {self.model} has no part {part!r} (parts: {names})",
            hint=f"name one of its parts: {names}",
        )

    def split_result(self) -> SplitResult:
        return SplitResult.from_dict(self.result)

    def to_dict(self) -> dict[str, Any]:
        from dmv.registry.records import iso  # lazy: sqlalchemy

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
            "already_stored": self.already_stored,
            "rebuilt": self.rebuilt,
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
        raise NotFound(
            f"no part {name!r}; parts: {', '.join(p.name for p in self.parts)}",
            hint=f"name one of: {', '.join(p.name for p in self.parts)}",
        )

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
