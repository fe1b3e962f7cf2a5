"""One version explained part by part: what ``dmv show`` prints and the web UI shows.

:func:`metric_summary` is pure (runs in, medians and spreads out) and is what the
charts and the versions table use too. :func:`explain` gathers the rest from the
project's read operations: the model, the version, its runs, its retrieval and
its stored split. Retrieval sources are shown through :func:`redact_url`, so a
password that reached a definition is never printed.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dmv._urls import database_url as redact_url
from dmv.errors import DmvError
from dmv.release.serving_run import chosen_run

if TYPE_CHECKING:
    from dmv.data.service import ProjectData
    from dmv.registry import RegistryStore, RunInfo, VersionInfo

__all__ = ["explain", "fmt", "metric_summary", "primary_value", "split_rule"]

SPLIT_ORDER = ("train", "valid", "validation", "val", "test", "all")
PREFERRED_SPLITS = ("test", "valid", "validation", "val", "all", "train")


def fmt(value: float) -> str:
    """A metric value, short: 0.9731, 12.5, 1.2e-05."""
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        return f"{value:.3g}"
    return f"{value:.4g}"


def metric_summary(runs: Sequence[RunInfo]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{split: {metric: {median, min, max, n, runs: {run id: value}}}}`` over finished runs."""
    values: dict[str, dict[str, dict[str, float]]] = {}
    for run in runs:
        if run.status != "finished":
            continue
        for split, metrics in run.metrics.items():
            for name, value in metrics.items():
                values.setdefault(split, {}).setdefault(name, {})[run.id] = float(value)
    ordered = [s for s in SPLIT_ORDER if s in values] + sorted(
        s for s in values if s not in SPLIT_ORDER
    )
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for split in ordered:
        out[split] = {}
        for name in sorted(values[split]):
            per_run = values[split][name]
            nums = list(per_run.values())
            out[split][name] = {
                "median": statistics.median(nums),
                "min": min(nums),
                "max": max(nums),
                "n": len(nums),
                "runs": per_run,
            }
    return out


def primary_value(
    summary: Mapping[str, Mapping[str, Mapping[str, Any]]], metric: str
) -> tuple[str, Mapping[str, Any]] | None:
    """``metric`` on its most telling split (test, then valid, …): (split, its summary)."""
    for split in [*PREFERRED_SPLITS, *summary]:
        found = summary.get(split, {}).get(metric)
        if found is not None:
            return split, found
    return None


def split_rule(spec: Mapping[str, Any]) -> str:
    """A stored split's rule in words: ``by key patient_id, train 0.8 / valid 0.1 / test 0.1``."""
    by = spec.get("by") or "?"
    column = spec.get("column")
    ratios = spec.get("ratios") or {}
    rule = f"by {by}" + (f" {column}" if column else "")
    if isinstance(ratios, Mapping) and ratios:
        rule += ", " + " / ".join(f"{k} {v:g}" for k, v in ratios.items())
    if spec.get("salt"):
        rule += f", salt {spec['salt']!r}"
    cutoffs = spec.get("cutoffs")
    if cutoffs:
        rule += ", cutoffs " + ", ".join(str(c) for c in cutoffs)
    return rule


def _data(data: ProjectData, info: VersionInfo) -> dict[str, Any]:

    v = info.version
    out: dict[str, Any] = {"data": v.data, "split": v.split, "retrieval": None, "stored": None}
    try:
        query = data.query(v.name, v.data)
    except DmvError as exc:
        out["retrieval_error"] = exc.message
    else:
        definition = dict(query.definition)
        if isinstance(definition.get("source"), str):
            definition["source"] = redact_url(definition["source"])
        out["retrieval"] = {"kind": query.kind, **definition}
    try:
        stored = data.split(v.name, v.data, v.split)
    except DmvError as exc:
        out["split_error"] = exc.message
    else:
        out["stored"] = {
            "rule": split_rule(stored.spec),
            "spec": stored.spec,
            "parts": [
                {k: p[k] for k in ("name", "table", "rows", "fingerprint") if k in p}
                for p in stored.parts
            ],
            "leakage_ok": (stored.leakage or {}).get("ok"),
        }
    return out


