"""Model serving: predict by version reference, validated against the interface.

A reference is resolved on every request (one indexed registry lookup), so moving
an alias or releasing a compatible version is served at once, without a restart.
Everything expensive is cached by what cannot change: loaded models by exact
version and artifact digest, row validators by interface fingerprint. A model
file is read by its flavor (:mod:`dmv.flavors`) only after the artifact store has
checked its hash, and a pickled one only when the server trusts pickles.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dmv.errors import DmvError, InvalidInput, NotFound

if TYPE_CHECKING:
    from dmv.interface import Interface
    from dmv.project import Project
    from dmv.registry import VersionInfo
    from dmv.version import Version

__all__ = ["DEFAULT_OUTPUT", "ModelServer", "PredictionError", "Served"]

#: The output field's name when a version declares no interface.
DEFAULT_OUTPUT = "prediction"


class PredictionError(DmvError):
    """The model itself failed on inputs that passed validation."""

    http_status = 500
    code = "prediction_error"


@dataclass
class Served:
    """One loaded model: an exact version, the run and file it serves, ready to call."""

    version: Version
    run_id: str
    digest: str
    flavor: str
    interface: Interface | None
    predict: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
    input_names: tuple[str, ...] = ()
    output_names: tuple[str, ...] = (DEFAULT_OUTPUT,)
    meta: dict[str, Any] = field(default_factory=dict)


def _interface_module() -> Any:
    try:
        import dmv.interface as module
    except ImportError:  # the interface module is optional for serving
        return None
    return module


class ModelServer:
    """Resolves references, loads and caches models, validates and predicts."""

    def __init__(self, project: Project, models: Sequence[str] | None = None) -> None:
        self.project = project
        #: The models this server answers for (None: every model in the registry).
        self.models = None if models is None else tuple(dict.fromkeys(models))
        self._served: dict[tuple[str, str], Served] = {}
        # (exact ref, serving run, run count) -> (run id, digest, flavor)
        self._files: dict[tuple[str, str | None, int], tuple[str, str, str]] = {}
        self._interfaces: dict[str, Interface | None] = {}
        self._lock = threading.Lock()
        #: Whether models stored in a format that can run code (pickle) may be loaded.
        self.trust_pickle = False

    # -- resolution ----------------------------------------------------------

    def check_model(self, name: str) -> None:
        if self.models is not None and name not in self.models:
            raise NotFound(
                f"this server does not serve model {name!r}",
                hint=f"it serves {', '.join(self.models) or 'nothing'}",
            )

    def resolve(self, name: str, ref: str) -> VersionInfo:
        """The version ``name@ref`` points at now."""
        self.check_model(name)
        if "@" in ref or " " in ref:
            raise InvalidInput(f"{ref!r} is not a version reference", hint="e.g. 1.1, latest")
        return self.project.show(f"{name}@{ref}")

    def interface(self, info: VersionInfo) -> Interface | None:
        """The version's interface, parsed once per fingerprint (None when it has none)."""
        if not info.interface:
            return None
        key = info.interface_fp or repr(sorted(info.interface.items()))
        if key in self._interfaces:
            return self._interfaces[key]
        module = _interface_module()
        iface = None if module is None else module.Interface.from_dict(info.interface)
        self._interfaces[key] = iface
        return iface

    # -- loading ---------------------------------------------------------------

    def _model_file(self, info: VersionInfo) -> tuple[str, str, str]:
        key = (info.version.ref, info.serving_run, info.run_count)
        found = self._files.get(key)
        if found is not None:
            return found
        runs = self.project.runs(info.version)
        if not runs:
            raise NotFound(f"{info.version} has no training run to serve")
        wanted = info.serving_run
        if wanted is None:
            with_model = [r for r in runs if any(a.kind == "model" for a in r.artifacts)]
            wanted = with_model[-1].id if with_model else runs[-1].id
        run = next((r for r in runs if r.id == wanted), None)
        art = None if run is None else next((a for a in run.artifacts if a.kind == "model"), None)
        if run is None or art is None:
            raise NotFound(f"{info.version} {wanted} logged no model to serve")
        meta = art.meta or {}
        found = (run.id, art.digest, str(meta.get("flavor", "pickle")))
        self._files[key] = found
        return found

    def served(self, info: VersionInfo) -> Served:
        """The loaded model for ``info``: cached by exact version and file digest."""
        run_id, digest, flavor = self._model_file(info)
        key = (info.version.ref, digest)
        served = self._served.get(key)
        if served is not None:
            return served
        with self._lock:  # one load per model, however many requests wait for it
            served = self._served.get(key)
            if served is None:
                served = self._load(info, run_id, digest, flavor)
                self._served[key] = served
        return served

    def _load(self, info: VersionInfo, run_id: str, digest: str, flavor: str) -> Served:
        # The flavor loads the file (its hash verified first; an unsafe format only
        # with trust_pickle) and answers rows as the interface's output dicts. Every
        # failure is a DmvError: ModelLoadError (503) or UntrustedModel (403).
        model = self.project.served_model(info.version, run_id, trust_pickle=self.trust_pickle)
        return Served(
            version=info.version,
            run_id=run_id,
            digest=digest,
            flavor=flavor,
            interface=model.interface,
            predict=model.predict_rows,
            input_names=model.spec.names if model.spec is not None else (),
            output_names=model.output_names,
            meta={"unsafe_format": model.unsafe},
        )

    # -- predicting --------------------------------------------------------------

    def validate(self, info: VersionInfo, rows: Any) -> list[dict[str, Any]]:
        """``rows`` checked against the version's interface; :class:`InvalidInput` if bad."""
        if not isinstance(rows, list):
            raise InvalidInput(
                f"'inputs' must be a list of objects, got {type(rows).__name__}",
                hint='send {"inputs": [{"field": value, ...}, ...]}',
                problems=[
                    {
                        "row": None,
                        "field": "inputs",
                        "problem": "bad_shape",
                        "message": "'inputs' must be a list of objects",
                    }
                ],
            )
        if not rows:
            raise InvalidInput("'inputs' is empty: send at least one row")
        iface = self.interface(info)
        if iface is None:
            bad = next((i for i, r in enumerate(rows) if not isinstance(r, dict)), None)
            if bad is not None:
                raise InvalidInput(f"row {bad} must be an object of field values")
            return rows
        problems = _interface_module().validate_rows(iface, rows)
        if problems:
            fields = sorted({str(p["field"]) for p in problems if p.get("field")})
            raise InvalidInput(
                f"{len(problems)} problem(s) with the inputs"
                + (f": {', '.join(fields)}" if fields else ""),
                hint="see details.problems; the interface is at GET /models/{name}/versions/{ref}",
                problems=problems,
            )
        return rows

    def predict(self, name: str, ref: str, rows: Any) -> tuple[Version, list[dict[str, Any]]]:
        """Resolve ``name@ref`` now, validate ``rows`` and predict: (exact version, outputs)."""
        return self.predict_version(self.resolve(name, ref), rows)

    def predict_version(self, info: VersionInfo, rows: Any) -> tuple[Version, list[dict[str, Any]]]:
        """Validate ``rows`` against the resolved version ``info`` and predict."""
        rows = self.validate(info, rows)
        served = self.served(info)
        try:
            outputs = served.predict(rows)
        except DmvError:
            raise
        except Exception as exc:
            message = f"{info.version} failed to predict: {type(exc).__name__}: {exc}"
            if served.interface is None:
                # Nothing checked the rows: most likely they are what is wrong.
                raise InvalidInput(
                    message, hint="this version declares no interface to validate against"
                ) from None
            raise PredictionError(message) from None
        return info.version, outputs

    # -- metadata ------------------------------------------------------------------

    def metadata(self, info: VersionInfo) -> dict[str, Any]:
        """A version as a serving client sees it: identity, state, interface, endpoints."""
        v = info.version
        base = f"/models/{v.name}/versions/{v.number}"
        return {
            "model": v.name,
            "version": v.number,
            "ref": v.ref,
            "state": info.state,
            "aliases": list(info.aliases),
            "serving_run": info.serving_run,
            "interface": info.interface,
            "interface_fp": info.interface_fp,
            "endpoints": {"predict": f"{base}/predict", "infer": f"/v2{base}/infer"},
        }

    def model_list(self) -> list[dict[str, Any]]:
        models = self.project.models()
        if self.models is not None:
            models = [m for m in models if m.name in self.models]
        return [
            {
                "name": m.name,
                "purpose": m.purpose,
                "function": m.function,
                "latest_release": m.latest_release,
                "latest_prerelease": m.latest_prerelease,
                "aliases": m.aliases,
            }
            for m in models
        ]
