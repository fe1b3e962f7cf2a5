"""Review records: evaluations of a version on a stored split, and approvals.

An evaluation measures a version's model on another stored split's part
(``dmv evaluate``); it is never a training run, so it never changes which run a
version serves nor its training metrics. An approval records one person's
consent to release a version; the policy (``dmv.release.policy``) counts them.
Both are append-only and audited.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from dmv.errors import ConflictError
from dmv.registry import schema as t
from dmv.registry.core import RegistryCore
from dmv.registry.records import iso
from dmv.version import Version

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["ApprovalRecord", "EvaluationRecord", "ReviewsMixin"]


@dataclass(frozen=True, slots=True)
class EvaluationRecord:
    """A version's model measured on ``data.split``'s ``part`` (``rows`` rows)."""

    version: Version
    run_id: str
    data: str
    split: str
    part: str
    target: str
    rows: int
    metrics: dict[str, float]
    actor: str
    created_at: float
    meta: dict[str, Any] | None = None

    @property
    def on(self) -> str:
        """Where it was measured: ``DATA.SPLIT/part``."""
        return f"{self.data}.{self.split}/{self.part}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": str(self.version),
            "ref": self.version.ref,
            "run": self.run_id,
            "on": f"{self.data}.{self.split}",
            "part": self.part,
            "target": self.target,
            "rows": self.rows,
            "metrics": dict(self.metrics),
            "actor": self.actor,
            "created_at": iso(self.created_at),
            "meta": self.meta or {},
        }


@dataclass(frozen=True, slots=True)
class ApprovalRecord:
    """One person's approval of a version for release."""

    version: Version
    approver: str
    via: str
    comment: str
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": str(self.version),
            "approver": self.approver,
            "via": self.via,
            "comment": self.comment,
            "created_at": iso(self.created_at),
        }


class ReviewsMixin(RegistryCore):
    """Evaluations and approvals: add (audited) and list a version's."""

    def add_evaluation(self, evaluation: EvaluationRecord) -> EvaluationRecord:
        """Record ``evaluation``; audited as ``version.evaluate``."""
        import sqlalchemy as sa

        v = evaluation.version

        def write(conn: sa.Connection) -> EvaluationRecord:
            model = self._model_row(conn, v.name)
            if self._version_row(conn, model.id, v) is None:
                raise ConflictError(
                    f"{v} is not registered", hint=f"'dmv versions {v.name}' lists its versions"
                )
            conn.execute(
                sa.insert(t.evaluations).values(
                    model=v.name,
                    version=v.number,
                    run_id=evaluation.run_id,
                    data=evaluation.data,
                    split=evaluation.split,
                    part=evaluation.part,
                    target=evaluation.target,
                    rows=evaluation.rows,
                    metrics=dict(evaluation.metrics),
                    meta=evaluation.meta,
                    actor=self.actor,
                    created_at=evaluation.created_at,
                )
            )
            self._audit(
                conn,
                "version.evaluate",
                v.name,
                v.number,
                {"on": evaluation.on, "run": evaluation.run_id, "metrics": evaluation.metrics},
            )
            return replace(evaluation, actor=self.actor)

        result: EvaluationRecord = self._write(write)
        return result

    def list_evaluations(self, version: Version) -> list[EvaluationRecord]:
        """The version's evaluations, oldest first."""
        import sqlalchemy as sa

        e = t.evaluations.c
        query = (
            sa.select(t.evaluations)
            .where(e.model == version.name, e.version == version.number)
            .order_by(e.id)
        )

        def read(conn: sa.Connection) -> list[EvaluationRecord]:
            return [
                EvaluationRecord(
                    version,
                    r.run_id,
                    r.data,
                    r.split,
                    r.part,
                    r.target,
                    int(r.rows),
                    {str(k): float(x) for k, x in (r.metrics or {}).items()},
                    r.actor,
                    float(r.created_at),
                    r.meta,
                )
                for r in conn.execute(query)
            ]

        result: list[EvaluationRecord] = self._read(read)
        return result

    def add_approval(
        self, version: Version, approver: str, *, via: str, comment: str, at: float
    ) -> ApprovalRecord:
        """Record ``approver``'s approval of ``version``; audited as ``version.approve``
        (a webhook event). The same person approving twice is refused (ConflictError)."""
        import sqlalchemy as sa

        def write(conn: sa.Connection) -> ApprovalRecord:
            model = self._model_row(conn, version.name, lock=True)
            if self._version_row(conn, model.id, version) is None:
                raise ConflictError(
                    f"{version} is not registered",
                    hint=f"'dmv versions {version.name}' lists its versions",
                )
            a = t.approvals.c
            seen = conn.execute(
                sa.select(a.id).where(
                    a.model == version.name, a.version == version.number, a.approver == approver
                )
            ).first()
            if seen is not None:
                raise ConflictError(
                    f"{approver} approved {version} already",
                    hint=f"'dmv check {version.name} --candidate {version.ref}' shows what "
                    "it still needs",
                )
            conn.execute(
                sa.insert(t.approvals).values(
                    model=version.name,
                    version=version.number,
                    approver=approver,
                    via=via,
                    comment=comment,
                    created_at=at,
                )
            )
            self._audit(
                conn,
                "version.approve",
                version.name,
                version.number,
                {"approver": approver, "via": via, "comment": comment},
            )
            return ApprovalRecord(version, approver, via, comment, at)

        result: ApprovalRecord = self._write(write)
        return result

    def list_approvals(self, version: Version) -> list[ApprovalRecord]:
        """The version's approvals, oldest first."""
        import sqlalchemy as sa

        a = t.approvals.c
        query = (
            sa.select(t.approvals)
            .where(a.model == version.name, a.version == version.number)
            .order_by(a.id)
        )

        def read(conn: sa.Connection) -> list[ApprovalRecord]:
            return [
                ApprovalRecord(version, r.approver, r.via, r.comment, float(r.created_at))
                for r in conn.execute(query)
            ]

        result: list[ApprovalRecord] = self._read(read)
        return result
