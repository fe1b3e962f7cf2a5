"""The servability check: load a stored model in a fresh process, as a server would.

The parent writes the model file, its metadata, the stored code and the sample
rows into a temporary folder and starts ``python -P -m dmv.flavors._check DIR``
there, with nothing of the project on ``sys.path`` but the stored code. The child
loads the model through its flavor, builds the request frame from the JSON rows
and prints the served outputs as JSON; the parent compares them with what the
model answered in the training process and with the output interface.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["compare", "run_check", "write_code"]

#: How long the fresh process may take to load and predict (seconds).
TIMEOUT = 300.0


def write_code(files: Mapping[str, bytes], dest: Path) -> None:
    """Write stored code files under ``dest``, refusing paths that leave it."""
    from dmv.errors import IntegrityError

    root = dest.resolve()
    for rel, content in files.items():
        target = (root / rel).resolve()
        if rel.startswith("/") or not target.is_relative_to(root):
            raise IntegrityError(f"a stored code path leaves its folder: {rel!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def _child_env() -> dict[str, str]:
    import dmv

    # dmv itself and what the server's environment adds, never the project's folder.
    here = str(Path(dmv.__file__).resolve().parents[1])
    cwd = Path.cwd().resolve()
    extra = [
        str(Path(p).resolve())
        for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
        if p and not Path(p).resolve().is_relative_to(cwd)
    ]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([here, *extra]))
    env.pop("PYTHONSTARTUP", None)
    return env


def run_check(
    data: bytes,
    meta: Mapping[str, Any],
    code: Mapping[str, bytes],
    rows: Sequence[Mapping[str, Any]] | None,
    *,
    interface: Mapping[str, Any] | None,
    trust_pickle: bool,
) -> dict[str, Any]:
    """Load (and predict ``rows``) in a fresh process: ``{"ok", "outputs"|"error", "seconds"}``."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dmv-check-") as tmp:
        folder = Path(tmp)
        (folder / "model.bin").write_bytes(data)
        write_code(code, folder / "code")
        request = {
            "meta": dict(meta),
            "rows": list(rows) if rows is not None else None,
            "interface": interface,
            "trust_pickle": trust_pickle,
        }
        (folder / "request.json").write_text(json.dumps(request), encoding="utf-8")
        try:
            done = subprocess.run(
                [sys.executable, "-P", "-m", "dmv.flavors._check", str(folder)],
                cwd=folder,
                env=_child_env(),
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return {"ok": False, "error": f"loading took longer than {TIMEOUT:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    try:
        answer: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        answer = {
            "ok": False,
            "error": f"the process exited with {done.returncode}: " + " | ".join(tail),
        }
    answer["seconds"] = round(time.perf_counter() - started, 3)
    return answer


def compare(expected: Any, got: Any, where: str = "") -> str | None:
    """The first difference between two JSON answers (floats within tolerance), or None."""
    if isinstance(expected, float) or isinstance(got, float):
        numbers = all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in (expected, got)
        )
        if numbers and math.isclose(expected, got, rel_tol=1e-5, abs_tol=1e-7):
            return None
        return f"{where or 'value'}: {expected!r} in training, {got!r} when served"
    if isinstance(expected, dict) and isinstance(got, dict):
        if expected.keys() != got.keys():
            return f"{where or 'row'}: fields {sorted(expected)} in training, {sorted(got)} served"
        for key in expected:
            found = compare(expected[key], got[key], f"{where}.{key}" if where else key)
            if found:
                return found
        return None
    if isinstance(expected, list) and isinstance(got, list):
        if len(expected) != len(got):
            return f"{where or 'outputs'}: {len(expected)} values in training, {len(got)} served"
        for i, (a, b) in enumerate(zip(expected, got, strict=True)):
            found = compare(a, b, f"{where}[{i}]")
            if found:
                return found
        return None
    if expected != got:
        return f"{where or 'value'}: {expected!r} in training, {got!r} when served"
    return None


def _main(folder: Path) -> dict[str, Any]:
    from dmv.errors import DmvError
    from dmv.flavors import load

    request = json.loads((folder / "request.json").read_text(encoding="utf-8"))
    meta = request["meta"]
    code = folder / "code"
    for root in meta.get("code_roots") or ["."]:
        sys.path.insert(0, str((code / root).resolve()))
    iface = None
    if request.get("interface"):
        from dmv.interface import Interface

        iface = Interface.from_dict(request["interface"])
    try:
        model = load(
            (folder / "model.bin").read_bytes(),
            meta,
            what="the logged model",
            trust_pickle=bool(request.get("trust_pickle")),
            interface=iface,
        )
        rows = request.get("rows")
        if rows is None:
            return {"ok": True, "outputs": None}
        return {"ok": True, "outputs": model.predict_rows(rows)}
    except DmvError as exc:
        return {"ok": False, "error": exc.message, "hint": exc.hint}
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:500]}"}


if __name__ == "__main__":  # pragma: no cover - run as a child process
    result = _main(Path(sys.argv[1]))
    print(json.dumps(result, allow_nan=False, default=str), flush=True)


#: Sample rows recorded with a version (and predicted by every check).
SAMPLE_ROWS = 20


def check_logged(pending: Any, iface: Any) -> None:
    """The servability check of a model a run logged; raises :class:`NotServable`.

    On success the sample rows and the served answers are recorded in the model
    file's metadata, so ``dmv verify`` can ask the stored file the same again.
    """
    from dmv.flavors import NotServable
    from dmv.flavors._frame import json_rows
    from dmv.interface import validate_rows

    meta = pending.artifact.meta
    what = f"the logged model {pending.artifact.name!r}"
    sample = pending.sample_input
    rows = expected = None
    if sample is not None and hasattr(sample, "columns"):
        sample = sample.head(SAMPLE_ROWS)
        rows = json_rows(sample)
        model = pending.model
        if model is not None:
            model.interface = iface
            model.output_names = model._names(iface)
            expected = model.shape(model.columns(sample), len(sample))
    answer = run_check(
        pending.data,
        meta,
        pending.code,
        rows,
        interface=iface.to_dict() if iface is not None else None,
        trust_pickle=pending.trust_pickle,
    )
    if not answer.get("ok"):
        raise NotServable(
            f"{what} cannot be served: {answer.get('error')}",
            hint=answer.get("hint")
            or "a server loads it in a fresh process with only the stored code",
        )
    got = answer.get("outputs")
    if got is not None:
        if expected is not None:
            diff = compare(expected, got)
            if diff:
                raise NotServable(
                    f"{what} answers differently when served than in training: {diff}",
                    hint="the model depends on something the request frame does not carry; "
                    "log it with sample_input= the frame it was trained on",
                )
        if iface is not None:
            problems = validate_rows(iface, got, side="output")
            if problems:
                raise NotServable(
                    f"what {what} serves does not conform to its output interface: "
                    f"{problems[0]['message']}",
                    hint="choose the served outputs with outputs= (e.g. 'label', 'proba') "
                    "and let dmv infer them, or declare the interface they match",
                )
        meta["sample"] = {"inputs": rows, "outputs": got}
    meta["check"] = {"seconds": answer.get("seconds")}
