"""Portable SQL pieces: names, literals, canonical text and the md5 row hashes.

Everything that must give the SAME answer on DuckDB and on PostgreSQL lives here,
composed here from each engine's spelling of a few fragments
(:class:`SqlDialect`: text casts, dates, timestamps, the md5
digest and its first 60 bits). The SQL uses only ``md5``, ``substr``, ``concat_ws``,
``coalesce``, ``chr``, ``abs``, ``trunc``, ``CAST`` and ``CASE``, plus per engine a
faster equivalent where one exists (DuckDB's ``md5_number`` and integer shifts, Spark's
``conv``); a new engine overrides the fragments it spells differently.

Canonical text of a value (what is hashed), by type family:

==========  =================================================================
integers    decimal digits (``CAST(x AS VARCHAR)``)
text, uuid  the text itself (uuids lowercase with hyphens in both engines)
boolean     ``true`` / ``false``
decimal     ``CAST(x AS VARCHAR)`` (scale digits kept: ``1.50``)
float       shortest round-trip digits as PostgreSQL prints them (``1``, ``0.1``,
            ``1e+20``); ``0`` for ±0, ``nan``, ``inf``, ``-inf``; numbers in
            [1e15, 1e16), where the engines' formats differ, as
            ``<integer part>+<eighths>/8`` (exact there). REAL is widened to DOUBLE.
date        days since 1970-01-01
timestamp   microseconds since 1970-01-01 00:00:00 (UTC for ``timestamptz``)
bytes       lowercase hex
other       the engine's own text cast (not guaranteed equal across engines)
==========  =================================================================

A row's canonical text is its values' texts in column order joined by U+001F,
NULL written as U+001E.

The canonical *encoding* of fingerprint v2 (:func:`row_text_v2`) is the same but
for two families, and is hashed into 64 bits rather than 60 (:func:`hash64_from_raw`):

==========  =================================================================
float       the IEEE-754 binary64 bits of the value as a signed 64-bit integer,
            in decimal digits (REAL widened to DOUBLE first); ``0`` for ±0 and
            ``9221120237041090560`` (0x7ff8000000000000) for every NaN
text        ``<length in UTF-8 bytes>:<the text>`` (so no text can pass for
            another column's boundary or for NULL)
==========  =================================================================
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fractions import Fraction

from dmv.errors import DataError, InvalidInput

__all__ = [
    "HASH_BITS",
    "SqlDialect",
    "bucket_case",
    "check_identifier",
    "check_select",
    "hash60",
    "hash64_from_raw",
    "hash_from_raw",
    "hash_raw",
    "key_text",
    "quote_ident",
    "quote_literal",
    "row_text",
    "row_text_v2",
    "thresholds",
    "type_family",
    "value_text",
]

HASH_BITS = 60
MAX_IDENTIFIER = 63  # PostgreSQL's NAMEDATALEN - 1
_IDENT_RE = re.compile(r"[a-z][a-z0-9_]*")
_SEP = "chr(31)"
_NULL = "chr(30)"

KEY_FAMILIES = frozenset({"int", "text", "uuid", "date", "decimal", "bool", "timestamp"})


def check_identifier(name: str, what: str = "table name") -> str:
    """Return ``name`` if it is ``[a-z][a-z0-9_]*`` and fits PostgreSQL's 63 bytes."""
    if not isinstance(name, str) or not _IDENT_RE.fullmatch(name):
        raise InvalidInput(
            f"{what} {name!r} must match [a-z][a-z0-9_]*",
            hint="lowercase letters, digits and '_', starting with a letter",
        )
    if len(name) > MAX_IDENTIFIER:
        raise InvalidInput(
            f"{what} {name[:24]!r}… is {len(name)} characters; at most 63",
            hint="PostgreSQL names hold at most 63 bytes: use a shorter name",
        )
    return name


