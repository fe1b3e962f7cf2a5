"""How stored splits take part in verify, fsck, diff and reproduce."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dmv.data import shared
from dmv.data.catalog import get_query, get_split, warehouse
from dmv.data.fingerprint import FINGERPRINT_ALGO, algorithm_of, fingerprint_retrieval, verify_parts
from dmv.data.leakage import check_leakage
from dmv.data.shared import drop_split_tables
from dmv.data.sources import Retrieval, Source
from dmv.errors import DmvError, NotFound

if TYPE_CHECKING:
    from dmv.data.catalog import ProjectStores
    from dmv.data.records import LeakageReport, SplitInfo
    from dmv.data.warehouse import Warehouse
    from dmv.version import Version

__all__ = [
    "TableFindings",
    "check_split_leakage",
    "data_diff",
    "fsck_tables",
    "source_matches",
    "split_checks",
    "verify_split",
]

#: ``<model>__<DATA>__<SPLIT>__<part>``: the tables dmv owns in a warehouse, and the
#: ``__dmv_…`` tables a split builds before it renames them into place.
_TABLE_RE = re.compile(r"[a-z][a-z0-9_]*?__[0-9a-z]+__[0-9a-z]+__[a-z][a-z0-9_]*|__dmv_\w+")
#: what a killed ``dmv predict`` can leave: its output loaded under the temporary name
_PREDICT_TMP_RE = re.compile(r"dmv_tmp_pred_[0-9a-f]{8}(?:_rejects)?")


@dataclass
class TableFindings:
    """What :func:`fsck_tables` found in the warehouse, in the shape of fsck's report.

    ``problems`` hold ``kind``, ``what`` and ``error``; ``orphans`` and ``repaired``
    ``kind``, ``table`` and ``path``; ``digests`` are the artifacts stored splits use.
    """

    problems: list[dict[str, Any]] = field(default_factory=list)
    orphans: list[dict[str, Any]] = field(default_factory=list)
    repaired: list[dict[str, Any]] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)
    digests: set[str] = field(default_factory=set)


def verify_split(
    stores: ProjectStores,
    model: str,
    data: str,
    split: str,
    *,
    full: bool = False,
    against_source: bool = False,
) -> dict[str, Any]:
    """Recompute every part's rows, schema and fingerprint; compare with the record
    (``full``: by md5 even where an engine check proves a part). ``against_source``
    re-runs the retrieval too (see :func:`source_matches`)."""
    info = get_split(stores, model, data, split)
    with warehouse(stores) as wh:
        report = verify_parts(wh, info.split_result(), full=full)
    found = {"model": model, "data": data, "split": split, **report.to_dict()}
    if against_source:
        found["source"] = source_matches(stores, model, data, split)
    return found


def check_split_leakage(stores: ProjectStores, info: SplitInfo) -> LeakageReport:
    """Re-run the leakage checks on a stored split."""
    with warehouse(stores) as wh:
        return check_leakage(wh, info.split_result())


def source_matches(stores: ProjectStores, model: str, data: str, split: str) -> dict[str, Any]:
    """Re-run the retrieval: does the source still give the rows the split was made from?"""
    query = get_query(stores, model, data)
    info = get_split(stores, model, data, split)
    d = query.definition
    stored = info.result.get("content_fingerprint")
    # the rows now, hashed as the split's were (a split recorded before v2 stays v1)
    algo = algorithm_of(stored) if stored else FINGERPRINT_ALGO
    with warehouse(stores, sandbox=True) as wh:
        url = None if d["source"] == "warehouse" else d["source"]
        source = Source.from_url(url, wh, timeout=stores.config["source_timeout"])
        retrieval = Retrieval(source, d["sql"], d.get("params") or {})
        now = fingerprint_retrieval(wh, retrieval, algo=algo)
    return {"same": now == stored, "stored": stored, "source": now}


def split_checks(stores: ProjectStores, version: Version) -> list[tuple[str, str, str]]:
    """``verify`` lines for the split a version was trained on."""
    try:
        get_split(stores, version.name, version.data, version.split)
    except NotFound:
        return [("split", "skip", f"{version.data}.{version.split} is not a stored split")]
    report = verify_split(stores, version.name, version.data, version.split)
    if report["ok"]:
        parts = ", ".join(f"{p['name']} {p['rows']}" for p in report.get("parts", []))
        return [("split", "ok", f"every part matches its fingerprint ({parts})")]
    bad = "; ".join(
        f"{m['part']} {m['what']}: {str(m['expected'])[:24]} → {str(m['actual'])[:24]}"
        for m in report["mismatches"]
    )
    return [("split", "fail", bad)]


def fsck_tables(stores: ProjectStores, *, repair: bool, grace_seconds: float) -> TableFindings:
    """Registered split tables present; unregistered dmv tables listed (and dropped).

    The findings carry the artifact digests stored splits reference (file
    manifests), so that fsck does not call them orphans.
    """
    report = TableFindings()
    rows = stores.registry.list_splits(None)
    registered: set[str] = set()
    digests: set[str] = set()
    for row in rows:
        for part in (row.parts or {}).get("parts", []):
            if part.get("table"):
                registered.add(part["table"])
            if part.get("digest"):
                digests.add(part["digest"])
            for item in part.get("files", []) or []:
                if isinstance(item, dict) and item.get("digest"):
                    digests.add(item["digest"])
    try:
        with warehouse(stores) as wh:
            present = set(_tables(wh))
            for table in sorted(registered - present):
                report.problems.append(
                    {"kind": "split table", "what": table, "error": "registered but missing"}
                )
            _fsck_shared(wh, registered, present, report, repair and grace_seconds <= 0)
            # prediction outputs are named after their version, like split tables: not orphans
            outputs = {
                name
                for r in stores.registry.list_predictions(None)
                if r.output_kind == "table"
                for name in (r.output, r.rejects)
                if name
            }
            for table in sorted(t_ for t_ in present if _PREDICT_TMP_RE.fullmatch(t_)):
                entry = {"kind": "prediction table", "table": table, "path": table}
                report.orphans.append(entry)
                if repair and grace_seconds <= 0:
                    wh.drop_table(table)
                    report.repaired.append(entry)
            unknown = present - registered - outputs
            for table in sorted(t_ for t_ in unknown if _TABLE_RE.fullmatch(t_)):
                entry = {"kind": "split table", "table": table, "path": table}
                report.orphans.append(entry)
                if repair and grace_seconds <= 0:
                    drop_split_tables(wh, [table])
                    report.repaired.append(entry)
    except DmvError as exc:
        report.problems.append({"kind": "warehouse", "what": "warehouse", "error": exc.message})
    report.checked["split tables"] = len(registered)
    report.digests = digests
    return report


def _tables(wh: Warehouse) -> list[str]:
    return wh.list_tables()


def _fsck_shared(
    wh: Warehouse, registered: set[str], present: set[str], report: TableFindings, repair: bool
) -> None:
    """Shared split storage: what a registered split's layout names is no orphan.

    Removes from ``present`` every segment and membership a registered split uses (and
    the layout table); a layout whose split is not registered is an orphan, and so is a
    segment or membership no layout names. A missing or misaligned one is a problem.
    """
    owned = shared.owned_objects(wh)
    splits = {t.rsplit("__", 1)[0] for t in registered}
    stray = sorted({p for p in owned.values() if p and p not in splits})
    for prefix in stray:
        entry = {"kind": "shared split storage", "table": prefix, "path": prefix}
        report.orphans.append(entry)
        if repair:
            shared.release_layouts(wh, {prefix})
            report.repaired.append(entry)
    for table, prefix in owned.items():
        if prefix in splits or table == shared.LAYOUT:
            present.discard(table)
    for table, what in shared.storage_problems(wh):
        report.problems.append({"kind": "split table", "what": table, "error": what})
    summary = shared.storage_summary(wh)
    if summary["splits"]:
        report.checked["shared splits"] = summary["splits"]
        report.checked["shared segments"] = summary["segments"]


def data_diff(stores: ProjectStores, a: Version, b: Version) -> dict[str, Any]:
    """Retrieval definitions, split specs, row counts and fingerprints of two versions."""

    def side(v: Version) -> tuple[Any, Any]:
        try:
            q = get_query(stores, v.name, v.data).definition
        except NotFound:
            q = None
        try:
            s = get_split(stores, v.name, v.data, v.split)
        except NotFound:
            s = None
        return q, s

    (qa, sa_), (qb, sb) = side(a), side(b)
    out: dict[str, Any] = {}
    if qa != qb:
        out["retrieval"] = {"old": qa, "new": qb}
    spec_a, spec_b = (sa_.spec if sa_ else None), (sb.spec if sb else None)
    if spec_a != spec_b:
        out["split_spec"] = {"old": spec_a, "new": spec_b}
    rows_a = {p["name"]: p["rows"] for p in sa_.parts} if sa_ else {}
    rows_b = {p["name"]: p["rows"] for p in sb.parts} if sb else {}
    if rows_a != rows_b:
        out["rows"] = {"old": rows_a, "new": rows_b}
    fa = sa_.result.get("content_fingerprint") if sa_ else None
    fb = sb.result.get("content_fingerprint") if sb else None
    if fa != fb:
        out["fingerprint"] = {"old": fa, "new": fb}
    return out
