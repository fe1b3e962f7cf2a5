"""Releasing versions and proving them: release, run selection, deprecation, deletion,
verify and reproduce."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dmv.facade._base import FacadeBase
from dmv.integrations import lineage, signing
from dmv.limits import MAX_REASON, check_text
from dmv.release import releases, reproduce
from dmv.version import Reference, Version, as_reference

if TYPE_CHECKING:
    from dmv.progress import Progress
    from dmv.registry import VersionInfo
    from dmv.release.reproduce import Report

__all__ = ["ReleasesMixin"]


class ReleasesMixin(FacadeBase):
    """Releasing versions and proving them: release, run selection, deprecation, deletion,
    verify and reproduce."""

    def release(self, ref: str | Reference | Version, *, major: bool = False) -> VersionInfo:
        """Release the prerelease ``ref`` as ``N.Y.Z-D.S`` (``major``: start generation N+1).

        Signed with the project's key when ``[signing]`` names one (refused up front when
        ``require_signed`` is set without a key). Refused (IntegrityError) unless a full
        verify of the version passes, and
        (DirtyTreeError) for uncommitted code, unless the project's ``[release]``
        policy lets it through; a prerelease is released once (ConflictError).
        """
        version = self.resolve(ref)
        key = signing.release_key(self.stores.config.signing)  # refused before releasing
        with lineage.track(self.stores, "release", version.name, f"{version.name}.release") as lin:
            if lin:  # off: not even the records it would read
                lineage.hook(lambda: lin.version(self.show(version), None, output=False))
            info = releases.verify_and_release(self.stores, self.data_access, version, major=major)
            if key is not None:
                # After the release's own transaction: a failure here leaves it released and
                # unsigned ('dmv sign REF' signs it), never half-released.
                signing.sign_release(self.stores, self.data_access, info.version, key)
            if lin:
                lineage.hook(lambda: lin.version(info, info.serving_run, output=True))
        return info

    def select_run(self, ref: str | Reference | Version, run_id: str) -> VersionInfo:
        """Choose which training run (``trN``) the prerelease ``ref`` serves once released."""
        return releases.select_run(self.registry, self.resolve(ref), run_id)

    def deprecate(self, ref: str | Reference | Version, *, reason: str = "") -> VersionInfo:
        """Deprecate a version: exact references still work, every other one skips it."""
        check_text(reason, "reason", MAX_REASON)
        return releases.deprecate(self.registry, self.resolve(ref), reason=reason)

    def delete_version(self, ref: str | Reference | Version) -> None:
        """Delete a prerelease that was never released, with its runs."""
        releases.delete_version(self.registry, self.resolve(ref))

    def check_deletable(self, ref: str | Reference | Version) -> Version:
        """Refuse as :meth:`delete_version` would, deleting nothing; the version otherwise."""
        version = self.resolve(ref)
        self.registry.check_deletable(version)
        return version

    def verify(
        self,
        ref: str | Reference | Version,
        *,
        trust_pickle: bool = False,
        progress: Progress | None = None,
    ) -> Report:
        """Re-check every hash and fingerprint the version stands on, and its behaviour.

        The behavioural check loads the model in a fresh process and predicts
        its recorded sample; a pickled model is loaded only with ``trust_pickle``.
        """
        report = reproduce.verify(
            self.stores,
            self.data_access,
            str(as_reference(ref)),
            trust_pickle=trust_pickle,
            progress=progress,
        )
        if self.show(report.version).state == "prerelease":
            return report  # only releases are signed
        for name, status, detail in signing.verify_checks(
            self.stores, self.data_access, report.version
        ):
            report.add(name, status, detail)
        return report

    def reproduce(
        self,
        ref: str | Reference | Version,
        *,
        tolerance: float = 1e-6,
        from_source: bool = False,
        timeout: float | None = None,
        progress: Progress | None = None,
    ) -> Report:
        """Re-run the version's training from its recorded commit; a new run of it."""
        return reproduce.reproduce(
            self.stores,
            self.data_access,
            str(as_reference(ref)),
            tolerance=tolerance,
            from_source=from_source,
            timeout=timeout,
            progress=progress,
        )
