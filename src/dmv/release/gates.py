"""The facts the release policy is decided on, gathered for one candidate.

:func:`gates` collects them — the baseline (``@production``, else ``@latest``), the
metric on the same rows (running the missing cross-evaluations when asked), how the
interface changes for the baseline's clients, who approved and who trained — and
hands them to the one policy function, :func:`dmv.release.policy.decide`. The
release, ``dmv check``, the web UI and the REST API all come through here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dmv.errors import DmvError, NotFound
from dmv.interface import Interface, diff_interfaces
from dmv.release.evaluate import evaluate, measurements
from dmv.release.policy import MetricComparison, PolicyDecision, decide, lower_is_better
from dmv.release.serving_run import selected_run
from dmv.version import Reference

if TYPE_CHECKING:
    from dmv.config import ReleasePolicy
    from dmv.data.service import ProjectData
    from dmv.registry import ModelInfo, RegistryStore, VersionInfo
    from dmv.stores import Stores

__all__ = [
    "baseline_of",
    "compare_on_same_rows",
    "cross_evaluate",
    "gates",
    "interface_compat",
    "metric_of",
    "trainers",
    "where_measured",
]


def baseline_of(registry: RegistryStore, model: str) -> VersionInfo | None:
    """The version a candidate is compared with: ``@production``, else ``@latest``."""
    for ref in (f"{model}@production", f"{model}@latest"):
        try:
            return registry.resolve(Reference.parse(ref))
        except NotFound:
            continue
    return None


def metric_of(policy: ReleasePolicy, model: ModelInfo) -> str | None:
    """The metric the policy compares: ``[release] metric``, else the model's primary."""
    return policy.metric or model.primary_metric or None


def where_measured(registry: RegistryStore, info: VersionInfo) -> dict[str, dict[str, float]]:
    """``{"DATA.SPLIT/part": {metric: value}}``: the serving run on its own split, then
    every evaluation of the version on other splits."""
    run = selected_run(registry, info)
    v = info.version
    return measurements(
        run.metrics if run else None, (v.data, v.split), registry.list_evaluations(v)
    )


def compare_on_same_rows(
    registry: RegistryStore,
    candidate: VersionInfo,
    baseline: VersionInfo,
    metric: str,
    *,
    lower: bool,
    part: str = "test",
) -> MetricComparison:
    """``metric`` of both where both were measured on the same rows: the candidate's own
    split's ``part`` first, then the baseline's, then any other; else not comparable,
    with the ``dmv evaluate`` commands that would make them so."""
    mine, theirs = where_measured(registry, candidate), where_measured(registry, baseline)
    c, b = candidate.version, baseline.version
    preferred = [f"{c.data}.{c.split}/{part}", f"{b.data}.{b.split}/{part}"]
    common = [k for k in mine if k in theirs and metric in mine[k] and metric in theirs[k]]
    order = [k for k in preferred if k in common] + sorted(k for k in common if k not in preferred)
    if order:
        on = order[0]
        return MetricComparison(metric, lower, on, mine[on][metric], theirs[on][metric])
    suggest = (
        f"dmv evaluate {b.ref} --on {c.data}.{c.split} --part {part}",
        f"dmv evaluate {c.ref} --on {b.data}.{b.split} --part {part}",
    )
    return MetricComparison(
        metric,
        lower,
        None,
        (mine.get(preferred[0]) or {}).get(metric),
        (theirs.get(preferred[1]) or {}).get(metric),
        suggest if (c.data, c.split) != (b.data, b.split) else suggest[:1],
    )


def cross_evaluate(
    stores: Stores,
    data: ProjectData,
    candidate: VersionInfo,
    baseline: VersionInfo,
    *,
    part: str = "test",
) -> list[dict[str, Any]]:
    """Run the evaluation that makes the two comparable when it is missing: the baseline
    on the candidate's split's ``part``. Returns what ran (or why it could not)."""
    c = candidate.version
    on = f"{c.data}.{c.split}/{part}"
    if on in where_measured(stores.registry, baseline):
        return []
    model = stores.registry.get_model(c.name)
    try:
        record = evaluate(
            stores,
            data,
            baseline,
            model,
            on_data=c.data,
            on_split=c.split,
            part=part,
            trust_pickle=stores.trusts_pickle,
        )
    except DmvError as exc:
        return [{"version": baseline.version.ref, "on": on, "error": exc.message}]
    return [record.to_dict()]


def interface_compat(candidate: VersionInfo, baseline: VersionInfo | None) -> str | None:
    """How the candidate's interface changes the baseline's for its clients (None: no
    baseline or no interface recorded)."""
    if baseline is None or not baseline.interface or not candidate.interface:
        return None
    old, new = Interface.from_dict(baseline.interface), Interface.from_dict(candidate.interface)
    return diff_interfaces(old, new).compat.value


def trainers(registry: RegistryStore, info: VersionInfo) -> list[str]:
    """Who trained the version: the git ``user.email`` recorded with each of its runs."""
    out = []
    for run in registry.list_runs(info.version):
        who = (run.code or {}).get("trainer")
        if isinstance(who, str) and who and who not in out:
            out.append(who)
    return out


def gates(
    stores: Stores,
    data: ProjectData,
    candidate: VersionInfo,
    *,
    baseline: VersionInfo | None = None,
    failed_checks: Sequence[Mapping[str, str]] | None = None,
    major: bool = False,
    run_missing: bool = True,
    part: str = "test",
) -> tuple[PolicyDecision, MetricComparison | None, list[dict[str, Any]]]:
    """The policy's decision on ``candidate``, with the metric comparison it read and the
    cross-evaluations it ran (``run_missing``: run them when missing)."""
    registry = stores.registry
    policy = stores.config.release_policy
    model = registry.get_model(candidate.name)
    if baseline is None:
        baseline = baseline_of(registry, candidate.name)
    if baseline is not None and baseline.version == candidate.version:
        baseline = None
    if baseline is not None and baseline.released_from == candidate.version.number:
        baseline = None  # the candidate's own release: the same trained model
    ran: list[dict[str, Any]] = []
    comparison = None
    metric = metric_of(policy, model)
    if baseline is not None and metric:
        if run_missing:
            ran = cross_evaluate(stores, data, candidate, baseline, part=part)
        lower = lower_is_better(metric, primary=model.primary_metric, goal=model.metric_goal)
        comparison = compare_on_same_rows(
            registry, candidate, baseline, metric, lower=lower, part=part
        )
    approvers = [a.approver for a in registry.list_approvals(candidate.version)]
    decision = decide(
        policy,
        version=str(candidate.version),
        ref=candidate.version.ref,
        failed_checks=failed_checks,
        dirty=candidate.dirty,
        comparison=comparison,
        interface_compat=interface_compat(candidate, baseline),
        approvers=approvers,
        trainers=trainers(registry, candidate),
        major=major,
    )
    return decision, comparison, ran
