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
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response

import dmv
from dmv.errors import InvalidInput
from dmv.server.auth import gate, model_readable_inline
from dmv.server.oip import (
    HEADER_LENGTH,
    encode_response,
    requested_outputs,
    rows_from_tensors,
    tensor_specs,
    tensors_from_rows,
)
from dmv.server.openapi import NAME_PATTERN, REF_PATTERN, error_responses, v2_error_responses
from dmv.server.predictors import ModelServer

__all__ = ["create_router", "is_v2_path", "v2_error"]

try:  # the [server] extra installs it; the stdlib json does the same job, slower
    import msgspec as _msgspec
except ImportError:  # pragma: no cover
    _msgspec = None  # type: ignore[assignment]

_JSON = "application/json"
_DATATYPES = (
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
    "FP16", "FP32", "FP64", "BYTES",
)  # fmt: skip

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
                            "minItems": 1,
                            "items": {"type": "object", "additionalProperties": True},
                            "description": "One object of field values per row.",
                        }
                    },
                    "required": ["inputs"],
                    "additionalProperties": False,
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
                        "parameters": {"type": "object"},
                        "inputs": {
                            "type": "array",
                            "minItems": 1,
                            "items": {
                                "type": "object",
                                "properties": {
                                    "name": {"type": "string", "minLength": 1},
                                    "shape": {
                                        "type": "array",
                                        "items": {"type": "integer", "minimum": 0},
                                        "minItems": 1,
                                    },
                                    "datatype": {"type": "string", "enum": sorted(_DATATYPES)},
                                    "parameters": {"type": "object"},
                                    "data": {"type": "array", "items": {}},
                                },
                                "required": ["name", "shape", "datatype", "data"],
                            },
                        },
                        "outputs": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "name": {"type": "string"},
                                    "parameters": {"type": "object"},
                                },
                                "required": ["name"],
                            },
                        },
                    },
                    "required": ["inputs"],
                }
            }
        },
    },
    "responses": {
        "200": {
            "description": "One tensor per output asked for. With the binary tensor extension "
            f"(request header {HEADER_LENGTH}) outputs asked for as binary follow the JSON "
            f"header, whose length the response's {HEADER_LENGTH} header gives.",
            "content": {
                _JSON: {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "model_name": {"type": "string"},
                            "model_version": {"type": "string"},
                            "id": {"type": "string"},
                            "outputs": {"type": "array", "items": {"type": "object"}},
                        },
                        "required": ["model_name", "model_version", "outputs"],
                    }
                },
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
        },
    },
}


def is_v2_path(path: str) -> bool:
    """Whether ``path`` is an Open Inference Protocol route (errors are plain strings there)."""
    return path == "/v2" or path.startswith("/v2/")


def v2_error(body: dict[str, Any]) -> dict[str, Any]:
    """dmv's error body in the protocol's shape, ``{"error": "<message>"}``."""
    error = body.get("error")
    if not isinstance(error, dict):
        return {"error": str(error)}
    message = str(error.get("message", ""))
    # The protocol has no structured details: the first problems go into the text.
    problems = (error.get("details") or {}).get("problems")
    if isinstance(problems, list):
        extra = [str(p.get("message")) for p in problems[:5] if isinstance(p, dict)]
        extra = [e for e in extra if e not in message]
        if extra:
            message += ": " + "; ".join(extra)
    if error.get("hint"):
        message += f" ({error['hint']})"
    return {"error": message}


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range for a number")
    return value


def _no_constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


