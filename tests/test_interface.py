"""Tests for dmv.interface: the model, fingerprint, diff, conversions, exports and validation."""

from __future__ import annotations

import base64
import dataclasses
import enum
import importlib.util
import json
import string
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dmv.errors import DmvError, InvalidInput
from dmv.interface import (
    ARRAY_ITEM_TYPES,
    MAP_ITEM_TYPES,
    PROBLEM_KINDS,
    ChangeKind,
    Compat,
    Field,
    FieldType,
    Interface,
    diff_interfaces,
    infer_interface,
    to_json_schema,
    to_openapi,
    to_proto,
    validate_rows,
)

EXAMPLE = {
    "inputs": {
        "age": "int64",
        "city": {"type": "enum", "values": ["a", "b"]},
        "emb": {"type": "array", "items": "float32", "shape": [-1, 3]},
        "note": {"type": "string", "required": False, "nullable": True},
    },
    "outputs": {"price": "float64"},
}


def iface(inputs: dict[str, Any], outputs: dict[str, Any] | None = None) -> Interface:
    return Interface.from_dict({"inputs": inputs, "outputs": outputs or {"y": "float64"}})


# ----------------------------------------------------------------------- strategies

NAMES = st.text(string.ascii_lowercase + "_", min_size=1, max_size=6)
ITEM_TYPES = sorted(ARRAY_ITEM_TYPES)
ENUM_VALUES = st.one_of(
    st.lists(st.text(max_size=4), min_size=1, max_size=4, unique=True),
    st.lists(st.integers(-3, 40), min_size=1, max_size=4, unique=True),
)
SHAPES = st.lists(st.sampled_from([-1, 1, 2, 3]), min_size=1, max_size=3).map(tuple)
MAP_TYPES = sorted(MAP_ITEM_TYPES)
MAP_KEYS = st.lists(
    st.text(min_size=1, max_size=4).filter(str.isprintable), min_size=1, max_size=4, unique=True
).map(tuple)


@st.composite
def fields(draw: st.DrawFn, name: str) -> Field:
    ftype = draw(st.sampled_from(list(FieldType)))
    extra: dict[str, Any] = {}
    if ftype is FieldType.ENUM:
        extra["values"] = draw(ENUM_VALUES)
    elif ftype is FieldType.ARRAY:
        extra["items"] = draw(st.sampled_from(ITEM_TYPES))
        extra["shape"] = draw(SHAPES)
    elif ftype is FieldType.MAP:
        extra["items"] = draw(st.sampled_from(MAP_TYPES))
        extra["keys"] = draw(MAP_KEYS)
    return Field(
        name,
        ftype,
        required=draw(st.booleans()),
        nullable=draw(st.booleans()),
        description=draw(st.text(max_size=8)),
        **extra,
    )


@st.composite
def interfaces(draw: st.DrawFn, names: st.SearchStrategy[str] = NAMES) -> Interface:
    sides = []
    for _ in range(2):
        side_names = draw(st.lists(names, min_size=1, max_size=5, unique=True))
        sides.append(tuple(draw(fields(n)) for n in side_names))
    return Interface(sides[0], sides[1])


# ----------------------------------------------------------------- the model itself


def test_from_dict_reads_the_compact_form() -> None:
    i = Interface.from_dict(EXAMPLE)
    age, city, emb, note = i.inputs
    assert (age.name, age.type, age.required, age.nullable) == ("age", FieldType.INT64, True, False)
    assert city.type is FieldType.ENUM and city.values == ("a", "b")
    assert emb.type is FieldType.ARRAY and emb.items is FieldType.FLOAT32
    assert emb.shape == (-1, 3)
    assert (note.type, note.required, note.nullable) == (FieldType.STRING, False, True)
    assert [f.name for f in i.outputs] == ["price"]
    assert i.outputs[0].type is FieldType.FLOAT64


def test_from_dict_accepts_lists_of_named_fields_and_python_aliases() -> None:
    listed = Interface.from_dict(
        {
            "inputs": [
                {"name": "age", "type": "int"},
                {"name": "city", "type": "enum", "values": ["b", "a"]},
                {"name": "emb", "type": "array", "items": {"type": "float32"}, "shape": [-1, 3]},
                {"name": "note", "type": "str", "required": False, "nullable": True},
            ],
            "outputs": [{"name": "price", "type": "float"}],
        }
    )
    assert listed == Interface.from_dict(EXAMPLE)
    assert listed.fingerprint == Interface.from_dict(EXAMPLE).fingerprint


def test_array_shape_defaults_to_one_variable_dimension() -> None:
    f = iface({"v": {"type": "array", "items": "int32"}}).inputs[0]
    assert f.shape == (-1,)


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"age": "int65"}, ["'age'", "unknown type 'int65'"]),
        ({"city": {"type": "enum"}}, ["'city'", "at least one value"]),
        ({"city": {"type": "enum", "values": ["a", 1]}}, ["'city'", "all text or all integers"]),
        ({"city": {"type": "enum", "values": ["a", "a"]}}, ["'city'", "repeat"]),
        ({"city": {"type": "enum", "values": [True]}}, ["'city'", "all text or all integers"]),
        ({"emb": {"type": "array"}}, ["'emb'", "needs 'items'"]),
        ({"emb": {"type": "array", "items": "enum"}}, ["'emb'", "scalar type"]),
        ({"emb": {"type": "array", "items": "int32", "shape": [0]}}, ["'emb'", "bad dimension"]),
        ({"emb": {"type": "array", "items": "int32", "shape": []}}, ["'emb'", "dimension"]),
        ({"x": {"type": "int64", "values": ["a"]}}, ["'x'", "only an enum has values"]),
        ({"x": {"type": "int64", "shape": [3]}}, ["'x'", "only an array"]),
        ({"x": {"type": "int64", "requird": False}}, ["'x'", "unknown keys ['requird']"]),
        ({"x": {"type": "int64", "required": "no"}}, ["'x'", "required must be true or false"]),
        ({"x": {"nullable": True}}, ["'x'", "no 'type'"]),
        ({"x": 5}, ["'x'", "type name or an object"]),
        ({"": "int64"}, ["field name", "non-empty"]),
    ],
)
def test_bad_declarations_name_the_field_and_hint(spec: dict[str, Any], words: list[str]) -> None:
    with pytest.raises(InvalidInput) as info:
        iface(spec)
    for word in words:
        assert word in info.value.message
    assert info.value.message.startswith("input") or "field name" in info.value.message
    assert isinstance(info.value, DmvError) and info.value.http_status == 422


