"""dmv.training.numbering: worked cases, then properties over random histories."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmv.errors import IntegrityError, InvalidInput, VersionError
from dmv.training.numbering import PARTS, Derivation, Known, KnownVersion, derive
from dmv.version import Version


def kv(number: str, interface_fp: str, logic_fp: str) -> KnownVersion:
    return KnownVersion.of(Version.parse_number("model", number), interface_fp, logic_fp)


def known(*versions: KnownVersion) -> Known:
    return Known("model", versions)


class History:
    """A registry in miniature: derive, then record the version if it is new."""

    def __init__(self) -> None:
        self.versions: list[KnownVersion] = []

    def run(self, interface_fp: str, logic_fp: str, data: str, split: str) -> Derivation:
        d = derive(Known("model", self.versions), interface_fp, logic_fp, data, split)
        if d.is_new:
            self.versions.append(KnownVersion.of(d.version, interface_fp, logic_fp))
        return d


def test_the_diagram_scenario_exactly() -> None:
    h = History()
    first = h.run("io-1", "rf-sklearn-1.4", "0123", "abcd")
    assert str(first.version) == "model 0.0.1-0123.abcd"
    assert (first.is_new, first.changed) == (True, PARTS)
    assert first.reason == "first version of the model"

    library = h.run("io-1", "rf-sklearn-1.5", "0123", "abcd")
    assert str(library.version) == "model 0.0.2-0123.abcd"
    assert (library.is_new, library.changed) == (True, ("logic",))
    assert library.reason == "new logic under interface 0"

    interface = h.run("io-2", "rf-sklearn-1.5-new-features", "0123", "abcd")
    assert str(interface.version) == "model 0.1.0-0123.abcd"
    assert (interface.is_new, interface.changed) == (True, ("interface", "logic"))
    assert interface.reason == "new interface 1"

    split = h.run("io-2", "rf-sklearn-1.5-new-features", "0123", "efgh")
    assert str(split.version) == "model 0.1.0-0123.efgh"
    assert (split.is_new, split.changed) == (True, ("split",))
    assert split.reason == "same interface and logic: new split"

    # Retraining with nothing changed is a training run of the same version (tr1, tr2, …).
    again = h.run("io-2", "rf-sklearn-1.5-new-features", "0123", "efgh")
    assert again.version == split.version
    assert (again.is_new, again.changed) == (False, ())
    assert again.reason == "identical: adds a training run"
    assert [v.number for v in h.versions] == [
        "0.0.1-0123.abcd",
        "0.0.2-0123.abcd",
        "0.1.0-0123.abcd",
        "0.1.0-0123.efgh",
    ]


def test_a_hyperparameter_change_is_a_logic_change_too() -> None:
    h = History()
    h.run("i", "params-a", "d", "s")
    assert h.run("i", "params-b", "d", "s").version.number == "0.0.2-d.s"


def test_new_data_keeps_xyz_and_says_so() -> None:
    k = known(kv("0.0.1-0123.abcd", "i", "l"))
    d = derive(k, "i", "l", "0456", "abcd")
    assert d.version.number == "0.0.1-0456.abcd"
    assert (d.is_new, d.changed) == (True, ("data", "split"))
    assert d.reason == "same interface and logic: new data"


def test_new_logic_counts_z_under_its_own_interface_only() -> None:
    k = known(
        kv("0.0.1-d.s", "i0", "a"),
        kv("0.0.2-d.s", "i0", "b"),
        kv("0.0.3-d.s", "i0", "c"),
        kv("0.1.0-d.s", "i1", "a"),
        kv("0.1.1-d.s", "i1", "b"),
    )
    assert derive(k, "i1", "z", "d", "s").version.number == "0.1.2-d.s"
    assert derive(k, "i0", "z", "d", "s").version.number == "0.0.4-d.s"


def test_an_old_logic_keeps_its_z_with_new_data() -> None:
    k = known(kv("0.0.1-d.s", "i", "a"), kv("0.0.2-d.s", "i", "b"))
    d = derive(k, "i", "a", "d2", "s2")
    assert d.version.number == "0.0.1-d2.s2"
    assert d.changed == ("data", "split")


def test_an_old_interface_keeps_its_y() -> None:
    k = known(kv("0.0.1-d.s", "i0", "a"), kv("0.1.0-d.s", "i1", "a"))
    assert derive(k, "i0", "a", "d", "s").version.number == "0.0.1-d.s"
    assert derive(k, "i0", "new", "d", "s").version.number == "0.0.2-d.s"


def test_a_new_interface_takes_the_next_y_and_resets_z() -> None:
    k = known(kv("0.0.1-d.s", "i0", "a"), kv("0.0.7-d.s", "i0", "b"), kv("0.2.5-d.s", "i2", "c"))
    # A hole at Y = 1 (say, pruned history) is never filled: Y only grows.
    d = derive(k, "i3", "a", "d", "s")
    assert d.version.number == "0.3.0-d.s"
    assert d.changed == ("interface",)  # the logic itself is one the model has had


def test_a_logic_known_only_under_another_interface_is_new_here() -> None:
    k = known(kv("0.0.1-d.s", "i0", "a"), kv("0.1.0-d.s", "i1", "b"))
    d = derive(k, "i0", "b", "d", "s")
    assert d.version.number == "0.0.2-d.s"
    assert d.changed == ("logic",)
    assert d.reason == "new logic under interface 0"


def test_released_fingerprints_give_the_prerelease_with_the_same_y_and_z() -> None:
    pre = kv("0.1.0-0123.efgh", "i1", "l1")
    rel = replace(pre, x=1)
    both = derive(known(kv("0.0.1-0123.abcd", "i0", "l0"), pre, rel), "i1", "l1", "0123", "efgh")
    assert both.version.number == "0.1.0-0123.efgh"
    assert not both.is_new
    assert both.reason == "identical: adds a training run (released as 1.1.0)"

    only_release = derive(known(kv("0.0.1-0123.abcd", "i0", "l0"), rel), "i1", "l1", "0123", "efgh")
    assert only_release.version.number == "0.1.0-0123.efgh"
    assert only_release.is_new and only_release.changed == ()
    assert only_release.reason.startswith("identical to a released version")

    new_data = derive(known(rel), "i1", "l1", "0456", "wxyz")
    assert new_data.version.number == "0.1.0-0456.wxyz"
    assert "released" not in new_data.reason


def test_released_versions_count_for_the_highest_y_and_z() -> None:
    k = known(
        kv("0.0.1-d.s", "i0", "a"),
        kv("2.0.3-d.s", "i0", "c"),  # 0.0.2 and 0.0.3 were pruned, the release stays
        kv("1.4.0-d.s", "i4", "a"),
    )
    assert derive(k, "i0", "new", "d", "s").version.number == "0.0.4-d.s"
    assert derive(k, "new", "a", "d", "s").version.number == "0.5.0-d.s"
    assert derive(k, "i4", "a", "d", "s").version.number == "0.4.0-d.s"


@pytest.mark.parametrize(
    "versions",
    [
        [kv("0.0.1-d.s", "i0", "a"), kv("0.0.2-d.s", "other", "b")],  # one Y, two interfaces
        [kv("0.0.1-d.s", "i0", "a"), kv("0.1.0-d.s", "i0", "b")],  # one interface, two Ys
        [kv("0.0.1-d.s", "i0", "a"), kv("0.0.1-d2.s", "i0", "b")],  # one Y.Z, two logics
        [kv("0.0.1-d.s", "i0", "a"), kv("0.0.2-d2.s", "i0", "a")],  # one logic, two Zs
        [kv("0.0.1-d.s", "i0", "a"), kv("1.0.1-d.s", "i0", "other")],  # a release that differs
    ],
)
def test_contradictory_knowledge_is_refused(versions: list[KnownVersion]) -> None:
    with pytest.raises(IntegrityError, match="two meanings") as info:
        Known("model", versions)
    assert info.value.hint and "dmv versions model" in info.value.hint


def test_bad_arguments_are_refused_with_the_part_named() -> None:
    k = known(kv("0.0.1-d.s", "i", "l"))
    with pytest.raises(InvalidInput, match="no interface fingerprint"):
        derive(k, "", "l", "d", "s")
    with pytest.raises(InvalidInput, match="no logic fingerprint"):
        derive(k, "i", "", "d", "s")
    with pytest.raises(VersionError, match="DATA 'D-1'"):
        derive(k, "i", "l", "D-1", "s")
    with pytest.raises(VersionError, match="SPLIT is empty"):
        derive(k, "i", "l", "d", "")
    with pytest.raises(VersionError, match="model name"):
        Known("Bad Name")
    with pytest.raises(IntegrityError, match="no logic fingerprint"):
        KnownVersion(0, 0, 1, "d", "s", "i", "")
    with pytest.raises(IntegrityError, match="Y = -1"):
        KnownVersion(0, -1, 1, "d", "s", "i", "l")


def test_known_takes_any_sequence_and_is_immutable() -> None:
    a = Known("model", [kv("0.0.1-d.s", "i", "l")])
    b = Known("model", (kv("0.0.1-d.s", "i", "l"),))
    assert a == b and hash(a) == hash(b)
    assert isinstance(a.versions, tuple)
    assert Known("model").versions == ()


# Properties over random histories -----------------------------------------------------------

run_step = st.tuples(
    st.just("run"),
    st.sampled_from(["i0", "i1", "i2", "i3"]),
    st.sampled_from(["l0", "l1", "l2"]),
    st.sampled_from(["d1", "d2"]),
    st.sampled_from(["s1", "s2", "s3"]),
)
release_step = st.tuples(st.just("release"), st.integers(0, 50))
prune_step = st.tuples(st.just("prune"), st.integers(0, 50))
histories = st.lists(st.one_of(run_step, run_step, run_step, release_step, prune_step), max_size=40)


def check_one_derivation(
    versions: list[KnownVersion], ifp: str, lfp: str, data: str, split: str, seed: int
) -> Derivation:
    d = derive(Known("model", versions), ifp, lfp, data, split)
    v = d.version
    # Deterministic, and blind to the order the registry lists versions in.
    shuffled = list(versions)
    random.Random(seed).shuffle(shuffled)
    assert derive(Known("model", shuffled), ifp, lfp, data, split) == d
    assert v.x == 0 and v.name == "model" and (v.data, v.split) == (data, split)

    same_pair = [k for k in versions if (k.interface_fp, k.logic_fp) == (ifp, lfp)]
    if same_pair:
        assert (v.y, v.z) == (same_pair[0].y, same_pair[0].z)  # data never moves X.Y.Z
    else:
        assert all((k.y, k.z) != (v.y, v.z) for k in versions)  # a Y.Z is never reused
    same_interface = [k for k in versions if k.interface_fp == ifp]
    if not versions:
        assert (v.y, v.z) == (0, 1)
    elif same_interface:
        assert v.y == same_interface[0].y
        if not same_pair:
            assert v.z == max(k.z for k in versions if k.y == v.y) + 1
    else:
        assert v.y == max(k.y for k in versions) + 1
        assert v.z == 0  # Z resets when Y increases
    # The result is an existing version only when both fingerprints match it.
    for k in versions:
        if k.x == 0 and (k.y, k.z, k.data, k.split) == (v.y, v.z, v.data, v.split):
            assert (k.interface_fp, k.logic_fp) == (ifp, lfp)
    existing = [(k.y, k.z, k.data, k.split) for k in versions if k.x == 0]
    assert d.is_new == ((v.y, v.z, data, split) not in existing)

    identical = any(
        (k.interface_fp, k.logic_fp, k.data, k.split) == (ifp, lfp, data, split) for k in versions
    )
    assert (d.changed == ()) == identical
    assert list(d.changed) == [p for p in PARTS if p in d.changed]
    assert "data" not in d.changed or "split" in d.changed
    assert ("interface" in d.changed) == (not same_interface)
    return d


@settings(max_examples=300, deadline=None)
@given(histories, st.integers(0, 2**32))
def test_random_histories_obey_the_rules(steps: list[tuple[object, ...]], seed: int) -> None:
    h = History()
    for step in steps:
        if step[0] == "run":
            _, ifp, lfp, data, split = step
            assert isinstance(ifp, str) and isinstance(lfp, str)
            assert isinstance(data, str) and isinstance(split, str)
            d = check_one_derivation(h.versions, ifp, lfp, data, split, seed)
            if d.is_new:
                h.versions.append(KnownVersion.of(d.version, ifp, lfp))
            continue
        index = step[1]
        assert isinstance(index, int)
        prereleases = [k for k in h.versions if k.x == 0]
        if not prereleases:
            continue
        target = prereleases[index % len(prereleases)]
        released = [k for k in h.versions if k.x >= 1]
        if step[0] == "release":
            generation = max((k.x for k in released), default=0) + 1
            h.versions.append(replace(target, x=generation))
        elif any(replace(k, x=0) == target for k in released):
            # The registry may drop a prerelease once a release keeps its record.
            h.versions.remove(target)

    # Whole-history invariants: Y ↔ interface and Y.Z ↔ (interface, logic) are one to one,
    # Y counts up from 0 without holes, Z from 1 under Y = 0 and from 0 under every later Y.
    known_now = Known("model", h.versions)  # the constructor checks the one-to-one rules
    ys = {k.y for k in known_now.versions}
    assert ys == set(range(len(ys)))
    for y in ys:
        zs = {k.z for k in known_now.versions if k.y == y}
        start = 1 if y == 0 else 0
        assert zs == set(range(start, start + len(zs)))
    assert len({(k.interface_fp, k.logic_fp) for k in h.versions}) == len(
        {(k.y, k.z) for k in h.versions}
    )
