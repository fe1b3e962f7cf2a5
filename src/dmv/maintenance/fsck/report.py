"""The fsck report: one status per store, the problems, orphans and repairs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dmv._urls import redact, redact_text
from dmv.errors import IntegrityError, StorageError

if TYPE_CHECKING:
    pass

__all__ = ["DEFAULT_GRACE_SECONDS", "STATUSES", "FsckReport", "StoreStatus"]

#: Orphans younger than this may belong to a run still in progress.
DEFAULT_GRACE_SECONDS = 3600.0

#: ok: intact; problems: readable, but something registered is missing or wrong;
#: damaged: the store cannot be read; skipped: not checked (says why).
STATUSES = ("ok", "problems", "damaged", "skipped")


@dataclass
class StoreStatus:
    """One row of the report: a store, where it is, and how it fared."""

    store: str
    location: str
    status: str = "ok"
    summary: str = ""

    def __post_init__(self) -> None:
        # Every store's location is shown in text and JSON: never with its secrets.
        self.location = redact(self.location)

    def to_dict(self) -> dict[str, str]:
        return {
            "store": self.store,
            "location": self.location,
            "status": self.status,
            "summary": self.summary,
        }


@dataclass
class FsckReport:
    stores: list[StoreStatus] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)
    orphans: list[dict[str, Any]] = field(default_factory=list)
    repaired: list[dict[str, Any]] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)
    space: dict[str, Any] = field(default_factory=dict)
    deep: bool = False

    @property
    def ok(self) -> bool:
        """Every store readable and nothing registered missing or corrupt.

        Orphans and reclaimable space are not problems: a crash may leave them.
        """
        return not self.problems and all(s.status in ("ok", "skipped") for s in self.stores)

    @property
    def exit_code(self) -> int:
        """0 when ok; 8 (storage) when a store cannot be read; else 6 (integrity)."""
        if self.ok:
            return 0
        if any(s.status == "damaged" for s in self.stores):
            return StorageError.exit_code
        return IntegrityError.exit_code

    def store(self, name: str) -> StoreStatus:
        return next(s for s in self.stores if s.store == name)

    def problem(self, status: StoreStatus, kind: str, what: str, error: str, **extra: Any) -> None:
        self.problems.append(
            {
                "store": status.store,
                "kind": kind,
                "what": redact_text(what),
                "error": redact_text(error),
                **extra,
            }
        )
        if status.status == "ok":
            status.status = "problems"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "deep": self.deep,
            "stores": [s.to_dict() for s in self.stores],
            "checked": self.checked,
            "problems": self.problems,
            "orphans": self.orphans,
            "repaired": self.repaired,
            "space": self.space,
        }
