"""What an operation below the facade is given: the project's settings and stores.

:class:`Stores` holds the settings, the registry and the artifact store (each
opened on first use); the data layer's operations over them are
:class:`dmv.data.service.ProjectData`. Domain modules take these, never the
:class:`~dmv.project.Project` itself.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from dmv.artifacts import ArtifactStore, open_artifacts
from dmv.config import Config

if TYPE_CHECKING:
    from dmv.registry import RegistryStore

__all__ = ["Stores"]


class Stores:
    """A project's root, settings, registry and artifact store (opened on first use)."""

    def __init__(self, root: Path, config: Config) -> None:
        self.root = root
        self.config = config

    @cached_property
    def registry(self) -> RegistryStore:
        from dmv.registry import open_registry  # lazy: sqlalchemy

        registry: RegistryStore = open_registry(
            self.config.location("registry"), actor=self.config["actor"] or None
        )
        if self.config.webhooks:  # each event of theirs joins the outbox with its change
            registry.subscribe_webhooks({h.name: h.events for h in self.config.webhooks})
        return registry

    @cached_property
    def artifacts(self) -> ArtifactStore:
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
