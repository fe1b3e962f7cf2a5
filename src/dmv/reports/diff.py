"""What changed between two versions, component by component.

The report compares the version parts, the interface (field by field, with its
compatibility class), the value domains learned from the rows (shown, never a
contract change), the logic (code files, libraries, Python, hyperparameters),
the environment and the evaluation of each version's selected run, and the data
(retrieval definition, split spec, row counts and fingerprints) where stored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dmv.interface import Interface, diff_domains, diff_interfaces
from dmv.release.gates import where_measured
from dmv.release.serving_run import selected_run

if TYPE_CHECKING:
    from dmv.data.service import ProjectData
    from dmv.registry import RegistryStore, RunInfo, VersionInfo

__all__ = ["diff_mappings", "diff_versions", "headline", "render", "text"]


def diff_mappings(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Keys added, removed or changed between two flat mappings: ``{key: {old, new}}``."""
    out: dict[str, dict[str, Any]] = {}
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a != b:
            out[key] = {"old": a, "new": b}
    return out


def _same_rows(registry: RegistryStore, a: VersionInfo, b: VersionInfo) -> dict[str, Any]:
    """The metrics of both measured on the same DATA.SPLIT (``metrics_on``), parts as
    ``part.metric``; when there is none, why, and the ``dmv evaluate`` that would help.

    Metrics measured on different rows say nothing about each other, so they are never
    put side by side: b's own split first, then a's, then any split both were
    evaluated on."""
    ma, mb = where_measured(registry, a), where_measured(registry, b)
    va, vb = a.version, b.version

    def split_of(key: str) -> str:
        return key.partition("/")[0]

    common = {split_of(k) for k in ma if k in mb}
    order = [f"{vb.data}.{vb.split}", f"{va.data}.{va.split}", *sorted(common)]
    on = next((o for o in order if o in common), None)
    if on is None:
        return {
            "metrics": {},
            "metrics_on": None,
            "metrics_note": (
                f"not measured on the same rows: {va.ref} on {va.data}.{va.split}, "
                f"{vb.ref} on {vb.data}.{vb.split}"
                if ma and mb
                else ""
            ),
            "evaluate": [f"dmv evaluate {va.ref} --on {vb.data}.{vb.split} --part test"]
            if ma and mb
            else [],
        }

    def flat(measured: dict[str, dict[str, float]]) -> dict[str, float]:
        return {
            f"{key.partition('/')[2]}.{name}": value
            for key, values in measured.items()
            if split_of(key) == on
            for name, value in values.items()
        }

    metrics = {
        key: {**change, "delta": _delta(change)}
        for key, change in diff_mappings(flat(ma), flat(mb)).items()
    }
    return {"metrics": metrics, "metrics_on": on, "metrics_note": "", "evaluate": []}


def _packages(run: RunInfo | None) -> dict[str, str]:
    env = (run.environment or {}) if run else {}
    packages = env.get("distributions", {})
    return dict(packages) if isinstance(packages, Mapping) else {}


