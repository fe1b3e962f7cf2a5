"""Loading a registered model: its file and code from the artifact store, hashes checked."""

from __future__ import annotations

import hashlib
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dmv.flavors import TRUST_HINT, Model, UntrustedModel, is_unsafe, load

if TYPE_CHECKING:
    from dmv.artifacts import ArtifactStore
    from dmv.registry import VersionInfo

__all__ = ["load_stored", "stored_code"]

_lock = threading.Lock()
_folders: dict[str, Path] = {}


def stored_code(store: ArtifactStore, meta: dict[str, Any], what: str) -> dict[str, bytes]:
    """The model's code files, each checked against its digest."""
    from dmv.artifacts import Blob

    files = {}
    for rel, (digest, size) in (meta.get("code") or {}).items():
        files[rel] = store.get_bytes(Blob(str(digest), int(size)), what=f"{what} code {rel}")
    return files


def _code_folder(files: dict[str, bytes], roots: list[str]) -> None:
    """Write the code once per content into a private folder and import from it.

    The folder is made by ``mkdtemp`` (mode 0700, an unpredictable name), never a
    shared path another user could have prepared with code of their own.
    """
    from dmv.flavors._check import write_code

    digests = sorted((k, hashlib.sha256(v).hexdigest()) for k, v in files.items())
    key = hashlib.sha256(repr(digests).encode()).hexdigest()
    with _lock:
        folder = _folders.get(key)
        if folder is None:
            folder = Path(tempfile.mkdtemp(prefix="dmv-code-"))
            write_code(files, folder)
            _folders[key] = folder
        for root in roots:
            entry = str((folder / root).resolve())
            if entry not in sys.path:
                sys.path.insert(0, entry)


def load_stored(
    store: ArtifactStore,
    info: VersionInfo,
    run_id: str,
    art: Any,
    *,
    trust_pickle: bool,
) -> Model:
    """The version's model, its hash verified before anything reads it."""
    from dmv.artifacts import Blob
    from dmv.interface import Interface

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
    if files:
        _code_folder(files, list(meta.get("code_roots") or ["."]))
    iface = Interface.from_dict(info.interface) if info.interface else None
    return load(data, meta, what=what, trust_pickle=trust_pickle, interface=iface)