def _interface_summary(iface: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not iface:
        return None

    def names(side: str) -> list[str]:
        raw = iface.get(side) or []
        if isinstance(raw, Mapping):
            return [str(k) for k in raw]
        return [str(f.get("name")) for f in raw if isinstance(f, Mapping)]

    return {"inputs": names("inputs"), "outputs": names("outputs")}


def domain_summary(iface: Mapping[str, Any] | None) -> dict[str, str]:
    """The learned value domain of each input, in a few words (shown, never part of Y)."""
    out: dict[str, str] = {}
    domain = (iface or {}).get("domain") or {}
    if not isinstance(domain, Mapping):
        return out
    for name, d in domain.items():
        if not isinstance(d, Mapping):
            continue
        words = []
        values = d.get("values")
        if isinstance(values, list):
            shown = ", ".join(str(v) for v in values[:5])
            words.append(f"{len(values)} values ({shown}{', …' if len(values) > 5 else ''})")
        if d.get("min") is not None and d.get("max") is not None:
            words.append(f"range {d['min']:g}..{d['max']:g}" if _numbers(d) else "")
        if "nulls" in d:
            words.append("nulls seen" if d["nulls"] else "no nulls")
        out[str(name)] = ", ".join(w for w in words if w)
    return out


def _numbers(d: Mapping[str, Any]) -> bool:
    return all(isinstance(d[k], int | float) and not isinstance(d[k], bool) for k in ("min", "max"))


def explain(registry: RegistryStore, data: ProjectData, info: VersionInfo) -> dict[str, Any]:
    """Everything ``dmv show`` prints about one version, as JSON-ready data."""
    v = info.version
    model = registry.get_model(v.name)
    runs = registry.list_runs(v)
    serving = chosen_run(info, runs)
    logic = info.logic or {}
    code = (serving.code or {}) if serving else {}
    released_as = []
    if v.x == 0:
        released_as = [
            o.version.number for o in registry.list_versions(v.name) if o.released_from == v.number
        ]
    iface = _interface_summary(info.interface)
    parts = [
        {
            "part": "name",
            "value": v.name,
            "meaning": model.purpose or model.function or "the model",
        },
        {
            "part": "X",
            "value": v.x,
            "meaning": f"release generation {v.x} (production)" if v.x else "prerelease",
        },
        {
            "part": "Y",
            "value": v.y,
            "meaning": "interface "
            + (
                f"{len(iface['inputs'])} inputs, {len(iface['outputs'])} outputs"
                if iface
                else "not recorded"
            ),
            "fingerprint": info.interface_fp,
        },
        {
            "part": "Z",
            "value": v.z,
            "meaning": "logic: "
            + ", ".join(
                f"{len(logic.get(k) or {})} {k}" for k in ("files", "libraries") if k in logic
            )
            if logic
            else "logic not recorded",
            "fingerprint": info.logic_fp,
        },
        {"part": "DATA", "value": v.data, "meaning": "the data retrieval"},
        {"part": "SPLIT", "value": v.split, "meaning": "the stored train/valid/test split"},
    ]
    derivation = (info.meta or {}).get("derivation")
    out: dict[str, Any] = {
        **info.to_dict(),
        "parts": parts,
        "derivation": derivation,
        "release": {
            "state": info.state,
            "generation": v.x,
            "released_from": info.released_from,
            "released_as": released_as,
            "aliases": list(info.aliases),
        },
        "serving_run": serving.id if serving else None,
        "serving_run_selected": bool(info.serving_run),
        "runs": [r.id for r in runs],
        "metrics": metric_summary(runs),
        # the learning curves of the serving run: each metric's last and best value
        "history": serving.metric_summary() if serving else [],
        # Where those metrics were measured: the version's own stored split. Another
        # version's metrics compare with them only when measured on the same rows.
        "metrics_on": f"{v.data}.{v.split}",
        "evaluations": [e.to_dict() for e in registry.list_evaluations(v)],
        "primary_metric": model.primary_metric,
        "params": dict(serving.params) if serving else {},
        "params_vary": sorted(
            {k for r in runs for k in r.params if r.params.get(k) != (serving or r).params.get(k)}
        ),
        "code": {
            "commit": code.get("commit"),
            "branch": code.get("branch"),
            "clean": not (code.get("dirty") or info.dirty) if code else None,
            "paths": code.get("paths") or [],
        },
        "interface_fields": iface,
        "domain": domain_summary(info.interface),
        "data_lineage": _data(data, info),
        # Other parts of dmv add what they know about a version here (e.g. the
        # model file's format and whether loading it is safe).
        "notes": [],
    }
    return out
