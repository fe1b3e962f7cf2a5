"""The registry's versions: register, look up, resolve and list them.

Every path here runs on a :class:`~dmv.registry.compiled.Tx`: on a SQLite file
the statements run compiled on ``sqlite3``, elsewhere through SQLAlchemy; both
return the same records (one mapper, :mod:`dmv.registry.rows`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import Any

from dmv.errors import ImmutableError
from dmv.registry import statements as s
from dmv.registry.compiled import Tx
from dmv.registry.core import JSON_VERSION_COLUMNS, RegistryCore, no_model, stored_json
from dmv.registry.records import VersionInfo
from dmv.registry.rows import source_numbers, version_info, version_listing
from dmv.version import Reference, Version

__all__ = ["VersionsMixin"]

Listing = tuple[tuple[Any, ...], tuple[VersionInfo, ...]]


class VersionsMixin(RegistryCore):
    """Versions: ``name X.Y.Z-DATA.SPLIT`` with their components, state and aliases."""

    def create_version(self, version: Version, **components: Any) -> VersionInfo:
        """Register ``version`` (the model is created if missing); idempotent."""

        def write(tx: Tx) -> VersionInfo:
            model_id = self._ensure_model_id(tx, version.name)
            values = self._add_version(tx, model_id, version, components)
            if values is None or values["released_from"] is not None:
                return self._info(tx, self._resolve(tx, Reference.exact(version)))
            # A new row: no aliases, no runs (a deleted version's runs went with it),
            # every other field as just stored (JSON as reading it back returns it).
            row = {
                **{
                    k: stored_json(v) if k in JSON_VERSION_COLUMNS else v for k, v in values.items()
                },
                "source_x": None,
            }
            return version_info(row, version.name, (), 0)

        return self._twrite(write)

    def get_version(self, version: Version) -> VersionInfo:
        ref = Reference.exact(version)
        return self._tread(lambda tx: self._info(tx, self._resolve(tx, ref)))

    def list_versions(self, model: str, *, state: str | None = None) -> list[VersionInfo]:
        """The model's versions in dmv's precedence: X, Y, Z, then creation.

        The result is cached per model and served again only while the model's
        token (see :meth:`_model_token`) is unchanged: every write that touches
        the model bumps it in its own transaction, in any process, so a cached
        list is never stale. The records are immutable; each call gets its own list.
        """
        key = (model, state)
        hit = self._list_cache.get(key)
        if hit is not None and self._model_token(model) == hit[0]:
            return list(hit[1])
        token, infos = self._tread(lambda tx: self._list_versions(tx, model, state))
        if len(self._list_cache) >= 64:
            self._list_cache.clear()
        self._list_cache[key] = (token, infos)
        return list(infos)

    def list_versions_uncached(self, model: str, *, state: str | None = None) -> list[VersionInfo]:
        """:meth:`list_versions` read from the database every time (no cache consulted)."""
        return list(self._tread(lambda tx: self._list_versions(tx, model, state))[1])

    def _list_versions(self, tx: Tx, model: str, state: str | None) -> Listing:
        # The token first: the rows read after it are at least as new as it is.
        m = tx.first(s.model_token(), {"name": model})
        if m is None:
            raise no_model(model)
        token = (m["id"], m["created_at"], m["seq"])
        params: dict[str, Any] = {"model_id": m["id"]}
        if state is not None:
            params["state"] = state
        names, rows = tx.table(s.versions_of_model(state is not None), params)
        by_version: dict[int, list[str]] = {}
        for a in tx.all(s.aliases_of_model(), {"model_id": m["id"]}):
            by_version.setdefault(a["version_id"], []).append(a["alias"])
        aliases = {vid: tuple(found) for vid, found in by_version.items()}
        runs = {
            r["version_id"]: r["runs"]
            for r in tx.all(s.run_counts_of_model(), {"model_id": m["id"]})
        }
        # A release's source is a version of the same model: usually in the rows read.
        column = names.index("released_from")
        wanted = set(map(itemgetter(column), rows))
        wanted.discard(None)
        sources = source_numbers(names, rows, wanted) if wanted else {}
        if wanted - sources.keys():  # filtered out by state: read their numbers
            sources = source_numbers(*tx.table(s.version_numbers(), {"model_id": m["id"]}), wanted)
        return token, version_listing(names, rows, model, aliases, runs, sources)

    def resolve(self, ref: Reference | str) -> VersionInfo:
        """The version a reference points at, now."""
        r = Reference.parse(ref) if isinstance(ref, str) else ref
        return self._tread(lambda tx: self._info(tx, self._resolve(tx, r)))

    def change_marks(self, models: Sequence[str]) -> dict[str, tuple[Any, ...]]:
        """Each existing model's change mark, read in one transaction (absent: no such model).

        A mark is ``(id, created_at, seq)``: every audited write that touches the
        model (an alias set, moved or removed, a release, a deprecation, a serving
        run chosen, a run, a deletion) bumps ``seq`` in its own transaction, so an
        unchanged mark proves that nothing a reference resolves to has changed.
        """

        def read(tx: Tx) -> dict[str, tuple[Any, ...]]:
            marks: dict[str, tuple[Any, ...]] = {}
            for name in models:
                row = tx.first(s.model_token(), {"name": name})
                if row is not None:
                    marks[name] = (row["id"], row["created_at"], row["seq"])
            return marks

        return self._tread(read)

    def ensure_mutable(self, versions: Iterable[VersionInfo]) -> None:
        """Refuse to change anything that belongs to a released version."""
        for info in versions:
            if info.state != "prerelease":
                raise ImmutableError(
                    f"{info.version} is {info.state}: its runs, files, splits and metadata "
                    "cannot change",
                    hint="deprecate it instead, or work on a new prerelease",
                )
