"""The version grammar: ``model-name X.Y.Z-DATA.SPLIT`` and references to it.

Pure: no I/O. The grammar, exactly::

    version    = name " " X "." Y "." Z "-" DATA "." SPLIT
    name       = [a-z][a-z0-9-]*            at most 64 characters
    X, Y, Z    = "0" | [1-9][0-9]*          no leading zeros, at most 2147483647
    DATA/SPLIT = [0-9a-z]{1,32}
    reference  = name "@" ( X.Y.Z-DATA.SPLIT | X.Y.Z | X.Y | X | "latest" | alias )
    alias      = [a-z][a-z0-9-]*            at most 64 characters, not "latest"

Precedence is dmv's own, not SemVer's (where ``-0123.efgh`` would mark a
pre-release): X, Y and Z compare numerically. DATA and SPLIT are identifiers
with no order of their own; the registry orders them by creation time. On bare
:class:`Version` objects they break ties by their text, so that the order is
total and timestamp-style ids still sort by time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import total_ordering

from dmv.errors import InvalidInput, VersionError

__all__ = [
    "MAX_ID_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_NUMBER",
    "ExperimentLabel",
    "RefKind",
    "Reference",
    "Version",
    "as_reference",
    "changes_between",
    "check_alias",
    "check_data_id",
    "check_name",
    "parse_data_split",
    "split_reference",
    "table_prefix",
]

MAX_NAME_LENGTH = 64
MAX_ID_LENGTH = 32
#: The largest X, Y or Z: what the registry's integer columns hold on every database.
MAX_NUMBER = 2**31 - 1

_NAME_RE = re.compile(r"[a-z][a-z0-9-]*")
_ID_RE = re.compile(r"[0-9a-z]+")
_NUMBER_RE = re.compile(r"0|[1-9][0-9]*")
_RESERVED_ALIASES = frozenset({"latest"})


def check_name(name: str, what: str = "model name") -> str:
    """Return ``name`` if it is a valid model name, else raise naming the problem."""
    if not isinstance(name, str) or not name:
        raise VersionError(f"{what} is empty", hint="a name starts with a-z, e.g. 'price-model'")
    if len(name) > MAX_NAME_LENGTH:
        raise VersionError(
            f"{what} {name[:20]!r}… is {len(name)} characters; at most 64",
            hint=f"shorten it to 64 characters or fewer, e.g. {name[:20]!r}",
        )
    if not name[0].isascii() or not name[0].islower() or not name[0].isalpha():
        raise VersionError(
            f"{what} {name!r} must start with a lowercase letter a-z",
            hint="e.g. 'price-model' or 'fraud-detector'",
        )
    if not _NAME_RE.fullmatch(name):
        bad = next(
            c for c in name if not (c.isascii() and (c.islower() or c.isdigit() or c == "-"))
        )
        raise VersionError(
            f"{what} {name!r} may contain only a-z, 0-9 and '-' (found {bad!r})",
            hint="names are also table-name prefixes and path segments",
        )
    return name


def check_alias(alias: str) -> str:
    """Return ``alias`` if it is a valid alias (a name that is not ``latest``)."""
    check_name(alias, "alias")
    if alias in _RESERVED_ALIASES:
        raise VersionError(
            "'latest' is reserved: it always means the newest release",
            hint="choose another alias name, e.g. 'production' or 'staging'; @latest needs no "
            "alias",
        )
    return alias


def check_data_id(value: str, part: str = "DATA") -> str:
    """Return ``value`` if it is a valid DATA or SPLIT identifier."""
    if not isinstance(value, str) or not value:
        raise VersionError(f"{part} is empty", hint="use a string or timestamp such as '0123'")
    if not _ID_RE.fullmatch(value):
        raise VersionError(
            f"{part} {value!r} may contain only a-z and 0-9",
            hint="no '-', '_', '.' or capitals; e.g. '0123' or '20261126t0428'",
        )
    if len(value) > MAX_ID_LENGTH:
        raise VersionError(
            f"{part} {value!r} is {len(value)} characters; at most 32",
            hint="DATA and SPLIT ids are at most 32 characters; copy the id 'dmv data list "
            "MODEL' prints",
        )
    return value


def parse_data_split(text: str) -> tuple[str, str]:
    """``DATA.SPLIT`` (e.g. ``0123.abcd``) as its two identifiers."""
    head, dot, tail = text.partition(".")
    if not dot:
        raise InvalidInput(
            f"data {text!r} must be DATA.SPLIT, e.g. '0123.abcd'",
            hint="name a stored split as DATA.SPLIT (e.g. 0123.abcd); "
            "'dmv data list MODEL' lists them",
        )
    return check_data_id(head, "DATA"), check_data_id(tail, "SPLIT")


def _number(text: str, part: str) -> int:
    if not _NUMBER_RE.fullmatch(text):
        if text.isascii() and text.isdigit():  # not '²' or '٣', which int() may refuse
            plain = text.lstrip("0") or "0"
            raise VersionError(f"{part} {text!r} has a leading zero", hint=f"write {plain}")
        raise VersionError(
            f"{part} {text!r} must be a whole number (0, 1, 2, …)",
            hint="write X.Y.Z as three whole numbers, e.g. 1.2.0",
        )
    if len(text) > 10 or int(text) > MAX_NUMBER:
        raise VersionError(
            f"{part} {text[:20]!r} is too large; at most {MAX_NUMBER}",
            hint=f"X, Y and Z are whole numbers up to {MAX_NUMBER}",
        )
    return int(text)


def table_prefix(name: str) -> str:
    """The warehouse table prefix for a model name: ``price-model`` → ``price_model``."""
    return check_name(name).replace("-", "_")


@total_ordering
@dataclass(frozen=True, slots=True)
class Version:
    """One exact model version, ``name X.Y.Z-DATA.SPLIT``."""

    name: str
    x: int
    y: int
    z: int
    data: str
    split: str

    def __post_init__(self) -> None:
        check_name(self.name)
        for part, value in (("X", self.x), ("Y", self.y), ("Z", self.z)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise VersionError(
                    f"{part} must be a whole number ≥ 0, got {value!r}",
                    hint="X, Y and Z are whole numbers ≥ 0",
                )
            if value > MAX_NUMBER:
                raise VersionError(
                    f"{part} {value} is too large; at most {MAX_NUMBER}",
                    hint=f"X, Y and Z are whole numbers up to {MAX_NUMBER}",
                )
        check_data_id(self.data, "DATA")
        check_data_id(self.split, "SPLIT")

    @classmethod
    def _trusted(cls, name: str, x: int, y: int, z: int, data: str, split: str) -> Version:
        """Build from values the registry validated on the way in, skipping the checks."""
        self = object.__new__(cls)
        setattr_ = object.__setattr__
        setattr_(self, "name", name)
        setattr_(self, "x", x)
        setattr_(self, "y", y)
        setattr_(self, "z", z)
        setattr_(self, "data", data)
        setattr_(self, "split", split)
        return self

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse ``name X.Y.Z-DATA.SPLIT`` (``name@X.Y.Z-DATA.SPLIT`` is accepted too)."""
        if not isinstance(text, str):
            raise VersionError(
                f"a version must be text, got {type(text).__name__}",
                hint="pass the version as text, e.g. 'price-model 1.1.0-0123.abcd'",
            )
        sep = " " if " " in text else "@"
        name, found, rest = text.strip().partition(sep)
        if not found:
            raise VersionError(
                f"version {text!r} has no model name",
                hint="write 'model-name X.Y.Z-DATA.SPLIT', e.g. 'price-model 1.1.0-0123.efgh'",
            )
        check_name(name)
        return cls.parse_number(name, rest)

    @classmethod
    def parse_number(cls, name: str, text: str) -> Version:
        """Parse the ``X.Y.Z-DATA.SPLIT`` part for the model ``name``."""
        xyz, dash, dataspec = text.partition("-")
        if not dash:
            raise VersionError(
                f"version {text!r} lacks '-DATA.SPLIT'",
                hint="e.g. '0.0.1-0123.abcd'",
            )
        numbers = xyz.split(".")
        if len(numbers) != 3:
            raise VersionError(
                f"'{xyz}' must be X.Y.Z, three numbers separated by '.'",
                hint="write X.Y.Z-DATA.SPLIT, e.g. '1.1.0-0123.abcd'",
            )
        x, y, z = (_number(t, p) for t, p in zip(numbers, "XYZ", strict=True))
        data, dot, split = dataspec.partition(".")
        if not dot:
            raise VersionError(
                f"'{dataspec}' must be DATA.SPLIT, e.g. '0123.abcd'",
                hint="write X.Y.Z-DATA.SPLIT, e.g. '0.1.0-0123.abcd'; "
                "'dmv data list MODEL' lists the stored splits",
            )
        return cls(name, x, y, z, check_data_id(data, "DATA"), check_data_id(split, "SPLIT"))

    @property
    def number(self) -> str:
        """``X.Y.Z-DATA.SPLIT`` without the name."""
        return f"{self.x}.{self.y}.{self.z}-{self.data}.{self.split}"

    @property
    def xyz(self) -> tuple[int, int, int]:
        return (self.x, self.y, self.z)

    @property
    def released(self) -> bool:
        """X ≥ 1: a release; X = 0: a prerelease."""
        return self.x >= 1

    @property
    def ref(self) -> str:
        """The exact reference, ``name@X.Y.Z-DATA.SPLIT``."""
        return f"{self.name}@{self.number}"

    @property
    def table_prefix(self) -> str:
        """``price_model__0123__efgh``: the warehouse prefix of this version's split tables."""
        return f"{table_prefix(self.name)}__{self.data}__{self.split}"

    def with_release(self, x: int) -> Version:
        return Version(self.name, x, self.y, self.z, self.data, self.split)

    def _key(self) -> tuple[str, int, int, int, str, str]:
        return (self.name, self.x, self.y, self.z, self.data, self.split)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    def __str__(self) -> str:
        return f"{self.name} {self.number}"


