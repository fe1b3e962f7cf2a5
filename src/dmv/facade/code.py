"""The code a version was trained from: its git commit, a tag or branch on it, a checkout."""

from __future__ import annotations

from dmv.facade._base import FacadeBase
from dmv.logic.git import (
    checkout,
    create_branch,
    create_tag,
    version_branch,
    version_branches,
    version_tag,
)
from dmv.release.reproduce import training_commit
from dmv.version import Reference, Version

__all__ = ["CodeMixin"]


class CodeMixin(FacadeBase):
    """The code a version was trained from: its git commit, a tag or branch on it, a checkout."""

    def code_commit(self, ref: str | Reference | Version) -> str:
        """The git commit the version's selected run was trained from."""
        return training_commit(self.registry, self.show(ref))

    def tag(self, ref: str | Reference | Version) -> str:
        """Create the git tag ``name@X.Y.Z-DATA.SPLIT`` on the version's recorded commit."""
        version = self.resolve(ref)
        name = version_tag(version)
        create_tag(self.root, self.code_commit(version), name, f"dmv: {version}")
        return name

    def checkout(self, ref: str | Reference | Version) -> str:
        """Check out the commit the version was trained from (refuses a dirty tree)."""
        return checkout(self.root, self.code_commit(ref))

    def branch(self, ref: str | Reference | Version) -> dict[str, str]:
        """Create the version's branch (``[git] branch_pattern``) at its recorded commit."""
        version = self.resolve(ref)
        name = version_branch(version, self.config.branch_pattern)
        commit = create_branch(self.root, self.code_commit(version), name)
        return {"version": str(version), "branch": name, "commit": commit}

    def version_branch(self, ref: str | Reference | Version) -> str | None:
        """The version's branch when it exists in the project's repository (else None)."""
        name = version_branch(self.resolve(ref), self.config.branch_pattern)
        return name if version_branches(self.root, [name]) else None
