"""Conversions between interfaces and other schema languages: see :mod:`dmv.interface`."""

from dmv.interface.inference import _infer_series, _numpy_type, from_pydantic, infer_interface
from dmv.interface.jsonschema import (
    JSON_SCHEMA_DIALECT,
    PREDICT_PATH,
    from_json_schema,
    to_json_schema,
)
from dmv.interface.openapi import to_openapi
from dmv.interface.proto import to_proto

__all__ = [
    "JSON_SCHEMA_DIALECT",
    "PREDICT_PATH",
    "_infer_series",
    "_numpy_type",
    "from_json_schema",
    "from_pydantic",
    "infer_interface",
    "to_json_schema",
    "to_openapi",
    "to_proto",
]