@dataclass(frozen=True, slots=True)
class ExperimentLabel:
    """An unnumbered experiment run's label: ``x.x.x-DATA.SPLIT``."""

    data: str | None = None
    split: str | None = None

    def __str__(self) -> str:
        return f"x.x.x-{self.data or 'x'}.{self.split or 'x'}"

    @classmethod
    def parse(cls, text: str) -> ExperimentLabel:
        """``x.x.x-DATA.SPLIT`` (``x`` for a part the run did not name) as its parts."""
        head, dash, tail = text.partition("-")
        if head != "x.x.x" or not dash:
            raise InvalidInput(
                f"{text!r} is not an experiment label (x.x.x-DATA.SPLIT)",
                hint="write x.x.x-DATA.SPLIT with 'x' for any part the run did not name, e.g. "
                "'x.x.x-0123.x'",
            )
        data, _, split = tail.partition(".")
        return cls(None if data == "x" else data, None if split == "x" else split)


class RefKind(StrEnum):
    EXACT = "exact"  # name@X.Y.Z-DATA.SPLIT
    LOGIC = "logic"  # name@X.Y.Z: newest data/split for that logic
    INTERFACE = "interface"  # name@X.Y: newest with that interface in release X
    RELEASE = "release"  # name@X: newest in release generation X
    LATEST = "latest"  # name@latest: newest release
    ALIAS = "alias"  # name@production


