"""The logic fingerprint (the Z in X.Y.Z), the training environment.

A model's *logic* is whatever can change its behaviour without changing its
interface. dmv fingerprints four parts of it, each on its own so that a diff can
say which one moved:

``code``
    the declared training-code files, as they are in the working tree (path
    relative to the project root, and content), which in a git repository is the
    content at HEAD plus any uncommitted change;
``libraries``
    the installed distributions the code imports, with their versions;
``python``
    the Python minor version (``3.11``): patch releases do not change results;
``params``
    the hyperparameters, as canonical JSON.

Which parts count toward the fingerprint is the ``logic_components`` setting
(all four by default): a team that pins libraries elsewhere can leave them out.

Fingerprints are BLAKE3 digests (``blake3:<hex>``), the same as artifact
digests, so a code file's digest here is the digest of that file stored as an
artifact.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dmv.artifacts import hash_bytes, hash_file
from dmv.errors import ConfigError, InvalidInput, NotFound
from dmv.logic.environment import Environment, _normalise, capture_environment

__all__ = [
    "COMPONENTS",
    "DEFAULT_COMPONENTS",
    "Environment",
    "LogicInfo",
    "canonical_params",
    "capture_environment",
    "code_files",
    "code_fingerprint",
    "hyperparameters_fingerprint",
    "imported_libraries",
    "logic_fingerprint",
    "logic_info",
]

PathArg = str | os.PathLike[str]

COMPONENTS = ("code", "libraries", "python", "params")
DEFAULT_COMPONENTS = COMPONENTS

# Caches and tool folders that change on every run without the code changing.
_IGNORED_DIRS = frozenset(
    {"__pycache__", ".git", ".hg", ".svn", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
    | {".ipynb_checkpoints"}
)
_IGNORED_SUFFIXES = (".pyc", ".pyo")


# Hyperparameters ----------------------------------------------------------------------------


def canonical_params(params: Mapping[str, Any]) -> str:
    """Hyperparameters as canonical JSON: sorted keys, no whitespace, ASCII only.

    Numbers are compared by value: an integral float is written as an integer, so
    ``1`` and ``1.0`` (which YAML, TOML and command lines hand out interchangeably)
    give the same fingerprint, while ``True`` stays distinct from ``1``. Tuples
    become lists; numpy scalars and arrays become their Python values. Anything
    else without an exact JSON form (sets, objects, paths) raises
    :class:`~dmv.errors.InvalidInput` naming its key.
    """
    if not isinstance(params, Mapping):
        raise InvalidInput(
            f"hyperparameters must be a mapping of names to values, got {type(params).__name__}",
            hint="pass params= as a dict, e.g. {'max_depth': 6}",
        )
    value = _canonical(params, "params")
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def hyperparameters_fingerprint(params: Mapping[str, Any]) -> str:
    """The digest of :func:`canonical_params`."""
    return hash_bytes(canonical_params(params).encode("ascii"))


def _canonical(value: Any, where: str) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str.__str__(value)  # a str subclass (an enum) by its text, not its repr
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return int(value) if value.is_integer() else float(value)
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return _canonical(value.tolist(), where)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInput(
                    f"hyperparameter {where} has the key {key!r}; keys must be strings",
                    hint="JSON turns other keys into strings, which would merge 1 and '1'",
                )
            out[key] = _canonical(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, list | tuple):
        return [_canonical(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise InvalidInput(
        f"hyperparameter {where} is a {type(value).__name__}, which has no exact JSON form",
        hint="use str, int, float, bool, None, lists or dicts of them; "
        "e.g. a sorted list for a set, or str() for a path",
    )


# Code ---------------------------------------------------------------------------------------


def code_files(paths: Iterable[PathArg], root: PathArg) -> dict[str, str]:
    """The declared code files, by path relative to ``root``, with their content digests.

    ``paths`` are files or folders (walked recursively), relative to ``root`` or
    absolute but inside it. Caches (``__pycache__``, ``*.pyc``, tool folders) are
    skipped; a symbolic link counts as its target text, as git stores it.
    """
    base = _existing_dir(root)
    declared = list(paths)
    if not declared:
        raise InvalidInput(
            "no training-code paths declared",
            hint="declare the files or folders that hold the training code, e.g. ['src/train.py']",
        )
    files: dict[str, str] = {}
    for path in declared:
        start = _inside(base, path)
        if not start.exists() and not start.is_symlink():
            raise InvalidInput(
                f"code path {os.fspath(path)!r} does not exist under {base}",
                hint="declare paths relative to the project root",
            )
        for file in _walk(start):
            files[file.relative_to(base).as_posix()] = _digest(file)
    return dict(sorted(files.items()))


def code_fingerprint(paths: Iterable[PathArg], root: PathArg) -> str:
    """One digest over :func:`code_files`: names and contents of the declared code."""
    return _files_fingerprint(code_files(paths, root))


def _files_fingerprint(files: Mapping[str, str]) -> str:
    listing = "".join(f"{name}\0{digest}\n" for name, digest in sorted(files.items()))
    return hash_bytes(listing.encode("utf-8", "surrogateescape"))


def _walk(start: Path) -> Iterable[Path]:
    if start.is_symlink() or start.is_file():
        yield start
        return
    for folder, dirs, names in os.walk(start):
        here = Path(folder)
        # Sorted for a stable order; a symlinked folder is listed as a link, not entered.
        dirs[:] = sorted(d for d in dirs if d not in _IGNORED_DIRS)
        for name in sorted(names) + [d for d in dirs if (here / d).is_symlink()]:
            if not name.endswith(_IGNORED_SUFFIXES):
                yield here / name


def _digest(file: Path) -> str:
    if file.is_symlink():
        return hash_bytes(b"symlink\0" + os.fsencode(os.readlink(file)))
    return hash_file(file).digest


def _existing_dir(root: PathArg) -> Path:
    base = Path(root).resolve()
    if not base.is_dir():
        raise NotFound(
            f"folder {os.fspath(root)!r} does not exist", hint="check the project folder's path"
        )
    return base


def _inside(base: Path, path: PathArg) -> Path:
    """``path`` (relative to ``base`` or absolute) made absolute, refusing anything outside."""
    p = Path(path)
    full = Path(os.path.abspath(p if p.is_absolute() else base / p))
    # Resolve the parent only, so that a declared symlink stays a symlink.
    full = full.parent.resolve() / full.name if full.name else full
    if full != base and base not in full.parents:
        raise InvalidInput(
            f"path {os.fspath(path)!r} is outside the project root {base}",
            hint="code paths are recorded relative to the root, so they must lie inside it",
        )
    return full


# Libraries ----------------------------------------------------------------------------------


def imported_libraries(paths: Iterable[PathArg], root: PathArg = ".") -> dict[str, str]:
    """The installed distributions the code imports: ``{normalised name: version}``.

    Reads the ``import`` statements of every ``.py`` file under ``paths`` (nothing
    is executed), keeps the top-level module names, drops the standard library
    and the code's own modules, and maps the rest to installed distributions
    (``sklearn`` → ``scikit-learn``). Modules no installed distribution provides
    are left out; imports built at run time (``importlib.import_module``) are not
    seen. Names are normalised (PEP 503) so metadata spelling does not matter.
    """
    base = _existing_dir(root)
    return _libraries(base, code_files(paths, base))


def _libraries(base: Path, files: Iterable[str]) -> dict[str, str]:
    import ast
    from importlib import metadata

    modules: set[str] = set()
    local: set[str] = set()
    for name in files:
        if not name.endswith(".py"):
            continue
        # The code's own modules and packages, which `import` finds before any library.
        local.update(Path(name).with_suffix("").parts)
        try:
            tree = ast.parse((base / name).read_bytes(), filename=name)
        except (SyntaxError, ValueError) as exc:
            line = getattr(exc, "lineno", None)
            raise InvalidInput(
                f"cannot read the imports of {name}{f':{line}' if line else ''}: {exc}",
                hint="fix the syntax error; the code cannot train as it is",
            ) from None
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules.update(alias.name.partition(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.partition(".")[0])
    modules -= set(sys.stdlib_module_names) | local | {"__future__"}

    providers = _packages_distributions()
    libraries: dict[str, str] = {}
    for module in modules:
        for dist in providers.get(module, ()):
            try:
                libraries[_normalise(dist)] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                continue  # listed by a stray file, but not installed under that name
    return dict(sorted(libraries.items()))


_providers: tuple[tuple[str, ...], Mapping[str, list[str]]] | None = None


def _packages_distributions() -> Mapping[str, list[str]]:
    # Scanning every distribution's file list is the slow part (~0.1 s), and which
    # distribution provides which module only changes when sys.path does; versions
    # are always read afresh.
    global _providers
    from importlib import metadata

    key = tuple(sys.path)
    if _providers is None or _providers[0] != key:
        _providers = (key, metadata.packages_distributions())
    return _providers[1]


# The logic fingerprint ----------------------------------------------------------------------


def _check_components(components: Iterable[str]) -> tuple[str, ...]:
    chosen = set(components)
    unknown = chosen - set(COMPONENTS)
    if unknown or not chosen:
        raise ConfigError(
            f"logic components {sorted(chosen)!r} must be a non-empty choice of "
            f"{', '.join(COMPONENTS)}",
            hint="set logic_components in dmv.toml, e.g. ['code', 'params']",
        )
    # Canonical order, so the fingerprint does not depend on how the setting was written.
    return tuple(c for c in COMPONENTS if c in chosen)


@dataclass(frozen=True)
class LogicInfo:
    """Each part of a logic fingerprint, kept so a diff can show which one moved.

    ``files`` (the per-file digests behind ``code``) are for diffs only; the
    fingerprint covers ``code`` itself.
    """

    code: str
    libraries: Mapping[str, str] = field(hash=False)
    python: str
    params: str
    components: tuple[str, ...] = DEFAULT_COMPONENTS
    files: Mapping[str, str] = field(default_factory=dict, hash=False)
    fingerprint: str = field(init=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise once, here
        set_(self, "components", _check_components(self.components))
        set_(self, "libraries", {_normalise(k): v for k, v in sorted(self.libraries.items())})
        set_(self, "files", dict(sorted(self.files.items())))
        parts = {name: value for name, value in self._parts().items() if name in self.components}
        # The scheme's name goes in too, so that a future scheme can never collide with this one.
        text = json.dumps(["dmv-logic-1", parts], sort_keys=True, separators=(",", ":"))
        set_(self, "fingerprint", hash_bytes(text.encode("utf-8")))

    def _parts(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "libraries": dict(self.libraries),
            "python": self.python,
            "params": self.params,
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` reads it back."""
        return {
            **self._parts(),
            "components": list(self.components),
            "files": dict(self.files),
            "fingerprint": self.fingerprint,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LogicInfo:
        try:
            return cls(
                code=data["code"],
                libraries=data["libraries"],
                python=data["python"],
                params=data["params"],
                components=tuple(data.get("components", DEFAULT_COMPONENTS)),
                files=data.get("files", {}),
            )
        except KeyError as exc:
            raise InvalidInput(
                f"logic record lacks {exc.args[0]!r}",
                hint="the record was altered: run 'dmv fsck' and restore it from a backup",
            ) from None

    def diff(self, other: LogicInfo) -> dict[str, tuple[Any, Any]]:
        """What differs from ``other``: ``{part: (other's, self's)}``.

        Libraries and files are compared one by one (``library numpy``,
        ``file src/train.py``); ``None`` marks an absent one.
        """
        changes: dict[str, tuple[Any, Any]] = {}
        for part in ("code", "python", "params"):
            if getattr(self, part) != getattr(other, part):
                changes[part] = (getattr(other, part), getattr(self, part))
        for label, mine, theirs in (
            ("library", self.libraries, other.libraries),
            ("file", self.files, other.files),
        ):
            for name in sorted(set(mine) | set(theirs)):
                if mine.get(name) != theirs.get(name):
                    changes[f"{label} {name}"] = (theirs.get(name), mine.get(name))
        return changes


def logic_fingerprint(
    code_fp: str,
    libraries: Mapping[str, str],
    python_minor: str,
    params_fp: str,
    components: Iterable[str] = DEFAULT_COMPONENTS,
) -> str:
    """Combine the parts named in ``components`` into the logic fingerprint."""
    info = LogicInfo(code_fp, libraries, python_minor, params_fp, tuple(components))
    return info.fingerprint


def logic_info(
    paths: Iterable[PathArg],
    root: PathArg,
    params: Mapping[str, Any],
    components: Iterable[str] = DEFAULT_COMPONENTS,
) -> LogicInfo:
    """Fingerprint the logic of the code under ``paths`` trained with ``params``, here and now.

    Every part is measured, whichever ``components`` count, so a diff can still
    show a library upgrade that the fingerprint deliberately ignores.
    """
    base = _existing_dir(root)
    declared = list(paths)
    # A run that declares no code still has libraries, Python and params as logic.
    files = code_files(declared, base) if declared else {}
    return LogicInfo(
        code=_files_fingerprint(files),
        libraries=_libraries(base, files),
        python=f"{sys.version_info.major}.{sys.version_info.minor}",
        params=hyperparameters_fingerprint(params),
        components=tuple(components),
        files=files,
    )
