"""Micro-batching and ``dmv serve --workers``, with concurrent real HTTP clients.

Requests for one served version that arrive together are predicted in one model
call; each client must get the answer it gets alone (bit for bit from a tree
model; from a linear model the same labels, probabilities to the last bit of a
float64, see docs/server.md), and a request with bad rows (or rows the model
fails on) its own error while the others succeed.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import dmv
from dmv.errors import ConfigError
from dmv.server import create_app

V = "0.0.1-a.b"
SRC = Path(__file__).resolve().parents[1] / "src"

CONFIG = """
[models.lr.serving]
max_batch_size = 16
max_batch_wait_us = 20000

[models.lr-solo.serving]
batching = false

[models.gbm.serving]
max_batch_wait_us = 20000

[models.gbm-solo.serving]
batching = false

[models.py.serving]
batching = true
max_batch_wait_us = 20000
"""

FAILING = """
class Picky:
    def predict(self, frame):
        if (frame["spend"] == 13.0).any():
            raise ValueError("13 is unlucky")
        return frame["spend"] * 2
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dmv.Project]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    root = tmp_path_factory.mktemp("batching") / "proj"
    project = dmv.init(root)
    (root / "dmv.toml").write_text((root / "dmv.toml").read_text() + CONFIG)
    project.close()
    project = dmv.open(root)
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"tenure": rng.random(60) * 50, "spend": rng.random(60) * 100})
    y = np.where(x["spend"] < 50, "churn", "stay")
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    for name in ("lr", "lr-solo"):
        with project.run(name, version=V) as run:
            run.log_model(pipe, sample_input=x.head(10), outputs=["label", "proba"])
    import lightgbm as lgb

    x["plan"] = pd.Categorical(rng.choice(["basic", "pro", "team"], 60))
    gbm = lgb.LGBMClassifier(n_estimators=10, min_child_samples=2, verbose=-1).fit(x, y)
    for name in ("gbm", "gbm-solo"):
        with project.run(name, version=V) as run:
            run.log_model(gbm, sample_input=x.head(10), outputs=["label", "proba"])
    (root / "picky").mkdir()
    (root / "picky" / "model.py").write_text(FAILING)
    sys.path.insert(0, str(root))
    try:
        from picky.model import Picky  # type: ignore[import-not-found]

        with project.run("py", version=V) as run:
            run.log_model(
                Picky(),
                sample_input=x[["tenure", "spend"]].head(5),
                code=["picky/model.py"],
                trust_pickle=True,
            )
    finally:
        sys.path.remove(str(root))
        sys.modules.pop("picky.model", None)
        sys.modules.pop("picky", None)
    yield project
    project.close()


class _Server:
    """The app under uvicorn on a thread: real HTTP, and its batchers in reach."""

    def __init__(self, project: dmv.Project) -> None:
        import uvicorn

        self.app = create_app(project, trust_pickle=True)
        self.port = _free_port()
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def batchers(self) -> list[Any]:
        found = self.app.state.model_server._batchers.values()
        return [b for b in found if b is not None]


def _post(port: int, path: str, rows: Any) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        body = json.dumps({"inputs": rows})
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def _requests(n: int, plan: bool = False) -> list[list[dict[str, Any]]]:
    rng = np.random.default_rng(1)
    out: list[list[dict[str, Any]]] = []
    for i in range(n):
        rows: list[dict[str, Any]] = []
        for _ in range(1 + i % 3):
            row: dict[str, Any] = {
                "tenure": float(rng.random() * 50),
                "spend": float(rng.random() * 100),
            }
            if plan:
                row["plan"] = ["basic", "pro", "team"][int(rng.integers(0, 3))]
            rows.append(row)
        out.append(rows)
    return out


def _together(port: int, path: str, requests: list[Any]) -> list[tuple[int, Any]]:
    """Every request at once, each from its own client connection."""
    start = threading.Barrier(len(requests))

    def one(rows: Any) -> tuple[int, Any]:
        start.wait()
        return _post(port, path, rows)

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(one, requests))


def _batched_and_alone(
    project: dmv.Project, name: str, requests: list[Any]
) -> tuple[list[Any], list[Any], Any]:
    with _Server(project) as server:
        answers = _together(server.port, f"/models/{name}/versions/{V}/predict", requests)
        path = f"/models/{name}-solo/versions/{V}/predict"
        alone = [_post(server.port, path, r) for r in requests]
        batchers = server.batchers()
    assert all(status == 200 for status, _ in answers + alone), answers + alone
    (batcher,) = batchers  # the -solo model is not batched
    assert batcher.items >= len(requests) and batcher.batches < batcher.items  # some grouped
    return [a["outputs"] for _, a in answers], [a["outputs"] for _, a in alone], batcher