@dataclass(frozen=True, slots=True)
class Reference:
    """What a user types to point at a version: ``name@…``."""

    name: str
    kind: RefKind
    numbers: tuple[int, ...] = ()
    data: str | None = None
    split: str | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        """Parse ``name@X.Y.Z-DATA.SPLIT | X.Y.Z | X.Y | X | latest | alias``.

        ``name X.Y.Z-DATA.SPLIT`` (the display form of a version) is accepted too.
        """
        if not isinstance(text, str):
            raise VersionError(
                f"a reference must be text, got {type(text).__name__}",
                hint="pass the reference as text, e.g. 'price-model@1.1' or "
                "'price-model@production'",
            )
        text = text.strip()
        if "@" not in text and " " in text:
            return cls.exact(Version.parse(text))
        name, at, target = text.partition("@")
        if not at:
            raise VersionError(
                f"reference {text!r} has no '@'",
                hint=f"write e.g. '{text}@latest', '{text}@0.1.0' or '{text}@production'",
            )
        check_name(name)
        if not target:
            raise VersionError(
                f"reference {text!r} names no version after '@'",
                hint="write MODEL@latest, MODEL@X[.Y[.Z]], MODEL@ALIAS or MODEL@X.Y.Z-DATA.SPLIT",
            )
        if target == "latest":
            return cls(name, RefKind.LATEST)
        if target[0].isdigit():
            if "-" in target:
                return cls.exact(Version.parse_number(name, target))
            parts = target.split(".")
            if len(parts) > 3:
                raise VersionError(
                    f"'{target}' has more than three numbers (X.Y.Z)",
                    hint="a reference names at most X.Y.Z, e.g. 'price-model@1.1.0'",
                )
            numbers = tuple(_number(p, part) for p, part in zip(parts, "XYZ", strict=False))
            kind = (RefKind.RELEASE, RefKind.INTERFACE, RefKind.LOGIC)[len(numbers) - 1]
            return cls(name, kind, numbers)
        return cls(name, RefKind.ALIAS, alias=check_alias(target))

    @classmethod
    def exact(cls, version: Version) -> Reference:
        return cls(version.name, RefKind.EXACT, version.xyz, data=version.data, split=version.split)

    @property
    def version(self) -> Version | None:
        """The exact version this reference names, if it is exact."""
        if self.kind is not RefKind.EXACT or self.data is None or self.split is None:
            return None
        x, y, z = self.numbers
        return Version(self.name, x, y, z, self.data, self.split)

    def __str__(self) -> str:
        if self.kind is RefKind.LATEST:
            target = "latest"
        elif self.kind is RefKind.ALIAS:
            target = self.alias or ""
        else:
            target = ".".join(map(str, self.numbers))
            if self.kind is RefKind.EXACT:
                target += f"-{self.data}.{self.split}"
        return f"{self.name}@{target}"


def split_reference(text: str, default: str = "latest") -> tuple[str, str]:
    """``name@target`` as ``(name, target)``; a bare name targets ``default``."""
    name, _, target = text.partition("@")
    return name, target or default


def as_reference(ref: str | Reference | Version) -> Reference:
    """What the facade accepts as a reference, as a :class:`Reference`."""
    if isinstance(ref, Reference):
        return ref
    if isinstance(ref, Version):
        return Reference.exact(ref)
    return Reference.parse(ref)


def changes_between(a: Version, b: Version) -> tuple[str, ...]:
    """What moved from ``a`` to ``b`` in the numbers: release (X), interface (Y), logic
    (Z), data (DATA or SPLIT). Z restarts at 0 with a new Y, so interface implies no logic."""
    out = []
    if a.x != b.x:
        out.append("release")
    if a.y != b.y:
        out.append("interface")
    elif a.z != b.z:
        out.append("logic")
    if (a.data, a.split) != (b.data, b.split):
        out.append("data")
    return tuple(out)
