"""Choosing, releasing and proving versions; checking and backing up the stores."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from dmv.facade._base import FacadeBase
from dmv.limits import MAX_REASON, check_text
from dmv.version import Reference, Version, as_reference

if TYPE_CHECKING:
    from dmv.fsck import FsckReport
    from dmv.progress import Progress
    from dmv.registry import VersionInfo
    from dmv.reproduce import Report

__all__ = ["ProvingMixin"]


class ProvingMixin(FacadeBase):
    """Choosing, releasing and proving versions; checking and backing up the stores."""

    def select_run(self, ref: str | Reference | Version, run_id: str) -> VersionInfo:
        """Choose which training run (``trN``) the prerelease ``ref`` serves once released."""
        from dmv import release

        return release.select_run(self.registry, self.resolve(ref), run_id)

    def deprecate(self, ref: str | Reference | Version, *, reason: str = "") -> VersionInfo:
        """Deprecate a version: exact references still work, every other one skips it."""
        from dmv import release

        check_text(reason, "reason", MAX_REASON)
        return release.deprecate(self.registry, self.resolve(ref), reason=reason)

    def delete_version(self, ref: str | Reference | Version) -> None:
        """Delete a prerelease that was never released, with its runs."""
        from dmv import release

        release.delete_version(self.registry, self.resolve(ref))

    def fsck(
        self, *, repair: bool = False, deep: bool = False, grace_seconds: float | None = None
    ) -> FsckReport:
        """Check every store; list or remove what a crash left behind (``deep``: re-hash all)."""
        from dmv.fsck import DEFAULT_GRACE_SECONDS, fsck

        grace = DEFAULT_GRACE_SECONDS if grace_seconds is None else grace_seconds
        return fsck(self.stores, self.data_access, repair=repair, deep=deep, grace_seconds=grace)

    def backup(
        self, dest: str | os.PathLike[str], *, progress: Progress | None = None
    ) -> dict[str, Any]:
        """A consistent copy of registry, warehouse and artifacts in the new folder ``dest``."""
        from dmv.backup import backup

        return backup(self.stores, dest, progress=progress)

    def restore(
        self,
        src: str | os.PathLike[str],
        *,
        force: bool = False,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Replace this project's stores with the backup in ``src`` (``force``: over data)."""
        from dmv.backup import restore

        return restore(self.stores, src, force=force, progress=progress)

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
        from dmv.reproduce import verify

        return verify(
            self.stores,
            self.data_access,
            str(as_reference(ref)),
            trust_pickle=trust_pickle,
            progress=progress,
        )

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
        from dmv.reproduce import reproduce

        return reproduce(
            self.stores,
            self.data_access,
            str(as_reference(ref)),
            tolerance=tolerance,
            from_source=from_source,
            timeout=timeout,
            progress=progress,
        )
