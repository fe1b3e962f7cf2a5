"""Review on the pull request: check a candidate, evaluate on the same rows, the release
policy and its gates, approvals."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from dmv.errors import ConflictError, Forbidden, InvalidInput
from dmv.facade._base import FacadeBase
from dmv.limits import MAX_REASON, check_text
from dmv.logic.git import git_identity, git_info
from dmv.release import gates as policy_gates
from dmv.release.evaluate import evaluate as run_evaluation
from dmv.reports import check as review
from dmv.version import Reference, Version, check_name, parse_data_split

if TYPE_CHECKING:
    from dmv.registry.reviews import ApprovalRecord, EvaluationRecord

__all__ = ["ReviewMixin"]

_APPROVER_MAX = 254  # the longest e-mail address


class ReviewMixin(FacadeBase):
    """Review on the pull request: check a candidate, evaluate on the same rows, the
    release policy and its gates, approvals."""

    def evaluate(
        self,
        ref: str | Reference | Version,
        on: str,
        *,
        part: str = "test",
        target: str | None = None,
        metric: str | None = None,
        trust_pickle: bool | None = None,
    ) -> EvaluationRecord:
        """Measure ``ref``'s model on the stored split ``on`` (``DATA.SPLIT``)'s ``part`` in a
        fresh process; recorded as an evaluation of that version on that split, never as
        a training run. ``metric`` adds a function ``module:function(y_true, y_pred)``."""
        data, split = parse_data_split(on)
        check_text(part, "part", 64)
        info = self.show(ref)
        return run_evaluation(
            self.stores,
            self.data_access,
            info,
            self.registry.get_model(info.name),
            on_data=data,
            on_split=split,
            part=part,
            target=target,
            metric=metric,
            trust_pickle=self.stores.trusts_pickle if trust_pickle is None else trust_pickle,
        )

    def evaluations(self, ref: str | Reference | Version) -> list[EvaluationRecord]:
        """Every evaluation of ``ref`` on other stored splits, oldest first."""
        return self.registry.list_evaluations(self.resolve(ref))

    def check(
        self,
        model: str,
        *,
        against: str | Reference | Version | None = None,
        candidate: str | Reference | Version | None = None,
        part: str = "test",
    ) -> dict[str, Any]:
        """Review the candidate (the newest version trained from the current commit, or
        ``candidate``) against ``against`` (default ``@production``, else ``@latest``):
        what changed and why, metrics on the same rows, and the release policy's verdict
        (``ok``). Runs the missing cross-evaluation; emits a ``check`` event."""
        check_name(model)
        if candidate is not None:
            cand = self.show(candidate)
            if cand.name != model:
                raise InvalidInput(
                    f"the candidate {cand.version} is not a version of {model}",
                    hint=f"name a version of {model}, e.g. {model}@0.1.0",
                )
        else:
            git = git_info(self.root)
            cand = review.candidate_from_commit(self.registry, model, git.commit if git else None)
        base = self.show(against) if against is not None else None
        if base is not None and base.name != model:
            raise InvalidInput(
                f"the baseline {base.version} is not a version of {model}",
                hint=f"name a version of {model}, e.g. {model}@production",
            )
        return review.check(self.stores, self.data_access, cand, base, part=part)

    def policy(self) -> dict[str, Any]:
        """The project's release policy (``[release]`` in ``dmv.toml``), every key."""
        return self.config.release_policy.to_dict()

    def gates(self, ref: str | Reference | Version, *, major: bool = False) -> dict[str, Any]:
        """The release policy's gates for the prerelease ``ref`` as recorded now (no verify,
        no evaluation run): what a release would be refused for besides verify."""
        info = self.show(ref)
        decision, comparison, _ = policy_gates.gates(
            self.stores, self.data_access, info, major=major, run_missing=False
        )
        return {**decision.to_dict(), "comparison": comparison.to_dict() if comparison else None}

    def approve(
        self,
        ref: str | Reference | Version,
        *,
        approver: str | None = None,
        via: str = "cli",
        comment: str = "",
    ) -> ApprovalRecord:
        """Approve the prerelease ``ref`` for release as ``approver`` (default: the project
        repository's git ``user.email``). The one who trained it cannot (Forbidden)."""
        check_text(comment, "comment", MAX_REASON)
        who = approver if approver is not None else git_identity(self.root)
        if not who:
            raise InvalidInput(
                "no approver identity: the project's git repository has no user.email",
                hint="git config user.email you@example.com",
            )
        check_text(who, "approver", _APPROVER_MAX)
        info = self.show(ref)
        if info.state != "prerelease":
            raise ConflictError(
                f"{info.version} is {info.state}: approvals are for prereleases",
                hint=f"approve the prerelease it was released from ({info.released_from})"
                if info.released_from
                else "approve a prerelease (0.Y.Z-DATA.SPLIT)",
            )
        trained_by = policy_gates.trainers(self.registry, info)
        # A token is named for its holder: token:alice is alice@… who trained it.
        holders = {f"token:{t.partition('@')[0].lower()}" for t in trained_by}
        if who in trained_by or who.lower() in holders:
            raise Forbidden(
                f"{who} trained {info.version} and cannot approve it",
                hint="another reviewer approves it: dmv approve " + info.version.ref,
            )
        return self.registry.add_approval(
            info.version, who, via=via, comment=comment, at=time.time()
        )

    def approvals(self, ref: str | Reference | Version) -> list[ApprovalRecord]:
        """Who approved ``ref``, oldest first."""
        return self.registry.list_approvals(self.resolve(ref))
