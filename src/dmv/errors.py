"""Every error dmv raises, rooted in :class:`DmvError`.

Each class carries the exit code the CLI uses and the HTTP status the server
answers with, so both front ends turn errors into output in exactly one place.
A message says what went wrong; ``hint`` says what to do about it.

Each ``code`` names one kind of error and each exit code means one thing
(``exit_meaning``); :func:`catalog` lists them all and :func:`render_markdown`
writes ``docs/errors.md`` from it (``python tests/render_errors_doc.py``). This
module is plain standard library: it is copied into exported MLflow models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "OTHER_EXIT_CODES",
    "ArtifactError",
    "BadRequest",
    "BadRows",
    "ConfigError",
    "ConflictError",
    "DataError",
    "Deprecated",
    "DirtyTreeError",
    "DmvError",
    "ErrorKind",
    "Forbidden",
    "GitError",
    "ImmutableError",
    "IntegrityError",
    "Interrupted",
    "InvalidInput",
    "MlflowUnavailable",
    "ModelUnavailable",
    "NonFiniteOutput",
    "NotFound",
    "NotServable",
    "PolicyRefused",
    "PredictionError",
    "PredictionRejected",
    "SignatureError",
    "StorageError",
    "TooLarge",
    "TrainingFailed",
    "Unauthorized",
    "UnsupportedMediaType",
    "UntrustedModel",
    "VersionError",
    "catalog",
    "render_markdown",
]


class DmvError(Exception):
    """Root of every error dmv raises on purpose."""

    exit_code: ClassVar[int] = 1
    exit_meaning: ClassVar[str] = "dmv refused or failed in a way no other exit code names"
    http_status: ClassVar[int] = 500
    code: ClassVar[str] = "error"

    def __init__(self, message: str, *, hint: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """The one JSON shape every front end uses for an error."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.hint:
            body["hint"] = self.hint
        if self.details:
            body["details"] = self.details
        return {"error": body}


# -- 2: input ------------------------------------------------------------------


class InvalidInput(DmvError):
    """The user gave something dmv cannot accept (a bad name, version, option)."""

    exit_code = 2
    exit_meaning = "the input cannot be accepted (a name, version, setting, request or model)"
    http_status = 422
    code = "invalid_input"


class ConfigError(InvalidInput):
    """``dmv.toml``, an environment variable or a flag holds a bad setting."""

    code = "config_error"


class VersionError(InvalidInput):
    """A version, reference, name, alias or data id that breaks the grammar."""

    code = "invalid_version"


class NotServable(InvalidInput):
    """A logged model fails the servability check: it would not load or answer as logged."""

    code = "not_servable"


class BadRows(InvalidInput):
    """A batch prediction met rows its version's interface refuses (``--on-bad-rows refuse``).

    ``details.problems`` lists the first bad rows; nothing was written or registered.
    """

    code = "bad_rows"


class BadRequest(InvalidInput):
    """A request no dmv route can take: a foreign Host, JSON nested too deep."""

    http_status = 400
    code = "bad_request"


class TooLarge(InvalidInput):
    """A request body over the server's size limit."""

    http_status = 413
    code = "too_large"


class UnsupportedMediaType(InvalidInput):
    """A write whose body is not JSON."""

    http_status = 415
    code = "unsupported_media_type"


# -- 3 to 5: what is stored ----------------------------------------------------


class NotFound(DmvError):
    """A model, version, run, alias or dataset that does not exist."""

    exit_code = 3
    exit_meaning = "what was asked for does not exist"
    http_status = 404
    code = "not_found"


class ConflictError(DmvError):
    """The request contradicts what is already stored."""

    exit_code = 4
    exit_meaning = "the request contradicts the current state (the records, the git tree)"
    http_status = 409
    code = "conflict"


class DirtyTreeError(ConflictError):
    """Uncommitted changes stand in the way of a versioned run or a checkout."""

    code = "dirty_tree"


