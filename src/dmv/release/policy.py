"""The release policy: the one function that says whether a version may be released.

``[release]`` in ``dmv.toml`` (:class:`~dmv.config.ReleasePolicy`) is data; :func:`decide`
turns it and the facts about a candidate into gates, each passed or failed with the
reason. ``dmv release``, ``dmv check``, the web UI and the REST API all call it, so
they can never disagree; a refusal (:func:`require`) lists every failed gate.

The gates, besides the verify a release runs in full:

* ``verify``: the candidate's checks (what ``dmv verify`` found), as the release reads them;
* ``dirty``: trained from uncommitted code (refused unless ``allow_dirty``);
* ``metric``: ``metric`` (default: the model's primary metric) of the candidate against
  the baseline on the same rows (the same ``DATA.SPLIT`` part) may be worse by at most
  ``must_not_regress_by``; measured on different rows it is not compared at all;
* ``interface``: a change that breaks the baseline's clients, as ``breaking_interface``
  says (``allow``, ``major-only``, ``refuse``);
* ``approvals``: ``approvals`` distinct people approved it, the one who trained it not
  counted.

This module is pure: it reads nothing and writes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dmv.config import ReleasePolicy
from dmv.errors import PolicyRefused

__all__ = [
    "Gate",
    "MetricComparison",
    "PolicyDecision",
    "decide",
    "lower_is_better",
    "require",
]

#: Metric names (or name parts) where a smaller value is better, when the model does
#: not say (its ``metric_goal`` governs its primary metric).
_LOWER_BETTER = ("rmse", "mse", "mae", "mape", "loss", "error", "logloss", "brier")


def lower_is_better(metric: str, *, primary: str | None = None, goal: str = "max") -> bool:
    """Whether a smaller ``metric`` is better: the model's goal for its primary metric,
    else the name (``rmse``, ``mae``, ``…loss``, ``…error`` are lower-is-better)."""
    if primary and metric == primary:
        return goal == "min"
    name = metric.lower()
    return any(name == w or name.endswith(w) or name.endswith(f"_{w}") for w in _LOWER_BETTER)


@dataclass(frozen=True)
class MetricComparison:
    """One metric of the candidate and the baseline, measured on the same rows
    (``on`` = ``DATA.SPLIT/part``), or why they could not be (``on`` None)."""

    metric: str
    lower_is_better: bool
    on: str | None = None
    candidate: float | None = None
    baseline: float | None = None
    #: ``dmv evaluate`` commands that would make them comparable, when they are not.
    suggest: tuple[str, ...] = ()

    @property
    def regression(self) -> float | None:
        """How much worse the candidate is (negative: better); None when not comparable."""
        if self.on is None or self.candidate is None or self.baseline is None:
            return None
        delta = self.candidate - self.baseline
        return delta if self.lower_is_better else -delta

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "goal": "min" if self.lower_is_better else "max",
            "on": self.on,
            "candidate": self.candidate,
            "baseline": self.baseline,
            "regression": self.regression,
            "comparable": self.regression is not None,
            "suggest": list(self.suggest),
        }


@dataclass(frozen=True)
class Gate:
    """One gate of the policy: passed or not, why, and what to do when not."""

    name: str
    ok: bool
    detail: str
    key: str | None = None  # the [release] key that governs it
    hint: str = ""
    #: Not met yet, but met by the review itself (approvals): a release refuses it,
    #: a check of the pull request reports it without failing.
    pending: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "gate": self.name,
            "ok": self.ok,
            "detail": self.detail,
            "key": self.key,
            "hint": self.hint,
            "pending": self.pending,
        }


@dataclass(frozen=True)
class PolicyDecision:
    """Every gate for one candidate; it may be released when all passed."""

    version: str
    gates: tuple[Gate, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return all(g.ok for g in self.gates)

    @property
    def failed(self) -> list[Gate]:
        return [g for g in self.gates if not g.ok]

    @property
    def ok_for_review(self) -> bool:
        """Every gate passed but those the review itself meets (approvals)."""
        return all(g.ok or g.pending for g in self.gates)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "ok": self.ok,
            "ok_for_review": self.ok_for_review,
            "pending": [g.name for g in self.gates if g.pending],
            "gates": [g.to_dict() for g in self.gates],
            "failed": [g.name for g in self.failed],
        }


def _metric_gate(policy: ReleasePolicy, comparison: MetricComparison | None, ref: str) -> Gate:
    tolerance = policy.must_not_regress_by
    if comparison is None:
        return Gate("metric", True, "no metric to compare (no baseline, or no metric named)")
    name = comparison.metric
    regression = comparison.regression
    if regression is None:
        detail = f"{name}: the candidate and the baseline were not measured on the same rows"
        if tolerance is None:
            return Gate("metric", True, detail + " (not gated)", "must_not_regress_by")
        return Gate(
            "metric",
            False,
            detail,
            "must_not_regress_by",
            "make them comparable: " + "; ".join(comparison.suggest)
            if comparison.suggest
            else f"evaluate both on one stored split: dmv evaluate {ref} --on DATA.SPLIT",
        )
    assert comparison.candidate is not None and comparison.baseline is not None
    shown = (
        f"{name} {comparison.candidate:.6g} against {comparison.baseline:.6g} on "
        f"{comparison.on} ({'lower' if comparison.lower_is_better else 'higher'} is better)"
    )
    if tolerance is None:
        return Gate("metric", True, shown + "; not gated", "must_not_regress_by")
    if not math.isfinite(regression) or regression > tolerance:
        return Gate(
            "metric",
            False,
            f"{shown}: worse by {regression:.6g}, more than must_not_regress_by = {tolerance:g}",
            "must_not_regress_by",
            "improve the model, or raise must_not_regress_by under [release] in dmv.toml",
        )
    return Gate(
        "metric",
        True,
        f"{shown}: within must_not_regress_by = {tolerance:g}",
        "must_not_regress_by",
    )


def _interface_gate(policy: ReleasePolicy, compat: str | None, major: bool) -> Gate:
    rule = policy.breaking_interface
    if compat is None:
        return Gate("interface", True, "no baseline interface to compare", "breaking_interface")
    if compat != "breaking":
        return Gate(
            "interface",
            True,
            f"{compat} for the baseline's clients" if compat != "none" else "unchanged",
            "breaking_interface",
        )
    if rule == "allow":
        return Gate(
            "interface", True, "breaks the baseline's clients (allowed)", "breaking_interface"
        )
    if rule == "major-only" and major:
        return Gate(
            "interface",
            True,
            "breaks the baseline's clients, released as a new major",
            "breaking_interface",
        )
    return Gate(
        "interface",
        False,
        "breaks the baseline's clients: breaking_interface = " + repr(rule),
        "breaking_interface",
        "release it as a new major (dmv release --major REF)"
        if rule == "major-only"
        else "keep the interface compatible (restore the field), or change breaking_interface "
        "under [release] in dmv.toml",
    )


def _approvals_gate(
    policy: ReleasePolicy, approvers: Sequence[str], trainers: Sequence[str], ref: str
) -> Gate:
    needed = policy.approvals
    counted = sorted({a for a in approvers if a not in set(trainers)})
    if needed == 0:
        return Gate("approvals", True, "none required", "approvals")
    detail = f"{len(counted)} of {needed} approval(s)" + (
        f" ({', '.join(counted)})" if counted else ""
    )
    if len(counted) >= needed:
        return Gate("approvals", True, detail, "approvals")
    return Gate(
        "approvals",
        False,
        detail,
        "approvals",
        f"{needed - len(counted)} more reviewer(s), not the trainer, run: dmv approve {ref}",
        pending=True,
    )


def decide(
    policy: ReleasePolicy,
    *,
    version: str,
    ref: str,
    failed_checks: Sequence[Mapping[str, str]] | None = None,
    dirty: bool = False,
    comparison: MetricComparison | None = None,
    interface_compat: str | None = None,
    approvers: Sequence[str] = (),
    trainers: Sequence[str] = (),
    major: bool = False,
) -> PolicyDecision:
    """Every gate of ``policy`` for the candidate ``version`` (``ref`` to type it).

    ``failed_checks`` are the verify checks that failed (``{"check", "detail"}``; None:
    not verified here), ``comparison`` the policy's metric on the same rows,
    ``interface_compat`` how the candidate's interface changes the baseline's (``none``,
    ``compatible``, ``breaking``; None: no baseline), ``approvers`` who approved it,
    ``trainers`` who trained it (never counted), ``major``: released as a new major.
    """
    gates: list[Gate] = []
    if failed_checks is None:
        gates.append(Gate("verify", True, "not run here (a release runs it in full)"))
    else:
        blocking = []
        for c in failed_checks:
            name = str(c.get("check", ""))
            if name == "split" and policy.allow_unverified_data:
                continue
            if name.startswith("behaviour") and policy.allow_failed_behaviour:
                continue
            blocking.append(f"{name}: {c.get('detail', '')}")
        gates.append(
            Gate(
                "verify",
                not blocking,
                "; ".join(blocking) if blocking else "every check passed",
                hint="" if not blocking else f"'dmv verify {ref}' shows every check",
            )
        )
    if dirty and not policy.allow_dirty:
        gates.append(
            Gate(
                "dirty",
                False,
                "trained from uncommitted code",
                "allow_dirty",
                "commit the code and retrain, or set allow_dirty = true under [release]",
            )
        )
    else:
        gates.append(
            Gate("dirty", True, "dirty (allowed)" if dirty else "committed code", "allow_dirty")
        )
    gates.append(_metric_gate(policy, comparison, ref))
    gates.append(_interface_gate(policy, interface_compat, major))
    gates.append(_approvals_gate(policy, approvers, trainers, ref))
    return PolicyDecision(version, tuple(gates))


def require(decision: PolicyDecision) -> None:
    """Refuse (:class:`PolicyRefused`), listing every failed gate, unless all passed."""
    failed = decision.failed
    if not failed:
        return
    listed = "; ".join(f"{g.name}: {g.detail}" for g in failed)
    hints = [g.hint for g in failed if g.hint]
    raise PolicyRefused(
        f"the release policy refuses {decision.version}: {len(failed)} gate(s) failed: {listed}",
        hint="; ".join(hints) + ("; " if hints else "") + "'dmv policy show' lists the policy",
        failed=[g.to_dict() for g in failed],
    )
