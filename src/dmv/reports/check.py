"""``dmv check``: what a pull request's candidate changes, and whether the policy takes it.

The candidate (the newest version trained from the current commit, or one named)
is compared with a baseline (``@production``, else ``@latest``): the version it got
and why (each changed component), whether its interface breaks the baseline's
clients, the metrics of both on the same rows (the missing cross-evaluation run
first), the split's leakage and the verify status, dirty flags, and the release
policy's decision — the same function a release applies. The report renders as text,
as Markdown (a pull-request comment or a GitHub step summary) or as JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from dmv.errors import DmvError, NotFound
from dmv.release.gates import baseline_of, cross_evaluate, gates, where_measured
from dmv.release.reproduce import verify
from dmv.reports.diff import diff_versions, text

if TYPE_CHECKING:
    from dmv.data.service import ProjectData
    from dmv.registry import RegistryStore, VersionInfo
    from dmv.stores import Stores

__all__ = ["candidate_from_commit", "check", "render_markdown", "render_text"]


def candidate_from_commit(registry: RegistryStore, model: str, commit: str | None) -> VersionInfo:
    """The newest prerelease of ``model`` with a run trained from ``commit``."""
    if not commit:
        raise NotFound(
            "no git commit here to find the candidate by",
            hint="run dmv check inside the project's git repository, or name the candidate "
            "with --candidate REF",
        )
    best: tuple[float, VersionInfo] | None = None
    for info in registry.list_versions(model, state="prerelease"):
        for run in registry.list_runs(info.version):
            ours = run.status == "finished" and (run.code or {}).get("commit") == commit
            if ours and (best is None or run.started_at > best[0]):
                best = (run.started_at, info)
    if best is None:
        raise NotFound(
            f"no version of {model} was trained from the current commit {commit[:12]}",
            hint="train on this commit first (python train.py, or dmv train), or name the "
            "candidate with --candidate REF",
        )
    return registry.get_version(best[1].version)


def _why(diff: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each changed component, in the order a reviewer reads them."""
    out: list[dict[str, Any]] = []
    for part, ch in diff["version"].items():
        out.append({"what": "version", "name": part, "old": ch["old"], "new": ch["new"]})
    for c in diff["interface"].get("changes") or []:
        out.append(
            {
                "what": f"interface {c['side']}",
                "name": c["field"],
                "old": None,
                "new": c["detail"],
                "class": c["compat"],
            }
        )
    for section in ("code", "libraries", "python"):
        for key, ch in diff["logic"][section].items():
            out.append({"what": section, "name": key, "old": ch["old"], "new": ch["new"]})
    for key, ch in diff["params"].items():
        out.append({"what": "hyperparameter", "name": key, "old": ch["old"], "new": ch["new"]})
    data = diff.get("data") or {}
    if "retrieval" in data:
        out.append({"what": "DATA", "name": "retrieval", "old": None, "new": "changed"})
    if "split_spec" in data:
        out.append({"what": "SPLIT", "name": "split spec", "old": None, "new": "changed"})
    return out


def check(
    stores: Stores,
    data: ProjectData,
    candidate: VersionInfo,
    baseline: VersionInfo | None,
    *,
    part: str = "test",
) -> dict[str, Any]:
    """The review of ``candidate`` against ``baseline`` (None: ``@production``, else
    ``@latest``), with the policy's decision; recorded as a ``version.check`` event."""
    registry = stores.registry
    if baseline is None:
        baseline = baseline_of(registry, candidate.name)
    if baseline is not None and candidate.version in (
        baseline.version,
        *([baseline.version] if baseline.released_from == candidate.version.number else []),
    ):
        baseline = None  # the candidate itself, or its own release: nothing to compare
    # The verify (a fresh process loading the model) runs while this thread evaluates
    # the baseline on the candidate's rows and reads the diff: most of either is
    # waiting on a child process or the stores.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dmv-check-verify") as pool:
        verifying = pool.submit(
            verify, stores, data, candidate.version.ref, trust_pickle=stores.trusts_pickle
        )
        ran = cross_evaluate(stores, data, candidate, baseline, part=part) if baseline else []
        diff = diff_versions(registry, data, baseline, candidate) if baseline else None
        report = verifying.result()
    failed = [c.to_dict() for c in report.checks if c.status == "fail"]
    decision, comparison, _ = gates(
        stores,
        data,
        candidate,
        baseline=baseline,
        failed_checks=failed,
        part=part,
        run_missing=False,  # run above
    )
    c = candidate.version
    try:
        split = data.split(c.name, c.data, c.split)
        leakage = split.leakage
    except DmvError:
        leakage = None
    metrics: dict[str, Any] = {"on": None, "candidate": {}, "baseline": {}}
    if comparison is not None and comparison.on is not None and baseline is not None:
        on = comparison.on
        metrics = {
            "on": on,
            "candidate": where_measured(registry, candidate).get(on, {}),
            "baseline": where_measured(registry, baseline).get(on, {}),
        }
    result: dict[str, Any] = {
        "candidate": c.ref,
        "baseline": baseline.version.ref if baseline else None,
        "version": str(c),
        "why": _why(diff) if diff else [],
        "changed": diff["headline"] if diff else ["new model"],
        "interface": {
            "compat": (diff["interface"].get("compat") if diff else None) or "none",
            "breaking": bool(diff and diff["interface"].get("compat") == "breaking"),
        },
        "comparison": comparison.to_dict() if comparison else None,
        "metrics": metrics,
        "evaluated": ran,
        "verify": {"ok": report.ok, "checks": [x.to_dict() for x in report.checks]},
        "leakage": leakage,
        "flags": candidate.flags,
        "policy": decision.to_dict(),
        # What a pull request's check decides on: approvals come with the review itself,
        # so a shortfall is reported (pending) and refused only by the release.
        "ok": decision.ok_for_review,
    }
    registry.record_event(
        c.name,
        "version.check",
        c.number,
        {
            "ok": decision.ok_for_review,
            "baseline": result["baseline"],
            "failed": [g.to_dict() for g in decision.failed],
        },
    )
    return result