def diff_versions(
    registry: RegistryStore, data: ProjectData, a: VersionInfo, b: VersionInfo
) -> dict[str, Any]:
    """The full comparison of ``a`` (old) and ``b`` (new) as a JSON-ready dict."""

    va, vb = a.version, b.version
    parts = {
        part: {"old": getattr(va, attr), "new": getattr(vb, attr)}
        for part, attr in (("X", "x"), ("Y", "y"), ("Z", "z"), ("DATA", "data"), ("SPLIT", "split"))
        if getattr(va, attr) != getattr(vb, attr)
    }
    report: dict[str, Any] = {"a": va.ref, "b": vb.ref, "version": parts}

    interface: dict[str, Any] = {"old": a.interface_fp, "new": b.interface_fp, "changes": []}
    domain: dict[str, Any] = {"changes": []}
    if a.interface and b.interface:
        ia, ib = Interface.from_dict(a.interface), Interface.from_dict(b.interface)
        interface.update(diff_interfaces(ia, ib).to_dict())
        # What the rows held (category sets, ranges, nulls): shown, never part of the
        # contract, so never "breaking" and never in the headline.
        domain["changes"] = diff_domains(ia, ib)
    report["interface"] = interface
    report["domain"] = domain

    la, lb = a.logic or {}, b.logic or {}
    report["logic"] = {
        "old": a.logic_fp,
        "new": b.logic_fp,
        "code": diff_mappings(la.get("files", {}), lb.get("files", {})),
        "libraries": diff_mappings(la.get("libraries", {}), lb.get("libraries", {})),
        "python": diff_mappings({"python": la.get("python")}, {"python": lb.get("python")}),
    }
    ra, rb = selected_run(registry, a), selected_run(registry, b)
    report["runs"] = {"old": ra.id if ra else None, "new": rb.id if rb else None}
    report["params"] = diff_mappings(ra.params if ra else {}, rb.params if rb else {})
    report.update(_same_rows(registry, a, b))
    env_a = (ra.environment or {}) if ra else {}
    env_b = (rb.environment or {}) if rb else {}
    report["environment"] = {
        "python": diff_mappings(
            {"python": (env_a.get("python") or {}).get("version")},
            {"python": (env_b.get("python") or {}).get("version")},
        ),
        "platform": diff_mappings(
            {"platform": (env_a.get("os") or {}).get("platform")},
            {"platform": (env_b.get("os") or {}).get("platform")},
        ),
        "packages": diff_mappings(_packages(ra), _packages(rb)),
    }
    report["data"] = data.diff(va, vb)
    report["headline"] = headline(report)
    report["changed"] = sorted(
        name
        for name, changed in (
            ("interface", a.interface_fp != b.interface_fp),
            ("logic", a.logic_fp != b.logic_fp),
            ("data", va.data != vb.data),
            ("split", (va.data, va.split) != (vb.data, vb.split)),
            ("release", va.x != vb.x),
        )
        if changed
    )
    return report


def _delta(change: Mapping[str, Any]) -> float | None:
    old, new = change.get("old"), change.get("new")
    if isinstance(old, int | float) and isinstance(new, int | float):
        return float(new) - float(old)
    return None


def headline(report: Mapping[str, Any]) -> list[str]:
    """Every component that changed, in words: ``interface``, ``logic (code, C)``, ``split``…

    Read from the whole report, not only from the numbers: a version pair whose
    numbers moved in Y and SPLIT may also differ in code and hyperparameters.
    """
    out = []
    if "X" in report["version"]:
        out.append("release")
    iface = report["interface"]
    if iface.get("old") != iface.get("new") or iface.get("changes"):
        out.append("interface")
    logic = report["logic"]
    what = [k for k in ("code", "libraries", "python") if logic.get(k)]
    what += sorted(report.get("params") or {})
    if what:
        out.append(f"logic ({', '.join(what)})")
    elif logic.get("old") != logic.get("new"):
        out.append("logic")
    data = report.get("data") or {}
    if "DATA" in report["version"] or "retrieval" in data:
        out.append("data")
    if "SPLIT" in report["version"] or "split_spec" in data:
        out.append("split")
    if any((report.get("environment") or {}).values()):
        out.append("environment")
    return out


