"""Loading a registered model: its file and code from the artifact store, hashes checked.

Each model's stored code gets its own import namespace. Python keeps one module
per name for the whole process (``sys.modules``), so two served models that both
store a ``wrapper.py`` would otherwise share whichever was imported first. While a
model loads, the module names its code defines are taken out of ``sys.modules``
(set aside, not lost) and its own folder is first on ``sys.path``; its classes
keep the modules they came from. When no other model claimed those names, the
modules stay imported (so code that imports lazily, inside ``predict``, still
finds them); when one did, the earlier model's modules are put back.
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dmv.artifacts import ArtifactStore, Blob
from dmv.errors import UntrustedModel
from dmv.flavors import TRUST_HINT, Model, is_unsafe, load
from dmv.flavors.check import write_code
from dmv.interface import Interface

if TYPE_CHECKING:
    from dmv.registry import VersionInfo

__all__ = ["code_namespace", "load_stored", "module_names", "stored_code"]

# One lock for writing code folders and for loading within a namespace: both change
# process-wide state (sys.modules, sys.path).
_lock = threading.RLock()
_folders: dict[str, Path] = {}


def stored_code(store: ArtifactStore, meta: dict[str, Any], what: str) -> dict[str, bytes]:
    """The model's code files, each checked against its digest."""
    files = {}
    for rel, (digest, size) in (meta.get("code") or {}).items():
        files[rel] = store.get_bytes(Blob(str(digest), int(size)), what=f"{what} code {rel}")
    return files


def _code_folder(files: dict[str, bytes]) -> Path:
    """Write the code once per content into a private folder.

    The folder is made by ``mkdtemp`` (mode 0700, an unpredictable name), never a
    shared path another user could have prepared with code of their own.
    """
    digests = sorted((k, hashlib.sha256(v).hexdigest()) for k, v in files.items())
    key = hashlib.sha256(repr(digests).encode()).hexdigest()
    with _lock:
        folder = _folders.get(key)
        if folder is None:
            folder = Path(tempfile.mkdtemp(prefix="dmv-code-"))
            write_code(files, folder)
            _folders[key] = folder
        return folder


def module_names(files: list[str], roots: list[str]) -> set[str]:
    """The top-level module (or package) names stored code defines under its roots."""
    names = set()
    for rel in files:
        for root in roots:
            prefix = "" if root in (".", "") else root.strip("/") + "/"
            if not rel.startswith(prefix):
                continue
            first = rel[len(prefix) :].split("/")[0]
            if first.endswith(".py"):
                names.add(first[:-3])
            elif "/" in rel[len(prefix) :]:
                names.add(first)  # a package (or a namespace package) folder
    return {n for n in names if n.isidentifier()}


def _from(module: Any, folder: Path) -> bool:
    where = getattr(module, "__file__", None) or next(iter(getattr(module, "__path__", [])), "")
    try:
        return bool(where) and Path(where).resolve().is_relative_to(folder.resolve())
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def code_namespace(folder: Path, roots: list[str], names: set[str]) -> Iterator[None]:
    """Import ``names`` from ``folder`` (and only there) while the block runs."""
    with _lock:

        def ours(key: str) -> bool:
            return key.split(".", 1)[0] in names

        others = {k: m for k, m in sys.modules.items() if ours(k) and not _from(m, folder)}
        for key in others:
            del sys.modules[key]
        entries = [str((folder / root).resolve()) for root in roots]
        before = list(sys.path)
        sys.path[:] = [*entries, *(p for p in before if p not in entries)]
        try:
            yield
        finally:
            if others:  # the names were taken: this model keeps its modules to itself
                for key in [k for k in sys.modules if ours(k)]:
                    del sys.modules[key]
                sys.modules.update(others)
                sys.path[:] = before


def load_stored(
    store: ArtifactStore,
    info: VersionInfo,
    run_id: str,
    art: Any,
    *,
    trust_pickle: bool,
) -> Model:
    """The version's model, its hash verified before anything reads it."""
    meta = dict(art.meta or {})
    what = f"{info.version} {run_id} {art.name}"
    if is_unsafe(meta) and not trust_pickle:
        # Refused before the file is even read: nothing in it can run.
        raise UntrustedModel(
            f"{what} is stored as {meta.get('format', 'pickle')} (unsafe-format): "
            "dmv does not load it without trust",
            hint=TRUST_HINT,
        )
    data = store.get_bytes(Blob(art.digest, art.size), what=what)
    files = stored_code(store, meta, what)
    iface = Interface.from_dict(info.interface) if info.interface else None
    if not files:
        return load(data, meta, what=what, trust_pickle=trust_pickle, interface=iface)
    roots = list(meta.get("code_roots") or ["."])
    with code_namespace(_code_folder(files), roots, module_names(list(files), roots)):
        return load(data, meta, what=what, trust_pickle=trust_pickle, interface=iface)
