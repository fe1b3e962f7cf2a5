"""HTTP routes for model serving: dmv's own predict API and the Open Inference Protocol v2.

The predict handlers are ``async`` and do their (short, indexed) registry read
inline: for a small model a thread hand-off would cost more than the work.
They parse the JSON body themselves, so the interface, not a generic pydantic
model, decides what a valid row is; the OpenAPI document still describes the
body (and ``dmv serve`` adds each served model's own schema).
"""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import APIRouter, Request, Response

import dmv
from dmv.errors import InvalidInput
from dmv.server.auth import gate
from dmv.server.oip import rows_from_tensors, tensor_specs, tensors_from_rows
from dmv.server.serving import ModelServer

__all__ = ["create_router"]

_JSON = "application/json"

_PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            _JSON: {
                "schema": {
                    "type": "object",
                    "properties": {
                        "inputs": {
                            "type": "array",
                            "items": {"type": "object", "additionalProperties": True},
                            "description": "One object of field values per row.",
                        }
                    },
                    "required": ["inputs"],
                },
                "example": {"inputs": [{"feature": 1.0}]},
            }
        },
    },
    "responses": {
        "200": {
            "description": "One output row per input row; header X-Model-Version names the "
            "exact version that answered.",
            "headers": {
                "X-Model-Version": {
                    "description": "X.Y.Z-DATA.SPLIT",
                    "schema": {"type": "string"},
                }
            },
            "content": {
                _JSON: {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "model": {"type": "string"},
                            "version": {"type": "string"},
                            "outputs": {"type": "array", "items": {"type": "object"}},
                        },
                        "required": ["model", "version", "outputs"],
                    }
                }
            },
        },
        "422": {"description": "The inputs do not match the version's interface."},
    },
}

_INFER_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            _JSON: {
                "schema": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "inputs": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "name": {"type": "string"},
                                    "shape": {"type": "array", "items": {"type": "integer"}},
                                    "datatype": {"type": "string"},
                                    "data": {"type": "array", "items": {}},
                                },
                                "required": ["name", "shape", "datatype", "data"],
                            },
                        },
                    },
                    "required": ["inputs"],
                }
            }
        },
    }
}


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range for a number")
    return value


def _no_constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        # Strict JSON: no NaN/Infinity, no numbers that overflow to infinity.
        return json.loads(raw, parse_float=_finite, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"the request body is not valid JSON: {exc}",
            hint='send {"inputs": [{"field": value, ...}, ...]}',
        ) from None


def _respond(content: dict[str, Any], version: str) -> Response:
    body = json.dumps(content, separators=(",", ":"), ensure_ascii=False)
    return Response(body, media_type=_JSON, headers={"X-Model-Version": version})


def create_router(server: ModelServer, default_refs: dict[str, str] | None = None) -> APIRouter:
    """Routes ``/models/…`` (dmv's predict API) and ``/v2/…`` (Open Inference Protocol)."""
    router = APIRouter()
    defaults = default_refs or {}

    @router.get("/models", tags=["serving"], summary="The models this server serves")
    def list_served(request: Request) -> dict[str, Any]:
        only = gate(request).visible(request)
        items = server.model_list()
        if only is not None:
            items = [m for m in items if m["name"] == only]
        return {"models": items}

    @router.get(
        "/models/{name}/versions/{ref}",
        tags=["serving"],
        summary="A served version: metadata and interface",
    )
    def served_version(name: str, ref: str, request: Request) -> dict[str, Any]:
        gate(request).allow(request, "read", name)
        return server.metadata(server.resolve(name, ref))

    @router.post(
        "/models/{name}/versions/{ref}/predict",
        tags=["serving"],
        summary="Predict with the version ref points at now",
        openapi_extra=_PREDICT_BODY,
        response_class=Response,
    )
    async def predict(name: str, ref: str, request: Request) -> Response:
        gate(request).allow(request, "read", name)
        body = await _json_body(request)
        if not isinstance(body, dict) or "inputs" not in body:
            raise InvalidInput(
                "the request body must be an object with 'inputs'",
                hint='send {"inputs": [{"field": value, ...}, ...]}',
                problems=[
                    {
                        "row": None,
                        "field": "inputs",
                        "problem": "missing",
                        "message": "'inputs' is required",
                    }
                ],
            )
        version, outputs = server.predict(name, ref, body["inputs"])
        return _respond(
            {"model": version.name, "version": version.number, "outputs": outputs},
            version.number,
        )

    # -- Open Inference Protocol v2 ---------------------------------------------

    @router.get("/v2", tags=["v2"], summary="Server metadata (Open Inference Protocol)")
    def v2_server() -> dict[str, Any]:
        return {"name": "dmv", "version": dmv.__version__, "extensions": []}

    @router.get("/v2/health/live", tags=["v2"], summary="Liveness")
    def v2_live() -> dict[str, Any]:
        return {"live": True}

    @router.get("/v2/health/ready", tags=["v2"], summary="Readiness")
    def v2_ready() -> dict[str, Any]:
        return {"ready": True}

    def v2_metadata(name: str, ref: str, request: Request) -> dict[str, Any]:
        gate(request).allow(request, "read", name)
        info = server.resolve(name, ref)
        iface = server.interface(info)
        return {
            "name": name,
            "versions": [info.version.number],
            "platform": "dmv",
            "inputs": tensor_specs(iface, "input"),
            "outputs": tensor_specs(iface, "output"),
        }

    @router.get("/v2/models/{name}", tags=["v2"], summary="Model metadata (default version)")
    def v2_model(name: str, request: Request) -> dict[str, Any]:
        return v2_metadata(name, defaults.get(name, "latest"), request)

    @router.get(
        "/v2/models/{name}/versions/{version}", tags=["v2"], summary="Model version metadata"
    )
    def v2_version(name: str, version: str, request: Request) -> dict[str, Any]:
        return v2_metadata(name, version, request)

    @router.get(
        "/v2/models/{name}/versions/{version}/ready", tags=["v2"], summary="Model readiness"
    )
    def v2_version_ready(name: str, version: str, request: Request) -> dict[str, Any]:
        gate(request).allow(request, "read", name)
        served = server.served(server.resolve(name, version))
        return {"name": name, "version": served.version.number, "ready": True}

    async def infer(name: str, ref: str, request: Request) -> Response:
        gate(request).allow(request, "read", name)
        body = await _json_body(request)
        info = server.resolve(name, ref)
        rows = rows_from_tensors(body, server.interface(info))
        version, outputs = server.predict_version(info, rows)
        content: dict[str, Any] = {
            "model_name": name,
            "model_version": version.number,
            "outputs": tensors_from_rows(outputs, server.interface(info)),
        }
        if isinstance(body, dict) and isinstance(body.get("id"), str):
            content["id"] = body["id"]
        return _respond(content, version.number)

    @router.post(
        "/v2/models/{name}/versions/{version}/infer",
        tags=["v2"],
        summary="Inference with named tensors",
        openapi_extra=_INFER_BODY,
        response_class=Response,
    )
    async def v2_infer(name: str, version: str, request: Request) -> Response:
        return await infer(name, version, request)

    @router.post(
        "/v2/models/{name}/infer",
        tags=["v2"],
        summary="Inference with the default version",
        openapi_extra=_INFER_BODY,
        response_class=Response,
    )
    async def v2_infer_default(name: str, request: Request) -> Response:
        return await infer(name, defaults.get(name, "latest"), request)

    return router
