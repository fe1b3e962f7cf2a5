"""Training and experiment runs: what training code logs while it runs.

A :class:`Run` collects parameters, metrics, model files and artifacts in
memory (file contents go straight to the content-addressed store, which is
harmless if the run fails). Nothing reaches the registry until the run's block
ends without an exception; then the version, the run and its artifacts are
registered in one transaction. A failing block is recorded as a failed run
that belongs to no version.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dmv import flavors
from dmv.errors import InvalidInput
from dmv.limits import check_artifact_name, check_artifact_path
from dmv.logic.fingerprint import code_files
from dmv.registry.records import NewArtifact
from dmv.training.registration import deriver, interface_of, known_versions

if TYPE_CHECKING:
    from dmv.artifacts import ArtifactStore
    from dmv.registry.records import RunInfo
    from dmv.version import Version

__all__ = ["DEFAULT_SPLIT_KEY", "Run", "deriver", "interface_of", "known_versions", "to_jsonable"]


#: The metrics key for values logged without a split.
DEFAULT_SPLIT_KEY = "all"

#: The most metric values with a step one run keeps (a bound on what a run registers).
MAX_HISTORY = 1_000_000


def to_jsonable(value: Any, where: str = "value") -> Any:
    """``value`` as plain JSON data (numpy scalars and arrays, tuples, paths allowed)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(
                f"{where} is {value}: only finite numbers can be stored",
                hint="log only finite numbers: leave out NaN and infinite values",
            )
        return value
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    # numpy scalars and arrays, without importing numpy
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        return to_jsonable(value.item(), where)
    if hasattr(value, "tolist"):
        return to_jsonable(value.tolist(), where)
    raise InvalidInput(
        f"{where} of type {type(value).__name__} cannot be stored",
        hint="use numbers, strings, booleans, lists or dicts",
    )


def _metric(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"metric {name!r} must be a number, got {value!r}",
            hint="log metrics as numbers, e.g. run.log_metrics({'rmse': 0.42})",
        ) from None
    if not math.isfinite(number):
        raise InvalidInput(
            f"metric {name!r} is {number}: only finite numbers can be stored",
            hint="log only finite metrics: leave out NaN and infinite values",
        )
    return number


def _import_roots(root: Path, files: list[str]) -> list[str]:
    """The folders (from the project root) the code files are imported from: ``.`` and ``src``."""
    import sys

    roots = ["."]
    resolved = root.resolve()
    for entry in sys.path:
        try:
            rel = Path(entry or ".").resolve().relative_to(resolved).as_posix()
        except ValueError:
            continue
        if rel != "." and any(f.startswith(rel + "/") for f in files) and rel not in roots:
            roots.append(rel)
    if "src" not in roots and any(f.startswith("src/") for f in files):
        roots.append("src")
    return roots


@dataclass
class PendingCheck:
    """A logged model waiting for its servability check (see :mod:`dmv.flavors.check`)."""

    artifact: NewArtifact
    data: bytes
    code: dict[str, bytes]
    model: Any
    sample_input: Any
    trust_pickle: bool


