"""The OpenAPI document: FastAPI's routes plus one predict operation per served model.

Each served reference (``price-model@production``) gets a concrete path,
``/models/price-model/versions/production/predict``, whose request and
response schemas come from the interface of the version the reference points
at when the document is asked for. Its schemas are named after the model and
the interface version (``PriceModelV1_1Input``), so a client generator makes
one typed predict per model and version; every error status is documented with
the one error shape dmv really answers (``ErrorBody``; ``V2Error`` on ``/v2``).
"""

from __future__ import annotations

import copy
import logging
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from dmv.errors import DmvError
from dmv.interface import to_openapi
from dmv.version import split_reference

if TYPE_CHECKING:
    from dmv.project import Project
    from dmv.server.predictors import ModelServer

__all__ = [
    "NAME_PATTERN",
    "REF_PATTERN",
    "ErrorBody",
    "V2Error",
    "error_responses",
    "model_documents",
    "security_scheme",
    "v2_error_responses",
]

log = logging.getLogger("dmv.server")

#: A model name, as the version grammar allows it (docs/versioning.md).
NAME_PATTERN = r"^[a-z][a-z0-9-]{0,63}$"
_NUM = r"(?:0|[1-9][0-9]*)"
#: A reference after the ``@``: exact, X.Y.Z, X.Y, X, latest or an alias.
REF_PATTERN = (
    rf"^(?:{_NUM}(?:\.{_NUM}(?:\.{_NUM}(?:-[0-9a-z]{{1,32}}\.[0-9a-z]{{1,32}})?)?)?"
    r"|[a-z][a-z0-9-]{0,63})$"
)


class Problem(BaseModel):
    """One thing wrong with the request, e.g. a field of one row."""

    row: int | None = None
    field: str | None = None
    problem: str
    message: str


class ErrorDetails(BaseModel):
    problems: list[Problem] | None = None

    model_config = {"extra": "allow"}


class ErrorInfo(BaseModel):
    code: str = Field(description="A stable name: not_found, invalid_input, deprecated, …")
    message: str
    hint: str | None = Field(default=None, description="What to do about it.")
    details: ErrorDetails | None = None


class ErrorBody(BaseModel):
    """Every error dmv answers outside /v2 (the CLI's --json errors have the same shape)."""

    error: ErrorInfo


class V2Error(BaseModel):
    """An Open Inference Protocol error: the message as one string."""

    error: str


_WHY = {
    400: "The request is malformed.",
    401: "A token is needed (the registry has tokens) and none or an unknown one was sent.",
    403: "The token may not read this model.",
    404: "No such model or version, or this server does not serve it.",
    410: "The version is deprecated (served only by exact version with --allow-deprecated).",
    422: "The request does not match the version's interface (details.problems names each "
    "bad field), or the model rejected rows that no interface validated.",
    500: "The model raised on rows that match its interface (prediction_error), or its "
    "stored file does not match its hash.",
    503: "The model of this version cannot be loaded (model_unavailable, with the reason); "
    "other models are not affected.",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """FastAPI ``responses=`` documenting ``statuses`` with dmv's error body."""
    return {s: {"model": ErrorBody, "description": _WHY.get(s, "An error.")} for s in statuses}


def v2_error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The same for the Open Inference Protocol routes, whose errors are strings."""
    return {s: {"model": V2Error, "description": _WHY.get(s, "An error.")} for s in statuses}


def security_scheme() -> dict[str, Any]:
    return {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "A dmv token (dmv token create); not needed while the registry "
            "has no tokens at all (local mode).",
        }
    }


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("-") if part)


def _rename_refs(node: Any, prefix: str) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if (
                key == "$ref"
                and isinstance(value, str)
                and value.startswith("#/components/schemas/")
            ):
                out[key] = "#/components/schemas/" + prefix + value.rsplit("/", 1)[1]
            else:
                out[key] = _rename_refs(value, prefix)
        return out
    if isinstance(node, list):
        return [_rename_refs(v, prefix) for v in node]
    return node


def _rename_titles(schemas: dict[str, Any]) -> None:
    for key, schema in schemas.items():
        if isinstance(schema, dict) and "title" in schema:
            schema["title"] = key


_OPERATION_ERRORS = (401, 403, 404, 410, 422, 500, 503)


def model_documents(
    base: dict[str, Any], project: Project, server: ModelServer, refs: list[str] | None
) -> dict[str, Any]:
    """``base`` with each served reference's predict operation and schemas merged in."""
    if not refs:
        return base
    doc = copy.deepcopy(base)
    paths = doc.setdefault("paths", {})
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    if "ErrorBody" not in schemas:  # pragma: no cover - the serving routes document it
        schemas.update(_error_components())
    owners: dict[str, tuple[str, str | None]] = {}  # plain prefix -> (prefix, fingerprint)
    for text in refs:
        name, ref = split_reference(text)
        try:
            info = server.resolve(name, ref)
            iface = server.interface(info)
            if iface is None:
                continue
            part = to_openapi(iface, name, info.version.number)
        except DmvError as exc:  # a reference that points nowhere (yet) is left out
            log.info("no OpenAPI schema for %s: %s", text, exc.message)
            continue
        v = info.version
        prefix = f"{_camel(name)}V{v.x}_{v.y}"
        # Generators keep only letters and digits (IrisV1_10 and IrisV11_0 would both be
        # IrisV110): a prefix is unique in that form, or gets the fingerprint appended.
        plain = "".join(c for c in prefix if c.isalnum()).lower()
        if owners.get(plain, (prefix, info.interface_fp)) != (prefix, info.interface_fp):
            prefix += f"_{(info.interface_fp or 'x')[:8]}"
            plain = "".join(c for c in prefix if c.isalnum()).lower()
        owners[plain] = (prefix, info.interface_fp)
        part_schemas = part.get("components", {}).get("schemas", {})
        kept = {k: v for k, v in part_schemas.items() if k not in ("Error", "Problem")}
        renamed = {prefix + k: _rename_refs(schema, prefix) for k, schema in kept.items()}
        _rename_titles(renamed)
        request = renamed.get(prefix + "PredictRequest", {}).get("properties", {}).get("inputs")
        if isinstance(request, dict):
            request["minItems"] = 1
        schemas.update(renamed)
        for operations in part.get("paths", {}).values():
            for method, operation in operations.items():
                op = _rename_refs(operation, prefix)
                op["parameters"] = []  # the path below is concrete
                op["operationId"] = f"predict__{name}__{ref}".replace("-", "_").replace(".", "_")
                op["tags"] = [f"model {name}"]
                op["summary"] = f"Predict with {name}@{ref} (now {info.version.number})"
                responses = {k: r for k, r in op.get("responses", {}).items() if k.startswith("2")}
                for status in _OPERATION_ERRORS:
                    responses[str(status)] = {
                        "description": _WHY[status],
                        "content": {"application/json": {"schema": error_ref}},
                    }
                op["responses"] = responses
                paths.setdefault(f"/models/{name}/versions/{ref}/predict", {})[method] = op
    return doc


def _error_components() -> dict[str, Any]:
    from pydantic.json_schema import models_json_schema

    _, top = models_json_schema(
        [(ErrorBody, "serialization")], ref_template="#/components/schemas/{model}"
    )
    defs: dict[str, Any] = top.get("$defs", {})
    return defs
