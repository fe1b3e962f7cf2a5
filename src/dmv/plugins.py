"""``{scheme: factory}`` tables for dmv's stores, open to other packages.

A store is opened from its location's URL scheme (``sqlite``, ``postgresql``,
``s3``; a plain path has the table's default scheme, ``file`` unless the table
says otherwise). dmv's own backends register in the same table, through the
same call, that another package's do; a package adds one with an entry point
in the table's group (``dmv.registries``, ``dmv.artifacts``,
``dmv.warehouses``) whose name is the scheme and whose object is the
factory::

    [project.entry-points."dmv.artifacts"]
    gs = "mypackage.store:GcsArtifacts"

A factory is registered as the callable itself or as ``"module:attribute"``,
imported on first use, so a backend whose library is heavy costs nothing until
a store of its kind is opened. Entry points are registered that way too: a
package that is installed but never used is never imported.

A plug-in never shadows a built-in: a table's built-ins are registered when the
module that defines the table is imported, before any entry point is read, and
a scheme that has a factory keeps it. Registering it again is refused and an
entry point for it is ignored, so installing a package cannot take over where
an existing store's data goes. A table's ``fallback`` (a family of built-ins,
e.g. every protocol fsspec knows) is asked before the entry points, for the
same reason.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import Generic, TypeVar, cast

from dmv.errors import ConfigError, DmvError

__all__ = ["Backends", "scheme_of"]

T = TypeVar("T")


def scheme_of(location: str, default: str = "file") -> str:
    """The URL scheme of ``location``, lowercase, without a ``+driver`` suffix.

    ``postgresql+psycopg://…`` is ``postgresql``; a path (``C:\\data`` too) is
    ``default``.
    """
    if "://" not in location:
        return default
    head = location.split("://", 1)[0]
    if not head or "/" in head or "\\" in head:
        return default
    return head.split("+", 1)[0].lower()


def _resolve(kind: str, value: str) -> Callable[..., object]:
    """The object ``"module:attribute"`` names (``attribute`` may be dotted)."""
    module, _, attr = value.partition(":")
    found: object = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        found = getattr(found, part)
    if not callable(found):
        raise ConfigError(
            f"the {kind} backend {value} is not callable",
            hint="point the entry point at a class or function (module:attribute)",
        )
    return found


class Backends(Generic[T]):
    """One kind of store's table: scheme → factory(location, **options).

    ``fallback(scheme)`` gives a factory for a scheme nothing registered (a
    family of built-ins); ``default`` is the scheme of a location with no
    ``scheme://``; ``unknown(scheme, known)`` builds the error for a scheme no
    one provides (a :class:`~dmv.errors.ConfigError` unless given).
    """

    def __init__(
        self,
        kind: str,
        group: str,
        fallback: Callable[[str], Callable[..., T] | None] | None = None,
        *,
        default: str = "file",
        unknown: Callable[[str, list[str]], DmvError] | None = None,
    ) -> None:
        self.kind = kind  # for messages: "registry", "artifact store", "warehouse"
        self.group = group  # the entry-point group other packages register in
        self.fallback = fallback
        self.default = default
        self.unknown = unknown
        self._factories: dict[str, Callable[..., T] | str] = {}
        self._imported: dict[str, Callable[..., T]] = {}
        self._plugins: set[str] = set()  # the schemes entry points registered
        self._loaded = False
        self._lock = threading.Lock()

    def register(self, scheme: str, factory: Callable[..., T] | str) -> None:
        """Add ``factory`` (or its ``"module:attribute"``) for ``scheme``.

        A scheme that has a different factory already is refused.
        """
        scheme = scheme.lower()
        with self._lock:
            known = self._factories.get(scheme)
            if known is not None and known is not factory and known != factory:
                raise ConfigError(
                    f"the {self.kind} scheme {scheme!r} is registered already",
                    hint=f"uninstall the package that registers {scheme!r} in {self.group}",
                )
            self._factories[scheme] = factory

    def schemes(self) -> list[str]:
        """Every registered scheme, built-in or from an entry point."""
        self._load_entry_points()
        return sorted(self._factories)

    def scheme_of(self, location: str) -> str:
        """``location``'s scheme by this table's rule (a path is :attr:`default`)."""
        return scheme_of(location, self.default)

    def factory(self, location: str) -> Callable[..., T]:
        """The factory that opens ``location``; an unknown scheme raises."""
        scheme = self.scheme_of(location)
        found = self._factories.get(scheme)
        if found is None and self.fallback is not None:
            found = self.fallback(scheme)
        if found is None:
            self._load_entry_points()
            found = self._factories.get(scheme)
        if found is None:
            known = self.schemes()
            if self.unknown is not None:
                raise self.unknown(scheme, known)
            raise ConfigError(
                f"no {self.kind} backend for {scheme}:// locations",
                hint=f"known: {', '.join(known)}; "
                f"a package adds one with an entry point in {self.group}",
            )
        if isinstance(found, str):
            return self._import(found)
        return found

    def open(self, location: str, **options: object) -> T:
        """The store at ``location``, opened by its scheme's factory."""
        return self.factory(location)(location, **options)

    def refresh(self) -> None:
        """Forget what entry points registered; they are read again when next needed.

        For a process in which a package was installed or removed since the
        table was first used. What was registered by a call stays.
        """
        with self._lock:
            for scheme in self._plugins:
                self._factories.pop(scheme, None)
            self._plugins.clear()
            self._imported.clear()
            self._loaded = False

    def _import(self, value: str) -> Callable[..., T]:
        loaded = self._imported.get(value)
        if loaded is None:
            loaded = cast("Callable[..., T]", _resolve(self.kind, value))
            self._imported[value] = loaded
        return loaded

    def _load_entry_points(self) -> None:
        """Register the group's entry points, once; two packages claiming one scheme are refused."""
        if self._loaded:
            return
        from importlib.metadata import entry_points

        builtin = set(self._factories)
        found: dict[str, str] = {}
        for ep in entry_points(group=self.group):
            scheme = ep.name.lower()
            if scheme in builtin or (self.fallback is not None and self.fallback(scheme)):
                continue  # a plug-in never shadows a built-in
            if found.setdefault(scheme, ep.value) != ep.value:
                raise ConfigError(
                    f"the {self.kind} scheme {scheme!r} is registered already",
                    hint=f"two packages register {scheme!r} in {self.group} "
                    f"({found[scheme]} and {ep.value}): uninstall one",
                )
        for scheme, value in found.items():
            self.register(scheme, value)
            self._plugins.add(scheme)
        self._loaded = True