class PolicyRefused(ConflictError):
    """The project's release policy (``[release]`` in ``dmv.toml``) refuses the version:
    the message lists every gate that failed."""

    code = "policy_refused"


class ImmutableError(ConflictError):
    """Released versions and their runs, files and splits never change."""

    exit_code = 5
    exit_meaning = "a released version, its runs, files or splits would change"
    code = "immutable"


# -- 6 to 8: the stores --------------------------------------------------------


class IntegrityError(DmvError):
    """Stored data does not match its recorded fingerprint."""

    exit_code = 6
    exit_meaning = "stored data does not match what was recorded"
    http_status = 500
    code = "integrity_error"


class ArtifactError(IntegrityError):
    """An artifact is missing or its content does not match its hash."""

    code = "artifact_error"


class SignatureError(IntegrityError):
    """A release is not signed, its signature does not verify, or its key is not trusted.

    ``details.check`` names what failed: ``unsigned``, ``untrusted``, ``revoked``,
    ``model`` (the signed files), ``envelope`` or ``provenance``.
    """

    http_status = 403
    code = "signature_error"


class DataError(DmvError):
    """A data source, query or split cannot be used as asked."""

    exit_code = 7
    exit_meaning = "a data source, query or split cannot be used as asked"
    http_status = 422
    code = "data_error"


class StorageError(DmvError):
    """A store (registry database, artifact store, warehouse) is unreachable or broken."""

    exit_code = 8
    exit_meaning = "a store (registry, artifacts, warehouse, git) is unreachable or broken"
    http_status = 503
    code = "storage_error"


class GitError(StorageError):
    """A git command failed in a way dmv cannot explain more precisely."""

    code = "git_error"


# -- 9 and 10: tokens ----------------------------------------------------------


class Unauthorized(DmvError):
    """No token, or a token dmv does not know."""

    exit_code = 9
    exit_meaning = "no token, or a token dmv does not know"
    http_status = 401
    code = "unauthorized"


class Forbidden(DmvError):
    """The token is valid but may not do this."""

    exit_code = 10
    exit_meaning = "the token is valid but may not do this"
    http_status = 403
    code = "forbidden"


# -- 11 to 14: models and serving ----------------------------------------------


class ModelUnavailable(DmvError):
    """A stored model cannot be loaded here (a library, its code, its format).

    A server answers 503 for that version only; ``details.cause`` names the
    error underneath when there is one.
    """

    exit_code = 11
    exit_meaning = "a stored model cannot be loaded here"
    http_status = 503
    code = "model_unavailable"


class UntrustedModel(ModelUnavailable):
    """The model file is in a format that can run code, and the caller did not trust it."""

    exit_code = 12
    exit_meaning = "a model whose format can run code was not trusted"
    http_status = 403
    code = "untrusted_format"


class PredictionError(DmvError):
    """The model failed on inputs that passed validation, or answered not one output per row."""

    exit_code = 13
    exit_meaning = "the model failed to predict"
    http_status = 500
    code = "prediction_error"


class NonFiniteOutput(PredictionError):
    """The model answered NaN or an infinity: a number no client can use, never sent as null."""

    code = "non_finite_output"


class PredictionRejected(PredictionError):
    """The model failed on rows nothing could validate (the version has no interface).

    The same failure as its parent, answered 422: the rows may be what is wrong.
    """

    http_status = 422


class Deprecated(DmvError):
    """A deprecated version, asked for without the server allowing it."""

    exit_code = 14
    exit_meaning = "the version asked for is deprecated"
    http_status = 410
    code = "deprecated"


# -- 15: integrations ----------------------------------------------------------


class MlflowUnavailable(DmvError):
    """No MLflow environment was found, or MLflow failed in it."""

    exit_code = 15
    exit_meaning = "MLflow is not installed where dmv looks, or failed"
    http_status = 503
    code = "mlflow_unavailable"