def _value(v: Any) -> str:
    return text(v) if v is not None else "-"


def render_text(result: Mapping[str, Any]) -> str:
    """The report as plain text (the terminal's)."""
    verdict = "PASS" if result["ok"] else "FAIL"
    lines = [
        f"dmv check {result['version']}: {verdict}",
        f"baseline: {result['baseline'] or 'none (nothing released or aliased yet)'}",
        "changed: " + (", ".join(result["changed"]) or "nothing"),
    ]
    for w in result["why"]:
        klass = f" [{w['class']}]" if w.get("class") else ""
        lines.append(f"  {w['what']} {w['name']}: {_value(w['old'])} → {_value(w['new'])}{klass}")
    lines.append(f"interface: {result['interface']['compat']} for the baseline's clients")
    lines += _metric_lines(result, markdown=False)
    lines.append("verify: " + ("ok" if result["verify"]["ok"] else "FAILED"))
    lines.append("policy:")
    for g in result["policy"]["gates"]:
        mark = "ok  " if g["ok"] else ("wait" if g["pending"] else "FAIL")
        lines.append(f"  {mark} {g['gate']}: {g['detail']}")
        if not g["ok"] and g["hint"]:
            lines.append(f"       hint: {g['hint']}")
    return "\n".join(lines)


def _metric_lines(result: Mapping[str, Any], *, markdown: bool) -> list[str]:
    comparison = result.get("comparison")
    metrics = result["metrics"]
    if comparison is None:
        return ["metrics: no baseline or no metric to compare"]
    if metrics["on"] is None:
        lines = [
            f"metrics: not compared — {result['candidate']} and {result['baseline']} were not "
            "measured on the same rows; to make them comparable:"
        ]
        fence = "`" if markdown else ""
        lines += [f"  - {fence}{cmd}{fence}" for cmd in comparison["suggest"]]
        return lines
    names = sorted(set(metrics["candidate"]) & set(metrics["baseline"]))
    if markdown:
        lines = [
            f"Metrics on the same rows: `{metrics['on']}` (both measured on this split's part)",
            "",
            "| metric | baseline | candidate | change |",
            "|---|---:|---:|---:|",
        ]
        for name in names:
            old, new = metrics["baseline"][name], metrics["candidate"][name]
            mark = " **(gate)**" if name == comparison["metric"] else ""
            lines.append(f"| {name}{mark} | {old:.6g} | {new:.6g} | {new - old:+.4g} |")
        return lines
    lines = [f"metrics on the same rows ({metrics['on']}):"]
    for name in names:
        old, new = metrics["baseline"][name], metrics["candidate"][name]
        lines.append(f"  {name}: {old:.6g} → {new:.6g} ({new - old:+.4g})")
    return lines


def _md(value: Any) -> str:
    out = _value(value)
    if out.startswith("blake3:"):
        out = out[:19] + "…"
    return out.replace("|", "\\|")


def render_markdown(result: Mapping[str, Any]) -> str:
    """The report as Markdown: a pull-request comment or a GitHub step summary."""
    verdict = "✅ passes" if result["ok"] else "❌ fails"
    pending = result["policy"].get("pending") or []
    if result["ok"] and pending:
        verdict += f" (awaiting {', '.join(pending)})"
    lines = [
        f"## dmv check: `{result['version']}` {verdict}",
        "",
        f"Baseline: `{result['baseline']}`" if result["baseline"] else "Baseline: none",
        "",
        "### What changed",
        "",
    ]
    if result["why"]:
        lines += ["| component | name | baseline | candidate | class |", "|---|---|---|---|---|"]
        for w in result["why"]:
            lines.append(
                f"| {w['what']} | `{_md(w['name'])}` | {_md(w['old'])} | {_md(w['new'])} "
                f"| {w.get('class') or ''} |"
            )
    else:
        lines.append("Nothing besides the version: " + ", ".join(result["changed"]))
    breaking = result["interface"]["breaking"]
    lines += [
        "",
        f"Interface: **{result['interface']['compat']}** for the baseline's clients"
        + (" — clients of the baseline break" if breaking else ""),
        "",
        "### Metrics",
        "",
        *_metric_lines(result, markdown=True),
        "",
        "### Policy",
        "",
        "| gate | result | detail |",
        "|---|---|---|",
    ]
    for g in result["policy"]["gates"]:
        detail = _md(g["detail"]) + (f" — {_md(g['hint'])}" if not g["ok"] and g["hint"] else "")
        mark = "✅" if g["ok"] else ("⏳ pending" if g["pending"] else "❌")
        lines.append(f"| {g['gate']} | {mark} | {detail} |")
    leak = result.get("leakage")
    lines += [
        "",
        "Verify: "
        + ("all checks passed" if result["verify"]["ok"] else "**failed**")
        + "; leakage: "
        + ("not checked" if not leak else ("none found" if leak.get("ok") else "**found**"))
        + "; flags: "
        + (", ".join(result["flags"]) or "none"),
    ]
    return "\n".join(lines) + "\n"
