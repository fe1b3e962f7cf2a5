"""Derive a model's next version from fingerprints: the numbering rules, and nothing else.

Pure: no I/O. The registry says what it knows of a model (:class:`Known`), the
caller brings the interface and logic fingerprints and the DATA and SPLIT ids of
a new training run, and :func:`derive` answers with the version that run belongs
to. The rules, in the order they are tried:

1. the model has no version yet → ``0.0.1``;
2. an interface fingerprint the model has never had → a new Y (highest Y + 1)
   with Z = 0;
3. a known interface keeps its Y; a logic fingerprint never seen under that
   interface → a new Z (highest Z under that Y + 1);
4. the same interface and logic keep their X.Y.Z, whatever the data: DATA and
   SPLIT never move X.Y.Z;
5. everything the same → the same version; the caller adds a training run to it.

X is always 0: derivation numbers prereleases, releasing is
:mod:`dmv.release.releases`'s business. Y and Z are shared by every release generation
(releasing ``0.1.0-D.S`` makes ``1.1.0-D.S``, keeping Y and Z), so "highest Y"
and "highest Z under Y" count released versions too. An interface or logic
known only from a released version therefore keeps that version's Y (and Z):
deriving the fingerprints of ``1.1.0-D.S`` again gives the prerelease
``0.1.0-D.S``, which is new only if the registry no longer holds it.

Numbering experiments (``x.x.x-D.S`` runs promoted to a version) needs nothing
special: their fingerprints go through the same function.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from dmv.errors import IntegrityError, InvalidInput
from dmv.version import Version, check_data_id, check_name

__all__ = ["PARTS", "Derivation", "Known", "KnownVersion", "derive"]

PARTS = ("interface", "logic", "data", "split")
"""The parts :attr:`Derivation.changed` may name, in that order."""


@dataclass(frozen=True, slots=True)
class KnownVersion:
    """One version the registry holds, with the fingerprints it was derived from."""

    x: int
    y: int
    z: int
    data: str
    split: str
    interface_fp: str
    logic_fp: str

    def __post_init__(self) -> None:
        for part, value in (("X", self.x), ("Y", self.y), ("Z", self.z)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise IntegrityError(
                    f"known version has {part} = {value!r}; a whole number ≥ 0",
                    hint="the registry was altered: run 'dmv fsck' and restore it from a backup",
                )
        check_data_id(self.data, "DATA")
        check_data_id(self.split, "SPLIT")
        for part, fp in (("interface", self.interface_fp), ("logic", self.logic_fp)):
            if not isinstance(fp, str) or not fp:
                raise IntegrityError(
                    f"known version {self.number} has no {part} fingerprint",
                    hint="the registry was altered: run 'dmv fsck' and restore it from a backup",
                )

    @classmethod
    def of(cls, version: Version, interface_fp: str, logic_fp: str) -> KnownVersion:
        """The known version for a :class:`~dmv.version.Version` and its fingerprints."""
        v = version
        return cls(v.x, v.y, v.z, v.data, v.split, interface_fp, logic_fp)

    @property
    def number(self) -> str:
        return f"{self.x}.{self.y}.{self.z}-{self.data}.{self.split}"


@dataclass(frozen=True, slots=True)
class Known:
    """What the registry knows of one model: its name and every version it holds.

    ``versions`` holds prereleases and releases alike, in any order. The
    constructor checks that they obey the rules (one interface per Y, one logic
    per Y.Z), because a derivation from contradictory knowledge would hand out a
    number that already means something else.
    """

    name: str
    versions: Sequence[KnownVersion] = field(default=())

    def __post_init__(self) -> None:
        check_name(self.name)
        # Store a tuple whatever sequence came in, so a Known stays immutable and hashable.
        object.__setattr__(self, "versions", tuple(self.versions))
        _check_consistent(self.name, self.versions)


def _check_consistent(name: str, versions: Sequence[KnownVersion]) -> None:
    interface_of_y: dict[int, str] = {}
    y_of_interface: dict[str, int] = {}
    logic_of_yz: dict[tuple[int, int], str] = {}
    z_of_logic: dict[tuple[str, str], int] = {}
    for v in versions:
        clashes = (
            (interface_of_y.setdefault(v.y, v.interface_fp), v.interface_fp, f"Y = {v.y}"),
            (y_of_interface.setdefault(v.interface_fp, v.y), v.y, "one interface fingerprint"),
            (logic_of_yz.setdefault((v.y, v.z), v.logic_fp), v.logic_fp, f"{v.y}.{v.z}"),
            (
                z_of_logic.setdefault((v.interface_fp, v.logic_fp), v.z),
                v.z,
                "one interface and logic fingerprint",
            ),
        )
        for first, this, what in clashes:
            if first != this:
                raise IntegrityError(
                    f"model {name!r}: {what} is recorded with two meanings "
                    f"({first!r} and {this!r}, the latter on {v.number})",
                    hint=f"the registry's records of {name!r} contradict each other (edited by "
                    f"hand?); compare them with 'dmv versions {name}' and repair the one named",
                    model=name,
                    version=v.number,
                )


@dataclass(frozen=True, slots=True)
class Derivation:
    """The version a training run belongs to, and why.

    ``is_new`` is false when the exact version already exists: the run becomes
    another training run of it. ``changed`` names the parts (from :data:`PARTS`)
    that differ from the model's closest known version, found by narrowing the
    known versions part by part: first to those with the same interface (if
    any), then the same logic, the same DATA, the same DATA.SPLIT. It holds all
    four for a model's first version and is empty when a known version has the
    same fingerprints, DATA and SPLIT (then ``is_new`` is false, unless only a
    release of it is left: see the module's notes on releases).
    """

    version: Version
    reason: str
    is_new: bool
    changed: tuple[str, ...]


def derive(known: Known, interface_fp: str, logic_fp: str, data: str, split: str) -> Derivation:
    """Derive the version of a training run with these fingerprints and data ids.

    Deterministic: the same knowledge and arguments always give the same result.
    """
    for part, fp in (("interface", interface_fp), ("logic", logic_fp)):
        if not isinstance(fp, str) or not fp:
            raise InvalidInput(
                f"no {part} fingerprint given", hint=f"compute it with dmv.{part} first"
            )
    check_data_id(data, "DATA")
    check_data_id(split, "SPLIT")
    versions = known.versions
    same_interface = [v for v in versions if v.interface_fp == interface_fp]
    same_logic = [v for v in same_interface if v.logic_fp == logic_fp]
    same_data = [v for v in same_logic if (v.data, v.split) == (data, split)]
    changed = _changed(versions, interface_fp, logic_fp, data, split)
    is_new = not any(v.x == 0 for v in same_data)

    if not versions:
        y, z, reason = 0, 1, "first version of the model"
    elif not same_interface:
        y, z = max(v.y for v in versions) + 1, 0
        reason = f"new interface {y}"
    elif not same_logic:
        y = same_interface[0].y
        z = max(v.z for v in versions if v.y == y) + 1
        reason = f"new logic under interface {y}"
    else:
        y, z = same_logic[0].y, same_logic[0].z
        if "data" in changed:
            reason = "same interface and logic: new data"
        elif "split" in changed:
            reason = "same interface and logic: new split"
        elif is_new:
            # Only a release holds these fingerprints and data (its prerelease record is
            # gone): number the run as that release's prerelease again, never as the release.
            reason = "identical to a released version: its prerelease again"
        else:
            reason = "identical: adds a training run"
    released = sorted(v.x for v in same_data if v.x >= 1)
    if released:
        reason += f" (released as {', '.join(f'{x}.{y}.{z}' for x in released)})"
    return Derivation(Version(known.name, 0, y, z, data, split), reason, is_new, changed)


def _changed(
    versions: Iterable[KnownVersion], interface_fp: str, logic_fp: str, data: str, split: str
) -> tuple[str, ...]:
    candidates = list(versions)
    keys = (
        ("interface", lambda v: v.interface_fp == interface_fp),
        ("logic", lambda v: v.logic_fp == logic_fp),
        ("data", lambda v: v.data == data),
        # A SPLIT id only means something together with its DATA id (they name one stored dataset).
        ("split", lambda v: (v.data, v.split) == (data, split)),
    )
    changed = []
    for part, same in keys:
        matching = [v for v in candidates if same(v)]
        if matching:
            candidates = matching
        else:
            changed.append(part)
    return tuple(changed)
