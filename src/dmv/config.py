"""Project settings, each declared once as data.

Lookup order, first hit wins: an explicit override (a CLI flag or keyword
argument), the environment (``DMV_<NAME>``), the project's ``dmv.toml``, the
default. Relative paths in ``dmv.toml`` are relative to the project root.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dmv.errors import ConfigError

__all__ = ["CONFIG_FILE", "SETTINGS", "Config", "Setting", "find_root", "write_config"]

CONFIG_FILE = "dmv.toml"


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"{value!r} is not a boolean (use true or false)")


def _parse_choice(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if str(value) not in choices:
            raise ValueError(f"{value!r} is not one of {', '.join(choices)}")
        return str(value)

    return parse


def _parse_size(value: Any) -> int:
    """A positive byte count: ``16777216``, ``16MB``, ``512kB``."""
    text = str(value).strip().upper().removesuffix("B")
    factor = {"K": 1024, "M": 1024**2, "G": 1024**3}.get(text[-1:], 1)
    number = int(text[:-1] if factor > 1 else text)
    if number <= 0:
        raise ValueError(f"{value!r} is not a positive size")
    return number * factor


def _parse_count(value: Any) -> int:
    number = int(str(value).strip().replace("_", ""))
    if number <= 0:
        raise ValueError(f"{value!r} is not a positive number")
    return number


def _parse_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value)
    raise ValueError(f"{value!r} is not a list")


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    parse: Callable[[Any], Any] = str

    @property
    def env(self) -> str:
        return "DMV_" + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "registry",
        ".dmv/registry.db",
        "Model repository: a SQLite file path or a SQLAlchemy URL (postgresql://…).",
    ),
    Setting(
        "artifacts",
        ".dmv/artifacts",
        "Artifact store: a folder or an fsspec URL (s3://bucket/prefix).",
    ),
    Setting(
        "warehouse",
        ".dmv/warehouse.duckdb",
        "Data warehouse for splits: a DuckDB file path or a SQLAlchemy URL.",
    ),
    Setting(
        "id_style",
        "hash",
        "How DATA and SPLIT ids are made: 'hash' (short, derived) or 'timestamp'.",
        _parse_choice("hash", "timestamp"),
    ),
    Setting(
        "allow_dirty",
        False,
        "Allow versioned runs from a git tree with uncommitted changes to the code.",
        _parse_bool,
    ),
    Setting(
        "logic_components",
        ("code", "libraries", "python", "params"),
        "Which parts count toward the logic version (Z).",
        _parse_list,
    ),
    Setting("actor", "", "Who is recorded in the audit log (default: $USER)."),
    Setting(
        "split_min_share",
        0.5,
        "A split part must hold at least this fraction of its ratio's rows (else refused).",
        float,
    ),
    Setting(
        "source_timeout",
        3600.0,
        "Seconds one retrieval statement may run on a PostgreSQL source (0: no limit).",
        float,
    ),
    Setting(
        "max_request_size",
        16 * 1024**2,
        "The largest request body the server accepts (bytes, or 16MB, 512kB); larger is 413.",
        _parse_size,
    ),
    Setting(
        "max_rows_per_request",
        100_000,
        "The most rows one predict request may carry; more is 413.",
        _parse_count,
    ),
    Setting(
        "allowed_hosts",
        (),
        "Host names the server answers besides loopback (e.g. dmv.example.org, *.corp).",
        _parse_list,
    ),
    Setting(
        "trust",
        (),
        "Model formats that can run code this project writes: 'pickle' (see docs/models.md).",
        _parse_list,
    ),
)

_BY_NAME = {s.name: s for s in SETTINGS}


def find_root(start: str | os.PathLike[str] = ".") -> Path | None:
    """The nearest folder at or above ``start`` holding ``dmv.toml``."""
    path = Path(start).resolve()
    for folder in (path, *path.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    return None


class Config:
    """Resolved settings for one project."""

    def __init__(
        self,
        root: Path,
        overrides: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.root = root
        self._file = self._read_file(root / CONFIG_FILE)
        self._values: dict[str, Any] = {}
        env = os.environ if environ is None else environ
        overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
        unknown = set(overrides) - set(_BY_NAME)
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        for setting in SETTINGS:
            if setting.name in overrides:
                raw, origin = overrides[setting.name], "argument"
            elif setting.env in env:
                raw, origin = env[setting.env], f"environment variable {setting.env}"
            elif setting.name in self._file:
                raw, origin = self._file[setting.name], f"{CONFIG_FILE}"
            else:
                self._values[setting.name] = setting.default
                continue
            try:
                self._values[setting.name] = setting.parse(raw)
            except (ValueError, TypeError) as exc:
                raise ConfigError(
                    f"setting {setting.name!r} from {origin}: {exc}", hint=setting.help
                ) from None

    @staticmethod
    def _read_file(path: Path) -> dict[str, Any]:
        if not path.is_file():
            return {}
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from None
        section = data.get("dmv", data)
        if not isinstance(section, dict):
            raise ConfigError(f"{path}: [dmv] must be a table")
        unknown = set(section) - set(_BY_NAME)
        if unknown:
            raise ConfigError(
                f"{path}: unknown setting(s) {', '.join(sorted(unknown))}",
                hint="known settings: " + ", ".join(_BY_NAME),
            )
        return section

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def location(self, name: str) -> str:
        """A setting that names a store, made absolute against the project root."""
        value = str(self._values[name])
        if "://" in value:
            return value
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else self.root / path)

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)


def _toml_value(value: Any) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(json.dumps(str(v)) for v in value) + "]"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def write_config(root: Path, settings: Mapping[str, Any] | None = None) -> bool:
    """Create ``dmv.toml`` in ``root`` atomically; False when one exists already.

    ``settings`` (e.g. ``registry="postgresql://…"``) are written instead of the
    defaults, so that every later ``dmv.open`` finds them.

    The file appears whole or not at all (write, then hard-link into place), so
    several processes initialising the same folder at once never see half a file.
    """
    target = root / CONFIG_FILE
    if target.exists():
        return False
    lines = ["# dmv project settings; environment variables DMV_<NAME> override them.", "[dmv]"]
    given = {k: v for k, v in (settings or {}).items() if v is not None}
    if unknown := set(given) - set(_BY_NAME):
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    for setting in SETTINGS:
        if setting.name in ("registry", "artifacts", "warehouse") or setting.name in given:
            value = given.get(setting.name, setting.default)
            lines.append(f"# {setting.help}")
            lines.append(f"{setting.name} = {_toml_value(value)}")
    tmp = root / f".{CONFIG_FILE}.{os.getpid()}.tmp"
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        os.link(tmp, target)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    return True