def test_bad_interface_shapes_raise() -> None:
    with pytest.raises(InvalidInput, match="more than once"):
        Interface.from_dict({"inputs": [{"name": "a", "type": "bool"}] * 2, "outputs": {}})
    with pytest.raises(InvalidInput, match="missing \\['outputs'\\]"):
        Interface.from_dict({"inputs": {}})
    with pytest.raises(InvalidInput, match="unknown \\['extra'\\]"):
        Interface.from_dict({"inputs": {}, "outputs": {}, "extra": 1})
    with pytest.raises(InvalidInput, match="needs a 'name'"):
        Interface.from_dict({"inputs": [{"type": "bool"}], "outputs": {}})
    with pytest.raises(InvalidInput, match="output field 'y'"):
        Interface.from_dict({"inputs": {}, "outputs": {"y": "decimal"}})


def test_field_constructor_coerces_type_names_and_sorts_enum_values() -> None:
    f = Field("c", "enum", values=["z", "a", "m"])  # type: ignore[arg-type]
    assert f.type is FieldType.ENUM and f.values == ("a", "m", "z")
    assert Field("n", FieldType.ENUM, values=[3, 1]).values == (1, 3)


# -------------------------------------------------------------------- fingerprint


def test_fingerprint_is_blake3_hex() -> None:
    fp = Interface.from_dict(EXAMPLE).fingerprint
    algo, _, digest = fp.partition(":")
    assert algo == "blake3" and len(digest) == 64 and int(digest, 16) >= 0


def test_fingerprint_ignores_field_order_and_descriptions() -> None:
    i = Interface.from_dict(EXAMPLE)
    shuffled = Interface(tuple(reversed(i.inputs)), i.outputs)
    described = Interface(
        tuple(dataclasses.replace(f, description=f"the {f.name}") for f in i.inputs), i.outputs
    )
    assert shuffled.fingerprint == i.fingerprint == described.fingerprint
    assert not diff_interfaces(i, shuffled).changed
    assert not diff_interfaces(i, described).changed


def test_fingerprint_tells_inputs_from_outputs() -> None:
    a = Interface((Field("x", FieldType.INT64),), ())
    b = Interface((), (Field("x", FieldType.INT64),))
    assert a.fingerprint != b.fingerprint


@settings(max_examples=60)
@given(interfaces(), st.randoms(use_true_random=False))
def test_fingerprint_is_stable_under_shuffles_and_description_edits(i: Interface, rnd: Any) -> None:
    inputs, outputs = list(i.inputs), list(i.outputs)
    rnd.shuffle(inputs)
    rnd.shuffle(outputs)
    edited = [dataclasses.replace(f, description=f.description + "!") for f in outputs]
    assert Interface(tuple(inputs), tuple(edited)).fingerprint == i.fingerprint


def _mutations(f: Field, rnd: Any) -> list[tuple[Field, set[ChangeKind]]]:
    """Every single-aspect change of a field, with the kinds a diff may report for it."""
    out = [
        (
            dataclasses.replace(f, required=not f.required),
            {ChangeKind.MADE_OPTIONAL, ChangeKind.MADE_REQUIRED},
        ),
        (
            dataclasses.replace(f, nullable=not f.nullable),
            {ChangeKind.MADE_NULLABLE, ChangeKind.MADE_NOT_NULLABLE},
        ),
    ]
    other = rnd.choice([t for t in FieldType if t is not f.type])
    extra: dict[str, Any] = {}
    if other is FieldType.ENUM:
        extra["values"] = ("x",)
    if other is FieldType.ARRAY:
        extra["items"] = FieldType.INT64
    if other is FieldType.MAP:
        extra["items"], extra["keys"] = FieldType.FLOAT64, ("k",)
    new = Field(f.name, other, f.required, f.nullable, f.description, **extra)
    type_kinds = {ChangeKind.TYPE_CHANGED, ChangeKind.WIDENED, ChangeKind.NARROWED}
    out.append((new, type_kinds))
    if f.type is FieldType.ENUM:
        fresh = "zzzzz" if isinstance(f.values[0], str) else 999
        added = dataclasses.replace(f, values=(*f.values, fresh))
        out.append((added, {ChangeKind.ENUM_VALUES_ADDED}))
        if len(f.values) > 1:
            removed = dataclasses.replace(f, values=f.values[1:])
            out.append((removed, {ChangeKind.ENUM_VALUES_REMOVED}))
    if f.type is FieldType.ARRAY:
        items = rnd.choice([t for t in ITEM_TYPES if t is not f.items])
        out.append((dataclasses.replace(f, items=items), type_kinds))
        dim = rnd.randrange(len(f.shape))
        shape = list(f.shape)
        shape[dim] = 7 if shape[dim] == -1 else -1
        out.append((dataclasses.replace(f, shape=tuple(shape)), {ChangeKind.SHAPE_CHANGED}))
        out.append((dataclasses.replace(f, shape=(*f.shape, 2)), {ChangeKind.RANK_CHANGED}))
    if f.type is FieldType.MAP:
        items = rnd.choice([t for t in MAP_TYPES if t is not f.items])
        out.append((dataclasses.replace(f, items=items), type_kinds))
        out.append((dataclasses.replace(f, keys=(*f.keys, "zzzzz")), {ChangeKind.KEYS_CHANGED}))
        if len(f.keys) > 1:
            swapped = dataclasses.replace(f, keys=f.keys[::-1])
            out.append((swapped, {ChangeKind.KEYS_CHANGED}))
    return out


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(interfaces(), st.randoms(use_true_random=False), st.booleans())
def test_any_structural_change_moves_the_fingerprint_and_shows_in_the_diff(
    i: Interface, rnd: Any, on_inputs: bool
) -> None:
    side = "input" if on_inputs else "output"
    fs = list(i.fields(side))
    index = rnd.randrange(len(fs))
    options = [
        ([*fs[:index], new, *fs[index + 1 :]], kinds) for new, kinds in _mutations(fs[index], rnd)
    ]
    fresh = Field("a_new_field", FieldType.BOOL, required=rnd.random() < 0.5)
    options.append(([*fs, fresh], {ChangeKind.ADDED}))
    options.append((fs[:index] + fs[index + 1 :], {ChangeKind.REMOVED}))
    for new_fields, kinds in options:
        changed = (
            Interface(tuple(new_fields), i.outputs)
            if on_inputs
            else Interface(i.inputs, tuple(new_fields))
        )
        assert changed.fingerprint != i.fingerprint
        diff = diff_interfaces(i, changed)
        assert diff.changed
        assert len(diff.changes) == 1, diff.to_dict()
        (change,) = diff.changes
        assert change.side == side and change.kind in kinds
        assert change.compat in (Compat.COMPATIBLE, Compat.BREAKING)
        assert diff.compat is change.compat


