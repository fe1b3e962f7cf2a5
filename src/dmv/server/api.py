"""The REST API under ``/api/v1``: one route per :class:`~dmv.project.Project` method.

Every handler checks the request's token first (:meth:`Gate.allow`), then calls
the same facade method the CLI calls and answers with the record's
``to_dict()``. Lists are pages: ``{"items", "total", "limit", "offset"}``.
Handlers are plain ``def``: FastAPI runs them in its thread pool, so a slow
registry never blocks the event loop that serves predictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from dmv import tokens
from dmv.errors import Forbidden
from dmv.limits import MAX_DESCRIPTION, MAX_LABEL, MAX_REASON
from dmv.server.auth import gate, model_readable

__all__ = ["PREFIX", "create_router"]

PREFIX = "/api/v1"
T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=1000, description="At most this many items.")]
Offset = Annotated[int, Query(ge=0, description="Skip this many items first.")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


#: dmv's grammar (docs/versioning.md), so that the document says what the server takes.
NAME_PATTERN = r"^[a-z][a-z0-9-]*$"
_N = r"(0|[1-9][0-9]{0,8})"
_ID = r"[0-9a-z]{1,32}"
REF_PATTERN = rf"^({_N}\.{_N}\.{_N}-{_ID}\.{_ID}|{_N}(\.{_N}){{0,2}}|[a-z][a-z0-9-]{{0,63}})$"
#: No control characters and no bidirectional overrides (dmv.limits); text fields allow tabs
#: and newlines.
_BIDI = r"\u200e\u200f\u202a-\u202e\u2066-\u2069"
LABEL_PATTERN = rf"^[^\x00-\x1f\x7f-\x9f{_BIDI}]*$"
TEXT_PATTERN = rf"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_BIDI}]*$"

Name = Annotated[
    str, Path(pattern=NAME_PATTERN, max_length=64, description="A model name, e.g. price-model")
]
Ref = Annotated[
    str,
    Path(
        pattern=REF_PATTERN,
        max_length=140,
        description="A reference: X.Y.Z-DATA.SPLIT, X.Y.Z, X.Y, X, latest or an alias",
    ),
]
AliasName = Annotated[
    str, Path(pattern=NAME_PATTERN, max_length=64, description="An alias, e.g. production")
]
RUN_PATTERN = r"^(tr|ex)(0|[1-9][0-9]{0,8})$"
RunId = Annotated[
    str, Path(pattern=RUN_PATTERN, max_length=11, description="A run: tr0, tr1, … or ex1, …")
]
TokenName = Annotated[str, Path(pattern=NAME_PATTERN, max_length=64, description="A token name")]
Label = Annotated[str, Field(max_length=MAX_LABEL, pattern=LABEL_PATTERN)]
Description = Annotated[str, Field(max_length=MAX_DESCRIPTION, pattern=TEXT_PATTERN)]


class ErrorDetail(BaseModel):
    code: str = Field(description="A stable code, e.g. not_found, invalid_input, forbidden")
    message: str
    hint: str | None = None
    details: dict[str, Any] | None = None


class ErrorBody(BaseModel):
    """The one JSON shape of every error dmv answers (dmv.errors.DmvError.to_dict)."""

    error: ErrorDetail


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


#: Every status a route may answer besides its success, each in dmv's one error shape.
ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("Malformed request: unparsable or too deeply nested JSON, a foreign Host"),
    401: _error("No token, or an unknown or revoked one (once the registry has tokens)"),
    403: _error("The token's scope or model does not allow this, or a cross-origin write"),
    404: _error("No such model, version, run, alias or token"),
    409: _error("Conflicts with what is stored (e.g. a released version is immutable)"),
    413: _error("The request body is over the server's size limit"),
    415: _error("A write whose body is not application/json"),
    422: _error("The request is not valid: details.problems names each bad field"),
    503: _error("A store (registry, artifacts, warehouse) is unreachable"),
}


class ModelCreate(_Body):
    name: str = Field(
        max_length=64,
        pattern=NAME_PATTERN,
        description="lowercase letters, digits and '-', starting with a letter",
    )
    purpose: Label = ""
    function: Label = ""
    description: Description = ""
    primary_metric: Label | None = None
    metric_goal: Literal["max", "min"] = "max"


class ModelUpdate(_Body):
    purpose: Label | None = None
    function: Label | None = None
    description: Description | None = None
    primary_metric: Label | None = None
    metric_goal: Literal["max", "min"] | None = None


class AliasBody(_Body):
    version: str = Field(
        pattern=REF_PATTERN,
        max_length=140,
        description="A reference: X.Y.Z-DATA.SPLIT, X.Y.Z, X.Y, X, latest, alias",
    )


class ReleaseBody(_Body):
    major: bool = False


class ApproveBody(_Body):
    comment: Annotated[str, Field(max_length=MAX_REASON, pattern=TEXT_PATTERN)] = ""


class SelectBody(_Body):
    run: str = Field(
        pattern=RUN_PATTERN, max_length=11, description="The training run to serve, e.g. tr1"
    )


class DeprecateBody(_Body):
    reason: str = Field("", max_length=MAX_REASON, pattern=LABEL_PATTERN)


class TokenCreate(_Body):
    name: str = Field(pattern=NAME_PATTERN, max_length=64)
    scope: Literal["read", "write", "admin"]
    model: str | None = Field(None, pattern=NAME_PATTERN, max_length=64)


def page(items: Sequence[Any], limit: int, offset: int) -> dict[str, Any]:
    """One page of ``items`` (records with ``to_dict()``)."""
    return {
        "items": [i.to_dict() for i in items[offset : offset + limit]],
        "total": len(items),
        "limit": limit,
        "offset": offset,
    }


def _ref(name: str, ref: str) -> str:
    return f"{name}@{ref}"


def create_router() -> APIRouter:
    router = APIRouter(dependencies=[Depends(model_readable)], prefix=PREFIX, responses=ERRORS)

    # -- models -------------------------------------------------------------------

    @router.get("/models", tags=["models"], summary="List models")
    def list_models(request: Request, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
        g = gate(request)
        only = g.visible(request)
        models = g.project.models()
        if only is not None:
            models = [m for m in models if m.name == only]
        return page(models, limit, offset)

    @router.post("/models", tags=["models"], summary="Create a model", status_code=201)
    def create_model(body: ModelCreate, request: Request) -> dict[str, Any]:
        project = gate(request).allow(request, "write", body.name)
        return project.create_model(**body.model_dump()).to_dict()

    @router.get("/models/{name}", tags=["models"], summary="One model")
    def get_model(name: Name, request: Request) -> dict[str, Any]:
        return gate(request).allow(request, "read", name).model(name).to_dict()

    @router.patch("/models/{name}", tags=["models"], summary="Change a model's description")
    def update_model(name: Name, body: ModelUpdate, request: Request) -> dict[str, Any]:
        project = gate(request).allow(request, "write", name)
        return project.update_model(name, **body.model_dump(exclude_none=True)).to_dict()

    # -- versions -----------------------------------------------------------------

    @router.get("/models/{name}/versions", tags=["versions"], summary="List a model's versions")
    def list_versions(
        name: Name,
        request: Request,
        limit: Limit = 50,
        offset: Offset = 0,
        state: Literal["prerelease", "released", "deprecated"] | None = None,
    ) -> dict[str, Any]:
        project = gate(request).allow(request, "read", name)
        return page(project.versions(name, state=state), limit, offset)

    @router.get(
        "/models/{name}/versions/{ref}",
        tags=["versions"],
        summary="The version a reference points at (exact, X.Y.Z, X.Y, X, latest, alias)",
    )
    def get_version(name: Name, ref: Ref, request: Request) -> dict[str, Any]:
        project = gate(request).allow(request, "read", name)
        return project.show(_ref(name, ref)).to_dict()

    @router.post(
        "/models/{name}/versions/{ref}/release",
        tags=["versions"],
        summary="Release a prerelease as N.Y.Z-DATA.SPLIT",
        status_code=201,
    )
    def release(
        name: Name, ref: Ref, request: Request, body: ReleaseBody | None = None
    ) -> dict[str, Any]:
        project = gate(request).allow(request, "write", name)
        major = body.major if body else False
        return project.release(_ref(name, ref), major=major).to_dict()

    @router.get(
        "/models/{name}/versions/{ref}/gates",
        tags=["versions"],
        summary="The release policy's gates for a prerelease, as recorded now",
    )
    def get_gates(name: Name, ref: Ref, request: Request) -> dict[str, Any]:
        project = gate(request).allow(request, "read", name)
        return project.gates(_ref(name, ref))

    @router.post(
        "/models/{name}/versions/{ref}/approve",
        tags=["versions"],
        summary="Approve a prerelease for release, as the token's holder",
        status_code=201,
    )
    def approve(
        name: Name, ref: Ref, request: Request, body: ApproveBody | None = None
    ) -> dict[str, Any]:
        project = gate(request).allow(request, "write", name)
        holder = gate(request).identify(request)
        if holder is None:
            raise Forbidden(
                "an approval over the API needs a token named for its holder",
                hint="create one per reviewer: dmv token create NAME --scope write",
            )
        approver = holder.actor  # token:NAME, the token's holder
        comment = body.comment if body else ""
        approval = project.approve(_ref(name, ref), approver=approver, via="api", comment=comment)
        return approval.to_dict()

    @router.post(
        "/models/{name}/versions/{ref}/select",
        tags=["versions"],
        summary="Choose the training run a prerelease serves",
    )
    def select(name: Name, ref: Ref, body: SelectBody, request: Request) -> dict[str, Any]:
        project = gate(request).allow(request, "write", name)
        return project.select_run(_ref(name, ref), body.run).to_dict()

    @router.post(
        "/models/{name}/versions/{ref}/deprecate",
        tags=["versions"],
        summary="Deprecate a version",
    )
    def deprecate(
        name: Name, ref: Ref, request: Request, body: DeprecateBody | None = None
    ) -> dict[str, Any]:
        project = gate(request).allow(request, "write", name)
        return project.deprecate(_ref(name, ref), reason=body.reason if body else "").to_dict()

    @router.delete(
        "/models/{name}/versions/{ref}",
        tags=["versions"],
        summary="Delete a prerelease that was never released, with its runs",
        status_code=204,
        response_class=Response,
    )
    def delete_version(name: Name, ref: Ref, request: Request) -> Response:
        gate(request).allow(request, "write", name).delete_version(_ref(name, ref))
        return Response(status_code=204)

    @router.get(
        "/models/{name}/versions/{ref}/interface",
        tags=["versions"],
        summary="The version's interface: input and output fields",
    )
    def get_interface(name: Name, ref: Ref, request: Request) -> dict[str, Any]:
        project = gate(request).allow(request, "read", name)
        return project.interface(_ref(name, ref)).to_dict()

    @router.get(
        "/models/{name}/versions/{ref}/provenance",
        tags=["versions"],
        summary="The release's signed provenance: a DSSE envelope (in-toto, SLSA v1)",
    )
    def get_provenance(name: Name, ref: Ref, request: Request) -> dict[str, Any]:
        project = gate(request).allow(request, "read", name)
        return project.provenance(_ref(name, ref))

    @router.get(
        "/models/{name}/versions/{ref}/signature",
        tags=["versions"],
        summary="Who signed the release, when, with which key, and whether it verifies",
    )
    def get_signature(name: Name, ref: Ref, request: Request) -> dict[str, Any]:
        project = gate(request).allow(request, "read", name)
        return project.signature(_ref(name, ref)).to_dict()

    # A POST though it changes nothing: the full verify loads the model in a fresh
    # process, so it takes the request shape a foreign page cannot send (Origin check).
    @router.post(
        "/models/{name}/versions/{ref}/verify",
        tags=["versions"],
        summary="Re-check every hash and fingerprint the version stands on (changes nothing)",
    )
    def verify(name: Name, ref: Ref, request: Request) -> dict[str, Any]:
        project = gate(request).allow(request, "read", name)
        return project.verify(_ref(name, ref)).to_dict()

    @router.get(
        "/models/{name}/diff",
        tags=["versions"],
        summary="What changed from version a to version b, component by component",
    )
    def diff(
        name: Name,
        request: Request,
        a: Annotated[
            str,
            Query(
                pattern=REF_PATTERN, max_length=140, description="The older reference, e.g. 0.0.1"
            ),
        ],
        b: Annotated[
            str,
            Query(
                pattern=REF_PATTERN,
                max_length=140,
                description="The newer reference, e.g. production",
            ),
        ],
    ) -> dict[str, Any]:
        project = gate(request).allow(request, "read", name)
        return project.diff(_ref(name, a), _ref(name, b))

    @router.get(
        "/models/{name}/tree",
        tags=["versions"],
        summary="The model's versions staged as the pattern's diagram draws them",
    )
    def tree(name: Name, request: Request) -> dict[str, Any]:
        project = gate(request).allow(request, "read", name)
        return project.tree(name).to_dict()

    # -- runs ---------------------------------------------------------------------

    @router.get(
        "/models/{name}/versions/{ref}/runs",
        tags=["runs"],
        summary="The training runs of a version with their evaluations",
    )
    def list_runs(
        name: Name, ref: Ref, request: Request, limit: Limit = 50, offset: Offset = 0
    ) -> dict[str, Any]:
        project = gate(request).allow(request, "read", name)
        return page(project.runs(_ref(name, ref)), limit, offset)

    @router.get("/models/{name}/versions/{ref}/runs/{run_id}", tags=["runs"], summary="One run")
    def get_run(name: Name, ref: Ref, run_id: RunId, request: Request) -> dict[str, Any]:
        project = gate(request).allow(request, "read", name)
        return project.get_run(_ref(name, ref), run_id).to_dict(environment=True)

    @router.get(
        "/models/{name}/runs",
        tags=["runs"],
        summary="A model's runs outside any version: experiments and failed runs",
    )
    def model_runs(
        name: Name,
        request: Request,
        kind: Literal["experiment", "failed"] | None = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        project = gate(request).allow(request, "read", name)
        found = [] if kind == "failed" else project.experiments(name)
        if kind != "experiment":
            found += project.failed_runs(name)
        return page(found, limit, offset)

    # -- aliases ------------------------------------------------------------------

    @router.get("/models/{name}/aliases", tags=["aliases"], summary="A model's aliases")
    def list_aliases(
        name: Name, request: Request, limit: Limit = 50, offset: Offset = 0
    ) -> dict[str, Any]:
        project = gate(request).allow(request, "read", name)
        return page(project.aliases(name), limit, offset)

    @router.put(
        "/models/{name}/aliases/{alias}",
        tags=["aliases"],
        summary="Point an alias at a version (moves it if set; audited)",
    )
    def set_alias(
        name: Name, alias: AliasName, body: AliasBody, request: Request
    ) -> dict[str, Any]:
        project = gate(request).allow(request, "write", name)
        return project.set_alias(_ref(name, body.version), alias).to_dict()

    @router.delete(
        "/models/{name}/aliases/{alias}",
        tags=["aliases"],
        summary="Remove an alias",
        status_code=204,
        response_class=Response,
    )
    def remove_alias(name: Name, alias: AliasName, request: Request) -> Response:
        gate(request).allow(request, "write", name).remove_alias(name, alias)
        return Response(status_code=204)

    # -- audit --------------------------------------------------------------------

    @router.get("/audit", tags=["audit"], summary="The audit log, newest first")
    def audit(
        request: Request,
        model: str | None = None,
        action: Annotated[str | None, Query(description="Actions starting with this")] = None,
        actor: str | None = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        g = gate(request)
        only = g.visible(request)
        if only is not None:
            g.allow(request, "read", model or only)
            model = only
        fetch = None if actor else offset + limit
        entries = g.project.audit(model=model, action=action, limit=fetch)
        if actor:
            entries = [e for e in entries if e.actor == actor]
        result = page(entries, limit, offset)
        if not actor:
            result["total"] = None  # counting the whole log is not worth it
        return result

    # -- tokens -------------------------------------------------------------------

    @router.get("/tokens", tags=["tokens"], summary="List tokens (admin)")
    def list_tokens(request: Request, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
        project = gate(request).allow(request, "admin")
        return page(tokens.list_tokens(project.registry), limit, offset)

    @router.post(
        "/tokens", tags=["tokens"], summary="Create a token (admin); shown once", status_code=201
    )
    def create_token(body: TokenCreate, request: Request) -> dict[str, Any]:
        project = gate(request).allow(request, "admin")
        plaintext, info = tokens.create_token(project.registry, body.name, body.scope, body.model)
        return {**info.to_dict(), "token": plaintext}

    @router.delete("/tokens/{name}", tags=["tokens"], summary="Revoke a token (admin)")
    def revoke_token(name: TokenName, request: Request) -> dict[str, Any]:
        project = gate(request).allow(request, "admin")
        return tokens.revoke_token(project.registry, name).to_dict()

    return router