def quote_ident(name: str) -> str:
    """Quote an identifier for DuckDB and PostgreSQL alike."""
    if "\x00" in name:
        raise InvalidInput(
            "a column or table name contains a NUL character",
            hint="remove the NUL character from the name",
        )
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """A standard SQL string literal (``standard_conforming_strings`` is on)."""
    if "\x00" in text:
        raise InvalidInput(
            "text contains a NUL character, which SQL strings cannot hold",
            hint="remove the NUL character from the value",
        )
    return "'" + text.replace("'", "''") + "'"


_INT_TYPES = {
    "tinyint",
    "smallint",
    "integer",
    "int",
    "bigint",
    "hugeint",
    "utinyint",
    "usmallint",
    "uinteger",
    "ubigint",
    "uhugeint",
    "int2",
    "int4",
    "int8",
}


def type_family(type_name: str) -> str:
    """Classify an engine's type name: int, float, decimal, text, bool, date, …"""
    t = type_name.strip().lower()
    base = t.split("(", 1)[0].strip()
    if base in _INT_TYPES:
        return "int"
    if base in {"float", "double", "real", "double precision", "float4", "float8"}:
        return "float"
    if base in {"decimal", "numeric"}:
        return "decimal"
    if base in {"varchar", "text", "character varying", "character", "char", "bpchar", "string"}:
        return "text"
    if base in {"boolean", "bool"}:
        return "bool"
    if base == "date":
        return "date"
    if base.startswith("timestamp"):
        return "timestamptz" if "with time zone" in t or base == "timestamptz" else "timestamp"
    if base == "uuid":
        return "uuid"
    if base in {"blob", "bytea", "binary"}:
        return "bytes"
    return "other"


def value_text(dialect: SqlDialect, column_sql: str, family: str) -> str:
    """SQL for the canonical text of one value (NULL stays NULL), in ``dialect``."""
    return dialect.value_text(column_sql, family)


def _refuse(dialect: SqlDialect, column: str, type_name: str, family: str) -> None:
    why = dialect.refuse_family(family)
    if why:
        raise DataError(
            f"column {column!r} has type {type_name}, which the {dialect.name} warehouse "
            f"cannot fingerprint identically to the other engines: {why}",
            hint="CAST the column in the retrieval to a type every engine writes the same "
            "(an integer, text or a decimal)",
            column=column,
        )


def key_text(dialect: SqlDialect, column: str, type_name: str) -> str:
    """Canonical text of a key column; refuses types whose text is not portable."""
    family = type_family(type_name)
    if family not in KEY_FAMILIES:
        raise InvalidInput(
            f"column {column!r} has type {type_name}, which cannot be a split key",
            hint="keys may be integers, text, uuids, dates, timestamps, decimals or booleans; "
            "CAST a float key to an integer or text in the query",
        )
    _refuse(dialect, column, type_name, family)
    return dialect.value_text(quote_ident(column), family)


def row_text(dialect: SqlDialect, columns: Sequence[tuple[str, str]]) -> str:
    """SQL for a row's canonical text over ``(name, type)`` columns, in order."""
    parts = []
    for n, t in columns:
        family = type_family(t)
        _refuse(dialect, n, t, family)
        parts.append(f"coalesce({dialect.value_text(quote_ident(n), family)}, {_NULL})")
    if not parts:
        raise DataError(
            "the result has no columns", hint="the retrieval must select at least one column"
        )
    return f"concat_ws({_SEP}, {', '.join(parts)})"


def row_text_v2(dialect: SqlDialect, columns: Sequence[tuple[str, str]]) -> str:
    """SQL for a row's canonical encoding of fingerprint v2 (see the module's tables)."""
    parts = []
    for n, t in columns:
        family = type_family(t)
        _refuse(dialect, n, t, family)
        parts.append(f"coalesce({dialect.value_v2(quote_ident(n), family)}, {_NULL})")
    if not parts:
        raise DataError(
            "the result has no columns", hint="the retrieval must select at least one column"
        )
    return f"concat_ws({_SEP}, {', '.join(parts)})"


def hash64_from_raw(dialect: SqlDialect, raw_sql: str) -> str:
    """md5-64 from :func:`hash_raw`: the digest's first 16 hex digits, a 64-bit integer."""
    return dialect.hash64_from_raw(raw_sql)


