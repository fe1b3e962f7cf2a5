"""``dmv serve`` fuzzed by the schemathesis CLI with ``--checks all``: zero failures.

A real ``dmv serve`` process over a real project (three served models: one
output, two named outputs, an enum and a float; a second version the scope
must keep closed; a model that cannot be loaded) is fuzzed from its own
``/openapi.json`` through every phase (examples, coverage, fuzzing, stateful)
and every check: no 5xx, every status documented, every body and header
conforming to its schema, schema-violating requests rejected, schema-valid
ones accepted, ``Allow`` on 405 and unsupported methods refused. It runs
open, and locked (with a token, and without one).

One documented allowance: the generic routes (``/models/{name}/versions/{ref}/predict``
and the v2 ``infer``) describe a body for *any* model, so a body valid for that
generic schema may still not be valid for the model a path names; for those
operations only, ``positive_data_acceptance`` also accepts 422. Each served
model's own path (``/models/iris/versions/production/predict``) carries the
model's exact schema and gets the check unchanged.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import dmv

pytest.importorskip("fastapi")
pytest.importorskip("sklearn")
pytest.importorskip("schemathesis")

from _workers.serving_models import TwoOutputs
from test_serving import IRIS, V1, V2, register
from test_serving_clients import COLORS, TWO, _colors_model
from test_serving_isolation import _start, _stop, _unloadable

REFS = ["iris@production", f"two@{V1}", f"colors@{V1}", f"broken@{V1}"]

CONFIG = """
[parameters]
"path.name" = "iris"
"path.ref" = "production"
"path.version" = "{v1}"

[[operations]]
include-path = "/models/broken/versions/{v1}/predict"
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "503"]

[[operations]]
include-path-regex = "\\\\{{"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "422"]
"""

GENERIC_ONLY = """
[[operations]]
include-path-regex = "\\\\{"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "422"]
"""

#: The model that cannot be loaded answers its documented 503 on its own path, nowhere else.
BROKEN = f"""
[[operations]]
include-path = "/models/broken/versions/{V1}/predict"
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "503"]
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dmv.Project]:
    from sklearn.datasets import load_iris
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("fuzzserve")
    p = dmv.init(root / "proj")
    x, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=300).fit(x, y)
    register(p, "iris", V1, model, IRIS)
    register(p, "iris", V2, DummyClassifier(strategy="constant", constant=2).fit(x, y), IRIS)
    p.set_alias(f"iris@{V1}", "production")
    register(p, "two", V1, TwoOutputs(model), TWO)
    register(p, "colors", V1, _colors_model(), COLORS)
    patch = pytest.MonkeyPatch()
    _unloadable(p, root, patch)
    yield p
    patch.undo()
    p.close()


def _schemathesis(
    port: int,
    tmp: Path,
    config: str,
    headers: tuple[str, ...] = (),
    schema: Path | None = None,
) -> tuple[int, str]:
    (tmp / "schemathesis.toml").write_text(config)
    base = f"http://127.0.0.1:{port}"
    args = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(tmp / "schemathesis.toml"),
        "run",
        *([str(schema), "--url", base] if schema else [f"{base}/openapi.json"]),
        "--checks",
        "all",
        "--max-examples",
        "15",
        "--generation-deterministic",
        "--request-timeout",
        "20",
    ]
    for header in headers:
        args += ["-H", header]
    done = subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp,
        env={**os.environ, "NO_COLOR": "1"},
    )
    return done.returncode, done.stdout + done.stderr


def _clean(code: int, out: str) -> None:
    summary = out[out.find("SUMMARY") :]
    assert code == 0 and "failures" not in summary.split("generated")[-1], out[-6000:]
    assert "Tested: 16" in summary, summary  # every operation was reached (16)
    assert " passed" in summary


@pytest.mark.slow
def test_dmv_serve_passes_every_schemathesis_check(project: dmv.Project, tmp_path: Path) -> None:
    proc, port = _start(project.root, *REFS)
    try:
        # Random names and references (mostly 404s and 422s), then the real ones.
        _clean(*_schemathesis(port, tmp_path, GENERIC_ONLY + BROKEN))
        _clean(*_schemathesis(port, tmp_path, CONFIG.format(v1=V1)))
    finally:
        _stop(proc)


@pytest.mark.slow
def test_locked_dmv_serve_passes_every_schemathesis_check(
    project: dmv.Project, tmp_path: Path
) -> None:
    from dmv import tokens

    token, _ = tokens.create_token(project.registry, "fuzz-serve", "read")
    proc, port = _start(project.root, *REFS)
    try:
        _clean(
            *_schemathesis(
                port, tmp_path, CONFIG.format(v1=V1), (f"Authorization: Bearer {token}",)
            )
        )
        # Without a token even the document is locked (401), so the second run
        # reads the document fetched with the token and expects documented 401s.
        with urllib.request.urlopen(
            urllib.request.Request(
                f"http://127.0.0.1:{port}/openapi.json",
                headers={"Authorization": f"Bearer {token}"},
            )
        ) as r:
            (tmp_path / "openapi.json").write_bytes(r.read())
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json")
        assert refused.value.code == 401
        code, out = _schemathesis(
            port, tmp_path, CONFIG.format(v1=V1), schema=tmp_path / "openapi.json"
        )
        _clean(code, out)
    finally:
        _stop(proc)
