"""Proto choices: datetime is ``google.protobuf.Timestamp`` (the well-known type
every gRPC stack maps to its own datetime); a rank-k array is a ``repeated``
field of wrapper messages k-1 deep, so every dimension survives; nullable or
optional scalars are ``optional``; an absent or null array is an empty one.
Field numbers follow the fields sorted by name, as the fingerprint does, so one
fingerprint always gives one wire format.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from dmv.interface.fields import Field, FieldType
from dmv.interface.model import Interface
from dmv.version import check_name

__all__ = ["to_proto"]

# ------------------------------------------------------------------------- proto

_PROTO_SCALARS = {
    FieldType.BOOL: "bool",
    FieldType.INT32: "int32",
    FieldType.INT64: "int64",
    FieldType.FLOAT32: "float",
    FieldType.FLOAT64: "double",
    FieldType.STRING: "string",
    FieldType.BINARY: "bytes",
    # Fully qualified: a field named "google" would otherwise shadow the package.
    FieldType.DATETIME: ".google.protobuf.Timestamp",
}
_NOT_IDENT = re.compile(r"[^A-Za-z0-9_]+")


def _ident(text: str) -> str:
    ident = _NOT_IDENT.sub("_", text).strip("_") or "field"
    return ident if ident[0].isalpha() else "f_" + ident


def _json_name(ident: str) -> str:
    # protoc's default JSON name: drop each '_' and capitalise the next letter.
    parts = ident.split("_")
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])


def _camel(ident: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in ident.split("_") if p)


def _unique(base: str, taken: set[str], json_names: set[str] | None = None) -> str:
    """``base``, or ``base_2``, ``base_3``… when the name (or its JSON name) is taken."""
    name, n = base, 2
    while name in taken or (json_names is not None and _json_name(name) in json_names):
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    if json_names is not None:
        json_names.add(_json_name(name))
    return name


def _enum_value_name(value: str | int) -> str:
    text = f"minus_{-value}" if isinstance(value, int) and value < 0 else str(value)
    return _NOT_IDENT.sub("_", text).strip("_").upper() or "EMPTY"


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else " " for c in text)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _message(title: str, fields: Sequence[Field]) -> list[str]:
    ordered = sorted(fields, key=lambda f: f.name)
    taken: set[str] = set()
    json_names: set[str] = set()
    # protoc rejects two fields whose default JSON names collide (a_b and aB).
    idents = {f.name: _unique(_ident(f.name), taken, json_names) for f in ordered}
    nested: list[str] = []
    body: list[str] = []
    for number, f in enumerate(ordered, start=1):
        ident = idents[f.name]
        # A comment ends at a newline, and protoc wants no control characters.
        notes = [_printable(f.description)] if f.description else []
        label = "optional " if f.nullable or not f.required else ""
        if f.type is FieldType.ENUM:
            ptype = _unique(_camel(ident), taken)
            # Enum values live in the message's scope, so they carry the field's name.
            prefix = ident.upper()
            nested += [f"  enum {ptype} {{", f"    {_unique(prefix + '_UNSPECIFIED', taken)} = 0;"]
            for i, value in enumerate(f.values, start=1):
                value_name = _unique(f"{prefix}_{_enum_value_name(value)}", taken)
                nested.append(f"    {value_name} = {i};  // {value!r}")
            nested.append("  }")
        elif f.type is FieldType.ARRAY:
            assert f.items is not None
            label = "repeated "
            ptype = _PROTO_SCALARS[f.items]
            for depth in range(len(f.shape) - 1, 0, -1):
                wrapper = _unique(f"{_camel(ident)}Dim{depth}", taken)
                nested.append(f"  message {wrapper} {{ repeated {ptype} values = 1; }}")
                ptype = wrapper
            notes.append(f"shape {list(f.shape)}")
            if f.nullable or not f.required:
                notes.append("null or absent is sent as empty")
        elif f.type is FieldType.MAP:
            assert f.items is not None
            label = ""
            ptype = f"map<string, {_PROTO_SCALARS[f.items]}>"
            notes.append(f"keys {list(f.keys)}")
            if f.nullable or not f.required:
                notes.append("null or absent is sent as empty")
        else:
            ptype = _PROTO_SCALARS[f.type]
        option = f" [json_name = {_quote(f.name)}]" if _json_name(ident) != f.name else ""
        note = f"  // {'; '.join(notes)}" if notes else ""
        body.append(f"  {label}{ptype} {ident} = {number}{option};{note}")
    return [f"message {title} {{", *nested, *body, "}"]


def to_proto(iface: Interface, model_name: str) -> str:

    package = "dmv.models." + check_name(model_name).replace("-", "_")
    fields = iface.inputs + iface.outputs
    lines = [
        f"// {model_name}: generated by dmv from interface {iface.fingerprint}",
        'syntax = "proto3";',
        "",
        f"package {package};",
        "",
    ]
    if any(FieldType.DATETIME in (f.type, f.items) for f in fields):
        lines += ['import "google/protobuf/timestamp.proto";', ""]
    lines += [*_message("Input", iface.inputs), "", *_message("Output", iface.outputs)]
    lines += [
        "",
        "message PredictRequest {",
        "  repeated Input inputs = 1;",
        "}",
        "",
        "message PredictResponse {",
        "  string model = 1;",
        "  string version = 2;",
        "  repeated Output outputs = 3;",
        "}",
        "",
        "service Predictor {",
        "  rpc Predict(PredictRequest) returns (PredictResponse);",
        "}",
        "",
    ]
    return "\n".join(lines)