# ---------------------------------------------------------------- storage round trip


@settings(max_examples=100)
@given(interfaces(names=st.text(string.printable.strip(), min_size=1, max_size=8)))
def test_to_dict_from_dict_round_trips_through_json(i: Interface) -> None:
    stored = json.loads(json.dumps(i.to_dict()))
    back = Interface.from_dict(stored)
    assert back == i
    assert back.fingerprint == i.fingerprint
    assert back.to_dict() == stored


def test_to_dict_is_the_canonical_storage_form() -> None:
    i = Interface.from_dict(EXAMPLE)
    assert i.to_dict()["inputs"][1] == {
        "name": "city",
        "type": "enum",
        "required": True,
        "nullable": False,
        "values": ["a", "b"],
    }
    assert i.to_dict()["inputs"][2] == {
        "name": "emb",
        "type": "array",
        "required": True,
        "nullable": False,
        "items": "float32",
        "shape": [-1, 3],
    }
    described = Field("x", FieldType.BOOL, description="why").to_dict()
    assert described["description"] == "why"
    assert Field.from_dict(described) == Field("x", FieldType.BOOL, description="why")


# --------------------------------------------------------------------------- diff

E2 = {"type": "enum", "values": ["a", "b"]}
E3 = {"type": "enum", "values": ["a", "b", "c"]}


def arr(shape: list[int], items: str = "float32") -> dict[str, Any]:
    return {"type": "array", "items": items, "shape": shape}


OPT = {"type": "int64", "required": False}
NUL = {"type": "int64", "nullable": True}
C, B = Compat.COMPATIBLE, Compat.BREAKING
K = ChangeKind

# (old spec, new spec, kind, class on the input side, class on the output side)
DIFF_CASES = [
    pytest.param(None, OPT, K.ADDED, C, B, id="added-optional"),
    pytest.param(None, "int64", K.ADDED, B, B, id="added-required"),
    pytest.param(OPT, None, K.REMOVED, B, C, id="removed-optional"),
    pytest.param("int64", None, K.REMOVED, B, B, id="removed-required"),
    pytest.param("int64", OPT, K.MADE_OPTIONAL, C, B, id="required-to-optional"),
    pytest.param(OPT, "int64", K.MADE_REQUIRED, B, C, id="optional-to-required"),
    pytest.param("int64", NUL, K.MADE_NULLABLE, C, B, id="made-nullable"),
    pytest.param(NUL, "int64", K.MADE_NOT_NULLABLE, B, C, id="made-not-nullable"),
    pytest.param(E2, E3, K.ENUM_VALUES_ADDED, C, B, id="enum-values-added"),
    pytest.param(E3, E2, K.ENUM_VALUES_REMOVED, B, C, id="enum-values-removed"),
    pytest.param("int32", "int64", K.WIDENED, C, B, id="int32-int64"),
    pytest.param("float32", "float64", K.WIDENED, C, B, id="float32-float64"),
    pytest.param("int64", "float64", K.WIDENED, C, B, id="int64-float64"),
    pytest.param("int32", "float32", K.WIDENED, C, B, id="int32-float32"),
    pytest.param("int64", "int32", K.NARROWED, B, C, id="int64-int32"),
    pytest.param("float64", "float32", K.NARROWED, B, C, id="float64-float32"),
    pytest.param("float64", "int64", K.NARROWED, B, C, id="float64-int64"),
    pytest.param("string", "int64", K.TYPE_CHANGED, B, B, id="string-int64"),
    pytest.param("bool", "int32", K.TYPE_CHANGED, B, B, id="bool-int32"),
    pytest.param(E2, "string", K.TYPE_CHANGED, B, B, id="enum-string"),
    pytest.param("float32", arr([-1]), K.TYPE_CHANGED, B, B, id="scalar-array"),
    pytest.param("datetime", "string", K.TYPE_CHANGED, B, B, id="datetime-string"),
    pytest.param(arr([3]), arr([-1]), K.SHAPE_CHANGED, C, B, id="dim-fixed-to-variable"),
    pytest.param(arr([-1]), arr([3]), K.SHAPE_CHANGED, B, C, id="dim-variable-to-fixed"),
    pytest.param(arr([3]), arr([4]), K.SHAPE_CHANGED, B, B, id="dim-resized"),
    pytest.param(arr([3, -1]), arr([-1, 3]), K.SHAPE_CHANGED, B, B, id="dims-both-ways"),
    pytest.param(arr([-1]), arr([-1, -1]), K.RANK_CHANGED, B, B, id="rank-change"),
    pytest.param(arr([-1]), arr([-1], "float64"), K.WIDENED, C, B, id="items-widened"),
    pytest.param(arr([-1]), arr([-1], "int32"), K.NARROWED, B, C, id="items-narrowed"),
    pytest.param(arr([-1]), arr([-1], "string"), K.TYPE_CHANGED, B, B, id="items-retyped"),
]


@pytest.mark.parametrize(("old", "new", "kind", "on_input", "on_output"), DIFF_CASES)
def test_each_change_is_classed_by_direction(
    old: Any, new: Any, kind: ChangeKind, on_input: Compat, on_output: Compat
) -> None:
    def side(spec: Any) -> dict[str, Any]:
        return {"keep": "bool"} | ({} if spec is None else {"f": spec})

    for where, expected in (("input", on_input), ("output", on_output)):
        if where == "input":
            a, b = iface(side(old)), iface(side(new))
        else:
            a, b = iface({"keep": "bool"}, side(old)), iface({"keep": "bool"}, side(new))
        diff = diff_interfaces(a, b)
        assert [(c.side, c.field, c.kind) for c in diff.changes] == [(where, "f", kind)]
        assert diff.changes[0].compat is expected, (where, diff.to_dict())
        assert diff.compat is expected and diff.changed
        assert a.fingerprint != b.fingerprint


def test_rename_is_a_removal_plus_an_addition() -> None:
    for where in ("input", "output"):
        old_side, new_side = {"a": "int64"}, {"b": "int64"}
        if where == "input":
            old, new = iface(old_side), iface(new_side)
        else:
            old, new = iface({"x": "bool"}, old_side), iface({"x": "bool"}, new_side)
        diff = diff_interfaces(old, new)
        assert [(c.field, c.kind) for c in diff.changes] == [("a", K.REMOVED), ("b", K.ADDED)]
        assert diff.compat is Compat.BREAKING


