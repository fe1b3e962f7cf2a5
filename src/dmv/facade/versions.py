"""Reading versions: listings, explanations, runs, interfaces, diffs and the tree."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dmv.errors import NotFound
from dmv.facade._base import FacadeBase
from dmv.interface import Interface, diff_interfaces, export_document
from dmv.logic.git import version_branch, version_branches
from dmv.reports.diff import diff_versions
from dmv.reports.explain import explain
from dmv.reports.tree import model_tree, with_branches
from dmv.version import Reference, Version, as_reference, check_name

if TYPE_CHECKING:
    from dmv.interface import InterfaceDiff
    from dmv.registry import RunInfo, VersionInfo
    from dmv.reports.tree import Tree

__all__ = ["VersionsMixin"]


class VersionsMixin(FacadeBase):
    """Reading versions: listings, explanations, runs, interfaces, diffs and the tree."""

    def versions(self, model: str, *, state: str | None = None) -> list[VersionInfo]:
        """A model's versions in dmv's precedence (X, Y, Z, then creation time)."""
        return self.registry.list_versions(check_name(model), state=state)

    def explain(self, ref: str | Reference | Version) -> dict[str, Any]:
        """The version ``ref`` points at, explained part by part (what ``dmv show`` prints):
        its parts, metrics per split over its runs, params, code, data, serving run, release."""
        return explain(self.registry, self.data_access, self.show(ref))

    def runs(self, ref: str | Reference | Version) -> list[RunInfo]:
        """The training runs (tr0, tr1, …) of a version, each with its evaluation."""
        return self.registry.list_runs(self.resolve(ref))

    def get_run(self, ref: str | Reference | Version, run_id: str) -> RunInfo:
        return self.registry.get_run(as_reference(ref).name, run_id, self.resolve(ref))

    # -- interface, diff and tree ------------------------------------------------

    def interface(self, ref: str | Reference | Version) -> Interface:
        """The interface of the version ``ref`` points at."""
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
        return diff_interfaces(self.interface(a), self.interface(b))

    def export_interface(self, ref: str | Reference | Version, fmt: str = "openapi") -> str:
        """The interface as an OpenAPI 3.1 document, JSON Schema or a proto3 file."""
        return export_document(self.interface(ref), self.resolve(ref), fmt)

    def diff(self, a: str | Reference | Version, b: str | Reference | Version) -> dict[str, Any]:
        """What changed from version ``a`` to version ``b``, component by component."""
        return diff_versions(self.registry, self.data_access, self.show(a), self.show(b))

    def tree(self, model: str) -> Tree:
        """The model's versions staged as the pattern's diagram draws them."""
        tree = model_tree(self.registry, model)
        # Each version's branch ([git] branch_pattern), shown where it exists.
        pattern = self.config.branch_pattern
        names = {
            n.id: version_branch(Version.parse(f"{model} {n.id}"), pattern)
            for n in tree.nodes
            if n.stage != "experiment"
        }
        existing = version_branches(self.root, names.values())
        return with_branches(tree, {i: b for i, b in names.items() if b in existing})
