"""What the registry hands back: plain, frozen records with a JSON form."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from dmv.errors import InvalidInput
from dmv.reprs import run_html, version_html
from dmv.version import ExperimentLabel, Version

__all__ = [
    "EVENT_OF_ACTION",
    "AliasInfo",
    "ArtifactInfo",
    "AuditEntry",
    "DeliveryRecord",
    "ModelInfo",
    "NewArtifact",
    "NewRun",
    "RunInfo",
    "StoredArtifact",
    "VersionInfo",
    "parse_run_id",
]


_LOWER_IS_BETTER = ("loss", "error", "err", "rmse", "mse", "mae", "mape", "perplexity", "wer")


def lower_is_better(metric: str) -> bool:
    """Is a lower value of ``metric`` better? (a loss or an error, by its name)."""
    words = metric.lower().replace("-", "_").replace(".", "_").split("_")
    return any(w in _LOWER_IS_BETTER or w.endswith("loss") for w in words)


def iso(ts: float | None) -> str | None:
    """An epoch timestamp as ISO 8601 UTC text (None stays None)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class ModelInfo:
    name: str
    purpose: str
    function: str
    description: str
    primary_metric: str | None
    metric_goal: str
    generation: int
    created_at: float
    latest_prerelease: str | None = None
    latest_release: str | None = None
    aliases: dict[str, str] = field(default_factory=dict)
    version_count: int = 0
    archived: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["created_at"] = iso(self.created_at)
        return d


#: Where a release keeps, in its ``meta``, the ``[release]`` policy keys that let it through.
OVERRIDES_KEY = "release_overrides"

#: What a version let through by the project's ``[release]`` policy is flagged with.
PROVENANCE_FLAGS = {
    "allow_dirty": "dirty",
    "allow_unverified_data": "unverified data",
    "allow_failed_behaviour": "failed behaviour",
}


@dataclass(frozen=True, slots=True)
class VersionInfo:
    version: Version
    state: str
    created_at: float
    interface_fp: str | None = None
    logic_fp: str | None = None
    interface: dict[str, Any] | None = None
    interface_compat: str | None = None
    logic: dict[str, Any] | None = None
    dirty: bool = False
    released_from: str | None = None
    serving_run: str | None = None
    aliases: tuple[str, ...] = ()
    run_count: int = 0
    meta: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.version.name

    @property
    def flags(self) -> list[str]:
        """Where its provenance falls short: ``dirty`` (trained from uncommitted code) and,
        for a release, what the project's ``[release]`` policy let through (``unverified
        data``, ``failed behaviour``). Empty for a clean version; a listing, which reads
        no ``meta``, knows only ``dirty``."""
        flags = ["dirty"] if self.dirty else []
        for key in (self.meta or {}).get(OVERRIDES_KEY) or ():
            label = PROVENANCE_FLAGS.get(key)
            if label and label not in flags:
                flags.append(label)
        return flags

    def _repr_html_(self) -> str:

        return version_html(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.version.name,
            "version": self.version.number,
            "ref": self.version.ref,
            "x": self.version.x,
            "y": self.version.y,
            "z": self.version.z,
            "data": self.version.data,
            "split": self.version.split,
            "state": self.state,
            "created_at": iso(self.created_at),
            "interface_fp": self.interface_fp,
            "logic_fp": self.logic_fp,
            "interface": self.interface,
            "interface_compat": self.interface_compat,
            "logic": self.logic,
            "dirty": self.dirty,
            "flags": self.flags,
            "released_from": self.released_from,
            "serving_run": self.serving_run,
            "aliases": list(self.aliases),
            "run_count": self.run_count,
            "meta": self.meta or {},
        }


@dataclass(frozen=True, slots=True)
class ArtifactInfo:
    name: str
    kind: str
    digest: str
    size: int
    meta: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class StoredArtifact:
    """An artifact a run keeps, with whose it is: the model, the run, its version's parts."""

    name: str
    digest: str
    size: int
    model: str
    kind: str  # the run's: training | experiment
    number: int | None
    x: int | None
    y: int | None
    z: int | None
    data: str | None
    split: str | None


