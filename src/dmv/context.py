"""What an operation below the facade is given: the project's settings and stores.

:class:`Stores` holds the settings, the registry and the artifact store (each
opened on first use); :class:`DataAccess` is the set of data operations domain
code calls, bound by the facade to the project's warehouse. Domain modules take
these, never the :class:`~dmv.project.Project` itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dmv.config import Config

if TYPE_CHECKING:
    from dmv.artifacts import ArtifactStore
    from dmv.data.catalog import QueryInfo, SplitInfo
    from dmv.fsck import FsckReport
    from dmv.registry import Registry
    from dmv.version import Version

__all__ = ["DataAccess", "Stores"]


@dataclass(frozen=True)
class DataAccess:
    """The data operations verify, fsck, diff, explain and runs call.

    Each is a plain callable, so a domain module depends on what it calls, not
    on where the data lives.
    """

    #: ``(model, DATA)``: a registered retrieval.
    query: Callable[[str, str], QueryInfo]
    #: ``(model, DATA, SPLIT)``: a stored split.
    split: Callable[[str, str, str], SplitInfo]
    #: ``(model)``: every stored split of a model.
    splits: Callable[[str], list[SplitInfo]]
    #: ``(model, 'DATA.SPLIT')``: a stored split's fingerprints recomputed.
    verify: Callable[[str, str], dict[str, Any]]
    #: ``(model, DATA, SPLIT)``: does the source still give the split's rows?
    source_matches: Callable[[str, str, str], dict[str, Any]]
    #: ``verify`` lines for the split a version was trained on.
    split_checks: Callable[[Version], list[tuple[str, str, str]]]
    #: ``(report, repair, grace_seconds)``: the warehouse's tables checked.
    fsck_tables: Callable[[FsckReport, bool, float], set[str]]
    #: ``(a, b)``: what changed in the data between two versions.
    diff: Callable[[Version, Version], dict[str, Any]]
    #: ``(model, 'DATA.SPLIT', part, format)``: one part of a stored split.
    read_part: Callable[[str, str, str, str], Any]


class Stores:
    """A project's root, settings, registry and artifact store (opened on first use)."""

    def __init__(self, root: Path, config: Config) -> None:
        self.root = root
        self.config = config

    @cached_property
    def registry(self) -> Registry:
        from dmv.registry import open_registry

        registry: Registry = open_registry(
            self.config.location("registry"), actor=self.config["actor"] or None
        )
        return registry

    @cached_property
    def artifacts(self) -> ArtifactStore:
        from dmv.artifacts import open_artifacts

        return open_artifacts(self.config.location("artifacts"))

    @property
    def trusts_pickle(self) -> bool:
        """Whether the project's ``trust`` setting allows pickled models."""
        return "pickle" in self.config["trust"]

    def close(self) -> None:
        if "registry" in self.__dict__:
            self.registry.close()

    def reopen(self) -> None:
        """Close the registry; the next use opens it again (on whatever file is there then)."""
        self.close()
        self.__dict__.pop("registry", None)