def hash_raw(dialect: SqlDialect, text_sql: str) -> str:
    """The md5 digest in the form :func:`hash_from_raw` reads (compute it once per row)."""
    return dialect.hash_raw(text_sql)


def hash_from_raw(dialect: SqlDialect, raw_sql: str) -> str:
    """md5-v1 from :func:`hash_raw`: the first 15 hex digits of the digest, as a BIGINT."""
    return dialect.hash_from_raw(raw_sql)


def hash60(dialect: SqlDialect, text_sql: str) -> str:
    """md5-v1 as one expression (computes md5 several times on DuckDB: small inputs only)."""
    return dialect.hash_from_raw(dialect.hash_raw(text_sql))


def thresholds(ratios: Sequence[float]) -> list[int]:
    """Integer cut points in [0, 2^60) for cumulative ratios (exact, no float rounding)."""
    total = Fraction(0)
    cuts = []
    for r in ratios[:-1]:
        total += Fraction(repr(r))
        cuts.append(int(total * (1 << HASH_BITS)))
    return cuts


def bucket_case(value_sql: str, cuts: Sequence[object], op: str = "<") -> str:
    """``CASE WHEN v < c1 THEN 0 WHEN v < c2 THEN 1 … ELSE n END``."""
    if not cuts:
        return "0"
    whens = " ".join(f"WHEN {value_sql} {op} {c} THEN {i}" for i, c in enumerate(cuts))
    return f"CASE {whens} ELSE {len(cuts)} END"


_SKIP_RE = re.compile(
    r"""--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'|"(?:[^"]|"")*"|(\$[A-Za-z_]*\$).*?\1""",
    re.DOTALL,
)
_READ_WORDS = {"select", "with", "values", "table", "from", "("}


def strip_sql(sql: str) -> str:
    """``sql`` with comments removed and literals/quoted names blanked (for checks)."""
    return _SKIP_RE.sub(lambda m: " " if m.group(0).startswith(("--", "/*")) else "''", sql)


def check_select(sql: str) -> str:
    """Refuse anything but one read-only query; return it without a trailing ``;``."""
    if not isinstance(sql, str) or not sql.strip():
        raise InvalidInput("the query is empty", hint="give a SELECT statement")
    bare = strip_sql(sql).strip()
    while bare.endswith(";"):
        bare = bare[:-1].rstrip()
    if ";" in bare:
        raise DataError(
            "the query holds more than one statement",
            hint="a retrieval is one SELECT (or WITH … SELECT) statement",
        )
    first = re.match(r"\(|[A-Za-z_]+", bare)
    word = first.group(0).lower() if first else ""
    if word not in _READ_WORDS:
        raise DataError(
            f"only SELECT queries may retrieve data; this one starts with {word.upper()!r}",
            hint="dmv never writes to a source: give a SELECT (or WITH … SELECT) statement",
        )
    text = _SKIP_RE.sub(lambda m: " " if m.group(0).startswith(("--", "/*")) else m.group(0), sql)
    text = text.strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    return text