def _parse_json(raw: bytes, hint: str) -> Any:
    if _msgspec is not None:
        # msgspec's parser is strict too (no NaN/Infinity, no overflow to infinity) and
        # reads a request several times faster than json with a float hook. What it
        # refuses goes to that parser, whose messages are the ones clients are told.
        try:
            return _msgspec.json.decode(raw)
        except (_msgspec.DecodeError, RecursionError):
            pass
    try:
        # Strict JSON: no NaN/Infinity, no numbers that overflow to infinity.
        return json.loads(raw, parse_float=_finite, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidInput(f"the request body is not valid JSON: {exc}", hint=hint) from None


async def _json_body(request: Request) -> Any:
    return _parse_json(await request.body(), 'send {"inputs": [{"field": value, ...}, ...]}')


async def _v2_body(request: Request) -> tuple[Any, bytes | None]:
    """A v2 request's JSON header and, with the binary extension, the bytes after it."""
    raw = await request.body()
    hint = 'send {"inputs": [{"name": ..., "shape": [...], "datatype": ..., "data": [...]}]}'
    length = request.headers.get(HEADER_LENGTH)
    if length is None:
        return _parse_json(raw, hint), None
    if not length.isdigit() or int(length) > len(raw):
        raise InvalidInput(
            f"{HEADER_LENGTH} must be the byte length of the JSON header "
            f"(0…{len(raw)}), got {length[:20]!r}",
            hint="set the header to the JSON header's length in bytes",
        )
    n = int(length)
    return _parse_json(raw[:n], hint), raw[n:]


def _dumps(content: dict[str, Any]) -> bytes:
    """Compact JSON (UTF-8), with msgspec's encoder when it is there (about 10x json's)."""
    if _msgspec is not None:
        try:
            return _msgspec.json.encode(content)
        except (TypeError, OverflowError):  # a value it does not know: json says why
            pass
    return json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode()


def _respond(content: dict[str, Any], version: str) -> Response:
    return Response(_dumps(content), media_type=_JSON, headers={"X-Model-Version": version})


Name = Annotated[str, Path(pattern=NAME_PATTERN, max_length=64, description="A model name.")]
Ref = Annotated[
    str,
    Path(
        pattern=REF_PATTERN,
        max_length=100,
        description="X.Y.Z-DATA.SPLIT, X.Y.Z, X.Y, X, latest or an alias.",
    ),
]

_SERVING_ERRORS = error_responses(401, 403, 404, 410, 422, 500, 503)
_READ_ERRORS = error_responses(401, 403, 404, 410, 422, 503)


def create_router(server: ModelServer) -> APIRouter:
    """Routes ``/models/…`` (dmv's predict API) and ``/v2/…`` (Open Inference Protocol)."""
    router = APIRouter(dependencies=[Depends(model_readable_inline)])

    @router.get(
        "/models",
        tags=["serving"],
        summary="The models this server serves",
        responses=error_responses(401, 403),
    )
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
        responses=error_responses(401, 403, 404, 410, 422),
    )
    def served_version(name: Name, ref: Ref, request: Request) -> dict[str, Any]:
        gate(request).allow(request, "read", name)
        return server.metadata(server.resolve(name, ref))

    @router.post(
        "/models/{name}/versions/{ref}/predict",
        tags=["serving"],
        summary="Predict with the version ref points at now",
        openapi_extra=_PREDICT_BODY,
        response_class=Response,
        responses=_SERVING_ERRORS,
    )
    async def predict(name: Name, ref: Ref, request: Request) -> Response:
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
        unknown = sorted(set(body) - {"inputs"})
        if unknown:
            raise InvalidInput(
                f"the request body has unknown keys: {', '.join(map(repr, unknown[:5]))}",
                hint='send {"inputs": [{"field": value, ...}, ...]} and nothing else',
                problems=[
                    {"row": None, "field": k, "problem": "unknown_field", "message": "not allowed"}
                    for k in unknown[:20]
                ],
            )
        version, outputs = await server.predict_async(name, ref, body["inputs"])
        return _respond(
            {"model": version.name, "version": version.number, "outputs": outputs},
            version.number,
        )

    # -- Open Inference Protocol v2 ---------------------------------------------

    v2_read = v2_error_responses(401, 403, 404, 410, 422, 503)

    # Health and server metadata answer without a token (load balancers, probes).
    no_token: dict[str, Any] = {"security": [{}]}

    @router.get(
        "/v2",
        tags=["v2"],
        summary="Server metadata (Open Inference Protocol)",
        openapi_extra=no_token,
    )
    def v2_server() -> dict[str, Any]:
        return {"name": "dmv", "version": dmv.__version__, "extensions": ["binary_tensor_data"]}

    @router.get("/v2/health/live", tags=["v2"], summary="Liveness", openapi_extra=no_token)
    def v2_live() -> dict[str, Any]:
        return {"live": True}

    @router.get(
        "/v2/health/ready",
        tags=["v2"],
        summary="Readiness of the server (a model's own readiness is at …/ready)",
        openapi_extra=no_token,
    )
    def v2_ready() -> dict[str, Any]:
        # Ready while it can answer: one model that failed to load must not take the
        # others out of a load balancer; its own ready route says it is not ready.
        return {"ready": True}

    def v2_metadata(name: Name, ref: Ref, request: Request) -> dict[str, Any]:
        gate(request).allow(request, "read", name)
        info = server.resolve(name, ref)
        iface = server.interface(info)
        versions = server.served_versions(name)
        if info.version.number not in versions:
            versions.insert(0, info.version.number)
        return {
            "name": name,
            "versions": versions,
            "platform": "dmv",
            "inputs": tensor_specs(iface, "input"),
            "outputs": tensor_specs(iface, "output"),
            "parameters": {"version": info.version.number},
        }

    @router.get(
        "/v2/models/{name}",
        tags=["v2"],
        summary="Model metadata (default version); versions lists every version served",
        responses=v2_read,
    )
    def v2_model(name: Name, request: Request) -> dict[str, Any]:
        return v2_metadata(name, server.default_ref(name), request)

    @router.get(
        "/v2/models/{name}/versions/{version}",
        tags=["v2"],
        summary="Model version metadata",
        responses=v2_read,
    )
    def v2_version(name: Name, version: Ref, request: Request) -> dict[str, Any]:
        return v2_metadata(name, version, request)

    def ready(name: Name, ref: Ref, request: Request) -> dict[str, Any]:
        gate(request).allow(request, "read", name)
        info = server.resolve(name, ref)
        error = server.load_error(info)
        if error is not None:
            raise error  # 503: not ready, with the reason
        return {"name": name, "version": info.version.number, "ready": True}

    @router.get(
        "/v2/models/{name}/ready",
        tags=["v2"],
        summary="Model readiness (default version): 200 ready, 503 cannot be served",
        responses=v2_read,
    )
    def v2_model_ready(name: Name, request: Request) -> dict[str, Any]:
        return ready(name, server.default_ref(name), request)

    @router.get(
        "/v2/models/{name}/versions/{version}/ready",
        tags=["v2"],
        summary="Model version readiness: 200 ready, 503 cannot be served",
        responses=v2_read,
    )
    def v2_version_ready(name: Name, version: Ref, request: Request) -> dict[str, Any]:
        return ready(name, version, request)

    async def infer(name: Name, ref: Ref, request: Request) -> Response:
        gate(request).allow(request, "read", name)
        body, binary = await _v2_body(request)
        info = server.resolve(name, ref)
        iface = server.interface(info)
        rows = rows_from_tensors(body, iface, binary)
        served = server.served(info)
        names, binary_out = requested_outputs(body, served.output_names)
        version, outputs = await server.predict_version_async(info, rows)
        content: dict[str, Any] = {
            "model_name": name,
            "model_version": version.number,
            "outputs": tensors_from_rows(outputs, iface, names),
        }
        if isinstance(body, dict) and isinstance(body.get("id"), str):
            content["id"] = body["id"]
        raw, header = encode_response(content, binary_out)
        headers = {"X-Model-Version": version.number}
        if header is None:
            return Response(raw, media_type=_JSON, headers=headers)
        headers[HEADER_LENGTH] = str(header)
        return Response(raw, media_type="application/octet-stream", headers=headers)

    v2_infer_errors = v2_error_responses(401, 403, 404, 410, 422, 500, 503)

    @router.post(
        "/v2/models/{name}/versions/{version}/infer",
        tags=["v2"],
        summary="Inference with named tensors",
        openapi_extra=_INFER_BODY,
        response_class=Response,
        responses=v2_infer_errors,
    )
    async def v2_infer(name: Name, version: Ref, request: Request) -> Response:
        return await infer(name, version, request)

    @router.post(
        "/v2/models/{name}/infer",
        tags=["v2"],
        summary="Inference with the default version",
        openapi_extra=_INFER_BODY,
        response_class=Response,
        responses=v2_infer_errors,
    )
    async def v2_infer_default(name: Name, request: Request) -> Response:
        return await infer(name, server.default_ref(name), request)

    return router