def test_overall_class_is_the_worst_and_no_change_is_none() -> None:
    base = iface({"a": "int32", "b": E3})
    same = diff_interfaces(base, base)
    assert not same.changed and same.compat is Compat.NONE and same.changes == ()
    looser = diff_interfaces(base, iface({"a": "int64", "b": E3, "c": OPT}))
    assert looser.compat is Compat.COMPATIBLE and len(looser.changes) == 2
    mixed = diff_interfaces(base, iface({"a": "int64", "b": E2}))
    assert [c.compat for c in mixed.changes] == [C, B] and mixed.compat is Compat.BREAKING


def test_one_field_can_change_in_several_ways() -> None:
    diff = diff_interfaces(
        iface({"f": "int32"}), iface({"f": {"type": "int64", "required": False}})
    )
    assert {c.kind for c in diff.changes} == {K.MADE_OPTIONAL, K.WIDENED}
    assert diff.compat is Compat.COMPATIBLE


def test_diff_to_dict_is_plain_json() -> None:
    diff = diff_interfaces(iface({"f": "int32"}), iface({"f": "int64"}))
    assert json.loads(json.dumps(diff.to_dict())) == {
        "changed": True,
        "compat": "compatible",
        "changes": [
            {
                "side": "input",
                "field": "f",
                "kind": "widened",
                "detail": "int32 -> int64",
                "compat": "compatible",
            }
        ],
    }


def test_compat_orders_by_severity_not_alphabet() -> None:
    assert Compat.NONE < Compat.COMPATIBLE < Compat.BREAKING
    assert Compat.BREAKING > Compat.COMPATIBLE >= Compat.COMPATIBLE > Compat.NONE
    assert max([Compat.COMPATIBLE, Compat.BREAKING, Compat.NONE]) is Compat.BREAKING
    assert sorted(Compat) == [Compat.NONE, Compat.COMPATIBLE, Compat.BREAKING]
    assert Compat.BREAKING == "breaking" and Compat.COMPATIBLE <= "breaking"


# ----------------------------------------------------------------------- pydantic


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


def _pydantic_models() -> tuple[type[Any], type[Any]]:
    from pydantic import BaseModel
    from pydantic import Field as PField

    class Request(BaseModel):
        age: int = PField(description="years")
        height: float
        name: str
        active: bool
        photo: bytes
        seen: datetime
        color: Color
        size: Literal["s", "m", "l"]
        tags: list[float]
        grid: list[tuple[float, float, float]]
        note: str | None = None
        maybe: int | None
        level: int = 3
        small: float = PField(json_schema_extra={"dmv": "float32"})
        renamed: int = PField(alias="the-alias")

    class Response(BaseModel):
        price: float
        label: Literal[0, 1]

    return Request, Response


def test_from_pydantic_maps_python_types() -> None:
    request, response = _pydantic_models()
    i = Interface.from_pydantic(request, response)
    got = {f.name: f for f in i.inputs}
    assert [f.name for f in i.inputs][-1] == "the-alias"
    assert got["age"] == Field("age", FieldType.INT64, description="years")
    assert got["height"].type is FieldType.FLOAT64
    assert got["name"].type is FieldType.STRING
    assert got["active"].type is FieldType.BOOL
    assert got["photo"].type is FieldType.BINARY
    assert got["seen"].type is FieldType.DATETIME
    assert got["color"] == Field("color", FieldType.ENUM, values=("green", "red"))
    assert got["size"].values == ("l", "m", "s")
    assert (got["tags"].items, got["tags"].shape) == (FieldType.FLOAT64, (-1,))
    assert got["grid"].shape == (-1, 3)
    assert (got["note"].required, got["note"].nullable) == (False, True)
    assert (got["maybe"].required, got["maybe"].nullable) == (True, True)
    assert (got["level"].required, got["level"].nullable) == (False, False)
    assert got["small"].type is FieldType.FLOAT32
    assert i.outputs == (
        Field("price", FieldType.FLOAT64),
        Field("label", FieldType.ENUM, values=(0, 1)),
    )


def test_from_pydantic_agrees_with_pydantic_json_schema() -> None:
    request, response = _pydantic_models()
    direct = Interface.from_pydantic(request, response)
    via_schema = Interface.from_json_schema(
        request.model_json_schema(), response.model_json_schema()
    )
    # json_schema_extra cannot reach the schema, so that one field differs.
    assert {f.name for f in direct.inputs} == {f.name for f in via_schema.inputs}
    changes = diff_interfaces(direct, via_schema).changes
    assert [(c.field, c.kind) for c in changes] == [("small", K.WIDENED)]


def test_from_pydantic_rejects_what_it_cannot_express() -> None:
    from pydantic import BaseModel

    class Bad(BaseModel):
        lookup: dict[str, int]

    class Union2(BaseModel):
        either: int | str

    with pytest.raises(InvalidInput, match="input field 'lookup'") as info:
        Interface.from_pydantic(Bad, Bad)
    assert info.value.hint
    with pytest.raises(InvalidInput, match=r"'either'.*more than one"):
        Interface.from_pydantic(Union2, Union2)
    with pytest.raises(InvalidInput, match="BaseModel"):
        Interface.from_pydantic(dict, Bad)


# -------------------------------------------------------------------- JSON Schema


@settings(max_examples=100)
@given(interfaces(names=st.text(string.printable.strip(), min_size=1, max_size=8)))
def test_json_schema_round_trips(i: Interface) -> None:
    schemas = json.loads(json.dumps(to_json_schema(i)))
    assert Interface.from_json_schema(schemas["input"], schemas["output"]) == i
    assert Interface.from_json_schema(schemas) == i


@settings(max_examples=30)
@given(interfaces())
def test_json_schema_is_valid_draft_2020_12(i: Interface) -> None:
    from jsonschema import Draft202012Validator

    for schema in to_json_schema(i).values():
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        Draft202012Validator.check_schema(schema)


def test_json_schema_agrees_with_validate_rows() -> None:
    from jsonschema import Draft202012Validator

    i = Interface.from_dict(EXAMPLE)
    validator = Draft202012Validator(to_json_schema(i)["input"])
    good = {"age": 3, "city": "a", "emb": [[1.0, 2.0, 3.0]], "note": None}
    bad_rows = [
        {"age": 3, "city": "z", "emb": [], "note": None},
        {"age": "3", "city": "a", "emb": []},
        {"age": 3, "city": "a", "emb": [[1.0]]},
        {"city": "a", "emb": []},
        {"age": 3, "city": "a", "emb": [], "other": 1},
    ]
    assert validator.is_valid(good) and validate_rows(i, [good]) == []
    for row in bad_rows:
        assert not validator.is_valid(row)
        assert validate_rows(i, [row]), row


