"""A model's interface: typed input and output fields, their diff, exports and validation.

The package's modules: :mod:`~dmv.interface.fields` (field types and parsing),
:mod:`~dmv.interface.model` (the :class:`Interface` record, row validation),
:mod:`~dmv.interface.diff`, :mod:`~dmv.interface.jsonschema`,
:mod:`~dmv.interface.openapi`, :mod:`~dmv.interface.proto` and
:mod:`~dmv.interface.inference` (from samples and pydantic models).

Y in ``X.Y.Z-DATA.SPLIT`` moves on any change to the interface. This module says
*what* changed and how much it matters to a client; the numbering rule lives in
the versioning module. Pure: no I/O; pandas, numpy and pydantic load on first use.

Compatibility
-------------
A change is judged by who reads the data. The model reads inputs: an input change
is compatible when every request valid before is still valid (it accepts more).
Clients read outputs: an output change is compatible when every response the
model can now send was valid before (it emits less). Row schemas are closed
(``additionalProperties: false``; :func:`validate_rows` reports ``unknown_field``),
so a new output field is "emitting more" and a removed input is "accepting less".
Each change makes a field's accepted values looser, tighter or neither:

==============================  =======  ==========  ==========
change                          effect   input       output
==============================  =======  ==========  ==========
field added, optional           looser   compatible  breaking
field added, required           neither  breaking    breaking
field removed, was optional     tighter  breaking    compatible
field removed, was required     neither  breaking    breaking
required -> optional            looser   compatible  breaking
optional -> required            tighter  breaking    compatible
not nullable -> nullable        looser   compatible  breaking
nullable -> not nullable        tighter  breaking    compatible
enum values added               looser   compatible  breaking
enum values removed             tighter  breaking    compatible
numeric widening                looser   compatible  breaking
numeric narrowing               tighter  breaking    compatible
other type change               neither  breaking    breaking
array dimension N -> -1         looser   compatible  breaking
array dimension -1 -> N         tighter  breaking    compatible
array dimension N -> M, rank    neither  breaking    breaking
map keys changed or reordered   neither  breaking    breaking
rename                          a removal plus an addition
==============================  =======  ==========  ==========

Widening is int -> float (any widths) or more bits in the same family (int32 ->
int64, float32 -> float64); narrowing is the reverse. Array element types follow
the same rule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dmv.errors import InvalidInput
from dmv.interface.decoder import Decoder, merge_columns
from dmv.interface.diff import (
    ChangeKind,
    Compat,
    FieldChange,
    InterfaceDiff,
    diff_domains,
    diff_interfaces,
)
from dmv.interface.fields import ARRAY_ITEM_TYPES, MAP_ITEM_TYPES, Field, FieldType, Side
from dmv.interface.inference import infer_domain, infer_interface
from dmv.interface.jsonschema import to_json_schema
from dmv.interface.model import PROBLEM_KINDS, Interface, validate_rows
from dmv.interface.openapi import to_openapi
from dmv.interface.proto import to_proto

if TYPE_CHECKING:
    from dmv.version import Version

__all__ = [
    "ARRAY_ITEM_TYPES",
    "MAP_ITEM_TYPES",
    "PROBLEM_KINDS",
    "ChangeKind",
    "Compat",
    "Decoder",
    "Field",
    "FieldChange",
    "FieldType",
    "Interface",
    "InterfaceDiff",
    "Side",
    "diff_domains",
    "diff_interfaces",
    "export_document",
    "infer_domain",
    "infer_interface",
    "merge_columns",
    "to_json_schema",
    "to_openapi",
    "to_proto",
    "validate_rows",
]


def export_document(iface: Interface, version: Version, fmt: str = "openapi") -> str:
    """The interface as text: an OpenAPI 3.1 document, JSON Schema or a proto3 file."""
    import json

    if fmt == "openapi":
        return json.dumps(to_openapi(iface, version.name, version.number), indent=2)
    if fmt == "jsonschema":
        return json.dumps(to_json_schema(iface), indent=2)
    if fmt == "proto":
        return to_proto(iface, version.name)
    raise InvalidInput(f"unknown format {fmt!r}", hint="use openapi, jsonschema or proto")
