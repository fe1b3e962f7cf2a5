"""URL redaction: the one place that decides what of a URL may be shown or stored.

Every URL dmv shows (CLI text, ``--json``, errors, logs), stores (registry rows,
version metadata, cards, backup manifests) or sends (OpenLineage events, MLflow)
goes through one rule, :func:`redact`:

* the password of the user information goes, read the way SQLAlchemy reads it (up
  to the first ``@``, even across a raw ``/``, ``?`` or ``#``, unless what follows
  the ``:`` is a port: ``host:5432/db?user=ann@corp`` has no password);
* every query parameter whose key looks like a secret (:data:`SECRET_KEYS`:
  ``password``, ``passwd``, ``pwd``, ``token``, ``secret``, ``key``, ``sig``,
  ``signature``, ``credential``, ``auth``, ``jwt``, ``bearer``, ``cookie``, …)
  goes, and so does one whose *value* holds a secret-looking ``name=`` or
  ``"name":`` (libpq ``options=-c password=…``, ODBC ``PWD=…``,
  fsspec ``storage_options={"token": …}``);
* a ``#fragment`` that holds one (``#access_token=…``) goes;
* Spark Connect's ``sc://host/;token=…`` parameters follow the same key rule.

The user name and everything else stay as written, so the result still names the
same store (``sqlite:////abs/path.db`` stays absolute). The three names below
apply it to the three kinds of URL that reach messages and records:

* :func:`source_url` — a data source, warehouse, artifact store, tracking or
  lineage endpoint: the rule as it stands.
* :func:`git_url` — a git remote: the rule, and the user name goes too
  (``https://tok@host/x`` → ``https://host/x``), except an ``ssh://`` account
  (``git@``). scp-style ``git@host:path`` has no room for a password and is kept.
* :func:`database_url` — a registry database: the rule; a string SQLAlchemy could
  not read as a URL keeps only what follows its last ``@``.

A string without ``://`` is a path, not a URL, and comes back unchanged.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode

__all__ = [
    "SECRET_KEYS",
    "database_url",
    "git_url",
    "redact",
    "redact_text",
    "registry_url",
    "source_url",
]

_SECRET_WORDS = r"pass|pwd|token|secret|key|sig|credential|auth|jwt|bearer|cookie"
#: Query keys (and Spark Connect parameters) whose values never leave dmv.
SECRET_KEYS = re.compile(_SECRET_WORDS, re.IGNORECASE)
# A secret-looking name assigned inside a value: ``-c password=x``, ``PWD=x``,
# ``{"token": "x"}``.
_NESTED_SECRET = re.compile(rf"[\w.-]*(?:{_SECRET_WORDS})[\w.-]*[\"']?\s*[=:]", re.IGNORECASE)
# A URL inside free text (a log line, an error from a library): up to a blank or quote.
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"`<>]+")
# A query string inside free text without its scheme and host (``url: /?token=…``).
_QUERY_IN_TEXT = re.compile(r"\?([^\s'\"`<>#]+)")
_SQLA_USERINFO = re.compile(r"(?P<user>[^:/@?#]*)(?::(?P<password>[^@]*))?@")
_SSH_SCHEMES = ("ssh", "git+ssh", "ssh+git")
# ``host:5432/db?user=ann@corp``: what follows the ``:`` is a port, not a password.
_PORT = re.compile(r"\d*[/?#]")


def _is_secret(key: str, value: str) -> bool:
    return bool(SECRET_KEYS.search(key) or _NESTED_SECRET.search(value))


def _query(query: str) -> str:
    """``query`` without its secret parameters (unchanged when it has none)."""
    pairs = parse_qsl(query, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if not _is_secret(k, v)]
    return query if len(kept) == len(pairs) else urlencode(kept)


def redact(url: str, *, keep_user: bool = True) -> str:
    """``url`` without its password, secret query parameters or secret fragment."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    if scheme.lower() == "sc":  # Spark Connect: sc://host:port/;name=value;…
        return _spark_connect_url(url)
    found = _SQLA_USERINFO.match(re.split(r"[?#]", rest, maxsplit=1)[0])
    if found is None:  # a raw ? or # inside the password
        wide = _SQLA_USERINFO.match(rest)
        password = wide.group("password") if wide else None
        if password is not None and not _PORT.match(password):
            found = wide
    if found and (found.group("password") is not None or not keep_user):
        user = found.group("user") if keep_user else ""
        rest = (f"{user}@" if user else "") + rest[found.end() :]
    rest, hash_, fragment = rest.partition("#")
    head, question, query = rest.partition("?")
    if question:
        query = _query(query)
        question = "?" if query else ""
    if hash_ and _is_secret(fragment, unquote(fragment)):
        hash_, fragment = "", ""
    return f"{scheme}://{head}{question}{query}{hash_}{fragment}"


def redact_text(text: str) -> str:
    """``text`` with every URL in it redacted (for messages dmv does not write itself)."""
    if "://" in text:
        text = _URL_IN_TEXT.sub(lambda m: redact(m.group(0)), text)
    if "?" in text:
        text = _QUERY_IN_TEXT.sub(
            lambda m: "?" + _query(m.group(1)) if "=" in m.group(1) else m.group(0), text
        )
    return text


def source_url(url: str) -> str:
    """A data source's URL without its password or secret-looking query values."""
    return redact(url)


def _spark_connect_url(url: str) -> str:
    """A Spark Connect URL without its user information or secret-looking parameters."""
    head, sep, tail = url.partition("/;")
    scheme, _, netloc = head.partition("://")
    netloc = netloc.rpartition("@")[2]
    head = f"{scheme}://{netloc}"
    if not sep:
        return head
    kept = [i for i in tail.split(";") if i and not _is_secret(*_param(i))]
    return head + ("/;" + ";".join(kept) if kept else "")


def _param(item: str) -> tuple[str, str]:
    key, _, value = item.partition("=")
    return key, unquote(value)


def git_url(url: str) -> str:
    """A git remote without user information (an ``ssh://`` user name is kept)."""
    scheme, sep, _ = url.partition("://")
    if not sep:
        return url
    return redact(url, keep_user=scheme.lower() in _SSH_SCHEMES)


def database_url(url: str) -> str:
    """A registry database URL without its password, fit for messages and metadata."""
    if "://" not in url:
        return url.split("@")[-1] if "@" in url else url
    return redact(url)


def registry_url(location: str) -> str:
    """A registry location (a path or a URL) as the SQLAlchemy URL it opens."""
    if "://" not in location:
        return "sqlite:///" + str(Path(location).resolve())
    if location.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + location.split("://", 1)[1]
    return location