def test_from_json_schema_reads_common_forms() -> None:
    schema = {
        "type": "object",
        "$defs": {"Size": {"type": "string", "enum": ["s", "m"]}},
        "properties": {
            "size": {"$ref": "#/$defs/Size", "description": "t-shirt"},
            "opt": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "maybe": {"type": ["number", "null"], "format": "float"},
            "one": {"const": 7},
            "blob": {"type": "string", "format": "byte"},
            "day": {"type": "string", "format": "date"},
        },
        "required": ["size", "maybe", "one"],
    }
    i = Interface.from_json_schema(schema, {"properties": {"y": {"type": "boolean"}}})
    got = {f.name: f for f in i.inputs}
    assert got["size"] == Field("size", FieldType.ENUM, description="t-shirt", values=("m", "s"))
    assert (got["opt"].type, got["opt"].required, got["opt"].nullable) == (
        FieldType.INT64,
        False,
        True,
    )
    assert (got["maybe"].type, got["maybe"].nullable) == (FieldType.FLOAT32, True)
    assert got["one"].values == (7,)
    assert got["blob"].type is FieldType.BINARY
    assert got["day"].type is FieldType.STRING
    assert i.outputs == (Field("y", FieldType.BOOL, required=False),)


@pytest.mark.parametrize(
    ("prop", "words"),
    [
        ({"type": "object"}, "an object field needs 'properties'"),
        (
            {"type": "object", "properties": {"a": {"type": "number"}}},
            "every key of an object field must be required",
        ),
        (
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            "map values must be numbers",
        ),
        ({"anyOf": [{"type": "integer"}, {"type": "string"}]}, "2 non-null alternatives"),
        ({"$ref": "https://example.com/x"}, "only local references"),
        ({"$ref": "#/$defs/Nope"}, "points nowhere"),
        ({"type": "array", "items": {"type": ["number", "null"]}}, "elements cannot be null"),
        ({"type": "array"}, "needs 'items'"),
    ],
)
def test_from_json_schema_rejects_what_it_cannot_express(prop: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidInput, match="input field 'x'") as info:
        Interface.from_json_schema({"properties": {"x": prop}}, {"properties": {}})
    assert words in info.value.message


def test_from_json_schema_needs_both_sides() -> None:
    with pytest.raises(InvalidInput, match="an input row schema and an output row schema"):
        Interface.from_json_schema({"properties": {}})


# ---------------------------------------------------------------------- inference


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "i64": np.array([1, 2, 3], dtype="int64"),
            "i32": np.array([1, 2, 3], dtype="int32"),
            "f32": np.array([1.5, 2.5, 3.5], dtype="float32"),
            "f64": [1.0, None, 3.0],
            "flag": [True, False, True],
            "name": ["a", "b", "c"],
            "note": ["x", None, "z"],
            "city": pd.Categorical(["x", "y", "x"], categories=["y", "x", "w"]),
            "when": pd.to_datetime(["2024-01-01", "2024-02-01", None]),
            "vec": [[1.0, 2.0], [3.0], [4.0, 5.0]],
            "nint": pd.array([1, None, 3], dtype="Int64"),
            "blob": [b"\x00", b"\x01", b"\x02"],
        }
    )


def test_infer_maps_pandas_dtypes() -> None:
    frame = _frame()
    i = infer_interface(frame, np.array([0.1, 0.2, 0.3]))
    got = {f.name: (f.type, f.nullable) for f in i.inputs}
    assert got == {
        "i64": (FieldType.INT64, False),
        "i32": (FieldType.INT32, False),
        "f32": (FieldType.FLOAT32, False),
        "f64": (FieldType.FLOAT64, True),
        "flag": (FieldType.BOOL, False),
        "name": (FieldType.STRING, False),
        "note": (FieldType.STRING, True),
        "city": (FieldType.STRING, False),
        "when": (FieldType.DATETIME, True),
        "vec": (FieldType.ARRAY, False),
        "nint": (FieldType.INT64, True),
        "blob": (FieldType.BINARY, False),
    }
    assert [f.name for f in i.inputs] == list(frame.columns)
    fields_ = {f.name: f for f in i.inputs}
    # A category set is what the training rows held: a domain, not the contract.
    assert fields_["city"].values == ()
    assert i.domain["city"] == {"nulls": False, "values": ["w", "x", "y"]}
    assert i.domain["f64"] == {"nulls": True, "min": 1.0, "max": 3.0}
    assert (fields_["vec"].items, fields_["vec"].shape) == (FieldType.FLOAT64, (-1,))
    assert all(f.required for f in i.inputs)
    assert i.outputs == (Field("prediction", FieldType.FLOAT64),)


def test_learned_domain_is_recorded_but_never_fingerprinted() -> None:
    def frame(cats: list[str]) -> pd.DataFrame:
        return pd.DataFrame({"dest": pd.Categorical(["JFK"], categories=cats), "n": [1]})

    a = infer_interface(frame(["JFK", "LEX"]), np.array([0.5]))
    b = infer_interface(frame(["JFK"]), np.array([0.5]))
    assert a.domain["dest"]["values"] == ["JFK", "LEX"] and b.domain["dest"]["values"] == ["JFK"]
    assert a == b and a.fingerprint == b.fingerprint
    assert not diff_interfaces(a, b).changed
    back = Interface.from_dict(json.loads(json.dumps(a.to_dict())))
    assert back.domain == a.domain and back.fingerprint == a.fingerprint
    # An interface without a domain stores (and fingerprints) what it always did.
    plain = Interface.from_dict({"inputs": {"x": "int64"}, "outputs": {"y": "float64"}})
    assert "domain" not in plain.to_dict()
    assert plain.fingerprint == plain.with_domain({"x": {"min": 1}}).fingerprint
    # Declared as an enum, the category set is contract and counts.
    declared = {"inputs": {"dest": {"type": "enum", "values": ["JFK", "LEX"]}}, "outputs": {}}
    narrower = {"inputs": {"dest": {"type": "enum", "values": ["JFK"]}}, "outputs": {}}
    assert Interface.from_dict(declared).fingerprint != Interface.from_dict(narrower).fingerprint


