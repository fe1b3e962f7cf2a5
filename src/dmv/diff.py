"""What changed between two versions, component by component.

The report compares the version parts, the interface (field by field, with its
compatibility class), the logic (code files, libraries, Python, hyperparameters),
the environment and the evaluation of each version's selected run, and the data
(retrieval definition, split spec, row counts and fingerprints) where stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dmv.project import Project
    from dmv.registry import RunInfo, VersionInfo

__all__ = ["diff_mappings", "diff_versions", "selected_run"]


def diff_mappings(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Keys added, removed or changed between two flat mappings: ``{key: {old, new}}``."""
    out: dict[str, dict[str, Any]] = {}
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a != b:
            out[key] = {"old": a, "new": b}
    return out


def selected_run(project: Project, info: VersionInfo) -> RunInfo | None:
    """The run a version serves, else its newest finished run."""
    runs = [r for r in project.registry.list_runs(info.version) if r.status == "finished"]
    if info.serving_run:
        chosen = next((r for r in runs if r.id == info.serving_run), None)
        if chosen is not None:
            return chosen
    return runs[-1] if runs else None


def _flat_metrics(run: RunInfo | None) -> dict[str, float]:
    if run is None:
        return {}
    return {f"{split}.{name}": v for split, m in run.metrics.items() for name, v in m.items()}


def _packages(run: RunInfo | None) -> dict[str, str]:
    env = (run.environment or {}) if run else {}
    packages = env.get("distributions", {})
    return dict(packages) if isinstance(packages, Mapping) else {}


def diff_versions(project: Project, a: VersionInfo, b: VersionInfo) -> dict[str, Any]:
    """The full comparison of ``a`` (old) and ``b`` (new) as a JSON-ready dict."""
    from dmv.interface import Interface, diff_interfaces

    va, vb = a.version, b.version
    parts = {
        part: {"old": getattr(va, attr), "new": getattr(vb, attr)}
        for part, attr in (("X", "x"), ("Y", "y"), ("Z", "z"), ("DATA", "data"), ("SPLIT", "split"))
        if getattr(va, attr) != getattr(vb, attr)
    }
    report: dict[str, Any] = {"a": va.ref, "b": vb.ref, "version": parts}

    interface: dict[str, Any] = {"old": a.interface_fp, "new": b.interface_fp, "changes": []}
    if a.interface and b.interface:
        d = diff_interfaces(Interface.from_dict(a.interface), Interface.from_dict(b.interface))
        interface.update(d.to_dict())
    report["interface"] = interface

    la, lb = a.logic or {}, b.logic or {}
    report["logic"] = {
        "old": a.logic_fp,
        "new": b.logic_fp,
        "code": diff_mappings(la.get("files", {}), lb.get("files", {})),
        "libraries": diff_mappings(la.get("libraries", {}), lb.get("libraries", {})),
        "python": diff_mappings({"python": la.get("python")}, {"python": lb.get("python")}),
    }
    ra, rb = selected_run(project, a), selected_run(project, b)
    report["runs"] = {"old": ra.id if ra else None, "new": rb.id if rb else None}
    report["params"] = diff_mappings(ra.params if ra else {}, rb.params if rb else {})
    report["metrics"] = {
        key: {**change, "delta": _delta(change)}
        for key, change in diff_mappings(_flat_metrics(ra), _flat_metrics(rb)).items()
    }
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
    from dmv.data.checks import data_diff

    report["data"] = data_diff(project, va, vb)
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


def render(report: Mapping[str, Any]) -> str:
    """The report as readable text."""
    lines = [f"{report['a']}  →  {report['b']}", ""]
    changed = report.get("changed") or []
    lines.append("changed: " + (", ".join(changed) if changed else "nothing"))
    for part, change in report["version"].items():
        lines.append(f"  {part:<6} {change['old']} → {change['new']}")
    iface = report["interface"]
    if iface.get("changes"):
        lines += ["", f"interface ({iface.get('compat', '?')}):"]
        for c in iface["changes"]:
            lines.append(f"  {c['side']:<6} {c['field']}: {c['detail']} [{c['compat']}]")
    logic = report["logic"]
    for section in ("code", "libraries", "python"):
        if logic[section]:
            lines += ["", f"{section}:"]
            for key, ch in logic[section].items():
                lines.append(f"  {key}: {_short(ch['old'])} → {_short(ch['new'])}")
    for title, section in (("hyperparameters", report["params"]), ("metrics", report["metrics"])):
        if section:
            lines += ["", f"{title} ({report['runs']['old']} → {report['runs']['new']}):"]
            for key, ch in section.items():
                delta = ch.get("delta")
                suffix = f"  ({delta:+.4g})" if isinstance(delta, float) else ""
                lines.append(f"  {key}: {ch['old']} → {ch['new']}{suffix}")
    env = report["environment"]
    if any(env.values()):
        lines += ["", "environment:"]
        for section in env.values():
            for key, ch in section.items():
                lines.append(f"  {key}: {ch['old']} → {ch['new']}")
    data = report.get("data") or {}
    for key, ch in data.items():
        if key == "parts":
            continue
        if isinstance(ch, Mapping) and "old" in ch:
            lines.append(f"data {key}: {_short(ch['old'])} → {_short(ch['new'])}")
    return "\n".join(lines)


def _short(value: Any) -> str:
    text = "-" if value is None else str(value)
    if text.startswith("blake3:"):
        return text[:19] + "…"
    return text if len(text) <= 60 else text[:57] + "…"
