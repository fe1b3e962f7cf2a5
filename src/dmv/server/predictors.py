"""Model serving: predict by version reference, validated against the interface.

A reference is resolved on every request, from memory re-checked against the
registry at most every ``serve_refresh`` seconds (:mod:`dmv.server.resolver`), so
moving an alias, releasing a compatible version or deprecating one is served
within that bound, without a restart and without a registry round trip per request.
Everything expensive is cached by what cannot change: loaded models by exact
version and artifact digest, row validators by interface fingerprint. A model
file is read by its flavor (:mod:`dmv.flavors`) only after the artifact store has
checked its hash, and a pickled one only when the server trusts pickles.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dmv.errors import (
    Deprecated,
    DmvError,
    InvalidInput,
    ModelUnavailable,
    NotFound,
    PredictionError,
    PredictionRejected,
    TooLarge,
)
from dmv.interface import Decoder, Interface, merge_columns, validate_rows
from dmv.release.serving_run import model_artifact
from dmv.server.batching import Batcher
from dmv.server.resolver import Resolver

if TYPE_CHECKING:
    from dmv.flavors import Model
    from dmv.project import Project
    from dmv.registry import VersionInfo
    from dmv.version import Version

__all__ = [
    "DEFAULT_OUTPUT",
    "UNBATCHED_FLAVORS",
    "ModelServer",
    "Served",
]

log = logging.getLogger("dmv.server")

#: The output field's name when a version declares no interface.
DEFAULT_OUTPUT = "prediction"

#: Seconds a failed load is remembered before the next request tries again: long
#: enough that a broken model costs one attempt, not one per request; short enough
#: that installing a missing module or fixing a store heals without a restart.
RETRY_LOAD_AFTER = 30.0

#: Flavors batched only when their model's ``[models.NAME.serving]`` says so: the
#: user's own code may look at a whole request, and PyTorch's float32 kernels round
#: a row differently (~1e-7) depending on how many rows share the call.
UNBATCHED_FLAVORS = frozenset({"python", "torch"})


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
    #: The loaded model: validated columns go to its frame-free path.
    model: Model | None = None


def _check_rows(n: int, limit: int) -> None:
    if n > limit:
        raise TooLarge(
            f"{n:,} rows in one request; this server takes at most {limit:,}",
            hint="send them in several requests, or raise the setting max_rows_per_request",
        )


class ModelServer:
    """Resolves references, loads and caches models, validates and predicts.

    ``refs`` (``["price-model@production", …]``) scopes the server: it answers
    only for the versions those references point at *now* (an alias is followed
    when it moves; ``@production`` never opens another version of the model).
    Without it every model in the registry is served. Deprecated versions answer
    410 unless ``allow_deprecated`` is set and the request names the exact version.
    """

    def __init__(
        self,
        project: Project,
        refs: Sequence[str] | None = None,
        *,
        allow_deprecated: bool = False,
    ) -> None:
        self.project = project
        self.allow_deprecated = allow_deprecated
        #: model name -> the reference texts served for it (None: every model, any ref).
        self.scope: dict[str, tuple[str, ...]] | None = None
        if refs is not None:
            scope: dict[str, list[str]] = {}
            for text in refs:
                name, _, ref = text.partition("@")
                scope.setdefault(name, [])
                if (ref or "latest") not in scope[name]:
                    scope[name].append(ref or "latest")
            self.scope = {name: tuple(r) for name, r in scope.items()}
        self._served: dict[tuple[str, str], Served] = {}
        # (exact ref, digest) -> (when it failed, the error every request gets meanwhile)
        self._failed: dict[tuple[str, str], tuple[float, ModelUnavailable]] = {}
        # (exact ref, serving run, run count) -> (run id, digest, flavor)
        self._files: dict[tuple[str, str | None, int], tuple[str, str, str]] = {}
        self._interfaces: dict[str, Interface | None] = {}
        self._decoders: dict[str, Decoder] = {}
        # (exact ref, digest) -> the batcher of that served model, on the running loop
        self._batchers: dict[tuple[str, str], Batcher | None] = {}
        self._lock = threading.Lock()
        #: name@ref -> version, from memory at most ``serve_refresh`` seconds old.
        self.resolver = Resolver(lambda: project.registry, project.config["serve_refresh"])
        #: Whether models stored in a format that can run code (pickle) may be loaded.
        self.trust_pickle = False

    @property
    def models(self) -> tuple[str, ...] | None:
        """The models this server answers for (None: every model in the registry)."""
        return None if self.scope is None else tuple(self.scope)

    def default_ref(self, name: str) -> str:
        """The reference a route without a version means (v2 ``/models/{name}/infer``)."""
        if self.scope is not None and name in self.scope:
            return self.scope[name][0]
        return "latest"

    # -- resolution ----------------------------------------------------------

    def check_model(self, name: str) -> None:
        if self.scope is not None and name not in self.scope:
            raise NotFound(
                f"this server does not serve model {name!r}",
                hint=f"it serves {', '.join(self.scope) or 'nothing'}",
            )

    def resolve(self, name: str, ref: str) -> VersionInfo:
        """The version ``name@ref`` points at now, if this server serves it."""
        self.check_model(name)
        if "@" in ref or " " in ref:
            raise InvalidInput(f"{ref!r} is not a version reference", hint="e.g. 1.1, latest")
        info = self.resolver.show(name, ref)
        if self.scope is not None and ref not in self.scope[name]:
            self._check_scope(name, ref, info)
        if info.state == "deprecated":
            exact = ref == info.version.number
            if not (self.allow_deprecated and exact):
                raise Deprecated(
                    f"{info.version} is deprecated and not served",
                    hint=f"serve a current version; to serve this one anyway, start the server "
                    f"with --allow-deprecated and ask for the exact version "
                    f"{info.version.number}"
                    if not self.allow_deprecated
                    else f"ask for the exact version {info.version.number}",
                )
        return info

    def _check_scope(self, name: str, ref: str, info: VersionInfo) -> None:
        """Refuse a version none of the served references points at now."""
        assert self.scope is not None
        now = []
        for served in self.scope[name]:
            try:
                target = self.resolver.show(name, served).version
            except NotFound:
                continue
            if target == info.version:
                return
            now.append(f"{name}@{served} → {target.number}")
        raise NotFound(
            f"this server does not serve {name}@{ref} ({info.version.number})",
            hint=f"it serves {', '.join(now) or 'no version of ' + name + ' right now'}",
        )

    def interface(self, info: VersionInfo) -> Interface | None:
        """The version's interface, parsed once per fingerprint (None when it has none)."""
        if not info.interface:
            return None
        key = info.interface_fp or repr(sorted(info.interface.items()))
        if key in self._interfaces:
            return self._interfaces[key]
        iface = Interface.from_dict(info.interface)
        self._interfaces[key] = iface
        return iface

    def decoder(self, info: VersionInfo, iface: Interface) -> Decoder:
        """The interface's inputs compiled into a validating decoder, once per fingerprint."""
        key = info.interface_fp or repr(sorted((info.interface or {}).items()))
        found = self._decoders.get(key)
        if found is None:
            found = self._decoders[key] = Decoder(iface.inputs)
        return found

    # -- loading ---------------------------------------------------------------

    def _model_file(self, info: VersionInfo) -> tuple[str, str, str]:
        key = (info.version.ref, info.serving_run, info.run_count)
        found = self._files.get(key)
        if found is not None:
            return found
        run, art = model_artifact(self.project.registry, info, None)
        meta = art.meta or {}
        found = (run.id, art.digest, str(meta.get("flavor", "pickle")))
        self._files[key] = found
        return found

    def served(self, info: VersionInfo) -> Served:
        """The loaded model for ``info``: cached by exact version and file digest.

        A model that cannot be loaded raises :class:`ModelUnavailable` (503) for
        this version only; the failure is remembered for ``RETRY_LOAD_AFTER``
        seconds so that a broken model is not re-read on every request.
        """
        run_id, digest, flavor = self._model_file(info)
        key = (info.version.ref, digest)
        served = self._served.get(key)
        if served is not None:
            return served
        with self._lock:  # one load per model, however many requests wait for it
            served = self._served.get(key)
            if served is None:
                failed = self._failed.get(key)
                if failed is not None and time.monotonic() - failed[0] < RETRY_LOAD_AFTER:
                    raise failed[1]
                served = self._load_isolated(info, run_id, digest, flavor)
                self._served[key] = served
                self._failed.pop(key, None)
        return served

    def _load_isolated(self, info: VersionInfo, run_id: str, digest: str, flavor: str) -> Served:
        """:meth:`_load`, with any failure turned into this version's 503."""
        key = (info.version.ref, digest)
        try:
            return self._load(info, run_id, digest, flavor)
        except Exception as exc:
            if isinstance(exc, DmvError):
                reason, cause = exc.message, exc.code
                hint = exc.hint
            else:
                reason, cause = f"{type(exc).__name__}: {exc}", "load_failed"
                hint = None
            error = ModelUnavailable(
                f"{info.version} ({run_id}) cannot be served: {reason}",
                hint=hint
                or "fix the model (or its environment) and log it again; other "
                "models on this server are not affected",
                cause=cause,
            )
            log.warning("%s", error.message)
            self._failed[key] = (time.monotonic(), error)
            raise error from None

    def load_error(self, info: VersionInfo) -> ModelUnavailable | None:
        """Why ``info`` cannot be served (loading it if needed); None when it can."""
        try:
            self.served(info)
        except ModelUnavailable as exc:
            return exc
        return None

    def _load(self, info: VersionInfo, run_id: str, digest: str, flavor: str) -> Served:
        # The flavor loads the file (its hash verified first; an unsafe format only
        # with trust_pickle) and answers rows as the interface's output dicts. Every
        # failure is a DmvError: ModelUnavailable (503) or UntrustedModel (403).
        # [signing] require_signed: a version not signed by a trusted key is never loaded.
        self.project.require_signature(info.version)
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
            model=model,
        )

    # -- predicting --------------------------------------------------------------

    def validate(self, info: VersionInfo, rows: Any) -> list[dict[str, Any]]:
        """``rows`` checked against the version's interface; :class:`InvalidInput` if bad."""
        self.decode(info, rows)
        return rows  # type: ignore[no-any-return]

    def decode(self, info: VersionInfo, rows: Any) -> dict[str, list[Any]] | None:
        """Validate ``rows`` (:class:`InvalidInput` if bad) and answer them as typed columns.

        None when the version has no interface, or when the rows are valid but not
        plain JSON values (a Python caller's numpy scalar): those take the frame path.
        """
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
            raise InvalidInput(
                "'inputs' is empty: send at least one row",
                hint="send {'inputs': [{field: value, ...}]} with at least one row",
            )
        _check_rows(len(rows), self.project.config["max_rows_per_request"])
        iface = self.interface(info)
        if iface is None:
            bad = next((i for i, r in enumerate(rows) if not isinstance(r, dict)), None)
            if bad is not None:
                raise InvalidInput(
                    f"row {bad} must be an object of field values",
                    hint="send each row as {field: value, ...}",
                )
            return None
        # The compiled decoder accepts plainly valid rows in one pass; anything else
        # goes to the full validator, whose problems are the precise answer.
        columns = self.decoder(info, iface).columns(rows)
        if columns is not None:
            return columns
        problems = validate_rows(iface, rows)
        if problems:
            fields = sorted({str(p["field"]) for p in problems if p.get("field")})
            raise InvalidInput(
                f"{len(problems)} problem(s) with the inputs"
                + (f": {', '.join(fields)}" if fields else ""),
                hint="see details.problems; the interface is at GET /models/{name}/versions/{ref}",
                problems=problems,
            )
        return None

    def predict(self, name: str, ref: str, rows: Any) -> tuple[Version, list[dict[str, Any]]]:
        """Resolve ``name@ref`` now, validate ``rows`` and predict: (exact version, outputs)."""
        return self.predict_version(self.resolve(name, ref), rows)

    def predict_version(self, info: VersionInfo, rows: Any) -> tuple[Version, list[dict[str, Any]]]:
        """Validate ``rows`` against the resolved version ``info`` and predict."""
        columns = self.decode(info, rows)
        served = self.served(info)
        return info.version, self._call(served, info, rows, columns)

    async def predict_async(
        self, name: str, ref: str, rows: Any
    ) -> tuple[Version, list[dict[str, Any]]]:
        """:meth:`predict`, batched with concurrent requests for the same version."""
        return await self.predict_version_async(self.resolve(name, ref), rows)

    async def predict_version_async(
        self, info: VersionInfo, rows: Any
    ) -> tuple[Version, list[dict[str, Any]]]:
        """:meth:`predict_version`, batched with concurrent requests for the same version."""
        columns = self.decode(info, rows)
        served = self.served(info)
        batcher = self._batcher(served, info)
        if batcher is None:
            return info.version, self._call(served, info, rows, columns)
        outputs = await batcher.submit((rows, columns), len(rows))
        return info.version, outputs

    def _batcher(self, served: Served, info: VersionInfo) -> Batcher | None:
        """The served model's batcher on the running loop (None: not batched)."""
        import asyncio

        key = (served.version.ref, served.digest)
        batcher = self._batchers.get(key, False)
        if batcher is None:
            return None
        loop = asyncio.get_running_loop()
        if batcher is False or batcher.loop is not loop:  # type: ignore[union-attr]
            settings = self.project.config.serving.get(served.version.name)
            on = settings.batching if settings is not None else None
            if on is None:
                on = served.flavor not in UNBATCHED_FLAVORS
            if not on:
                self._batchers[key] = None
                return None

            def run(parts: list[Any]) -> list[Any]:
                return self._predict_parts(served, info, parts)

            batcher = Batcher(
                run,
                max_rows=settings.max_batch_size if settings else 64,
                max_wait_us=settings.max_batch_wait_us if settings else 0,
            )
            self._batchers[key] = batcher
        return batcher  # type: ignore[return-value]

    def _predict_parts(
        self, served: Served, info: VersionInfo, parts: list[Any]
    ) -> list[list[dict[str, Any]] | Exception]:
        """Each request's outputs from one model call; its own error where one fails."""
        if len(parts) > 1:
            sizes = [len(rows) for rows, _ in parts]
            try:
                if served.model is not None and all(c is not None for _, c in parts):
                    merged = merge_columns([c for _, c in parts])
                    outputs = served.model.predict_columns(merged, sum(sizes))
                else:
                    outputs = served.predict([r for rows, _ in parts for r in rows])
            except Exception:  # each request is asked alone below, for its own error
                pass
            else:
                if len(outputs) == sum(sizes):
                    out: list[list[dict[str, Any]] | Exception] = []
                    start = 0
                    for size in sizes:
                        out.append(outputs[start : start + size])
                        start += size
                    return out
        found: list[list[dict[str, Any]] | Exception] = []
        for rows, columns in parts:
            try:
                found.append(self._call(served, info, rows, columns))
            except DmvError as exc:
                found.append(exc)
        return found

    def _call(
        self,
        served: Served,
        info: VersionInfo,
        rows: list[dict[str, Any]],
        columns: dict[str, list[Any]] | None,
    ) -> list[dict[str, Any]]:
        """One request's outputs; the model's own failure as the version's error."""
        try:
            if columns is not None and served.model is not None:
                return served.model.predict_columns(columns, len(rows))
            return served.predict(rows)
        except DmvError:
            raise
        except Exception as exc:
            # The user's model raised: its message is the answer, never "a bug in dmv".
            message = f"{info.version} failed to predict: {type(exc).__name__}: {exc}"
            if served.interface is None:
                # Nothing checked the rows: most likely they are what is wrong.
                raise PredictionRejected(
                    message, hint="this version declares no interface to validate against"
                ) from None
            raise PredictionError(
                message,
                hint="the rows match the version's interface, so the model (or the interface "
                "it was logged with) needs fixing",
            ) from None

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

    def served_versions(self, name: str) -> list[str]:
        """The exact versions of ``name`` this server answers for now, newest first."""
        self.check_model(name)
        if self.scope is None:
            infos = self.project.versions(name)
            keep = [i for i in infos if self.allow_deprecated or i.state != "deprecated"]
            return [i.version.number for i in reversed(keep)]
        numbers: list[str] = []
        for ref in self.scope[name]:
            try:
                number = self.resolver.show(name, ref).version.number
            except NotFound:
                continue
            if number not in numbers:
                numbers.append(number)
        return numbers

    def model_list(self) -> list[dict[str, Any]]:
        models = self.project.models()
        if self.scope is not None:
            models = [m for m in models if m.name in self.scope]
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
