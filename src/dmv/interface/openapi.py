"""An OpenAPI 3.1 document for a version's predict route."""

from __future__ import annotations

from typing import Any

from dmv.errors import InvalidInput
from dmv.interface.jsonschema import _SIDES, JSON_SCHEMA_DIALECT, PREDICT_PATH, row_schema
from dmv.interface.model import PROBLEM_KINDS, Interface
from dmv.version import check_name

__all__ = ["PREDICT_PATH", "to_openapi"]

# ----------------------------------------------------------------------- OpenAPI


def to_openapi(iface: Interface, model_name: str, version_text: str) -> dict[str, Any]:

    check_name(model_name)
    if not isinstance(version_text, str) or not version_text.strip():
        raise InvalidInput(
            "version_text must be non-empty text, e.g. '1.1.0-0123.efgh'",
            hint="pass the version's number, e.g. '1.1.0-0123.efgh'",
        )
    schemas = {side.title(): row_schema(iface.fields(side), side.title()) for side in _SIDES}

    def ref(name: str) -> dict[str, str]:
        return {"$ref": f"#/components/schemas/{name}"}

    def body(name: str, description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": ref(name)}}}

    schemas["PredictRequest"] = {
        "type": "object",
        "properties": {"inputs": {"type": "array", "items": ref("Input")}},
        "required": ["inputs"],
        "additionalProperties": False,
    }
    schemas["PredictResponse"] = {
        "type": "object",
        "properties": {
            "model": {"type": "string", "examples": [model_name]},
            "version": {"type": "string", "examples": [version_text]},
            "outputs": {"type": "array", "items": ref("Output")},
        },
        "required": ["model", "version", "outputs"],
    }
    schemas["Problem"] = {
        "type": "object",
        "properties": {
            "row": {"type": ["integer", "null"]},
            "field": {"type": ["string", "null"]},
            "problem": {"type": "string", "enum": list(PROBLEM_KINDS)},
            "message": {"type": "string"},
        },
        "required": ["row", "field", "problem", "message"],
    }
    schemas["Error"] = {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "hint": {"type": "string"},
                    "details": {
                        "type": "object",
                        "properties": {"problems": {"type": "array", "items": ref("Problem")}},
                    },
                },
                "required": ["code", "message"],
            }
        },
        "required": ["error"],
    }
    operation = {
        "operationId": "predict",
        "summary": f"Predict with {model_name}",
        "description": f"Interface fingerprint {iface.fingerprint}. One output row per input row.",
        "parameters": [
            {
                "name": "name",
                "in": "path",
                "required": True,
                "description": "The model name.",
                "schema": {"type": "string", "enum": [model_name]},
            },
            {
                "name": "ref",
                "in": "path",
                "required": True,
                "description": "X.Y.Z-DATA.SPLIT, X.Y.Z, X.Y, X, latest or an alias.",
                "schema": {"type": "string"},
            },
        ],
        "requestBody": {"required": True, **body("PredictRequest", "Rows to predict.")},
        "responses": {
            "200": body("PredictResponse", "The model's outputs, in input order."),
            "422": body("Error", "The request does not match the interface."),
            "default": body("Error", "Any other error, in the same shape."),
        },
    }
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": JSON_SCHEMA_DIALECT,
        "info": {"title": f"{model_name} predict API", "version": version_text},
        "paths": {PREDICT_PATH: {"post": operation}},
        "components": {"schemas": schemas},
    }