@dataclass(frozen=True, slots=True)
class RunInfo:
    """A training run (``tr0``, ``tr1``… of a version) or an experiment run (``ex1``…)."""

    id: str
    model: str
    kind: str
    status: str
    version: Version | None
    data: str | None
    split: str | None
    params: dict[str, Any]
    metrics: dict[str, dict[str, float]]
    started_at: float
    ended_at: float | None
    environment: dict[str, Any] | None = None
    code: dict[str, Any] | None = None
    entry_point: str | None = None
    error: str | None = None
    intended: str | None = None
    artifacts: tuple[ArtifactInfo, ...] = ()
    meta: dict[str, Any] | None = None
    #: ``{split: {metric: [[step, value], …]}}``: the values logged with a step, in order.
    history: dict[str, dict[str, list[list[float]]]] = field(default_factory=dict)

    def metric_summary(self) -> list[dict[str, Any]]:
        """Per metric with a history: its last and best values (and their steps).

        Best is the lowest value for a metric named as a loss or an error (``loss``,
        ``rmse``, ``mae``, ``error``…), the highest for any other.
        """
        out = []
        for split, metrics in sorted(self.history.items()):
            for name, points in sorted(metrics.items()):
                if not points:
                    continue
                pick = min if lower_is_better(name) else max
                best = pick(points, key=lambda p: p[1])
                out.append(
                    {
                        "split": split,
                        "name": name,
                        "steps": len(points),
                        "last": points[-1][1],
                        "last_step": int(points[-1][0]),
                        "best": best[1],
                        "best_step": int(best[0]),
                    }
                )
        return out

    @property
    def label(self) -> str:
        """The version this run belongs to, or ``x.x.x-DATA.SPLIT`` for an experiment."""
        if self.version is not None:
            return str(self.version)
        return f"{self.model} {ExperimentLabel(self.data, self.split)}"

    def _repr_html_(self) -> str:

        return run_html(self)

    def to_dict(self, *, environment: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "model": self.model,
            "kind": self.kind,
            "status": self.status,
            "version": self.version.number if self.version else None,
            "label": self.label,
            "data": self.data,
            "split": self.split,
            "params": self.params,
            "metrics": self.metrics,
            "started_at": iso(self.started_at),
            "ended_at": iso(self.ended_at),
            "code": self.code,
            "entry_point": self.entry_point,
            "error": self.error,
            "intended": self.intended,
            "artifacts": [a.to_dict() for a in self.artifacts],
            "meta": self.meta or {},
            "history": self.history,
        }
        if environment:
            d["environment"] = self.environment
        return d


@dataclass(frozen=True, slots=True)
class AliasInfo:
    model: str
    alias: str
    version: Version
    updated_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "alias": self.alias,
            "version": self.version.number,
            "updated_at": iso(self.updated_at),
        }


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: float
    actor: str
    action: str
    model: str | None
    target: str | None
    details: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["at"] = iso(self.at)
        return d


@dataclass(frozen=True)
class NewArtifact:
    name: str
    kind: str
    digest: str
    size: int
    meta: dict[str, Any] | None = None


@dataclass
class NewRun:
    """Everything a finished run registers, in one transaction."""

    model: str
    kind: str  # training | experiment
    params: dict[str, Any]
    metrics: dict[str, dict[str, float]]
    started_at: float
    ended_at: float
    version: Version | None = None
    data: str | None = None
    split: str | None = None
    status: str = "finished"
    error: str | None = None
    intended: str | None = None
    environment: dict[str, Any] | None = None
    code: dict[str, Any] | None = None
    entry_point: str | None = None
    artifacts: list[NewArtifact] = field(default_factory=list)
    meta: dict[str, Any] | None = None
    #: ``(split, name, step, value, logged_at)`` of each metric value logged with a step.
    history: list[tuple[str, str, int, float, float]] = field(default_factory=list)
    # Filled from the versioning step; stored on the version when it is created.
    interface_fp: str | None = None
    logic_fp: str | None = None
    interface: dict[str, Any] | None = None
    interface_compat: str | None = None
    logic: dict[str, Any] | None = None
    dirty: bool = False
    # Called inside the registry transaction, under the model's lock, with every
    # known version row (x, y, z, data, split, interface_fp, logic_fp, interface);
    # returns the version and extra version components. Must be pure: it may run twice.
    derive: Callable[[list[Any]], tuple[Version, dict[str, Any]]] | None = None


def parse_run_id(text: str) -> tuple[str, int]:
    """``tr3`` → ("training", 3); ``ex2`` → ("experiment", 2)."""
    prefix, digits = text[:2], text[2:]
    if prefix not in ("tr", "ex") or not digits.isdigit() or (len(digits) > 1 and digits[0] == "0"):
        raise InvalidInput(
            f"run id {text!r} is not valid", hint="training runs are tr0, tr1, …; experiments ex1…"
        )
    return ("training" if prefix == "tr" else "experiment"), int(digits)


#: Which audited actions are webhook events (``[[webhooks]] events``), and as what.
EVENT_OF_ACTION: dict[str, str] = {
    "version.create": "version",
    "version.release": "release",
    "alias.set": "alias",
    "alias.remove": "alias",
    "version.deprecate": "deprecate",
    "version.delete": "delete",
    "version.verify_failed": "verify_failed",
    "version.check": "check",
    "version.approve": "approve",
}


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One webhook delivery in the registry's outbox (the body is the exact bytes sent)."""

    id: int
    delivery: str
    event_id: str
    event: str
    hook: str
    model: str | None
    body: str
    status: str  # pending | delivered | failed
    attempts: int
    next_at: float
    lease_owner: str | None
    lease_until: float | None
    attempted_at: float | None
    last_status: int | None
    last_error: str | None
    created_at: float
    delivered_at: float | None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        del d["body"], d["lease_owner"], d["lease_until"]
        for key in ("next_at", "attempted_at", "created_at", "delivered_at"):
            d[key] = iso(d[key])
        return d
