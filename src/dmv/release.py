"""Release, run selection, deprecation and deletion; released versions never change.

Releasing the prerelease ``0.Y.Z-D.S`` creates ``N.Y.Z-D.S`` for the same
trained model, where N is the model's current release generation (1 for the
first release; ``major=True`` starts the next). The release serves one training
run of its prerelease: the one chosen with :func:`select_run`, else the best by
the model's primary metric, else the latest.

A release is a gate: it takes the :class:`~dmv.reproduce.Report` of a full
verify of the prerelease (model files and artifacts re-hashed, split parts
against their fingerprints, interface and logic records, and whatever else
verify checks) and refuses, listing the failed checks, unless every check
passed. There is no way around it: a damaged version is repaired or retrained,
never released.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dmv.errors import ConflictError, IntegrityError
from dmv.registry.releases import METRIC_SPLITS, best_run
from dmv.version import Version

if TYPE_CHECKING:
    from dmv.registry import Registry, VersionInfo
    from dmv.reproduce import Report

__all__ = [
    "METRIC_SPLITS",
    "best_run",
    "delete_version",
    "deprecate",
    "release",
    "require_verified",
    "select_run",
    "serving_run",
]


def _not_a_prerelease(version: Version) -> ConflictError:
    return ConflictError(
        f"{version} is a release already",
        hint=f"release a prerelease, e.g. {version.name}@0.{version.y}.{version.z}",
    )


def serving_run(registry: Registry, version: Version) -> int:
    """The run number releasing ``version`` now would serve (refusals as :func:`release`)."""
    if version.released:
        raise _not_a_prerelease(version)
    return registry.serving_run(version)


def require_verified(report: Report) -> None:
    """Refuse, listing every failed check, unless ``report`` is a clean verify."""
    failed = [c for c in report.checks if c.status == "fail"]
    if not failed:
        return
    listed = "; ".join(f"{c.name}: {c.detail}" for c in failed)
    raise IntegrityError(
        f"{report.version} cannot be released: {len(failed)} check(s) failed: {listed}",
        hint="a release serves only what verifies; restore the damaged store from a backup "
        "('dmv restore'), or retrain and release a new prerelease ('dmv verify REF' shows "
        "every check)",
        failed=[c.to_dict() for c in failed],
    )


def release(
    registry: Registry,
    version: Version,
    *,
    verified: Report,
    serving: int,
    major: bool = False,
) -> VersionInfo:
    """Release the prerelease ``version``; returns the new released version.

    ``verified`` is a verify of ``version`` taken while it would serve run
    ``serving`` (:func:`serving_run`); the release is refused unless that verify
    passed, and it serves ``serving`` unless another run was selected since.
    Runs finished since the verify may be "better" now; the release still
    serves the run it verified. Only an explicit choice of another run
    (``dmv select``) in the meantime contradicts it.
    """
    if version.released:
        raise _not_a_prerelease(version)
    require_verified(verified)
    passed = [c.name for c in verified.checks if c.status == "ok"]
    return registry.release_version(version, serving=serving, major=major, verified=passed)


def select_run(registry: Registry, version: Version, run_id: str) -> VersionInfo:
    """Choose the training run a prerelease will serve once released."""
    return registry.select_run(version, run_id)


def deprecate(registry: Registry, version: Version, *, reason: str = "") -> VersionInfo:
    """Mark a version deprecated: still resolvable exactly, skipped by every other reference."""
    return registry.deprecate_version(version, reason=reason)


def delete_version(registry: Registry, version: Version) -> None:
    """Delete a prerelease and its runs; released versions and their sources are immutable.

    The blobs stay in the artifact store until ``dmv fsck`` collects them.
    """
    registry.delete_version(version)
