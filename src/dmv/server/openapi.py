"""The OpenAPI document: FastAPI's routes plus one predict operation per served model.

Each served reference (``price-model@production``) gets a concrete path,
``/models/price-model/versions/production/predict``, whose request and
response schemas come from the interface of the version the reference points
at when the document is asked for. Its schemas are copied in under a prefix
(``price-model.production.Input``) so that models never clash.
"""

from __future__ import annotations

import copy
import logging
from typing import TYPE_CHECKING, Any

from dmv.errors import DmvError

if TYPE_CHECKING:
    from dmv.project import Project
    from dmv.server.serving import ModelServer

__all__ = ["model_documents", "security_scheme"]

log = logging.getLogger("dmv.server")


def security_scheme() -> dict[str, Any]:
    return {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "A dmv token (dmv token create); not needed while the registry "
            "has no tokens at all (local mode).",
        }
    }


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


def model_documents(
    base: dict[str, Any], project: Project, server: ModelServer, refs: list[str] | None
) -> dict[str, Any]:
    """``base`` with each served reference's predict operation and schemas merged in."""
    if not refs:
        return base
    try:
        from dmv.interface import to_openapi
    except ImportError:
        return base
    doc = copy.deepcopy(base)
    paths = doc.setdefault("paths", {})
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for text in refs:
        name, _, ref = text.partition("@")
        ref = ref or "latest"
        try:
            info = server.resolve(name, ref)
            iface = server.interface(info)
            if iface is None:
                continue
            part = to_openapi(iface, name, info.version.number)
        except DmvError as exc:  # a reference that points nowhere (yet) is left out
            log.info("no OpenAPI schema for %s: %s", text, exc.message)
            continue
        prefix = f"{name}.{ref}."
        for key, schema in part.get("components", {}).get("schemas", {}).items():
            schemas[prefix + key] = _rename_refs(schema, prefix)
        for operations in part.get("paths", {}).values():
            for method, operation in operations.items():
                op = _rename_refs(operation, prefix)
                op["parameters"] = []  # the path below is concrete
                op["operationId"] = f"predict__{name}__{ref}".replace("-", "_").replace(".", "_")
                op["tags"] = [f"model {name}"]
                op["summary"] = f"Predict with {name}@{ref} (now {info.version.number})"
                paths.setdefault(f"/models/{name}/versions/{ref}/predict", {})[method] = op
    return doc