def test_domain_changes_are_listed_apart_from_the_contract() -> None:
    from dmv.interface import diff_domains

    a = Interface.from_dict(
        {
            "inputs": {"d": "string"},
            "outputs": {},
            "domain": {"d": {"values": ["a", "b"], "nulls": False}},
        }
    )
    b = a.with_domain({"d": {"values": ["a", "c"], "nulls": True}})
    changes = diff_domains(a, b)
    assert {(c["field"], c["kind"]) for c in changes} == {
        ("d", "values_added"),
        ("d", "values_removed"),
        ("d", "nulls"),
    }
    assert all(c["compat"] == "domain" for c in changes)
    assert diff_domains(a, a) == []


def test_with_nullable_sets_exactly_the_named_inputs() -> None:
    i = Interface.from_dict({"inputs": {"a": "float64", "b": "int64"}, "outputs": {"y": "int64"}})
    j = i.with_nullable({"a"})
    assert [(f.name, f.nullable) for f in j.inputs] == [("a", True), ("b", False)]
    assert j.fingerprint != i.fingerprint


def test_inferred_interface_accepts_its_own_sample() -> None:
    frame = _frame()
    i = infer_interface(frame, np.array([1, 0, 1]))
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    rows = [
        {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in r.items()} for r in rows
    ]
    assert validate_rows(i, rows) == []
    assert validate_rows(i, [{"prediction": 1}], side="output") == []


def test_infer_reads_dicts_and_records_and_output_shapes() -> None:
    columns = {"a": [1, 2], "b": ["x", "y"]}
    records = [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    from_columns = infer_interface(columns, [0.5, 0.7])
    assert from_columns.fingerprint == infer_interface(records, [0.5, 0.7]).fingerprint
    assert [(f.name, f.type) for f in from_columns.inputs] == [
        ("a", FieldType.INT64),
        ("b", FieldType.STRING),
    ]
    two_d = infer_interface(columns, np.zeros((2, 4), dtype="float32"))
    assert two_d.outputs == (
        Field("prediction", FieldType.ARRAY, items=FieldType.FLOAT32, shape=(4,)),
    )
    named = infer_interface(columns, np.zeros((2, 2)), output_columns=["lo", "hi"])
    assert [(f.name, f.type) for f in named.outputs] == [
        ("lo", FieldType.FLOAT64),
        ("hi", FieldType.FLOAT64),
    ]
    series = infer_interface(columns, pd.Series(["u", "v"], name="label"))
    assert series.outputs == (Field("label", FieldType.STRING),)
    frame_out = infer_interface(columns, pd.DataFrame({"p": [1, 2], "q": [True, False]}))
    assert [(f.name, f.type) for f in frame_out.outputs] == [
        ("p", FieldType.INT64),
        ("q", FieldType.BOOL),
    ]
    labels = infer_interface(columns, np.array(["cat", "dog"]))
    assert labels.outputs == (Field("prediction", FieldType.STRING),)


def test_infer_rejects_what_it_cannot_tell() -> None:
    with pytest.raises(InvalidInput, match="3 rows but sample_input has 2"):
        infer_interface({"a": [1, 2]}, [1, 2, 3])
    with pytest.raises(InvalidInput, match="column 'a' holds only nulls"):
        infer_interface({"a": [None, None]}, [1, 2])
    with pytest.raises(InvalidInput, match="column 'a' mixes values"):
        infer_interface({"a": [1, "x"]}, [1, 2])
    with pytest.raises(InvalidInput, match="DataFrame"):
        infer_interface(np.zeros((2, 2)), [1, 2])
    with pytest.raises(InvalidInput, match="output_columns names 3"):
        infer_interface({"a": [1, 2]}, np.zeros((2, 2)), output_columns=["x", "y", "z"])
    with pytest.raises(InvalidInput, match="timedelta"):
        infer_interface({"a": pd.to_timedelta([1, 2], unit="s")}, [1, 2])


def test_infer_from_a_real_scikit_learn_model() -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    frame, target = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=500).fit(frame, target)
    i = infer_interface(frame, model.predict(frame))
    assert [f.name for f in i.inputs] == list(frame.columns)
    assert {f.type for f in i.inputs} == {FieldType.FLOAT64}
    assert i.outputs == (Field("prediction", FieldType.INT64),)
    proba = infer_interface(frame, model.predict_proba(frame))
    assert proba.outputs == (
        Field("prediction", FieldType.ARRAY, items=FieldType.FLOAT64, shape=(3,)),
    )
    assert diff_interfaces(i, proba).changes[0].kind is K.TYPE_CHANGED
    rows = frame.head(5).to_dict("records")
    assert validate_rows(i, rows) == []
    outputs = [{"prediction": p} for p in model.predict_proba(frame.head(5)).tolist()]
    assert validate_rows(proba, outputs, side="output") == []
    # The names sklearn gives (with spaces and parentheses) survive into proto.
    assert '[json_name = "sepal length (cm)"]' in to_proto(i, "iris")


# ---------------------------------------------------------------------- OpenAPI


def test_openapi_document_is_valid_3_1() -> None:
    from openapi_spec_validator import validate

    i = Interface.from_dict(EXAMPLE)
    doc = to_openapi(i, "price-model", "1.1.0-0123.efgh")
    validate(doc)
    assert doc["openapi"] == "3.1.0" and doc["info"]["version"] == "1.1.0-0123.efgh"
    post = doc["paths"]["/models/{name}/versions/{ref}/predict"]["post"]
    assert {p["name"] for p in post["parameters"]} == {"name", "ref"}
    assert set(post["responses"]) >= {"200", "422"}
    assert i.fingerprint in post["description"]
    assert (
        doc["components"]["schemas"]["Input"]["properties"]
        == to_json_schema(i)["input"]["properties"]
    )


