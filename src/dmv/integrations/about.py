"""What a version's records say about it, gathered once for exports, cards and lineage."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dmv._urls import database_url as redact_url
from dmv.errors import DmvError
from dmv.release.serving_run import selected_run
from dmv.version import as_reference

if TYPE_CHECKING:
    from dmv.data.catalog import QueryInfo, SplitInfo
    from dmv.data.service import ProjectData
    from dmv.registry import ModelInfo, RegistryStore, RunInfo, VersionInfo
    from dmv.version import Version

__all__ = ["About", "about", "redacted_definition"]


@dataclass
class About:
    model: ModelInfo
    info: VersionInfo
    runs: list[RunInfo]
    run: RunInfo | None
    query: QueryInfo | None = None
    split: SplitInfo | None = None
    model_artifact: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> Version:
        return self.info.version

    def lineage(self) -> dict[str, Any]:
        """The version's lineage as plain JSON data: data, split, code and run."""
        code = (self.run.code or {}) if self.run else {}
        out: dict[str, Any] = {
            "data": self.version.data,
            "split": self.version.split,
            "run": self.run.id if self.run else None,
            "git_commit": code.get("commit"),
            "git_remote": code.get("remote_url"),
            "dirty": self.info.dirty,
        }
        if self.query is not None:
            out["retrieval"] = {
                "kind": self.query.kind,
                "definition": redacted_definition(self.query.definition),
            }
        if self.split is not None:
            out["split_rule"] = self.split.spec
            out["tables"] = [
                {k: p.get(k) for k in ("name", "table", "rows", "fingerprint")}
                for p in self.split.parts
            ]
            out["content_fingerprint"] = self.split.result.get("content_fingerprint")
        return out


def redacted_definition(definition: dict[str, Any]) -> dict[str, Any]:
    """A retrieval definition with every URL's password removed."""

    out: dict[str, Any] = {}
    for key, value in definition.items():
        if isinstance(value, str) and "://" in value:
            out[key] = redact_url(value)
        elif isinstance(value, dict):
            out[key] = redacted_definition(value)
        else:
            out[key] = value
    return out


def about(registry: RegistryStore, data: ProjectData, ref: Any) -> About:
    """Everything recorded about the version ``ref`` points at (data parts when stored)."""

    info = registry.resolve(as_reference(ref))
    runs = registry.list_runs(info.version)
    run = selected_run(registry, info)
    result = About(registry.get_model(info.name), info, runs, run)
    if run is not None:
        result.model_artifact = next((a for a in run.artifacts if a.kind == "model"), None)
    # A version registered with an explicit number may have its data elsewhere.
    with contextlib.suppress(DmvError):
        result.query = data.query(info.name, info.version.data)
    with contextlib.suppress(DmvError):
        v = info.version
        result.split = data.split(v.name, v.data, v.split)
    return result
