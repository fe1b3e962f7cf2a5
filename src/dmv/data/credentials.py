"""Credentials for retrieval sources, supplied at run time and never stored.

dmv stores a source's identity only (its URL without password or secret query
values, see :func:`dmv._urls.source_url`). When a retrieval runs
again — ``dmv data split``, ``dmv reproduce --from-source``, ``dmv data verify
--against-source`` — the credentials come from, in this order:

1. a ``[sources]`` table in the user's own config file (``$DMV_USER_CONFIG``, else
   ``$XDG_CONFIG_HOME/dmv/config.toml``, else ``~/.config/dmv/config.toml``), mapping
   a stored identity to the URL to connect with; ``${VAR}`` in that URL is read
   from the environment, so the password itself can stay in one::

       [sources]
       "postgresql://analyst@dwh.internal/sales" = "postgresql://analyst:${DWH_PASSWORD}@dwh.internal/sales"

2. the driver's own mechanisms, untouched: for PostgreSQL ``PGPASSWORD``,
   ``PGPASSFILE`` / ``~/.pgpass`` and ``PGSERVICE``.

The file must be readable by its owner only (as ``.pgpass``), and an entry must
point at the same source it is keyed by: it supplies credentials, it cannot send
a stored retrieval to another database.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from pathlib import Path

from dmv._urls import source_url
from dmv.errors import ConfigError

__all__ = ["connect_url", "user_config_path"]

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def user_config_path() -> Path:
    explicit = os.environ.get("DMV_USER_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "dmv" / "config.toml"


def _sources(path: Path) -> dict[str, str]:
    try:
        info = path.stat()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(
            f"cannot read {path}: {exc.strerror}",
            hint=f"make {path} readable by the user running dmv",
        ) from None
    if os.name == "posix" and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path} holds source credentials and is readable by other users",
            hint=f"chmod 600 {path}",
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            f"{path} is not valid TOML: {exc}",
            hint=f"fix the TOML syntax in {path} (each source is a [sources.NAME] table)",
        ) from None
    table = data.get("sources", {})
    if not isinstance(table, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in table.items()
    ):
        raise ConfigError(
            f"[sources] in {path} must map source URLs to URLs (strings)",
            hint='"postgresql://user@host/db" = "postgresql://user:${PASSWORD}@host/db"',
        )
    return dict(table)


def strip_credentials(url: str) -> str:
    """``url`` without its password and without query values that look like secrets
    (the rule of :func:`dmv._urls.source_url`, Spark Connect parameters included)."""
    return source_url(url)


def connect_url(url: str) -> str:
    """The URL to connect to the source ``url`` (a stored identity, or a full URL) with."""
    identity = strip_credentials(url)
    if identity != url:
        return url  # credentials given explicitly (on the command line) win
    path = user_config_path()
    for key, value in _sources(path).items():
        if strip_credentials(key) != identity:
            continue

        def env(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise ConfigError(
                    f"[sources] in {path} uses ${{{name}}}, which is not set",
                    hint=f"export {name}=… before running dmv",
                )
            return os.environ[name]

        resolved = _VAR.sub(env, value)
        if strip_credentials(resolved) != identity:
            raise ConfigError(
                f"[sources] in {path}: the entry for {identity} points at another source",
                hint="an entry may only add credentials to the URL it is keyed by",
            )
        return resolved
    return url
