"""Serving isolates failures and answers only for what it was asked to serve.

A model that cannot be loaded answers 503 for itself only; a model that raises
is a ``prediction_error`` with its own message; ``dmv serve REF…`` serves exactly
what its references point at (an alias is followed when it moves); deprecated
versions answer 410 unless the server allows them and the exact version is
asked for. The keep-alive test drives one real HTTP connection against a real
``dmv serve`` process.
"""

from __future__ import annotations

import http.client
import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import dmv

pytest.importorskip("fastapi")
pytest.importorskip("sklearn")

from fastapi.testclient import TestClient

from _workers.serving_models import Picky
from dmv.server import create_app
from test_serving import IRIS, ROW, ROW2, V1, V2, _free_port, register

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"


def _unloadable(
    project: dmv.Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str = "broken"
) -> None:
    """Log a model whose code needs a library that is gone by the time it is served.

    The model's own code (``needs_gone.py``) is stored with it; the library it
    imports (``wrappers_gone``) is installed when the model is logged, so the
    servability check passes, and removed before the model is served.
    """
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "wrappers_gone.py").write_text("SCALE = 0\n")
    paths = [str(lib), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))
    monkeypatch.syspath_prepend(str(lib))
    monkeypatch.syspath_prepend(str(project.root))
    (project.root / "needs_gone.py").write_text(
        "import wrappers_gone\n\n\nclass Proba:\n    def predict(self, x):\n"
        "        return [wrappers_gone.SCALE] * len(x)\n"
    )
    try:
        module = importlib.import_module("needs_gone")
        register_python(project, name, module.Proba(), code=["needs_gone.py"])
    finally:
        for gone in ("needs_gone", "wrappers_gone"):
            sys.modules.pop(gone, None)
        (lib / "wrappers_gone.py").unlink()
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths[1:]))
        importlib.invalidate_caches()


def register_python(project: dmv.Project, name: str, model: Any, *, code: list[str]) -> None:
    from dmv.interface import Interface

    iface = Interface.from_dict(IRIS)
    project.registry.create_version(
        dmv.Version.parse_number(name, V1),
        interface=iface.to_dict(),
        interface_fp=iface.fingerprint,
    )
    with project.run(name, version=V1) as run:
        run.log_model(model, code=code, trust_pickle=True)


