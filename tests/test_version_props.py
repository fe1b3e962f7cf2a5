"""Properties of the version grammar and the reference resolver on arbitrary text.

Whatever a user types, parsing gives a :class:`Version`/:class:`Reference` or
raises :class:`InvalidInput`; resolving against a real registry gives a version
or raises a :class:`DmvError` subclass: never another exception.
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dmv
from dmv.errors import DmvError, InvalidInput, NotFound
from dmv.version import MAX_NUMBER, Reference, RefKind, Version

SETTINGS = settings(max_examples=400, deadline=None, derandomize=True, database=None)

names = st.from_regex(r"[a-z][a-z0-9-]{0,63}", fullmatch=True)
ids = st.from_regex(r"[0-9a-z]{1,32}", fullmatch=True)
numbers = st.integers(0, MAX_NUMBER)
versions = st.builds(Version, names, numbers, numbers, numbers, ids, ids)

#: The grammar's own characters and their troublemakers: look-alike digits and letters,
#: separators, quotes, NUL, path and SQL punctuation.
_NEAR = string.ascii_lowercase[:6] + "0123456789" + "-.@ " + "²٣０Ａé_'\"\\/%;\x00\n\t"
near_text = st.text(alphabet=_NEAR, max_size=40)
#: Valid-looking pieces glued with random separators: reaches deep into the parser.
pieces = st.one_of(
    names,
    ids,
    st.integers(0, 10**40).map(str),
    st.sampled_from(["latest", "production", "0", "00", "01", "²", "٣", "", "..", "-", "@"]),
)
glued = st.lists(
    st.tuples(pieces, st.sampled_from(["", "@", " ", ".", "-", "--", ".."])), max_size=8
).map(lambda parts: "".join(a + b for a, b in parts))
any_text = st.one_of(st.text(max_size=80), near_text, glued)


def _parse_or_invalid(parse: Any, text: str) -> Any:
    try:
        return parse(text)
    except InvalidInput as exc:
        assert exc.message and exc.http_status == 422 and exc.exit_code == 2
        return None


@SETTINGS
@given(any_text)
def test_version_parse_gives_a_version_or_invalid_input(text: str) -> None:
    v = _parse_or_invalid(Version.parse, text)
    if v is not None:
        assert isinstance(v, Version)
        assert Version.parse(str(v)) == v == Version.parse(v.ref)


@SETTINGS
@given(any_text)
def test_reference_parse_gives_a_reference_or_invalid_input(text: str) -> None:
    ref = _parse_or_invalid(Reference.parse, text)
    if ref is not None:
        assert isinstance(ref, Reference)
        assert Reference.parse(str(ref)) == ref
        assert all(0 <= n <= MAX_NUMBER for n in ref.numbers)


@SETTINGS
@given(names, any_text)
def test_any_target_after_a_good_name(name: str, target: str) -> None:
    ref = _parse_or_invalid(Reference.parse, f"{name}@{target}")
    if ref is not None:
        assert ref.name == name


@SETTINGS
@given(versions)
def test_every_valid_version_round_trips(v: Version) -> None:
    assert Version.parse(str(v)) == v
    assert Version.parse_number(v.name, v.number) == v
    ref = Reference.parse(v.ref)
    assert ref.kind is RefKind.EXACT and ref.version == v
    assert v.table_prefix.replace("_", "").isalnum()


huge = st.one_of(
    st.integers(MAX_NUMBER + 1, 10**40).map(str),
    st.integers(11, 5000).map(lambda k: "9" * k),  # past int()'s 4300-digit limit too
)


@SETTINGS
@given(names, huge, st.sampled_from(["{n}", "0.{n}", "0.0.{n}", "0.0.{n}-a.b"]))
def test_numbers_past_the_registry_limit_are_refused(name: str, n: str, shape: str) -> None:
    with pytest.raises(InvalidInput, match="too large"):
        Reference.parse(f"{name}@{shape.format(n=n)}")
    with pytest.raises(InvalidInput, match="too large"):
        Version.parse(f"{name} {n}.0.0-a.b")
    if len(n) < 100:
        with pytest.raises(InvalidInput, match="too large"):
            Version(name, 0, int(n), 0, "a", "b")


@pytest.mark.parametrize("digit", ["²", "٣", "０", "1²", "0²"])
def test_unicode_digits_are_invalid_input(digit: str) -> None:
    # str.isdigit() is true for these, and int() refuses some of them.
    with pytest.raises(InvalidInput):
        Reference.parse(f"m@{digit}")
    with pytest.raises(InvalidInput):
        Version.parse(f"m {digit}.0.0-a.b")


# -- the resolver against a real registry ----------------------------------------------------


@pytest.fixture(scope="module")
def registry_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dmv.Project]:
    """m: 0.0.1, 0.0.2, 0.1.0 on 0123.abcd, 1.1.0 released from 0.1.0; aliases prod, old."""
    p = dmv.init(tmp_path_factory.mktemp("resolver") / "proj")
    for number in ("0.0.1-0123.abcd", "0.0.2-0123.abcd", "0.1.0-0123.abcd"):
        with p.run("m", version=number) as run:
            run.log_metrics({"score": 1.0})
    p.release("m@0.1.0")
    p.set_alias("m@1", "prod")
    p.set_alias("m@0.0.1", "old")
    p.create_model("empty")
    yield p
    p.close()


def _resolve(project: dmv.Project, text: str) -> Version | None:
    try:
        info = project.show(text)
    except DmvError as exc:
        assert type(exc) is not DmvError and exc.message  # a named subclass, with a message
        return None
    return info.version


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.one_of(any_text, any_text.map(lambda t: f"m@{t}"), glued.map(lambda t: f"m{t}")))
def test_resolver_raises_only_dmv_errors(registry_project: dmv.Project, text: str) -> None:
    found = _resolve(registry_project, text)
    if found is not None:
        ref = Reference.parse(text)
        assert found.name == ref.name == "m"
        assert found.xyz[: len(ref.numbers)] == ref.numbers or ref.kind is not RefKind.EXACT


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(st.integers(0, MAX_NUMBER), min_size=1, max_size=3),
    st.sampled_from(["m", "empty", "nope"]),
)
def test_numeric_references_resolve_to_a_match_or_not_found(
    registry_project: dmv.Project, parts: list[int], name: str
) -> None:
    text = f"{name}@{'.'.join(map(str, parts))}"
    found = _resolve(registry_project, text)
    if found is not None:
        assert found.xyz[: len(parts)] == tuple(parts)
    else:
        with pytest.raises(NotFound):
            registry_project.show(text)


def test_the_largest_number_resolves_to_not_found(registry_project: dmv.Project) -> None:
    for text in (f"m@{MAX_NUMBER}", f"m@0.{MAX_NUMBER}", f"m@0.0.{MAX_NUMBER}-0123.abcd"):
        with pytest.raises(NotFound):
            registry_project.show(text)