class SqlDialect:
    """SQL fragments as an engine spells them (the defaults: standard SQL, PostgreSQL)."""

    name = "sql"
    text_type = "TEXT"

    def cast_text(self, expr: str) -> str:
        return f"CAST({expr} AS {self.text_type})"

    def float_mid(self, x: str) -> str:
        """``<integer part>+<eighths>/8`` for numbers in [1e15, 1e16)."""
        return (
            f"{self.cast_text(f'CAST(trunc({x}) AS BIGINT)')} || '+' || "
            f"{self.cast_text(f'CAST(({x} - trunc({x})) * 8 AS BIGINT)')} || '/8'"
        )

    def as_double(self, c: str) -> str:
        return f"CAST({c} AS DOUBLE PRECISION)"

    def float_text(self, x: str) -> str:
        return (
            f"CASE WHEN {x} IS NULL THEN NULL WHEN {x} = 'NaN'::float8 THEN 'nan' "
            f"WHEN {x} = 'Infinity'::float8 THEN 'inf' WHEN {x} = '-Infinity'::float8 THEN '-inf' "
            f"WHEN {x} = 0 THEN '0' WHEN abs({x}) >= 1e15 AND abs({x}) < 1e16 "
            f"THEN {self.float_mid(x)} ELSE {self.cast_text(x)} END"
        )

    def text_value(self, c: str) -> str:
        return self.cast_text(c)

    def date_days(self, c: str) -> str:
        return self.cast_text(f"({c} - DATE '1970-01-01')")

    def epoch_us(self, c: str) -> str:
        return self.cast_text(f"CAST(extract(epoch FROM {c}) * 1000000 AS BIGINT)")

    def hex_bytes(self, c: str) -> str:
        return f"encode({c}, 'hex')"

    def refuse_family(self, family: str) -> str | None:
        """Why this engine cannot give ``family`` the canonical text (None: it can)."""
        return None

    def value_text(self, c: str, family: str) -> str:
        """SQL for the canonical text of one value (NULL stays NULL)."""
        if family == "text":
            return self.text_value(c)
        if family == "float":
            return self.float_text(self.as_double(c))
        if family == "bool":
            return f"CASE WHEN {c} IS NULL THEN NULL WHEN {c} THEN 'true' ELSE 'false' END"
        if family == "date":
            return self.date_days(c)
        if family in {"timestamp", "timestamptz"}:
            return self.epoch_us(c)
        if family == "bytes":
            return self.hex_bytes(c)
        return self.cast_text(c)

    #: the bits of every NaN, as fingerprint v2 writes them (0x7ff8000000000000)
    NAN_BITS = "'9221120237041090560'"

    def double_bits(self, x: str) -> str:
        """The IEEE-754 bits of a non-NULL, non-zero, non-NaN DOUBLE as a signed BIGINT."""
        return f"CAST(CAST('x' || encode(float8send({x}), 'hex') AS bit(64)) AS BIGINT)"

    def float_v2(self, x: str) -> str:
        return (
            f"CASE WHEN {x} IS NULL THEN NULL WHEN {x} = 0 THEN '0' "
            f"WHEN {self.is_nan(x)} THEN {self.NAN_BITS} "
            f"ELSE {self.cast_text(self.double_bits(x))} END"
        )

    def is_nan(self, x: str) -> str:
        return f"{x} = 'NaN'::float8"

    def byte_length(self, c: str) -> str:
        return f"octet_length({c})"

    def value_v2(self, c: str, family: str) -> str:
        """SQL for one value's piece of the fingerprint v2 encoding (NULL stays NULL)."""
        if family == "float":
            return self.float_v2(self.as_double(c))
        if family == "text":
            t = self.text_value(c)
            return f"{self.cast_text(self.byte_length(t))} || ':' || {t}"
        return self.value_text(c, family)

    def hash64_from_raw(self, raw_sql: str) -> str:
        """The digest's first 16 hex digits as a BIGINT (the same 64 bits, signed).

        ``raw_sql`` is mentioned once: PostgreSQL inlines an inner SELECT's column, so
        each mention would compute md5 again.
        """
        return f"CAST(CAST('x' || substr({raw_sql}, 1, 16) AS bit(64)) AS BIGINT)"

    def hash_raw(self, text_sql: str) -> str:
        """The md5 digest in the form :meth:`hash_from_raw` reads (compute it once per row)."""
        return f"md5({text_sql})"

    def hash_from_raw(self, raw_sql: str) -> str:
        """md5-v1 from :meth:`hash_raw`: the digest's first 15 hex digits, as a BIGINT."""
        return f"CAST(CAST('x' || substr({raw_sql}, 1, 15) AS bit(60)) AS BIGINT)"

    def approx_distinct(self, q: str) -> str:
        """An estimate of a column's distinct values, or NULL where it is not cheap."""
        return "NULL"

    def big_sum(self, expr: str) -> str:
        """A sum of 60-bit hashes that never overflows (the engine's wide integer)."""
        return f"sum({expr})"

    def string_agg(self, expr: str) -> str:
        return f"string_agg({self.cast_text(expr)}, ',')"