# -- 16: training entries --------------------------------------------------------


class TrainingFailed(DmvError):
    """``dmv train``: the model's declared training entry exited with an error, or
    exited without logging a run; its exit code is in the details."""

    exit_code = 16
    exit_meaning = "the declared training entry (dmv train) failed or logged no run"
    http_status = 500
    code = "training_failed"


# -- 130: interrupted -----------------------------------------------------------


class Interrupted(DmvError):
    """Ctrl-C or SIGTERM stopped the command: its queries were cancelled and rolled back.

    The CLI shows it as one line, ``interrupted: nothing was registered; …``. A
    declined confirmation ends with the same exit code.
    """

    exit_code = 130
    exit_meaning = "interrupted (Ctrl-C, SIGTERM) or aborted at a confirmation"
    http_status = 503
    code = "interrupted"


#: Exit codes the CLI uses for what is not a :class:`DmvError`.
OTHER_EXIT_CODES: dict[int, str] = {
    0: "success",
    70: "a bug in dmv (an internal error; rerun with --traceback)",
}


@dataclass(frozen=True)
class ErrorKind:
    """One row of the error table: a class and what it means to each front end."""

    name: str
    base: str | None
    code: str
    exit_code: int
    exit_meaning: str
    http_status: int
    summary: str
    #: Whether the class names its own code (False: a variant of its parent's kind).
    own_code: bool


def _subclasses(cls: type[DmvError]) -> list[type[DmvError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        if sub.__module__ == __name__:
            found.extend(_subclasses(sub))
    return found


def catalog() -> list[ErrorKind]:
    """Every error class of this module, in the order of its exit code, root first."""
    classes = sorted(_subclasses(DmvError), key=lambda c: c.exit_code)
    rows = []
    for cls in classes:
        parent = cls.__mro__[1]
        doc = (cls.__doc__ or "").strip().split("\n\n")[0]
        rows.append(
            ErrorKind(
                name=cls.__name__,
                base=parent.__name__ if issubclass(parent, DmvError) else None,
                code=cls.code,
                exit_code=cls.exit_code,
                exit_meaning=cls.exit_meaning,
                http_status=cls.http_status,
                summary=" ".join(doc.split()).replace("``", "`"),
                own_code="code" in vars(cls),
            )
        )
    return rows


def render_markdown() -> str:
    """``docs/errors.md``: the exit codes, then every error class."""
    rows = catalog()
    exits: dict[int, str] = {k.exit_code: k.exit_meaning for k in rows}
    exits.update(OTHER_EXIT_CODES)
    lines = [
        "# Errors",
        "",
        "<!-- Generated from src/dmv/errors.py by `python tests/render_errors_doc.py`; "
        "tests/test_errors.py keeps it current. -->",
        "",
        "Every error dmv raises on purpose is a `dmv.DmvError` (in `dmv.errors`). The CLI",
        "prints it as one line `error: …` with a `hint:` (the JSON body below with `--json`)",
        "and exits with its exit code; the server answers with its HTTP status and the body",
        '`{"error": {"code", "message", "hint", "details"}}` (on the Open Inference',
        'Protocol\'s `/v2` routes, `{"error": "<message>"}`). Each code names one kind of',
        "error and each exit code means one thing.",
        "",
        "## Exit codes",
        "",
        "| exit code | meaning |",
        "|---|---|",
        *(f"| {code} | {exits[code]} |" for code in sorted(exits)),
        "",
        "## Error classes",
        "",
        "| class | code | exit code | HTTP status | meaning |",
        "|---|---|---|---|---|",
    ]
    for k in rows:
        name = f"`{k.name}`" if k.base is None else f"`{k.name}` ({k.base})"
        lines.append(f"| {name} | `{k.code}` | {k.exit_code} | {k.http_status} | {k.summary} |")
    return "\n".join(lines) + "\n"
