"""A version's interface, its code and its place in the tree."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dmv.errors import NotFound
from dmv.facade._base import FacadeBase
from dmv.version import Reference, Version

if TYPE_CHECKING:
    from dmv.interface import Interface, InterfaceDiff
    from dmv.tree import Tree

__all__ = ["CodeMixin"]


class CodeMixin(FacadeBase):
    """A version's interface, its code and its place in the tree."""

    # -- interface, code and diff --------------------------------------------

    def interface(self, ref: str | Reference | Version) -> Interface:
        """The interface of the version ``ref`` points at."""
        from dmv.interface import Interface

        info = self.show(ref)
        if not info.interface:
            raise NotFound(
                f"{info.version} has no recorded interface",
                hint="versions registered with an explicit number and no interface= have none",
            )
        return Interface.from_dict(info.interface)

    def interface_diff(
        self, a: str | Reference | Version, b: str | Reference | Version
    ) -> InterfaceDiff:
        """Field-by-field changes from ``a`` to ``b``, each with its compatibility class."""
        from dmv.interface import diff_interfaces

        return diff_interfaces(self.interface(a), self.interface(b))

    def export_interface(self, ref: str | Reference | Version, fmt: str = "openapi") -> str:
        """The interface as an OpenAPI 3.1 document, JSON Schema or a proto3 file."""
        from dmv.interface import export_document

        return export_document(self.interface(ref), self.resolve(ref), fmt)

    def diff(self, a: str | Reference | Version, b: str | Reference | Version) -> dict[str, Any]:
        """What changed from version ``a`` to version ``b``, component by component."""
        from dmv.diff import diff_versions

        return diff_versions(self.registry, self.data_access, self.show(a), self.show(b))

    def code_commit(self, ref: str | Reference | Version) -> str:
        """The git commit the version's selected run was trained from."""
        from dmv.diff import selected_run

        info = self.show(ref)
        run = selected_run(self.registry, info)
        commit = ((run.code or {}).get("commit") if run else None) or None
        if not commit:
            raise NotFound(
                f"{info.version} recorded no git commit",
                hint="train inside a git repository to link versions to code",
            )
        return str(commit)

    def tag(self, ref: str | Reference | Version) -> str:
        """Create the git tag ``name@X.Y.Z-DATA.SPLIT`` on the version's recorded commit."""
        from dmv.gitlink import create_tag, version_tag

        version = self.resolve(ref)
        commit = self.code_commit(version)
        name = version_tag(version)
        create_tag(self.root, commit, name, f"dmv: {version}")
        return name

    def checkout(self, ref: str | Reference | Version) -> str:
        """Check out the commit the version was trained from (refuses a dirty tree)."""
        from dmv.gitlink import checkout

        return checkout(self.root, self.code_commit(ref))

    def tree(self, model: str) -> Tree:
        """The model's versions staged as the pattern's diagram draws them."""
        from dmv.tree import model_tree

        return model_tree(self.registry, model)