class Run:
    """One run in progress; use it inside ``with project.run(...) as run:``."""

    def __init__(
        self,
        *,
        model: str,
        kind: str,
        store: ArtifactStore,
        root: Path | None = None,
        trust_pickle: bool = False,
        read_part: Callable[[str, str, int | None], Any] | None = None,
        version: Version | None = None,
        data: str | None = None,
        split: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.kind = kind
        self.version = version
        self.data = data
        self.split = split
        self.params: dict[str, Any] = {}
        self.metrics: dict[str, dict[str, float]] = {}
        #: ``(split, name, step, value, logged_at)`` of each value logged with a step.
        self.history: list[tuple[str, str, int, float, float]] = []
        #: Streamed reads (``format="batches"``): each proven before the run registers.
        self.streams: list[Any] = []
        self.artifacts: list[NewArtifact] = []
        self.id: str | None = None
        self.status = "running"
        self.info: RunInfo | None = None
        self.started_at = time.time()
        self.model_object: Any = None
        self.sample_input: Any = None
        #: The split parts this run read (``run.dataset``), for its lineage.
        self.parts_read: list[str] = []
        self.sample_output: Any = None
        #: Models logged by this run, checked in a fresh process when the run ends.
        self.pending_checks: list[PendingCheck] = []
        #: Code files the logged models need (paths from the project root).
        self.model_code: list[str] = []
        self._store = store
        self._root = root
        self._trust_pickle = trust_pickle
        #: ``(part, format, batch_size)``: a part of the split this run trains on.
        self._read_part = read_part
        if params:
            self.log_params(params)

    def __repr__(self) -> str:
        where = self.version or f"{self.model} (version pending)"
        return f"<Run {self.id or self.status} of {where}>"

    def log_params(self, params: Mapping[str, Any] | None = None, **more: Any) -> None:
        """Record hyperparameters (JSON-able values; they count toward the logic version)."""
        for key, value in {**(params or {}), **more}.items():
            if not isinstance(key, str) or not key:
                raise InvalidInput(
                    f"parameter name {key!r} must be a non-empty string",
                    hint="name each parameter with non-empty text",
                )
            self.params[key] = to_jsonable(value, f"parameter {key!r}")

    def log_metrics(self, metrics: Mapping[str, Any], split: str | None = None) -> None:
        """Record evaluation metrics, per split (``train``, ``valid``, ``test``…) if given."""
        key = split or DEFAULT_SPLIT_KEY
        bucket = self.metrics.setdefault(key, {})
        for name, value in metrics.items():
            bucket[str(name)] = _metric(str(name), value)

    def log_metric(
        self, name: str, value: Any, split: str | None = None, *, step: int | None = None
    ) -> None:
        """Record one metric; with ``step`` (an epoch, an iteration) every value is kept.

        The run's metrics hold the last value; the values logged with a step are its
        history (a learning curve: ``dmv runs REF --json``, the web UI, MLflow export).
        """
        number = _metric(str(name), value)
        key = split or DEFAULT_SPLIT_KEY
        if step is not None:
            if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step < 1 << 62:
                raise InvalidInput(
                    f"step of metric {name!r} must be a whole number ≥ 0, got {step!r}",
                    hint="pass the epoch or iteration, e.g. run.log_metric('loss', l, step=3)",
                )
            if len(self.history) >= MAX_HISTORY:
                raise InvalidInput(
                    f"a run keeps at most {MAX_HISTORY} metric values with a step",
                    hint="log every k-th step, or fewer metrics per step",
                )
            self.history.append((key, str(name), int(step), number, time.time()))
        self.metrics.setdefault(key, {})[str(name)] = number

    def log_model(
        self,
        model: Any,
        *,
        name: str = "model",
        sample_input: Any = None,
        sample_output: Any = None,
        format: str | None = None,
        outputs: str | Sequence[str] | None = None,
        method: str | None = None,
        code: Sequence[str | os.PathLike[str]] | None = None,
        trust_pickle: bool | None = None,
    ) -> NewArtifact:
        """Store the trained model in its flavor's own format (see :mod:`dmv.flavors`).

        scikit-learn (skops), LightGBM, XGBoost, PyTorch (TorchScript) and ONNX
        models load without running code; any other object with ``predict`` is
        pickled, which the project must trust (``trust = ["pickle"]`` in
        ``dmv.toml``, or ``trust_pickle=True``), with the modules its class needs
        in ``code`` (stored with the version and counted in its logic, Z).
        ``outputs`` chooses what is served (``"label"``, ``"proba"``, both, or an
        ONNX model's output names; ``method="predict_proba"`` is ``"proba"``).
        ``sample_input`` (a frame the model accepts) gives the interface, and the
        servability check predicts it in a fresh process when the run ends.
        """

        if format not in (None, "pickle", "onnx"):
            raise InvalidInput(f"unknown model format {format!r}", hint="use 'pickle' or 'onnx'")
        if any(a.kind == "model" and a.name == name for a in self.artifacts):
            raise InvalidInput(
                f"this run already logged a model named {name!r}",
                hint="give each model of a run its own name=, e.g. name='model-b'",
            )
        kinds = flavors.output_kinds(outputs, method)
        trust = self._trusts_pickle() if trust_pickle is None else bool(trust_pickle)
        flavor = flavors.pick_flavor(model, format)
        save = flavor.save_with_code if code else flavor.save
        try:
            data, extra = save(model, trust_pickle=trust)
        except InvalidInput:
            if flavor.name != "sklearn" or not trust:
                raise
            flavor = flavors.pick_flavor(model, "pickle")
            data, extra = flavor.save(model, trust_pickle=trust)
        cls = type(model)
        meta: dict[str, Any] = {
            "class": f"{cls.__module__}.{cls.__qualname__}",
            **extra,
            "flavor": flavor.name,
            "format": extra.get("format", flavor.format),  # a flavor may store another
            "unsafe": bool(extra.get("unsafe", flavor.unsafe)),
        }
        files = self._model_code(code, meta) if code else {}
        native = flavors.native_of(flavor, model, data)
        loaded = None
        if native is not None:
            if kinds is None and flavor.name == "onnx":  # every output it has
                kinds = flavor.kinds(native, meta)
            loaded = flavors.Model(flavor, native, {**meta, "outputs": kinds or ()})
            classes = flavor.classes(native) if "proba" in loaded.kinds else None
            if classes is not None and "classes" not in meta:
                meta["classes"] = classes
                loaded.meta["classes"] = classes
                loaded.use_interface(None)  # key the probabilities by these classes
            meta["outputs"] = list(loaded.kinds)
            meta["output_names"] = list(loaded.output_names)
        elif kinds:
            meta["outputs"] = list(kinds)

        spec = flavors.spec_from_frame(sample_input)
        if spec is not None:
            meta["frame"] = spec.to_list()
            if loaded is not None:
                loaded.spec = spec
        blob = self._store.put_bytes(data)
        artifact = NewArtifact(
            name=name, kind="model", digest=blob.digest, size=blob.size, meta=meta
        )
        self.artifacts.append(artifact)
        self.model_object = loaded
        self.sample_input = sample_input
        self.sample_output = sample_output
        self.pending_checks.append(PendingCheck(artifact, data, files, loaded, sample_input, trust))
        return artifact

    def _trusts_pickle(self) -> bool:
        return self._trust_pickle

    def _model_code(
        self, code: Sequence[str | os.PathLike[str]], meta: dict[str, Any]
    ) -> dict[str, bytes]:
        """Store the model's code files; their paths (from the project root) go in ``meta``."""

        if self._root is None:
            raise InvalidInput(
                "code= needs a project to resolve its paths against",
                hint="log code inside a project.run(...) block",
            )
        root = self._root
        found = code_files([os.fspath(p) for p in code], root)
        files: dict[str, bytes] = {}
        stored: dict[str, list[Any]] = {}
        for rel in found:
            content = (root / rel).read_bytes()
            blob = self._store.put_bytes(content)
            files[rel] = content
            stored[rel] = [blob.digest, blob.size]
            art = NewArtifact(f"code/{rel}", "code", blob.digest, blob.size)
            if not any(a.name == art.name for a in self.artifacts):
                self.artifacts.append(art)
        meta["code"] = stored
        meta["code_roots"] = _import_roots(root, list(found))
        self.model_code.extend(p for p in found if p not in self.model_code)
        return files

    def log_artifact(
        self, path: str | os.PathLike[str], name: str | None = None
    ) -> list[NewArtifact]:
        """Store a file, or every file under a folder, with the run."""
        root = Path(path)
        if not root.exists():
            raise InvalidInput(
                f"artifact path {os.fspath(path)!r} does not exist",
                hint="check the path; it is relative to the folder you run from",
            )
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        base = check_artifact_name(name) if name is not None else root.name
        rels = [base if f == root else f"{base}/{f.relative_to(root).as_posix()}" for f in files]
        for rel in rels:  # every name is checked before anything is stored
            check_artifact_path(rel)
        added = []
        for file, rel in zip(files, rels, strict=True):
            if any(a.name == rel for a in self.artifacts):
                raise InvalidInput(
                    f"this run already has an artifact named {rel!r}",
                    hint="give each artifact its own name=, or log it once",
                )
            blob = self._store.put_file(file)
            artifact = NewArtifact(rel, "file", blob.digest, blob.size)
            self.artifacts.append(artifact)
            added.append(artifact)
        return added

    def dataset(
        self, part: str = "train", *, format: str = "pandas", batch_size: int | None = None
    ) -> Any:
        """A part (``train``, ``valid``, ``test``…) of the stored split this run trains on.

        ``format="pandas"`` (default) or ``"arrow"`` reads the whole part, proven intact
        first. ``format="batches"`` streams it: an iterable of Arrow record batches of
        ``batch_size`` rows, the part's fingerprint accumulated as the rows arrive; the
        last batch is handed over only once the whole part matched, and a part not read
        to the end is proven in the engine before the run registers. ``.torch()`` on it
        gives a PyTorch ``IterableDataset``.
        """
        if self._read_part is None or self.data is None or self.split is None:
            raise InvalidInput(
                "this run names no stored split",
                hint="pass data='DATA.SPLIT' to project.run or project.experiment",
            )
        if format != "batches" and batch_size is not None:
            raise InvalidInput(
                "batch_size= goes with format='batches'",
                hint="run.dataset(part, format='batches', batch_size=10_000)",
            )
        if part not in self.parts_read:
            self.parts_read.append(part)
        if format == "batches":
            stream = self._read_part(part, format, batch_size)
            self.streams.append(stream)
            return stream
        return self._read_part(part, format, None)

    def add_artifact(self, artifact: NewArtifact) -> None:
        """Attach a blob already in the store (used by dmv itself, e.g. for code patches)."""
        self.artifacts.append(artifact)