def _component_validator(doc: dict[str, Any], name: str) -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(
        {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
    )


def test_openapi_bodies_match_the_predict_contract() -> None:
    i = Interface.from_dict(EXAMPLE)
    doc = to_openapi(i, "price-model", "1.1.0-0123.efgh")
    row = {"age": 3, "city": "a", "emb": [[1, 2, 3]]}
    request = _component_validator(doc, "PredictRequest")
    assert request.is_valid({"inputs": [row, row]})
    assert not request.is_valid({"inputs": [{**row, "age": "x"}]})
    assert not request.is_valid([row])
    response = _component_validator(doc, "PredictResponse")
    answer = {"model": "price-model", "version": "1.1.0-0123.efgh", "outputs": [{"price": 1.5}]}
    assert response.is_valid(answer)
    assert not response.is_valid({"model": "price-model", "outputs": []})
    problems = validate_rows(i, [{**row, "age": "x"}, {}])
    body = InvalidInput("the request does not match", hint="see problems", problems=problems)
    error = _component_validator(doc, "Error")
    assert error.is_valid(body.to_dict())
    assert not error.is_valid({"code": "x", "message": "flat, not wrapped"})


def test_openapi_checks_its_arguments() -> None:
    i = Interface.from_dict(EXAMPLE)
    with pytest.raises(DmvError, match="lowercase"):
        to_openapi(i, "Price Model", "1.0.0-a.b")
    with pytest.raises(InvalidInput, match="version_text"):
        to_openapi(i, "price-model", " ")


# ------------------------------------------------------------------------- proto


def _protoc(tmp: Path, text: str, *, grpc: bool = True) -> int:
    import grpc_tools
    from grpc_tools import protoc

    include = Path(grpc_tools.__file__).parent / "_proto"
    name = f"m{uuid.uuid4().hex[:8]}.proto"
    (tmp / name).write_text(text, encoding="utf-8")
    args = ["protoc", f"-I{tmp}", f"-I{include}", f"--python_out={tmp}", str(tmp / name)]
    if grpc:
        args.insert(-1, f"--grpc_python_out={tmp}")
    return int(protoc.main(args))


def _import(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def test_proto_compiles_and_its_messages_work(tmp_path: Path) -> None:
    from google.protobuf import json_format

    i = Interface.from_dict(
        {
            "inputs": EXAMPLE["inputs"]
            | {
                "when": {"type": "datetime", "nullable": True},
                "Weird name!": "bool",
                "a_b": "int32",
                "aB": "int32",
                "level": {"type": "enum", "values": [-1, 0, 2]},
            },
            "outputs": {"price": "float64", "tags": {"type": "array", "items": "string"}},
        }
    )
    model = "m" + uuid.uuid4().hex[:8]  # a fresh package: the descriptor pool is global
    text = to_proto(i, model)
    assert f"package dmv.models.{model};" in text and i.fingerprint in text
    assert "CITY_UNSPECIFIED = 0;" in text and "optional string note" in text
    assert _protoc(tmp_path, text) == 0
    (pb2_path,) = tmp_path.glob("*_pb2.py")
    pb2 = _import(pb2_path)
    assert (tmp_path / f"{pb2_path.stem}_grpc.py").exists()
    for message in ("Input", "Output", "PredictRequest", "PredictResponse"):
        assert hasattr(pb2, message)
    assert pb2.DESCRIPTOR.services_by_name["Predictor"].methods_by_name["Predict"]
    msg = pb2.Input(age=3, city=pb2.Input.CITY_B, note="hi")
    msg.emb.add().values.extend([1.0, 2.0, 3.0])
    msg.when.FromDatetime(datetime(2024, 1, 1, tzinfo=UTC))
    as_json = json_format.MessageToDict(msg)
    assert as_json["city"] == "CITY_B" and as_json["emb"] == [{"values": [1.0, 2.0, 3.0]}]
    assert msg.HasField("note") and not pb2.Input().HasField("note")
    weird = json_format.ParseDict({"Weird name!": True, "a_b": 1, "aB": 2}, pb2.Input())
    assert json_format.MessageToDict(weird) == {"Weird name!": True, "a_b": 1, "aB": 2}
    response = pb2.PredictResponse(model=model, version="1.0.0-a.b")
    response.outputs.add(price=1.5, tags=["x"])
    assert pb2.PredictResponse.FromString(response.SerializeToString()) == response
    assert "LEVEL_MINUS_1 = 1;" in text


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(interfaces(names=st.text(string.printable.strip(), min_size=1, max_size=8)))
def test_proto_compiles_for_any_interface(tmp_path: Path, i: Interface) -> None:
    assert _protoc(tmp_path, to_proto(i, "any-model"), grpc=False) == 0


@settings(max_examples=40)
@given(interfaces(), st.randoms(use_true_random=False))
def test_proto_numbering_follows_the_fingerprint(i: Interface, rnd: Any) -> None:
    def bare(fields: Any) -> tuple[Field, ...]:
        return tuple(dataclasses.replace(f, description="") for f in fields)

    inputs = list(i.inputs)
    rnd.shuffle(inputs)
    shuffled = Interface(bare(inputs), bare(i.outputs))
    assert to_proto(shuffled, "m") == to_proto(Interface(bare(i.inputs), bare(i.outputs)), "m")


# --------------------------------------------------------------------- validation

ROWS_IFACE = Interface.from_dict(
    {
        "inputs": {
            "n": "int32",
            "x": "float32",
            "flag": "bool",
            "s": {"type": "string", "required": False},
            "blob": {"type": "binary", "required": False},
            "t": {"type": "datetime", "required": False},
            "c": {"type": "enum", "values": ["a", "b"], "required": False},
            "k": {"type": "enum", "values": [1, 2], "required": False},
            "m": {"type": "array", "items": "int64", "shape": [2, -1], "required": False},
            "z": {"type": "float64", "nullable": True, "required": False},
        },
        "outputs": {"y": "float64"},
    }
)
GOOD = {"n": 1, "x": 1, "flag": False}


def problems(row: Any) -> list[tuple[str | None, str]]:
    return [(p["field"], p["problem"]) for p in validate_rows(ROWS_IFACE, [row])]


def test_valid_rows_have_no_problems() -> None:
    full = GOOD | {
        "s": "text",
        "blob": base64.b64encode(b"\x00\xff").decode(),
        "t": "2024-05-01T10:00:00+00:00",
        "c": "b",
        "k": 2,
        "m": [[1, 2, 3], []],
        "z": None,
    }
    assert validate_rows(ROWS_IFACE, [GOOD, full]) == []
    python_values = GOOD | {
        "n": np.int32(5),
        "x": np.float32(1.5),
        "blob": b"raw",
        "t": datetime(2024, 1, 1),
        "m": np.array([[1, 2], [3, 4]]),
    }
    assert validate_rows(ROWS_IFACE, [python_values]) == []
    assert validate_rows(ROWS_IFACE, []) == []


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"x": 1, "flag": True}, [("n", "missing")]),
        (GOOD | {"n": "1"}, [("n", "wrong_type")]),
        (GOOD | {"n": 1.0}, [("n", "wrong_type")]),
        (GOOD | {"n": True}, [("n", "wrong_type")]),
        (GOOD | {"n": 2**31}, [("n", "wrong_type")]),
        (GOOD | {"x": 1e39}, [("x", "wrong_type")]),
        (GOOD | {"x": "1.5"}, [("x", "wrong_type")]),
        (GOOD | {"z": 10**400}, [("z", "wrong_type")]),
        (GOOD | {"flag": 1}, [("flag", "wrong_type")]),
        (GOOD | {"s": 5}, [("s", "wrong_type")]),
        (GOOD | {"blob": "not base64!"}, [("blob", "wrong_type")]),
        (GOOD | {"t": "yesterday"}, [("t", "wrong_type")]),
        (GOOD | {"c": "z"}, [("c", "not_in_enum")]),
        (GOOD | {"c": ["a"]}, [("c", "not_in_enum")]),
        (GOOD | {"k": True}, [("k", "not_in_enum")]),
        (GOOD | {"k": "1"}, [("k", "not_in_enum")]),
        (GOOD | {"m": [[1], [2], [3]]}, [("m", "bad_shape")]),
        (GOOD | {"m": [1, 2]}, [("m", "bad_shape")]),
        (GOOD | {"m": 5}, [("m", "wrong_type")]),
        (GOOD | {"m": [[1, "2"], []]}, [("m", "wrong_type")]),
        (GOOD | {"m": [[1, None], []]}, [("m", "wrong_type")]),
        (GOOD | {"n": None}, [("n", "null")]),
        (GOOD | {"extra": 1}, [("extra", "unknown_field")]),
        ("not a row", [(None, "wrong_type")]),
    ],
)
def test_each_problem_kind_is_caught(row: Any, expected: list[tuple[str | None, str]]) -> None:
    assert problems(row) == expected
    (problem,) = validate_rows(ROWS_IFACE, [GOOD, row])
    assert problem["row"] == 1 and problem["problem"] in PROBLEM_KINDS
    assert problem["message"].startswith("row 1")
    if problem["field"]:
        assert repr(problem["field"]) in problem["message"]