@pytest.fixture
def mixed(
    project: dmv.Project, small_model: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dmv.Project:
    """iris (good, @production), broken (cannot be loaded), picky (raises on some rows)."""
    register(project, "iris", V1, small_model, IRIS)
    project.set_alias(f"iris@{V1}", "production")
    _unloadable(project, tmp_path, monkeypatch)
    register(project, "picky", V1, Picky(), IRIS)
    return project


def test_a_model_that_cannot_load_answers_503_for_itself_only(mixed: dmv.Project) -> None:
    client = TestClient(create_app(mixed, trust_pickle=True), raise_server_exceptions=False)
    r = client.post(f"/models/broken/versions/{V1}/predict", json={"inputs": [ROW]})
    assert r.status_code == 503, r.text
    error = r.json()["error"]
    assert error["code"] == "model_unavailable" and error["details"]["cause"] == "model_unavailable"
    assert "wrappers_gone" in error["message"] and "broken 0.0.1-0123.abcd" in error["message"]
    assert "bug in dmv" not in r.text
    # The failure is remembered (no reload per request) and stays this model's own.
    again = client.post(f"/models/broken/versions/{V1}/predict", json={"inputs": [ROW]})
    assert again.status_code == 503 and again.json() == r.json()
    ok = client.post("/models/iris/versions/production/predict", json={"inputs": [ROW]})
    assert ok.status_code == 200 and ok.json()["outputs"] == [{"species": 0}]
    # OIP: the broken model is not ready (503, KServe's convention), the server and iris are.
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2/models/iris/ready").status_code == 404  # nothing released: latest
    assert client.get(f"/v2/models/iris/versions/{V1}/ready").status_code == 200
    nr = client.get(f"/v2/models/broken/versions/{V1}/ready")
    assert nr.status_code == 503 and "wrappers_gone" in nr.json()["error"]


def test_a_model_that_raises_is_a_prediction_error_with_its_message(mixed: dmv.Project) -> None:
    client = TestClient(create_app(mixed, trust_pickle=True), raise_server_exceptions=False)
    url = f"/models/picky/versions/{V1}/predict"
    assert client.post(url, json={"inputs": [ROW]}).json()["outputs"] == [{"species": 1}]
    r = client.post(url, json={"inputs": [ROW, ROW | {"petal_width": -1.0}]})
    assert r.status_code == 500, r.text
    error = r.json()["error"]
    assert error["code"] == "prediction_error"
    assert "petal_width must not be negative for this model" in error["message"]
    assert "bug in dmv" not in r.text and "model" in error["hint"]
    v2 = client.post(
        f"/v2/models/picky/versions/{V1}/infer",
        json={
            "inputs": [
                {"name": k, "shape": [1], "datatype": "FP64", "data": [-1.0 if k == "petal_width"
                 else v]} for k, v in ROW.items()
            ]
        },
    )  # fmt: skip
    assert v2.status_code == 500 and "must not be negative" in v2.json()["error"]


def test_serve_answers_only_for_what_its_refs_point_at(served_two: dmv.Project) -> None:
    client = TestClient(create_app(served_two, serve_refs=["iris@production"]))

    def status(ref: str) -> int:
        return client.post(
            f"/models/iris/versions/{ref}/predict", json={"inputs": [ROW]}
        ).status_code

    # production -> 0.0.1: the exact version and any ref resolving to it are served.
    assert [status(r) for r in ("production", V1, "0.0.1")] == [200, 200, 200]
    r = client.post(f"/models/iris/versions/{V2}/predict", json={"inputs": [ROW]})
    assert r.status_code == 404 and "does not serve iris@0.0.2-0123.abcd" in r.text
    assert f"iris@production → {V1}" in r.json()["error"]["hint"]
    assert status("0.0") == 404 and status("staging") == 404
    assert client.get(f"/models/iris/versions/{V2}").status_code == 404
    assert client.get(f"/v2/models/iris/versions/{V2}").status_code == 404
    meta = client.get("/v2/models/iris").json()
    assert meta["versions"] == [V1]
    # The alias moves: the server follows it, and the old version is closed.
    served_two.set_alias(f"iris@{V2}", "production")
    assert [status("production"), status(V2), status(V1)] == [200, 200, 404]
    assert client.get("/v2/models/iris").json()["versions"] == [V2]


@pytest.fixture
def served_two(project: dmv.Project, small_model: Any) -> dmv.Project:
    from sklearn.datasets import load_iris
    from sklearn.dummy import DummyClassifier

    x, y = load_iris(return_X_y=True)
    register(project, "iris", V1, small_model, IRIS)
    register(project, "iris", V2, DummyClassifier(strategy="constant", constant=2).fit(x, y), IRIS)
    project.set_alias(f"iris@{V1}", "production")
    project.set_alias(f"iris@{V2}", "staging")
    return project


def test_deprecated_versions_answer_410_unless_allowed_by_exact_version(
    served_two: dmv.Project,
) -> None:
    served_two.remove_alias("iris", "staging")
    served_two.deprecate(f"iris@{V2}", reason="leaks")
    url = f"/models/iris/versions/{V2}/predict"
    client = TestClient(create_app(served_two))
    r = client.post(url, json={"inputs": [ROW]})
    assert r.status_code == 410 and r.json()["error"]["code"] == "deprecated"
    assert "--allow-deprecated" in r.json()["error"]["hint"]
    assert client.get(f"/v2/models/iris/versions/{V2}").status_code == 410
    # Other references skip a deprecated version: 0.0 is 0.0.1 now.
    ok = client.post("/models/iris/versions/0.0/predict", json={"inputs": [ROW]})
    assert ok.status_code == 200 and ok.headers["X-Model-Version"] == V1
    assert client.get("/v2/models/iris/versions/0.0").json()["versions"] == [V1]
    allowing = TestClient(create_app(served_two, allow_deprecated=True))
    r = allowing.post(url, json={"inputs": [ROW]})
    assert r.status_code == 200 and r.json()["outputs"] == [{"species": 2}]
    scoped = TestClient(create_app(served_two, serve_refs=[f"iris@{V2}"], allow_deprecated=True))
    assert scoped.post(url, json={"inputs": [ROW]}).status_code == 200


def _dmv(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)])}
    return subprocess.run(
        [sys.executable, "-m", "dmv", "-C", str(root), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_serve_refuses_refs_that_point_at_nothing(served_two: dmv.Project) -> None:
    done = _dmv(served_two.root, "serve", "iris@production", "iris@nosuchalias", "--port", "1")
    assert done.returncode == 3, done.stderr
    assert "iris@nosuchalias" in done.stderr and "nothing to serve" in done.stderr
    assert "Traceback" not in done.stderr
    done = _dmv(served_two.root, "serve", "nope@latest", "--port", "1")
    assert done.returncode == 3 and "nope" in done.stderr


def _start(root: Path, *refs: str) -> tuple[subprocess.Popen[str], int]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)])}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dmv",
            "-C",
            str(root),
            "serve",
            *refs,
            "--port",
            str(port),
            "--trust-pickle",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/v2/health/ready")
            if conn.getresponse().status == 200:
                conn.close()
                return proc, port
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(proc.communicate()[1])
        time.sleep(0.1)


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    _, err = proc.communicate(timeout=10)
    return err


