"""DATA and SPLIT identifiers: derived from what they name, never counters.

Hash style (the default): the BLAKE3 digest of the definition's canonical JSON,
written in base 36 from its least significant digit, first 6 characters; when
those 6 are taken by a *different* definition the id grows one character at a
time, so the same definition keeps its id. Timestamp style: the UTC time as
``YYYYMMDDtHHMMSS`` (the next free second on a clash). Explicit ids are checked
against the version grammar.

A DATA definition is ``{"kind", "source", "sql", "params"}`` with the SQL
whitespace-normalised (comments dropped, literals untouched) and the source's
identity (no credentials); a SPLIT definition is the content fingerprint plus the
split spec.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Set
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from dmv.errors import ConflictError, InvalidInput
from dmv.version import MAX_ID_LENGTH, check_data_id

__all__ = [
    "ID_LENGTH",
    "IdStyle",
    "canonical_json",
    "data_id_for",
    "definition_digest",
    "make_id",
    "normalise_sql",
    "split_definition",
    "split_id_for",
]

IdStyle = Literal["hash", "timestamp"]
ID_LENGTH = 6
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_TOKEN_RE = re.compile(
    r"""--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'|"(?:[^"]|"")*"|(\$[A-Za-z_]*\$).*?\1""",
    re.DOTALL,
)


def normalise_sql(sql: str) -> str:
    """Collapse whitespace and drop comments outside literals; drop a trailing ``;``."""
    pieces: list[tuple[bool, str]] = []  # (is_code, text)
    pos = 0
    for m in _TOKEN_RE.finditer(sql):
        token = m.group(0)
        pieces.append((True, sql[pos : m.start()]))
        pieces.append((True, " ") if token.startswith(("--", "/*")) else (False, token))
        pos = m.end()
    pieces.append((True, sql[pos:]))
    out: list[str] = []
    code = ""
    for is_code, text in pieces:
        if is_code:
            code += text
            continue
        out.append(re.sub(r"\s+", " ", code))
        out.append(text)
        code = ""
    out.append(re.sub(r"\s+", " ", code))
    text = "".join(out).strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    return text


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 as is: one text per value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def definition_digest(definition: Mapping[str, Any]) -> str:
    """The full BLAKE3 hex digest of a definition (store it to recognise it again)."""
    from blake3 import blake3

    return str(blake3(canonical_json(definition).encode()).hexdigest())


def _base36(digest_hex: str, length: int) -> str:
    value = int(digest_hex, 16)
    out = []
    for _ in range(length):
        value, digit = divmod(value, 36)
        out.append(_ALPHABET[digit])
    return "".join(out)


def make_id(
    definition: Mapping[str, Any],
    *,
    part: str = "DATA",
    style: IdStyle = "hash",
    existing: Mapping[str, str] | Set[str] = frozenset(),
    explicit: str | None = None,
    now: datetime | None = None,
) -> str:
    """An id for ``definition``.

    ``existing`` maps each id already used to its definition digest (as returned by
    :func:`definition_digest`); a plain set means every id in it belongs to another
    definition (look the definition up by digest first to reuse its id).
    """
    digest = definition_digest(definition)
    owners: Mapping[str, str] = existing if isinstance(existing, Mapping) else {}

    def taken(candidate: str) -> bool:
        return candidate in existing and owners.get(candidate) != digest

    if explicit is not None:
        check_data_id(explicit, part)
        if taken(explicit):
            raise ConflictError(
                f"{part} id {explicit!r} already names a different definition",
                hint="choose another id, or leave it out to derive one",
            )
        return explicit
    if style == "timestamp":
        moment = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
        while True:
            candidate = moment.strftime("%Y%m%dt%H%M%S")
            if not taken(candidate):
                return candidate
            moment += timedelta(seconds=1)
    if style != "hash":
        raise InvalidInput(f"unknown id style {style!r}", hint="use 'hash' or 'timestamp'")
    for length in range(ID_LENGTH, MAX_ID_LENGTH + 1):
        candidate = _base36(digest, length)
        if not taken(candidate):
            return candidate
    raise ConflictError(
        f"no free {part} id for this definition (all 32-character ids taken)",
        hint="register the retrieval under another model, or delete unused ones with 'dmv data "
        "drop'",
    )


def data_id_for(
    definition: Mapping[str, Any],
    style: IdStyle = "hash",
    existing: Mapping[str, str] | Set[str] = frozenset(),
    explicit: str | None = None,
    *,
    now: datetime | None = None,
) -> str:
    """The DATA id of a retrieval definition (see :meth:`Retrieval.definition`)."""
    return make_id(
        definition, part="DATA", style=style, existing=existing, explicit=explicit, now=now
    )


def split_definition(content_fingerprint: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """What a SPLIT id is derived from: the content fingerprint and the split spec."""
    return {"kind": "split", "content": content_fingerprint, "spec": dict(spec)}


def split_id_for(
    content_fingerprint: str,
    spec: Mapping[str, Any],
    style: IdStyle = "hash",
    existing: Mapping[str, str] | Set[str] = frozenset(),
    explicit: str | None = None,
    *,
    now: datetime | None = None,
) -> str:
    """The SPLIT id for stored content (``SplitResult.content_fingerprint``) and a spec."""
    return make_id(
        split_definition(content_fingerprint, spec),
        part="SPLIT",
        style=style,
        existing=existing,
        explicit=explicit,
        now=now,
    )
