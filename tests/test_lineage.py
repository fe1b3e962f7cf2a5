"""OpenLineage events from splits, training runs and releases, through the real client."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

import dmv
from conftest import seed_warehouse

pytest.importorskip("openlineage.client", reason="lineage needs pip install 'dmv[lineage]'")

from dmv.integrations import lineage

_ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


SPEC = Path(__file__).parent / "fixtures" / "openlineage"
#: dmv's own facets' schemas, published with its documentation.
DMV_FACETS = Path(__file__).parents[1] / "docs" / "openlineage"
_FACET_KINDS = {
    ("run", "facets"): "RunFacet",
    ("job", "facets"): "JobFacet",
    ("dataset", "facets"): "DatasetFacet",
    ("dataset", "inputFacets"): "InputDatasetFacet",
    ("dataset", "outputFacets"): "OutputDatasetFacet",
}


def _registry() -> Any:
    """The vendored OpenLineage schemas, each under its ``$id`` (see fixtures/openlineage)."""
    from referencing import Registry, Resource

    files = [*SPEC.rglob("*.json"), *DMV_FACETS.glob("*.json")]
    docs = [json.loads(p.read_text()) for p in sorted(files)]
    return Registry().with_resources((d["$id"], Resource.from_contents(d)) for d in docs)


_SCHEMAS = _registry()
_CORE = "https://openlineage.io/spec/2-0-2/OpenLineage.json"


def _validate(instance: Any, ref: str) -> None:
    from jsonschema import Draft202012Validator

    Draft202012Validator({"$ref": ref}, registry=_SCHEMAS).validate(instance)


def _check_facets(facets: dict[str, Any], kind: str) -> None:
    for key, facet in facets.items():
        url = facet["_schemaURL"]
        assert facet["_producer"].startswith("https://") and url.startswith("https://")
        if url.startswith(("https://openlineage.io/", "https://dmv.dev/")):
            base = url.partition("#")[0]
            try:
                doc = _SCHEMAS.contents(base)
            except LookupError:
                raise AssertionError(
                    f"facet {key!r} names {url}, which tests/fixtures/openlineage lacks"
                ) from None
            assert key in doc["properties"], (
                f"facet {key!r} belongs under {list(doc['properties'])}"
            )
            _validate(facet, url)
        else:  # another producer's facet: the spec's base facet of its kind
            _validate(facet, f"{_CORE}#/$defs/{kind}")


def check_event(e: dict[str, Any]) -> None:
    """The event against the official OpenLineage JSON Schema, each facet against its own."""
    assert e["schemaURL"] == f"{_CORE}#/$defs/RunEvent"
    _validate(e, e["schemaURL"])
    assert _ISO.match(e["eventTime"]), e["eventTime"]
    uuid.UUID(e["run"]["runId"])
    _check_facets(e["run"].get("facets", {}), "RunFacet")
    _check_facets(e["job"].get("facets", {}), "JobFacet")
    for side in ("inputs", "outputs"):
        for d in e.get(side, []):
            for (_, where), kind in _FACET_KINDS.items():
                if kind.endswith("DatasetFacet") and where in d:
                    _check_facets(d[where], kind)


def test_the_check_catches_what_the_schema_forbids() -> None:
    import jsonschema

    good = {
        "eventType": "COMPLETE",
        "eventTime": "2026-01-01T00:00:00Z",
        "producer": "https://example.com/p",
        "schemaURL": f"{_CORE}#/$defs/RunEvent",
        "run": {"runId": str(uuid.uuid4())},
        "job": {
            "namespace": "n",
            "name": "j",
            "facets": {
                "sql": {
                    "_producer": "https://example.com/p",
                    "_schemaURL": "https://openlineage.io/spec/facets/1-1-0/SQLJobFacet.json"
                    "#/$defs/SQLJobFacet",
                    "query": "SELECT 1",
                }
            },
        },
    }
    check_event(good)
    bad_type = {**good, "eventType": "DONE"}
    with pytest.raises(jsonschema.ValidationError):
        check_event(bad_type)
    no_query = json.loads(json.dumps(good))
    del no_query["job"]["facets"]["sql"]["query"]
    with pytest.raises(jsonschema.ValidationError, match="query"):
        check_event(no_query)
    ours = json.loads(json.dumps(good))
    ours["run"]["facets"] = {
        "dmv": {
            "_producer": "https://example.com/p",
            "_schemaURL": "https://dmv.dev/spec/facets/1-0-0/DmvRunFacet.json#/$defs/DmvRunFacet",
            "operation": "split",
        }
    }
    with pytest.raises(jsonschema.ValidationError, match="model"):
        check_event(ours)  # dmv's own facets are held to their published schemas too


@pytest.fixture
def file_transport(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "lineage.jsonl"
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__TYPE", "file")
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__LOG_FILE_PATH", str(log))
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__APPEND", "true")
    return log


def _events(path: Path) -> list[dict[str, Any]]:
    assert lineage.flush(20)
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _train(project: dmv.Project) -> None:
    from sklearn.linear_model import Ridge

    with project.run("price-model", data="0123.abcd") as run:
        train = run.dataset("train")
        x = train.drop(columns=["target", "patient_id"])
        run.log_model(Ridge().fit(x, train["target"]), sample_input=x.head(5))


def test_split_training_and_release_events(project: dmv.Project, file_transport: Path) -> None:
    seed_warehouse(project)
    _train(project)
    with pytest.raises(dmv.DmvError):
        project.data_split("price-model", "nope")  # a FAIL event
    project.release("price-model@0.0.1-0123.abcd")
    events = _events(file_transport)
    for e in events:
        check_event(e)
    by_job: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        by_job.setdefault(e["job"]["name"], []).append(e)
    assert set(by_job) == {
        "price-model.retrieval",
        "price-model.split",
        "price-model.train",
        "price-model.release",
    }
    splits = by_job["price-model.split"]
    assert [e["eventType"] for e in splits] == ["START", "COMPLETE"] * 2 + ["START", "FAIL"]
    assert "errorMessage" in splits[-1]["run"]["facets"]
    done = splits[1]
    assert done["run"]["runId"] == splits[0]["run"]["runId"]
    assert [i["name"] for i in done["inputs"]] == ["patients"]
    assert done["job"]["facets"]["sql"]["query"] == "SELECT * FROM patients"
    outs = {o["name"]: o for o in done["outputs"]}
    assert set(outs) == {f"price_model__0123__abcd__{p}" for p in ("train", "valid", "test")}
    train = outs["price_model__0123__abcd__train"]
    assert train["facets"]["dmv_split"]["data"] == "0123"
    assert train["facets"]["dmv_split"]["split"] == "abcd"
    assert train["facets"]["dmv_split"]["fingerprint"]
    names = [f["name"] for f in train["facets"]["schema"]["fields"]]
    assert "target" in names and "patient_id" in names
    rows = sum(o["outputFacets"]["outputStatistics"]["rowCount"] for o in outs.values())
    assert rows == 442  # the diabetes data set

    runs = by_job["price-model.train"]
    assert [e["eventType"] for e in runs] == ["START", "COMPLETE"]
    assert [i["name"] for i in runs[1]["inputs"]] == ["price_model__0123__abcd__train"]
    model = runs[1]["outputs"][0]
    facet = model["facets"]["dmv_version"]
    assert facet["version"] == "price-model 0.0.1-0123.abcd"
    assert facet["interfaceFingerprint"].startswith("blake3:")
    assert facet["logicFingerprint"].startswith("blake3:") and facet["run"] == "tr0"

    rel = by_job["price-model.release"][-1]
    assert rel["eventType"] == "COMPLETE"
    assert rel["inputs"][0]["name"] == "price-model@0.0.1-0123.abcd"
    assert rel["outputs"][0]["facets"]["dmv_version"]["version"] == "price-model 1.0.1-0123.abcd"


def test_a_batch_prediction_is_an_event_from_its_input_to_its_output(
    project: dmv.Project, file_transport: Path
) -> None:
    seed_warehouse(project)
    _train(project)
    record = project.predict("price-model@0.0.1-0123.abcd", input="0123.abcd:test")
    events = [e for e in _events(file_transport) if e["job"]["name"] == "price-model.predict"]
    for e in events:
        check_event(e)
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    done = events[1]
    ins = {i["name"]: i for i in done["inputs"]}
    assert set(ins) == {"price_model__0123__abcd__test", "price-model@0.0.1-0123.abcd"}
    assert ins["price-model@0.0.1-0123.abcd"]["facets"]["dmv_version"]["run"] == "tr0"
    [out] = done["outputs"]
    assert (
        out["name"] == record.output
        and out["namespace"] == ins["price_model__0123__abcd__test"]["namespace"]
    )
    assert out["outputFacets"]["outputStatistics"]["rowCount"] == record.rows_out


class _Receiver(BaseHTTPRequestHandler):
    got: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).got.append({"path": self.path, "event": json.loads(body)})
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    _Receiver.got = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Receiver.got
    server.shutdown()


def test_events_reach_an_http_receiver(
    project: dmv.Project,
    receiver: tuple[str, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, got = receiver
    monkeypatch.setenv("OPENLINEAGE_URL", url)
    monkeypatch.setenv("OPENLINEAGE_NAMESPACE", "team-a")
    seed_warehouse(project)
    assert lineage.flush(20)
    assert got and {g["path"] for g in got} == {"/api/v1/lineage"}
    for g in got:
        check_event(g["event"])
        assert g["event"]["job"]["namespace"] == "team-a"


def test_a_backend_configured_once_leaves_no_trace_in_the_environment(
    project: dmv.Project,
    receiver: tuple[str, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The client turns OPENLINEAGE_URL into transport variables of its own; none may stay.

    Left behind, they would send every later event of the process (another
    project's, after the backend was unset) to that backend as well.
    """
    import os

    for key in [k for k in os.environ if k.startswith("OPENLINEAGE")]:
        monkeypatch.delenv(key)
    url, got = receiver
    monkeypatch.setenv("OPENLINEAGE_URL", url)
    seed_warehouse(project)
    assert lineage.flush(20) and got
    monkeypatch.delenv("OPENLINEAGE_URL")
    assert [k for k in os.environ if k.startswith("OPENLINEAGE")] == []


@pytest.mark.slow
def test_a_dead_receiver_neither_fails_nor_slows_the_split(
    project: dmv.Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Nothing listens there; a blackholed address would make each send wait its timeout.
    monkeypatch.setenv("OPENLINEAGE_URL", f"http://127.0.0.1:{port}")
    t0 = time.perf_counter()
    seed_warehouse(project)
    assert time.perf_counter() - t0 < 30
    assert project.data_splits("price-model")
    assert lineage.flush(60)  # drained: the failed send was logged, the rest dropped
    assert lineage._emitter is not None and lineage._emitter.dropped > 0
    lineage._emitter.down_until = 0.0


def test_off_by_default_and_import_dmv_stays_light(tmp_path: Path) -> None:
    code = (
        "import os, sys\n"
        "for k in list(os.environ):\n"
        "    k.startswith('OPENLINEAGE') and os.environ.pop(k)\n"
        "import dmv\n"
        "from dmv.integrations import lineage\n"
        "assert not lineage.enabled()\n"
        "p = dmv.init(sys.argv[1])\n"
        "p.create_model('m')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('openlineage', 'attr')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "p")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "[]"
