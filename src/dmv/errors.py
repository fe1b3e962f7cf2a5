"""Every error dmv raises, rooted in :class:`DmvError`.

Each class carries the exit code the CLI uses and the HTTP status the server
answers with, so both front ends turn errors into output in exactly one place.
A message says what went wrong; ``hint`` says what to do about it.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "ArtifactError",
    "ConfigError",
    "ConflictError",
    "DataError",
    "DmvError",
    "Forbidden",
    "ImmutableError",
    "IntegrityError",
    "InvalidInput",
    "NotFound",
    "StorageError",
    "Unauthorized",
]


class DmvError(Exception):
    """Root of every error dmv raises on purpose."""

    exit_code: ClassVar[int] = 1
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


class InvalidInput(DmvError):
    """The user gave something dmv cannot accept (a bad name, version, option)."""

    exit_code = 2
    http_status = 422
    code = "invalid_input"


class ConfigError(InvalidInput):
    """``dmv.toml``, an environment variable or a flag holds a bad setting."""

    code = "config_error"


class NotFound(DmvError):
    """A model, version, run, alias or dataset that does not exist."""

    exit_code = 3
    http_status = 404
    code = "not_found"


class ConflictError(DmvError):
    """The request contradicts what is already stored."""

    exit_code = 4
    http_status = 409
    code = "conflict"


class ImmutableError(ConflictError):
    """Released versions and their runs, files and splits never change."""

    exit_code = 5
    code = "immutable"


class IntegrityError(DmvError):
    """Stored data does not match its recorded fingerprint."""

    exit_code = 6
    http_status = 500
    code = "integrity_error"


class ArtifactError(IntegrityError):
    """An artifact is missing or its content does not match its hash."""

    code = "artifact_error"


class DataError(DmvError):
    """A data source, query or split cannot be used as asked."""

    exit_code = 7
    http_status = 422
    code = "data_error"


class StorageError(DmvError):
    """A store (registry database, artifact store, warehouse) is unreachable or broken."""

    exit_code = 8
    http_status = 503
    code = "storage_error"


class Unauthorized(DmvError):
    """No token, or a token dmv does not know."""

    exit_code = 9
    http_status = 401
    code = "unauthorized"


class Forbidden(DmvError):
    """The token is valid but may not do this."""

    exit_code = 10
    http_status = 403
    code = "forbidden"
