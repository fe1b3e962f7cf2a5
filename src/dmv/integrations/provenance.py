"""A release's provenance: an in-toto Statement v1 with an SLSA Provenance v1 predicate.

What a released version was made from, as the registry records it:

- ``subject``: the model files (as ``dmv export`` writes them under ``dmv/``) and the
  serving run's other artifacts, by SHA-256;
- ``buildDefinition``: the entry point and parameters (``externalParameters``); the
  DATA retrieval (its SQL's SHA-256), each SPLIT part's fingerprint, and the code
  commit and repository (``resolvedDependencies``);
- ``runDetails``: builder ``dmv`` and its version, the run id, its start and end;
  ``byproducts``: the run's evaluations (metrics per split).

:func:`differences` compares a signed statement with the one the registry gives
now and names every part that changed.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dmv.integrations.about import redacted_definition

if TYPE_CHECKING:
    from dmv.integrations.about import About

__all__ = ["BUILDER_ID", "BUILD_TYPE", "SLSA_PREDICATE", "differences", "statement"]

SLSA_PREDICATE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://dmv.dev/release/v1"
BUILDER_ID = "dmv"


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _dmv_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("dmv")
    except metadata.PackageNotFoundError:
        return "unknown"


def _data_dependency(ab: About) -> dict[str, Any] | None:
    query = ab.query
    if query is None:
        return None
    definition = redacted_definition(query.definition)
    sql = definition.get("sql")
    text = sql if isinstance(sql, str) else json.dumps(definition, sort_keys=True)
    return {
        "name": f"DATA {ab.version.data}",
        "uri": f"dmv:data/{ab.version.name}/{ab.version.data}",
        "digest": {"sha256": _sha256(text.encode())},
        "annotations": {"kind": query.kind, "hashed": "sql" if isinstance(sql, str) else "json"},
    }


def _split_dependencies(ab: About) -> list[dict[str, Any]]:
    split = ab.split
    if split is None:
        return []
    v = ab.version
    out = []
    for part in split.result.get("parts") or []:
        fingerprint = str(part.get("fingerprint") or "")
        out.append(
            {
                "name": f"SPLIT {v.split} {part.get('name')}",
                "uri": f"dmv:split/{v.name}/{v.data}.{v.split}/{part.get('name')}",
                "digest": {"sha256": _sha256(fingerprint.encode())},
                "annotations": {"fingerprint": fingerprint, "rows": part.get("rows")},
            }
        )
    return out


def _code_dependency(ab: About) -> dict[str, Any] | None:
    code = (ab.run.code or {}) if ab.run else {}
    commit = code.get("commit")
    if not commit:
        return None
    repo = code.get("remote_url") or "local"
    return {
        "name": "code",
        "uri": f"git+{repo}@{commit}",
        "digest": {"gitCommit": str(commit)},
        "annotations": {
            "repository": repo,
            "branch": code.get("branch"),
            "dirty": bool(ab.info.dirty),
            "files": dict(sorted((code.get("files") or {}).items())),
        },
    }


def statement(ab: About, subject: Mapping[str, bytes]) -> dict[str, Any]:
    """The provenance statement of the released version in ``ab``.

    ``subject`` maps each signed file's name to its bytes (read hash-checked).
    """
    run, info = ab.run, ab.info
    run_id = run.id if run else None
    deps = [d for d in (_code_dependency(ab), _data_dependency(ab)) if d is not None]
    deps += _split_dependencies(ab)
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [
            {"name": name, "digest": {"sha256": _sha256(data)}}
            for name, data in sorted(subject.items())
        ],
        "predicateType": SLSA_PREDICATE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "version": str(info.version),
                    "releasedFrom": info.released_from,
                    "entryPoint": run.entry_point if run else None,
                    "parameters": run.params if run else {},
                },
                "internalParameters": {
                    "interfaceFingerprint": info.interface_fp,
                    "logicFingerprint": info.logic_fp,
                },
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {"id": BUILDER_ID, "version": {"dmv": _dmv_version()}},
                "metadata": {
                    "invocationId": run_id,
                    "startedOn": _iso(run.started_at) if run else None,
                    "finishedOn": _iso(run.ended_at) if run else None,
                },
                "byproducts": [
                    {
                        "name": f"evaluation {run_id} {split}",
                        "mediaType": "application/json",
                        "annotations": {"split": split, "metrics": metrics},
                    }
                    for split, metrics in sorted((run.metrics if run else {}).items())
                ],
            },
        },
    }


def _by_name(items: Any) -> dict[str, Any]:
    return {str(i.get("name")): i for i in items or [] if isinstance(i, dict)}


def differences(signed: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """What differs between a signed statement and the registry's now, each part named."""
    out: list[str] = []
    if signed.get("predicateType") != SLSA_PREDICATE:
        return [f"not an SLSA provenance statement ({signed.get('predicateType')!r})"]
    old, new = _by_name(signed.get("subject")), _by_name(now.get("subject"))
    out += [f"model file {n}" for n in sorted(set(old) | set(new)) if old.get(n) != new.get(n)]
    pred_old, pred_new = signed.get("predicate") or {}, now.get("predicate") or {}
    build_old = pred_old.get("buildDefinition") or {}
    build_new = pred_new.get("buildDefinition") or {}
    params_old = build_old.get("externalParameters") or {}
    params_new = build_new.get("externalParameters") or {}
    out += [
        f"build parameter {k}"
        for k in sorted(set(params_old) | set(params_new))
        if params_old.get(k) != params_new.get(k)
    ]
    if build_old.get("internalParameters") != build_new.get("internalParameters"):
        out.append("interface or logic fingerprint")
    deps_old = _by_name(build_old.get("resolvedDependencies"))
    deps_new = _by_name(build_new.get("resolvedDependencies"))
    for name in sorted(set(deps_old) | set(deps_new)):
        if deps_old.get(name) != deps_new.get(name):
            out.append("code commit" if name == "code" else name)
    run_old, run_new = pred_old.get("runDetails") or {}, pred_new.get("runDetails") or {}
    if run_old.get("metadata") != run_new.get("metadata"):
        out.append("training run")
    if run_old.get("byproducts") != run_new.get("byproducts"):
        out.append("evaluations")
    return out