def test_a_tree_model_answers_a_batch_bit_for_bit(served: dmv.Project) -> None:
    requests = _requests(24, plan=True)
    batched, alone, _ = _batched_and_alone(served, "gbm", requests)
    assert batched == alone  # value for value
    model = served.served_model(f"gbm@{V}")
    assert batched == [model.predict_rows(r) for r in requests]


def test_a_linear_model_answers_a_batch_to_the_last_bit(served: dmv.Project) -> None:
    requests = _requests(24)
    batched, alone, _ = _batched_and_alone(served, "lr", requests)
    for got, want, rows in zip(batched, alone, requests, strict=True):
        assert len(got) == len(rows)
        assert [r["prediction"] for r in got] == [r["prediction"] for r in want]
        np.testing.assert_allclose(
            [list(r["probabilities"].values()) for r in got],
            [list(r["probabilities"].values()) for r in want],
            rtol=0,
            atol=4e-16,
        )


def test_a_bad_request_in_a_batch_fails_alone(served: dmv.Project) -> None:
    requests: list[Any] = _requests(8)
    requests[3] = [{"tenure": 1.0, "spend": "a lot"}]
    requests[5] = [{"tenure": 1.0}]
    with _Server(served) as server:
        answers = _together(server.port, f"/models/lr/versions/{V}/predict", requests)
    statuses = [status for status, _ in answers]
    assert statuses == [200, 200, 200, 422, 200, 422, 200, 200]
    problems = answers[3][1]["error"]["details"]["problems"]
    assert problems[0]["field"] == "spend" and problems[0]["problem"] == "wrong_type"
    assert answers[5][1]["error"]["details"]["problems"][0]["problem"] == "missing"


def test_rows_the_model_fails_on_fail_only_their_request(served: dmv.Project) -> None:
    requests = [[{"tenure": 1.0, "spend": float(i)}] for i in range(10, 18)]  # 13 fails
    with _Server(served) as server:
        answers = _together(server.port, f"/models/py/versions/{V}/predict", requests)
        batchers = server.batchers()
    (batcher,) = batchers
    for (status, body), rows in zip(answers, requests, strict=True):
        if rows[0]["spend"] == 13.0:
            assert status == 500 and "13 is unlucky" in body["error"]["message"]
        else:
            assert status == 200 and body["outputs"] == [{"prediction": rows[0]["spend"] * 2}]
    assert batcher.items == len(requests)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("max_batch_size = 0", "max_batch_size must be a whole number"),
        ("max_batch_wait_us = -1", "max_batch_wait_us must be a whole number"),
        ("max_batch_size = 1.5", "max_batch_size must be a whole number"),
        ('batching = "yes"', "batching must be true or false"),
        ("batch = true", "unknown key"),
    ],
)
def test_bad_serving_settings_are_named(tmp_path: Path, table: str, message: str) -> None:
    from dmv.config import Config

    (tmp_path / "dmv.toml").write_text(f"[models.m.serving]\n{table}\n")
    with pytest.raises(ConfigError, match=message):
        Config(tmp_path)


def test_serving_settings_are_read(tmp_path: Path) -> None:
    from dmv.config import Config, ModelServing

    (tmp_path / "dmv.toml").write_text(
        '[models.m]\ntrain = "python t.py"\n\n[models.m.serving]\nbatching = false\n'
    )
    config = Config(tmp_path)
    assert config.serving["m"] == ModelServing(batching=False)
    assert config.models["m"] == {"train": "python t.py"}


# -- several worker processes on one port ---------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
            found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process table from /proc")
def test_two_workers_share_the_port(served: dmv.Project) -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    cmd = [sys.executable, "-m", "dmv", "-C", str(served.root), "serve", f"lr@{V}"]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port), "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    path = f"/models/lr/versions/{V}/predict"
    rows = _requests(1)[0]
    try:
        deadline = time.monotonic() + 60
        while len(_children(proc.pid)) < 2 or _ready(port, path, rows) != 200:
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "two workers did not start"
            time.sleep(0.2)
        workers = _children(proc.pid)
        assert len(workers) == 2
        want = served.served_model(f"lr@{V}").predict_rows(rows)
        answers = _together(port, path, [rows] * 16)
        assert all(a == (200, {"model": "lr", "version": V, "outputs": want}) for a in answers)
        # One worker gone: the other still answers on the same port.
        os.kill(workers[0], signal.SIGKILL)
        for _ in range(10):
            assert _post(port, path, rows) == (200, {"model": "lr", "version": V, "outputs": want})
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "2 workers" in err


def _ready(port: int, path: str, rows: Any) -> int:
    try:
        return _post(port, path, rows)[0]
    except OSError:
        return 0
