"""What a server asks the registry on every request, answered from memory with a bound.

A server resolves ``name@ref`` and checks the caller's token on every request.
Asking the registry each time costs a database round trip per request, which on
PostgreSQL is most of the time a small model takes to answer. Here each answer
is kept and re-checked with one cheap read, asked at most once every
``refresh`` seconds (the ``serve_refresh`` setting: default 0.25, at most 1):

- :class:`Resolver`: ``name@ref`` → the version, re-checked by each model's
  change mark (:meth:`~dmv.registry.RegistryStore.change_marks`), which every
  registry write touching the model bumps in the write's own transaction (an
  alias set, moved or removed; a release; a deprecation; a serving run chosen;
  a new run; a deletion). A model whose mark moved has its answers dropped.
- :class:`Tokens`: a token's row by the hash of its secret, and whether any token
  exists, re-checked by the token mark
  (:meth:`~dmv.registry.RegistryStore.token_mark`: how many tokens were ever
  created and how many are revoked; a token is only ever created or revoked).

The bound: an answer handed out at time ``r`` is backed by a check whose read
began after ``r - refresh``, and a read sees every transaction committed before
it began. So every request that arrives more than ``refresh`` seconds after a
change commits is answered with the change, in every server on the registry: a
moved alias serves the new version, a deprecated version is refused, a revoked
token is refused. A request that finds the last check too old waits for a new
one; if the registry cannot be read it fails rather than answer from older
memory. A write made by the server's own process (through its API) is seen by
the next request, without waiting (:func:`dmv.registry.local_writes`).
``refresh = 0`` asks the registry on every request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dmv.registry import local_writes
from dmv.version import Reference

if TYPE_CHECKING:
    from dmv.registry import RegistryStore, VersionInfo
    from dmv.registry.tokens import TokenRecord

__all__ = ["MAX_ANSWERS", "Resolver", "Tokens"]

#: Answers kept at most; past it the memory starts afresh (a server answers for a
#: few references; only an unscoped server asked for every version of every model
#: grows, and a full re-read is cheaper than tracking use).
MAX_ANSWERS = 4096


class _Checked:
    """Memory that is re-checked against the registry at most every ``refresh`` seconds."""

    def __init__(self, registry: Callable[[], RegistryStore], refresh: float) -> None:
        self._registry = registry  # called each time: the project may reopen its registry
        self.refresh = refresh
        self._checked = float("-inf")  # when the last check's read began (monotonic)
        self._writes = -1  # local_writes() as the last check saw it
        self._lock = threading.Lock()

    def _fresh(self) -> None:
        """Re-check the memory if the last check is ``refresh`` old or this process wrote."""
        if time.monotonic() - self._checked < self.refresh and local_writes() == self._writes:
            return
        with self._lock:  # one check at a time; the others wait for its answer
            if time.monotonic() - self._checked < self.refresh and local_writes() == self._writes:
                return
            began, writes = time.monotonic(), local_writes()
            self._check()
            self._checked, self._writes = began, writes

    def _check(self) -> None:
        raise NotImplementedError

    def forget(self) -> None:
        """Drop every answer (the next request asks the registry)."""
        with self._lock:
            self._clear()
            self._checked = float("-inf")

    def _clear(self) -> None:
        raise NotImplementedError


class Resolver(_Checked):
    """``name@ref`` → the version it points at, from memory at most ``refresh`` seconds old."""

    def __init__(self, registry: Callable[[], RegistryStore], refresh: float) -> None:
        super().__init__(registry, refresh)
        self._answers: dict[tuple[str, str], VersionInfo] = {}
        self._marks: dict[str, tuple[Any, ...]] = {}  # the mark a model's answers hold at

    def show(self, name: str, ref: str) -> VersionInfo:
        """The version ``name@ref`` points at (raises as the registry's ``resolve`` does)."""
        if self.refresh <= 0:
            return self._registry().resolve(Reference.parse(f"{name}@{ref}"))
        self._fresh()
        answer = self._answers.get((name, ref))
        if answer is not None:
            return answer
        with self._lock:
            return self._learn(name, ref)

    def _check(self) -> None:
        """Drop the answers of every model whose mark moved since they were read."""
        if not self._marks:
            return
        marks = self._registry().change_marks(list(self._marks))
        stale = {name for name, mark in self._marks.items() if marks.get(name) != mark}
        if stale:
            self._drop(stale)

    def _learn(self, name: str, ref: str) -> VersionInfo:
        registry = self._registry()
        # The mark is read before the answer: a change committed in between makes
        # the answer newer than its mark, never older, so the next check re-reads it.
        mark = registry.change_marks([name]).get(name)
        info = registry.resolve(Reference.parse(f"{name}@{ref}"))
        if mark is None:  # created meanwhile: answer, remember nothing
            return info
        if self._marks.get(name, mark) != mark:
            self._drop({name})  # the model changed since its other answers were read
        if len(self._answers) >= MAX_ANSWERS:
            self._clear()
        self._marks[name] = mark
        self._answers[(name, ref)] = info
        return info

    def _drop(self, names: set[str]) -> None:
        self._answers = {k: v for k, v in self._answers.items() if k[0] not in names}
        for name in names:
            self._marks.pop(name, None)

    def _clear(self) -> None:
        self._answers = {}
        self._marks.clear()


class Tokens(_Checked):
    """Token rows by the hash of their secret, from memory at most ``refresh`` seconds old.

    Only tokens the registry knows are kept: an unknown secret is looked up on
    every request, so a token is usable the moment it is created.
    """

    def __init__(self, registry: Callable[[], RegistryStore], refresh: float) -> None:
        super().__init__(registry, refresh)
        self._rows: dict[str, TokenRecord] = {}
        self._mark: tuple[int, int] | None = None

    def exist(self) -> bool:
        """Whether any token was ever created (revoked ones count)."""
        if self.refresh <= 0:
            return self._registry().has_tokens()
        self._fresh()
        mark = self._mark
        return self._registry().has_tokens() if mark is None else mark[0] > 0

    def by_hash(self, digest: str) -> TokenRecord | None:
        """The token whose secret hashes to ``digest`` (None: no such token)."""
        if self.refresh <= 0:
            return self._registry().token_by_hash(digest)
        self._fresh()
        row = self._rows.get(digest)
        if row is not None:
            return row
        with self._lock:
            registry = self._registry()
            mark = registry.token_mark()  # before the row, as Resolver._learn reads its mark
            row = registry.token_by_hash(digest)
            if mark != self._mark:
                self._rows = {}  # tokens changed since the kept rows were read
                self._mark = mark
            if row is not None:
                if len(self._rows) >= MAX_ANSWERS:
                    self._rows = {}
                self._rows[digest] = row
            return row

    def _check(self) -> None:
        mark = self._registry().token_mark()
        if mark != self._mark:
            self._rows = {}
            self._mark = mark

    def _clear(self) -> None:
        self._rows = {}
        self._mark = None