def text(value: Any) -> str:
    """A value as a person reads it: no Python reprs, ``-`` for nothing."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, str):
        return value if value else '""'
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {text(v)}" for k, v in value.items()) or "-"
    if isinstance(value, list | tuple):
        return ", ".join(text(v) for v in value) or "-"
    return str(value)


def _table(rows: Sequence[Sequence[str]], headers: Sequence[str]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  " + "  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True))]
    for r in rows:
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    return [line.rstrip() for line in lines]


def _delta_text(delta: Any) -> str:
    return f"{delta:+.4g}" if isinstance(delta, float) else ""


def render(report: Mapping[str, Any]) -> str:
    """The report as aligned text: a headline naming every changed component, then one
    table per component."""
    changed = headline(report)
    lines = [f"{report['a']}  →  {report['b']}"]
    lines.append("changed: " + (", ".join(changed) if changed else "nothing"))
    if report["version"]:
        lines += ["", "version"]
        rows: list[tuple[str, ...]] = [
            (part, text(ch["old"]), text(ch["new"])) for part, ch in report["version"].items()
        ]
        lines += _table(rows, ("part", "old", "new"))
    iface = report["interface"]
    if iface.get("changes"):
        lines += ["", f"interface   {iface.get('compat', '?')} for clients"]
        rows = [
            (
                c["side"],
                c["field"],
                str(c.get("kind", "")).replace("_", " "),
                c["detail"],
                c["compat"],
            )
            for c in iface["changes"]
        ]
        lines += _table(rows, ("side", "field", "change", "detail", "class"))
    domain = (report.get("domain") or {}).get("changes") or []
    if domain:
        lines += ["", "domain   learned from the rows, not part of the contract"]
        rows = [(c["field"], str(c.get("kind", "")).replace("_", " "), c["detail"]) for c in domain]
        lines += _table(rows, ("input", "change", "detail"))
    logic = report["logic"]
    rows = [
        (section, key, _short(ch["old"]), _short(ch["new"]))
        for section in ("code", "libraries", "python")
        for key, ch in logic[section].items()
    ]
    if rows:
        lines += ["", "logic"]
        lines += _table(rows, ("what", "name", "old", "new"))
    runs = f"({report['runs']['old'] or 'no run'} → {report['runs']['new'] or 'no run'})"
    if report["params"]:
        lines += ["", f"hyperparameters   {runs}"]
        rows = [
            (key, text(ch["old"]), text(ch["new"]), _delta_text(_delta(ch)))
            for key, ch in report["params"].items()
        ]
        lines += _table(rows, ("name", "old", "new", "delta"))
    if report.get("metrics_note"):
        lines += ["", f"metrics   {report['metrics_note']}; to compare them:"]
        lines += [f"  {cmd}" for cmd in report.get("evaluate") or []]
    if report["metrics"]:
        lines += ["", f"metrics on the same rows ({report.get('metrics_on')})   {runs}"]
        rows = []
        for key, ch in report["metrics"].items():
            split, _, name = key.partition(".")
            rows.append((name, split, text(ch["old"]), text(ch["new"]), _delta_text(ch["delta"])))
        lines += _table(rows, ("metric", "split", "old", "new", "delta"))
    env = report["environment"]
    rows = [
        (key, text(ch["old"]), text(ch["new"]))
        for section in env.values()
        for key, ch in section.items()
    ]
    if rows:
        lines += ["", "environment"]
        lines += _table(rows, ("name", "old", "new"))
    data = report.get("data") or {}
    rows = []
    if "retrieval" in data:
        old, new = data["retrieval"]["old"] or {}, data["retrieval"]["new"] or {}
        for key, ch in diff_mappings(old, new).items():
            rows.append((f"retrieval {key}", _short(text(ch["old"])), _short(text(ch["new"]))))
    if "split_spec" in data:
        old, new = data["split_spec"]["old"] or {}, data["split_spec"]["new"] or {}
        for key, ch in diff_mappings(old, new).items():
            rows.append((f"split {key}", text(ch["old"]), text(ch["new"])))
    if "rows" in data:
        old, new = data["rows"]["old"] or {}, data["rows"]["new"] or {}
        for part in [*old, *(p for p in new if p not in old)]:
            if old.get(part) != new.get(part):
                rows.append((f"rows {part}", text(old.get(part)), text(new.get(part))))
    if "fingerprint" in data:
        ch = data["fingerprint"]
        rows.append(("content fingerprint", _short(ch["old"]), _short(ch["new"])))
    if rows:
        lines += ["", "data"]
        lines += _table(rows, ("what", "old", "new"))
    return "\n".join(lines)


def _short(value: Any) -> str:
    out = text(value)
    if out.startswith("blake3:"):
        return out[:19] + "…"
    return out if len(out) <= 60 else out[:57] + "…"