@pytest.mark.slow
def test_real_serve_starts_the_others_and_keeps_the_connection(mixed: dmv.Project) -> None:
    proc, port = _start(mixed.root, "broken@" + V1, "iris@production", "picky@" + V1)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

        def post(path: str, body: Any) -> tuple[int, Any, tuple[str, int]]:
            conn.request(
                "POST", path, json.dumps(body), headers={"Content-Type": "application/json"}
            )
            response = conn.getresponse()
            payload = json.loads(response.read())
            assert response.getheader("connection", "").lower() != "close"
            assert conn.sock is not None
            return response.status, payload, conn.sock.getsockname()

        bad_row = ROW | {"petal_width": -1.0}
        s1, b1, sock1 = post(f"/models/broken/versions/{V1}/predict", {"inputs": [ROW]})
        s2, b2, sock2 = post(f"/models/picky/versions/{V1}/predict", {"inputs": [bad_row]})
        s3, b3, sock3 = post("/models/iris/versions/production/predict", {"inputs": [ROW2]})
        s4, b4, sock4 = post(f"/v2/models/picky/versions/{V1}/infer", {"inputs": []})
        s5, b5, sock5 = post("/models/iris/versions/production/predict", {"inputs": [ROW]})
        assert (s1, b1["error"]["code"]) == (503, "model_unavailable")
        assert (s2, b2["error"]["code"]) == (500, "prediction_error")
        assert s3 == 200 and b3["outputs"] == [{"species": 2}]
        assert s4 == 422 and isinstance(b4["error"], str)
        assert s5 == 200 and b5["outputs"] == [{"species": 0}]
        # One connection the whole time: no error answer reset it.
        assert sock1 == sock2 == sock3 == sock4 == sock5
        conn.close()
    finally:
        err = _stop(proc)
    assert f"FAILED broken@{V1}" in err and "wrappers_gone" in err
    assert "1 of 3 models failed to load; serving the others" in err
    assert f"iris@production ({V1})" in err and "Traceback" not in err


def test_a_load_failure_heals_without_a_restart(
    mixed: dmv.Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dmv.server import predictors as serving

    client = TestClient(create_app(mixed, trust_pickle=True))
    url = f"/models/broken/versions/{V1}/predict"
    assert client.post(url, json={"inputs": [ROW]}).status_code == 503
    # The missing module is installed again; after the retry delay the model serves.
    folder = tmp_path / "back"
    folder.mkdir()
    (folder / "wrappers_gone.py").write_text("SCALE = 1\n")
    monkeypatch.syspath_prepend(str(folder))
    assert client.post(url, json={"inputs": [ROW]}).status_code == 503  # still remembered
    monkeypatch.setattr(serving, "RETRY_LOAD_AFTER", 0.0)
    r = client.post(url, json={"inputs": [ROW]})
    assert r.status_code == 200 and r.json()["outputs"] == [{"species": 1}]
    sys.modules.pop("wrappers_gone", None)
    sys.modules.pop("needs_gone", None)


def test_an_unexpected_error_is_one_json_500_in_each_shape(
    served_two: dmv.Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dmv.server.predictors import ModelServer

    def explode(self: Any, name: str) -> list[str]:
        raise RuntimeError("boom")

    monkeypatch.setattr(ModelServer, "served_versions", explode)
    client = TestClient(create_app(served_two), raise_server_exceptions=False)
    r = client.get("/v2/models/iris/versions/production")
    hint = "this is a bug in dmv; the server log has the details"
    assert r.status_code == 500 and r.json() == {"error": f"internal error: RuntimeError ({hint})"}
    assert "boom" not in r.text and "Traceback" not in r.text
    # The same client (connection) goes on working.
    ok = client.post("/models/iris/versions/production/predict", json={"inputs": [ROW]})
    assert ok.status_code == 200


WRAPPER = """
from helpers import answer


class Model:
    def predict(self, frame):
        return [answer()] * len(frame)
"""


def test_two_models_storing_the_same_module_names_keep_their_own_code(
    project: dmv.Project,
) -> None:
    """Both store ``wrapper.py`` and ``helpers.py``; one server loads both, each its own."""
    root = project.root
    sys.path.insert(0, str(root))
    try:
        for name, value in (("first", 1), ("second", 2)):
            (root / "wrapper.py").write_text(WRAPPER)
            (root / "helpers.py").write_text(f"def answer():\n    return {value}\n")
            for module in ("wrapper", "helpers"):
                sys.modules.pop(module, None)
            importlib.invalidate_caches()
            wrapper = importlib.import_module("wrapper")
            register_python(project, name, wrapper.Model(), code=["wrapper.py", "helpers.py"])
    finally:
        sys.path.remove(str(root))
    # The project's own wrapper (the second's) is imported here: the server must not use it.
    client = TestClient(
        create_app(project, serve_refs=[f"first@{V1}", f"second@{V1}"], trust_pickle=True)
    )
    for name, value in (("first", 1), ("second", 2), ("first", 1)):
        r = client.post(f"/models/{name}/versions/{V1}/predict", json={"inputs": [ROW]})
        assert r.status_code == 200, r.text
        assert r.json()["outputs"] == [{"species": value}], name
    assert sys.modules["wrapper"].__file__ == str(root / "wrapper.py")  # set back untouched
    for module in ("wrapper", "helpers"):
        sys.modules.pop(module, None)
