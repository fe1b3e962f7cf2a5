"""How long and what characters the free-text fields a user gives may hold.

Names and descriptions end up in the registry, in file paths, in the web UI and
in terminals. A field that is empty where a name is needed, contains a path
separator, a control character (NUL, escape sequences) or a bidirectional
override (U+202E turns a UI line around) is refused here, where it enters, with
an error naming the field and the limit.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from dmv.errors import ConflictError, InvalidInput

__all__ = [
    "MAX_ARTIFACT_NAME",
    "MAX_ARTIFACT_PATH",
    "MAX_DESCRIPTION",
    "MAX_LABEL",
    "MAX_REASON",
    "check_artifact_name",
    "check_artifact_path",
    "check_model_fields",
    "check_table_prefix",
    "check_text",
]

#: Characters in a short label: purpose, function, metric names, a deprecation reason.
MAX_LABEL = 200
#: Characters in a deprecation reason.
MAX_REASON = 1000
#: Characters in a model's description.
MAX_DESCRIPTION = 10_000
#: Bytes (UTF-8) in one artifact name: the usual limit of a file name.
MAX_ARTIFACT_NAME = 255
#: Bytes (UTF-8) in an artifact's whole path, folders included.
MAX_ARTIFACT_PATH = 1024

#: Embeddings, overrides and isolates: they reorder what a reader sees.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")


def _bad_character(text: str, *, multiline: bool) -> str | None:
    for ch in text:
        if multiline and ch in "\n\t\r":
            continue
        if ch in _BIDI_CONTROLS:
            return f"the bidirectional control U+{ord(ch):04X}"
        if unicodedata.category(ch) in ("Cc", "Cs"):
            return f"the control character U+{ord(ch):04X}"
    return None


def check_text(value: str | None, field: str, limit: int = MAX_LABEL) -> str | None:
    """``value`` if it is at most ``limit`` characters of printable text; else InvalidInput."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(
            f"{field} must be text, not {type(value).__name__}", hint=f"pass {field} as a string"
        )
    if len(value) > limit:
        raise InvalidInput(
            f"{field} is {len(value):,} characters long; at most {limit:,} are accepted",
            field=field,
            limit=limit,
            hint="shorten it, or keep long text in a file logged with log_artifact",
        )
    bad = _bad_character(value, multiline=limit >= MAX_DESCRIPTION)
    if bad:
        raise InvalidInput(
            f"{field} contains {bad}",
            field=field,
            hint="remove control characters (and line breaks from one-line fields)",
        )
    return value


def check_artifact_name(name: str, field: str = "artifact name") -> str:
    """One path segment for an artifact: not empty, no separator, '.', '..' or controls."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"{field} is empty", hint="name the artifact, e.g. 'report.html'")
    if "/" in name or "\\" in name:
        raise InvalidInput(
            f"{field} {name[:80]!r} contains a path separator",
            hint="an artifact name is one file name; log a folder to keep its structure",
        )
    if name in (".", ".."):
        raise InvalidInput(
            f"{field} {name!r} is not a file name", hint="name the file, e.g. 'model.json'"
        )
    size = len(name.encode("utf-8", "surrogatepass"))
    if size > MAX_ARTIFACT_NAME:
        raise InvalidInput(
            f"{field} is {size:,} bytes long; at most {MAX_ARTIFACT_NAME} are accepted",
            hint="use a shorter file name",
        )
    bad = _bad_character(name, multiline=False)
    if bad:
        raise InvalidInput(
            f"{field} {name[:80]!r} contains {bad}",
            hint="remove control characters and line breaks from the name",
        )
    return name


def check_artifact_path(path: str) -> str:
    """A stored artifact path: each '/'-separated segment a valid name, bounded in all."""
    for segment in path.split("/"):
        check_artifact_name(segment, "artifact path segment" if "/" in path else "artifact name")
    size = len(path.encode("utf-8", "surrogatepass"))
    if size > MAX_ARTIFACT_PATH:
        raise InvalidInput(
            f"artifact path is {size:,} bytes long; at most {MAX_ARTIFACT_PATH:,} are accepted",
            hint="use shorter folder and file names",
        )
    return path


def check_model_fields(**fields: object) -> None:
    """A model's free-text fields (purpose, function, description, primary_metric)."""
    for key, value in fields.items():
        if key in ("purpose", "function", "primary_metric"):
            check_text(value, key)  # type: ignore[arg-type]
        elif key == "description":
            check_text(value, key, MAX_DESCRIPTION)  # type: ignore[arg-type]


def check_table_prefix(name: str, existing: Iterable[str]) -> None:
    """Refuse a new model whose warehouse tables could be named like another model's.

    Tables are ``PREFIX__DATA__SPLIT__PART`` with ``PREFIX`` the name with ``-`` as
    ``_``. DATA and SPLIT hold no ``_``, so two models' tables can share a name only
    when one prefix followed by ``__`` begins the other (``a`` and ``a--b``:
    ``a__b__x__y__train`` is model ``a--b``'s split ``x.y`` and could be model ``a``'s
    ``b.x`` with part ``y__train``). Refusing that pair at creation makes the
    mapping from (model, DATA, SPLIT) to prefixes one-to-one.
    """
    mine = name.replace("-", "_")
    for other in existing:
        theirs = other.replace("-", "_")
        if other != name and (mine.startswith(theirs + "__") or theirs.startswith(mine + "__")):
            raise ConflictError(
                f"model name {name!r} could share warehouse table names with model {other!r} "
                f"(tables {mine}__… and {theirs}__…)",
                hint="pick a name without '--', or one that does not extend the other name",
                model=name,
                clashes_with=other,
            )
