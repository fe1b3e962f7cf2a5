"""What every part of the facade stands on: the stores, and reading a version."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from dmv.data.service import ProjectData
from dmv.version import Reference, Version, as_reference

if TYPE_CHECKING:
    from dmv.artifacts import ArtifactStore
    from dmv.config import Config
    from dmv.registry import RegistryStore, VersionInfo
    from dmv.stores import Stores

__all__ = ["FacadeBase"]


class FacadeBase:
    """The project's root, settings and stores, and the version lookups every method uses."""

    root: Path
    config: Config
    #: The settings and stores the operations below the facade are given.
    stores: Stores

    @property
    def registry(self) -> RegistryStore:
        return self.stores.registry

    @property
    def artifacts(self) -> ArtifactStore:
        return self.stores.artifacts

    @cached_property
    def data_access(self) -> ProjectData:
        """The data operations domain code calls, over this project's stores."""
        return ProjectData(self.stores)

    def show(self, ref: str | Reference | Version) -> VersionInfo:
        """Everything the registry knows of the version ``ref`` points at."""
        return self.registry.resolve(as_reference(ref))

    def resolve(self, ref: str | Reference | Version) -> Version:
        """The exact version ``ref`` points at now."""
        return self.show(ref).version
