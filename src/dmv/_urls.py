"""URL redaction: the one place that decides what of a URL may be shown or stored.

Three kinds of URL reach messages and records, each with its own rule:

* :func:`source_url` — a data source (an SQLAlchemy URL, an fsspec path): the
  password goes (SQLAlchemy reads it up to the first ``@``, even across a raw
  ``/``), and so does every query value whose key looks like a secret
  (``password``, ``token``, ``secret``, ``key``, ``sig``, ``credential``,
  ``auth``). The user name and everything else stay as written, so the result
  still names the same source (``sqlite:////abs/path.db`` stays absolute).
* :func:`git_url` — a git remote: all user information goes
  (``https://user:tok@host/x`` → ``https://host/x``), except an ``ssh://`` user
  name, which is an account (``git@``), not a secret. scp-style ``git@host:path``
  has no room for a password and is kept.
* :func:`database_url` — a registry database: SQLAlchemy's own rendering with the
  password hidden; a URL SQLAlchemy cannot parse keeps only what follows its
  last ``@``.

A string without ``://`` is not a URL to any of them and comes back unchanged.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode

__all__ = ["SECRET_KEYS", "database_url", "git_url", "source_url"]

#: Query keys whose values :func:`source_url` removes.
SECRET_KEYS = re.compile(r"pass|token|secret|key|sig|credential|auth", re.IGNORECASE)
_SQLA_USERINFO = re.compile(r"(?P<user>[^:/@]*)(?::(?P<password>[^@]*))?@")
_SSH_SCHEMES = ("ssh", "git+ssh", "ssh+git")


def source_url(url: str) -> str:
    """A data source's URL without its password or secret-looking query values."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    if scheme.lower() == "sc":  # Spark Connect: sc://host:port/;name=value;…
        return _spark_connect_url(url)
    head, question, query = rest.partition("?")
    found = _SQLA_USERINFO.match(head)
    if found and (found.group("password") is not None or "/" not in head[: found.end()]):
        user = found.group("user")
        head = (f"{user}@" if user else "") + head[found.end() :]
    if question:
        pairs = parse_qsl(query, keep_blank_values=True)
        kept = [(k, v) for k, v in pairs if not SECRET_KEYS.search(k)]
        if len(kept) != len(pairs):
            query = urlencode(kept)
            question = "?" if kept else ""
    return f"{scheme}://{head}{question}{query}"


def _spark_connect_url(url: str) -> str:
    """A Spark Connect URL without its user information or secret-looking parameters."""
    head, sep, tail = url.partition("/;")
    scheme, _, netloc = head.partition("://")
    netloc = netloc.rpartition("@")[2]
    head = f"{scheme}://{netloc}"
    if not sep:
        return head
    kept = [i for i in tail.split(";") if i and not SECRET_KEYS.search(i.partition("=")[0])]
    return head + ("/;" + ";".join(kept) if kept else "")


def git_url(url: str) -> str:
    """A git remote without user information (an ``ssh://`` user name is kept)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, path = rest.partition("/")
    userinfo, at, host = netloc.rpartition("@")
    if not at:
        return url
    user = userinfo.partition(":")[0]
    keep = f"{user}@" if scheme.lower() in _SSH_SCHEMES and user else ""
    return f"{scheme}://{keep}{host}{slash}{path}"


def database_url(url: str) -> str:
    """A registry database URL without its password, fit for messages and metadata."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True).replace(":***@", "@")
    except Exception:
        return url.split("@")[-1] if "@" in url else url