def test_validation_reports_every_problem_of_a_row_and_stops_at_the_limit() -> None:
    row = {"n": "x", "flag": None, "c": "q", "other": 1}
    assert sorted(problems(row)) == [
        ("c", "not_in_enum"),
        ("flag", "null"),
        ("n", "wrong_type"),
        ("other", "unknown_field"),
        ("x", "missing"),
    ]
    many = validate_rows(ROWS_IFACE, [{}] * 1000, limit=10)
    assert len(many) == 10


def test_validation_checks_the_output_side_too() -> None:
    assert validate_rows(ROWS_IFACE, [{"y": 1.5}], side="output") == []
    assert validate_rows(ROWS_IFACE, [{"y": "x"}], side="output")[0]["problem"] == "wrong_type"
    with pytest.raises(InvalidInput, match="list of objects"):
        validate_rows(ROWS_IFACE, {"n": 1})  # type: ignore[arg-type]


def test_validation_builds_its_checkers_once_per_interface() -> None:
    i = Interface.from_dict(EXAMPLE)
    assert validate_rows(i, [{"age": 1, "city": "a", "emb": []}]) == []
    built = i.__dict__["_validators"]
    assert validate_rows(i, [{"age": "x", "city": "a", "emb": []}])
    assert i.__dict__["_validators"] is built
    rows = [{"age": n, "city": "a", "emb": [[0.0, 1.0, 2.0]] * 4} for n in range(20_000)]
    import time

    start = time.perf_counter()
    assert validate_rows(i, rows) == []
    assert time.perf_counter() - start < 2.0  # ~0.1 s here; generous for slow CI


def test_interfaces_pickle_after_validating() -> None:
    import pickle

    i = Interface.from_dict(EXAMPLE)
    validate_rows(i, [{}])
    back = pickle.loads(pickle.dumps(i))
    assert back == i and back.fingerprint == i.fingerprint
    assert [p["problem"] for p in validate_rows(back, [{"age": 1.5}])][:1] == ["missing"]
    with pytest.raises(InvalidInput, match="side must be"):
        validate_rows(i, [], side="inputs")  # type: ignore[arg-type]


def test_import_stays_light() -> None:
    import subprocess

    code = (
        "import sys, dmv.interface; "
        "print(sorted(m for m in ('pandas', 'numpy', 'pydantic') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- maps


def test_a_map_field_is_an_object_with_fixed_class_keys() -> None:
    import jsonschema

    i = Interface.from_dict(
        {
            "inputs": {"x": "float64"},
            "outputs": {
                "probabilities": {"type": "map", "items": "float64", "keys": ["stay", "churn"]}
            },
        }
    )
    f = i.outputs[0]
    assert f.keys == ("stay", "churn")  # the model's class order, kept
    assert f.type_text == "map<float64>{'stay', 'churn'}"
    schema = to_json_schema(i)["output"]
    number = {"type": "number", "format": "double"}
    assert schema["properties"]["probabilities"] == {
        "type": "object",
        "properties": {"stay": number, "churn": number},
        "required": ["stay", "churn"],
        "additionalProperties": False,
    }
    good = {"probabilities": {"churn": 0.9, "stay": 0.1}}
    jsonschema.validate(good, schema)
    assert validate_rows(i, [good], side="output") == []
    bad = [
        {"probabilities": {"churn": 0.9}},
        {"probabilities": {"churn": 0.9, "stay": 0.1, "other": 0.0}},
        {"probabilities": {"churn": "high", "stay": 0.1}},
        {"probabilities": [0.9, 0.1]},
    ]
    problems = validate_rows(i, bad, side="output")
    kinds = [p["problem"] for p in problems]
    assert kinds == ["bad_shape", "bad_shape", "wrong_type", "wrong_type"]
    for row in bad:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(row, schema)
    assert Interface.from_json_schema(to_json_schema(i)).fingerprint == i.fingerprint
    swapped = Interface(i.inputs, (dataclasses.replace(f, keys=("churn", "stay")),))
    assert swapped.fingerprint != i.fingerprint  # the order is the OIP column order
    assert diff_interfaces(i, swapped).changes[0].kind is ChangeKind.KEYS_CHANGED
    assert "map<string, double> probabilities" in to_proto(i, "churn")


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"type": "map", "keys": ["a"]}, "needs 'items'"),
        ({"type": "map", "items": "string", "keys": ["a"]}, "must be numbers"),
        ({"type": "map", "items": "float64"}, "at least one key"),
        ({"type": "map", "items": "float64", "keys": ["a", "a"]}, "repeat"),
        ({"type": "map", "items": "float64", "keys": ["a"], "shape": [2]}, "not a shape"),
        ({"type": "float64", "keys": ["a"]}, "only a map has keys"),
    ],
)
def test_bad_map_fields_are_refused(spec: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        Interface.from_dict({"inputs": {}, "outputs": {"p": spec}})
