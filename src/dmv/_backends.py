"""``{scheme: factory}`` tables for dmv's stores, open to other packages.

A store is opened from its location's URL scheme (``sqlite``, ``postgresql``,
``s3``, a plain path is ``file``). dmv's own backends register in the same
table, through the same call, that another package's do; a package adds one
with an entry point in the table's group (``dmv.registries``,
``dmv.artifacts``) whose name is the scheme and whose object is the factory::

    [project.entry-points."dmv.artifacts"]
    gs = "mypackage.store:GcsArtifacts"

A scheme registered once keeps its factory: registering it again is refused
and an entry point for it is ignored, so installing a package cannot take over
where an existing store's data goes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from dmv.errors import ConfigError

__all__ = ["Backends", "scheme_of"]

T = TypeVar("T")


def scheme_of(location: str) -> str:
    """The URL scheme of ``location``: ``postgresql+psycopg`` is ``postgresql``, a path ``file``."""
    if "://" not in location:
        return "file"
    return location.split("://", 1)[0].split("+", 1)[0].lower()


class Backends(Generic[T]):
    """One kind of store's table: scheme → factory(location, **options)."""

    def __init__(
        self,
        kind: str,
        group: str,
        fallback: Callable[[str], Callable[..., T] | None] | None = None,
    ) -> None:
        self.kind = kind  # for messages: "registry", "artifact store"
        self.group = group  # the entry-point group other packages register in
        # For a scheme nothing registered: a family of backends (fsspec's protocols).
        self.fallback = fallback
        self._factories: dict[str, Callable[..., T]] = {}
        self._loaded = False
        self._lock = threading.Lock()

    def register(self, scheme: str, factory: Callable[..., T]) -> None:
        """Add ``factory`` for ``scheme``; a scheme that has one already is refused."""
        with self._lock:
            known = self._factories.get(scheme)
            if known is not None and known is not factory:
                raise ConfigError(
                    f"the {self.kind} scheme {scheme!r} is registered already",
                    hint=f"uninstall the package that registers {scheme!r} in {self.group}",
                )
            self._factories[scheme] = factory

    def schemes(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._factories)

    def factory(self, location: str) -> Callable[..., T]:
        scheme = scheme_of(location)
        found = self._factories.get(scheme)
        if found is None:
            self._load_entry_points()
            found = self._factories.get(scheme)
        if found is None and self.fallback is not None:
            found = self.fallback(scheme)
        if found is None:
            raise ConfigError(
                f"no {self.kind} backend for {scheme}:// locations",
                hint=f"known: {', '.join(self.schemes())}; "
                f"a package adds one with an entry point in {self.group}",
            )
        return found

    def open(self, location: str, **options: object) -> T:
        return self.factory(location)(location, **options)

    def _load_entry_points(self) -> None:
        if self._loaded:
            return
        from importlib.metadata import entry_points

        self._loaded = True
        for ep in entry_points(group=self.group):
            if ep.name in self._factories:
                continue  # dmv's own, or a package loaded already
            self.register(ep.name, ep.load())
