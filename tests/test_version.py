"""The version grammar: parsing, formatting, ordering and references (DESIGN §2)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dmv import DmvError, InvalidInput, Reference, RefKind, Version
from dmv.version import check_alias, table_prefix

names = st.from_regex(r"[a-z][a-z0-9-]{0,63}", fullmatch=True)
ids = st.from_regex(r"[0-9a-z]{1,32}", fullmatch=True)
numbers = st.integers(min_value=0, max_value=10**6)
versions = st.builds(Version, names, numbers, numbers, numbers, ids, ids)


def test_seed_example_parses_into_its_parts() -> None:
    v = Version.parse("price-model 1.1.0-0123.efgh")
    assert (v.name, v.x, v.y, v.z, v.data, v.split) == ("price-model", 1, 1, 0, "0123", "efgh")
    assert v.released and not Version.parse("price-model 0.1.0-0123.efgh").released
    assert v.number == "1.1.0-0123.efgh"
    assert v.ref == "price-model@1.1.0-0123.efgh"
    assert v.table_prefix == "price_model__0123__efgh"


@given(versions)
def test_format_parse_round_trip(v: Version) -> None:
    assert Version.parse(str(v)) == v
    assert Version.parse(v.ref) == v
    assert Reference.parse(v.ref).version == v
    assert str(Reference.parse(v.ref)) == v.ref


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("price-model 0.0.1-01_23.abcd", "DATA '01_23' may contain only a-z and 0-9"),
        ("price-model 0.0.1-0123.AB", "SPLIT 'AB' may contain only a-z and 0-9"),
        ("price-model 01.0.1-0123.abcd", "X '01' has a leading zero"),
        ("price-model 0.0-0123.abcd", "must be X.Y.Z"),
        ("price-model 0.0.1", "lacks '-DATA.SPLIT'"),
        ("price-model 0.0.1-0123", "must be DATA.SPLIT"),
        ("Price 0.0.1-0123.abcd", "must start with a lowercase letter"),
        ("price_model 0.0.1-0123.abcd", "may contain only a-z, 0-9 and '-'"),
        ("1model 0.0.1-0123.abcd", "must start with a lowercase letter"),
        ("0.0.1-0123.abcd", "has no model name"),
        ("m 0.0.x-0123.abcd", "Z 'x' must be a whole number"),
        ("m 0.0.1-0123." + "a" * 33, "at most 32"),
        ("m" * 65 + " 0.0.1-0123.abcd", "at most 64"),
        ("m 0.0.1-.abcd", "DATA is empty"),
    ],
)
def test_bad_versions_name_the_part_and_why(text: str, fragment: str) -> None:
    with pytest.raises(InvalidInput) as info:
        Version.parse(text)
    assert fragment in str(info.value)
    assert isinstance(info.value, DmvError)
    assert info.value.exit_code == 2


def test_constructor_validates_too() -> None:
    with pytest.raises(InvalidInput, match="X must be a whole number"):
        Version("m", -1, 0, 0, "a", "b")
    with pytest.raises(InvalidInput, match="DATA"):
        Version("m", 0, 0, 0, "a.b", "b")


@given(versions, versions)
def test_order_is_numeric_on_xyz(a: Version, b: Version) -> None:
    if a.name == b.name and a.xyz != b.xyz:
        assert (a < b) == (a.xyz < b.xyz)
    assert (a < b) + (b < a) + (a == b) == 1  # total: exactly one holds


@given(st.lists(versions, min_size=2, max_size=20))
def test_order_is_transitive_and_consistent(vs: list[Version]) -> None:
    ordered = sorted(vs)
    for left, right in itertools.pairwise(ordered):
        assert left <= right
        assert not right < left


def test_semver_prerelease_rule_does_not_apply() -> None:
    # In SemVer 1.1.0-0123.efgh < 1.1.0; dmv has no version without DATA.SPLIT,
    # and 10 > 9 numerically (SemVer would too, strings would not).
    assert Version.parse("m 0.10.0-a.b") > Version.parse("m 0.9.0-a.b")
    assert Version.parse("m 2.0.0-a.b") > Version.parse("m 1.99.99-z.z")


@pytest.mark.parametrize(
    ("text", "kind", "numbers"),
    [
        ("price-model@1.1.0-0123.efgh", RefKind.EXACT, (1, 1, 0)),
        ("price-model@1.1.0", RefKind.LOGIC, (1, 1, 0)),
        ("price-model@1.1", RefKind.INTERFACE, (1, 1)),
        ("price-model@1", RefKind.RELEASE, (1,)),
        ("price-model@latest", RefKind.LATEST, ()),
        ("price-model@production", RefKind.ALIAS, ()),
        ("price-model 1.1.0-0123.efgh", RefKind.EXACT, (1, 1, 0)),
    ],
)
def test_reference_forms(text: str, kind: RefKind, numbers: tuple[int, ...]) -> None:
    ref = Reference.parse(text)
    assert ref.kind is kind
    assert ref.numbers == numbers
    assert ref.name == "price-model"
    if kind is not RefKind.EXACT or "@" in text:
        assert str(ref) == text


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("price-model", "has no '@'"),
        ("price-model@", "names no version"),
        ("price-model@1.2.3.4", "more than three numbers"),
        ("price-model@Prod", "must start with a lowercase letter"),
        ("price-model@prod_1", "may contain only"),
        ("@1.0", "model name is empty"),
        ("price-model@1.01", "leading zero"),
    ],
)
def test_bad_references(text: str, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        Reference.parse(text)


def test_aliases_and_table_prefix() -> None:
    assert check_alias("production") == "production"
    with pytest.raises(InvalidInput, match="reserved"):
        check_alias("latest")
    assert table_prefix("price-model-v2") == "price_model_v2"


@given(names, ids, ids)
def test_table_names_are_safe_identifiers(name: str, data: str, split: str) -> None:
    prefix = Version(name, 0, 0, 1, data, split).table_prefix
    assert prefix.replace("_", "").isalnum()
    assert prefix[0].isalpha() and prefix.islower()
