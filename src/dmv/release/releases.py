"""Release, run selection, deprecation and deletion; released versions never change.

Deletion takes a prerelease with its runs, or a whole model that was never released.

Releasing the prerelease ``0.Y.Z-D.S`` creates ``N.Y.Z-D.S`` for the same
trained model, where N is the model's current release generation (1 for the
first release; ``major=True`` starts the next). The release serves one training
run of its prerelease: the one chosen with :func:`select_run`, else the best by
the model's primary metric, else the latest.

A release is a gate: it takes the :class:`~dmv.release.reproduce.Report` of a full
verify of the prerelease (model files and artifacts re-hashed, split parts
against their fingerprints, interface and logic records, and whatever else
verify checks) and refuses, listing the failed checks, unless every check
passed. Damaged files and records have no way around it: such a version is
repaired or retrained, never released.

Three things are refused by default but may be let through by the project's
policy (``[release]`` in ``dmv.toml``, :class:`~dmv.config.ReleasePolicy`): code
that was not committed (``allow_dirty``), a stored split that fails its check
(``allow_unverified_data``), and a model that fails its behaviour check
(``allow_failed_behaviour``). A release let through says so: its record carries
the flags (``VersionInfo.flags``), and the audit log records the override.

A prerelease is released once. ``major`` starts the next generation only for a
prerelease that has no release yet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dmv.config import ReleasePolicy
from dmv.data.catalog import warehouse
from dmv.data.shared import drop_split_tables
from dmv.errors import ConflictError, DirtyTreeError, IntegrityError
from dmv.release.gates import gates
from dmv.release.policy import require
from dmv.release.reproduce import Report, verify
from dmv.version import Version

if TYPE_CHECKING:
    from dmv.data.service import ProjectData
    from dmv.registry import RegistryStore, VersionInfo
    from dmv.release.reproduce import Check
    from dmv.stores import Stores


__all__ = [
    "delete_model",
    "delete_version",
    "deprecate",
    "release",
    "require_verified",
    "select_run",
    "serving_run",
    "verify_and_release",
]


def _not_a_prerelease(version: Version) -> ConflictError:
    return ConflictError(
        f"{version} is a release already",
        hint=f"release a prerelease, e.g. {version.name}@0.{version.y}.{version.z}",
    )


def serving_run(registry: RegistryStore, version: Version) -> int:
    """The run number releasing ``version`` now would serve (refusals as :func:`release`)."""
    if version.released:
        raise _not_a_prerelease(version)
    return registry.serving_run(version)


def _policy_key(check: Check) -> str | None:
    """The ``[release]`` key that may let this failed check through (None: nothing may)."""
    if check.name == "split":
        return "allow_unverified_data"
    if check.name.startswith("behaviour"):
        return "allow_failed_behaviour"
    return None


def require_verified(
    report: Report, *, dirty: bool = False, policy: ReleasePolicy | None = None
) -> list[str]:
    """Refuse, listing every problem, unless ``report`` is a clean verify of a version
    trained from committed code, or the ``policy`` lets each problem through.

    Returns the policy keys that let a problem through (empty: nothing was overridden).
    """
    policy = policy or ReleasePolicy()
    failed = [c for c in report.checks if c.status == "fail"]
    overrides: list[str] = []
    blocking = []
    for check in failed:
        key = _policy_key(check)
        if key is not None and getattr(policy, key):
            if key not in overrides:
                overrides.append(key)
        else:
            blocking.append(check)
    dirty_refused = dirty and not policy.allow_dirty
    if dirty and policy.allow_dirty:
        overrides.insert(0, "allow_dirty")
    if not blocking and not dirty_refused:
        return overrides
    dirty_text = "trained from uncommitted code (dirty)"
    dirty_hint = (
        "commit the code and retrain, or let the project release dirty versions with "
        "allow_dirty = true under [release] in dmv.toml"
    )
    if not blocking:
        raise DirtyTreeError(f"{report.version} cannot be released: {dirty_text}", hint=dirty_hint)
    listed = "; ".join(f"{c.name}: {c.detail}" for c in blocking)
    also = f"; it was also {dirty_text}" if dirty_refused else ""
    allowable = sorted({k for c in blocking if (k := _policy_key(c))})
    policy_hint = (
        f", or set {' and '.join(f'{k} = true' for k in allowable)} under [release] in "
        "dmv.toml to release it flagged"
        if allowable
        else ""
    )
    raise IntegrityError(
        f"{report.version} cannot be released: {len(blocking)} check(s) failed: {listed}{also}",
        hint="a release serves only what verifies; restore the damaged store from a backup "
        "('dmv restore'), or retrain and release a new prerelease ('dmv verify REF' shows "
        f"every check){policy_hint}",
        failed=[c.to_dict() for c in blocking],
    )


def release(
    registry: RegistryStore,
    version: Version,
    *,
    verified: Report,
    serving: int,
    major: bool = False,
    dirty: bool = False,
    policy: ReleasePolicy | None = None,
) -> VersionInfo:
    """Release the prerelease ``version``; returns the new released version.

    ``verified`` is a verify of ``version`` taken while it would serve run
    ``serving`` (:func:`serving_run`); the release is refused unless that verify
    passed, and it serves ``serving`` unless another run was selected since.
    Runs finished since the verify may be "better" now; the release still
    serves the run it verified. Only an explicit choice of another run
    (``dmv select``) in the meantime contradicts it.

    ``dirty``: the version was trained from uncommitted code. ``policy`` says what may
    be let through (default: nothing); what was is flagged on the release and audited.
    """
    if version.released:
        raise _not_a_prerelease(version)
    overrides = require_verified(verified, dirty=dirty, policy=policy)
    passed = [c.name for c in verified.checks if c.status == "ok"]
    return registry.release_version(
        version, serving=serving, major=major, verified=passed, overrides=overrides
    )


def verify_and_release(
    stores: Stores, data: ProjectData, version: Version, *, major: bool = False
) -> VersionInfo:
    """Verify the prerelease ``version`` in full and release it serving the run verified.

    The behavioural check loads the model as the project's ``trust`` allows; the
    project's ``[release]`` policy says what may be let through, flagged. Refusals
    that need no verify (a release already, a prerelease released already, no run)
    come first.
    """
    serving = serving_run(stores.registry, version)
    stores.registry.require_unreleased(version)
    report = verify(stores, data, version.ref, trust_pickle=stores.trusts_pickle)
    info = stores.registry.get_version(version)
    policy = stores.config.release_policy
    decision, _, _ = gates(
        stores,
        data,
        info,
        failed_checks=[c.to_dict() for c in report.checks if c.status == "fail"],
        major=major,
        # The cross-evaluation runs only when the metric is gated: a release with no
        # metric gate reads what is recorded and costs nothing more.
        run_missing=policy.must_not_regress_by is not None,
    )
    if any(g.name not in ("verify", "dirty") for g in decision.failed):
        require(decision)  # every failed gate, verify's and dirty's included
    return release(
        stores.registry,
        version,
        verified=report,
        serving=serving,
        major=major,
        dirty=info.dirty,
        policy=stores.config.release_policy,
    )


def select_run(registry: RegistryStore, version: Version, run_id: str) -> VersionInfo:
    """Choose the training run a prerelease will serve once released."""
    return registry.select_run(version, run_id)


def deprecate(registry: RegistryStore, version: Version, *, reason: str = "") -> VersionInfo:
    """Mark a version deprecated: still resolvable exactly, skipped by every other reference."""
    return registry.deprecate_version(version, reason=reason)


def delete_version(registry: RegistryStore, version: Version) -> None:
    """Delete a prerelease and its runs; released versions and their sources are immutable.

    The blobs stay in the artifact store until ``dmv fsck`` collects them.
    """
    registry.delete_version(version)


def delete_model(stores: Stores, name: str) -> dict[str, Any]:
    """Delete a model that was never released, with its stored splits' tables and the
    blobs nothing else refers to; the registry goes first, in one audited transaction."""
    summary = stores.registry.delete_model(name)
    if summary["tables"]:
        with warehouse(stores) as wh:
            drop_split_tables(wh, summary["tables"])
    kept = stores.registry.referenced_digests(summary["digests"])
    removed = [d for d in summary["digests"] if d not in kept]
    for digest in removed:
        stores.artifacts.remove(digest)
    return {**summary, "blobs_removed": len(removed), "blobs_kept": len(kept)}
