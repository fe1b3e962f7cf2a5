"""The REST API fuzzed from its own OpenAPI document (schemathesis).

Every operation: never a 5xx. The registry API (``/api/v1``): every check
schemathesis has (``--checks all``): each status answered is documented, each body
matches its schema (dmv's one error shape included), schema-valid requests are
accepted, schema-violating ones refused, ``Allow`` right on a 405, a locked
server refuses requests without the token.

One real project with data behind the in-process ASGI app: a warehouse with two
stored splits, versions trained on them with real scikit-learn models and
inferred interfaces, an experiment, a release, aliases, a second empty model and
an admin token. Every operation of ``/openapi.json`` (the REST API, the predict
and v2 routes, each model's own predict path) gets schema-valid and
schema-violating requests, with the admin token and without any token.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dmv

pytest.importorskip("fastapi")
pytest.importorskip("sklearn")
schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from dmv.server import create_app  # noqa: E402
from dmv.server.security import LOOPBACK_HOSTS, Policy  # noqa: E402

#: schemathesis's in-process client calls the app as "testserver"; the Host allow-list
#: (tested in test_security.py) must let it in.
FUZZ_POLICY = Policy(allowed_hosts=(*LOOPBACK_HOSTS, "testserver"))

#: Examples per operation and pass (with a token / without); the whole file runs in ~40 s.
EXAMPLES = {"admin-token": 20, "no-token": 8}
BASE = ["age", "bmi", "bp"]


def _train(project: dmv.Project, data: str, columns: list[str], alpha: float) -> dmv.Run:
    from sklearn.linear_model import Ridge

    with project.run("price-model", data=data, params={"alpha": alpha}) as run:
        rows = run.dataset("train")
        model = Ridge(alpha=alpha).fit(rows[columns], rows["target"])
        run.log_metrics({"r2": model.score(rows[columns], rows["target"])}, "train")
        run.log_model(model, sample_input=rows[columns].head(5))
    return run


def build_project(root: Path) -> tuple[dmv.Project, str]:
    """A project with data, versions, runs, an experiment, a release, aliases; admin token."""
    from sklearn.linear_model import Ridge

    from conftest import seed_warehouse
    from dmv import tokens

    p = dmv.init(root)
    seed_warehouse(p)
    p.update_model("price-model", purpose="price forecast", primary_metric="r2")
    _train(p, "0123.abcd", BASE, 1.0)  # 0.0.1-0123.abcd
    _train(p, "0123.abcd", BASE, 0.5)  # 0.0.2-0123.abcd
    _train(p, "0123.efgh", [*BASE, "s1"], 0.5)  # 0.1.0-0123.efgh
    rows = p.dataset("price-model", "0123.abcd", "train")
    with p.experiment("price-model", data="0123.abcd", params={"alpha": 3.0}) as ex:
        ex.log_model(Ridge(alpha=3.0).fit(rows[BASE], rows["target"]), sample_input=rows[BASE])
    p.release("price-model@0.1.0-0123.efgh")  # 1.1.0-0123.efgh
    p.set_alias("price-model@1", "production")
    p.set_alias("price-model@0.0.1", "staging")
    p.create_model("churn", purpose="retention")
    token, _ = tokens.create_token(p.registry, "fuzzer", "admin")
    return p, token


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dmv.Project, str]]:
    p, token = build_project(tmp_path_factory.mktemp("fuzz") / "proj")
    yield p, token
    p.close()


#: Path parameters that exist in the project, so that fuzzing reaches past "not found".
REAL = {
    "name": "price-model",
    "ref": "production",
    "version": "1.1.0-0123.efgh",
    "run_id": "tr1",
    "alias": "staging",
}


def _passes(op: Any) -> list[tuple[GenerationMode, dict[str, str] | None]]:
    """Schema-valid and schema-violating data; then schema-valid data on real objects."""
    passes: list[tuple[GenerationMode, dict[str, str] | None]] = [
        (GenerationMode.POSITIVE, None),
        (GenerationMode.NEGATIVE, None),
    ]
    names = {p.name for p in op.path_parameters}
    if names:
        fixed = {n: REAL[n] for n in names if n in REAL}
        if fixed:
            passes.append((GenerationMode.POSITIVE, fixed))
    return passes


def _describe(case: Any) -> str:
    body = getattr(case, "body", None)
    return (
        f"{case.method} {case.formatted_path} query={case.query!r} "
        f"headers={ {k: v for k, v in (case.headers or {}).items() if k != 'Authorization'} } "
        f"body={body!r}"[:400]
    )


def _fuzzer(
    op: Any,
    mode: GenerationMode,
    fixed: dict[str, str] | None,
    headers: dict[str, str],
    examples: int,
    statuses: list[int],
    failures: list[str],
) -> Any:
    """A Hypothesis test sending ``examples`` requests to ``op``; collects every 5xx."""
    label = f"{op.method.upper()} {op.path}"

    @settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=op.as_strategy(generation_mode=mode, path_parameters=fixed))
    def fuzz(case: Any) -> None:
        try:
            response = case.call(headers=headers)
        except Exception as exc:  # the app must answer, not crash the transport
            failures.append(f"{label}: {type(exc).__name__}: {exc} <- {_describe(case)}")
            return
        statuses.append(response.status_code)
        if _non_finite_answer(response):
            return  # the model's own overflow on fuzzed huge floats: its documented 500
        try:
            case.validate_response(response, checks=[not_a_server_error])
        except Exception:
            failures.append(
                f"{label}: {response.status_code} {response.text[:200]} <- {_describe(case)}"
            )

    return fuzz


def _non_finite_answer(response: Any) -> bool:
    """A predict answered 500 ``non_finite_output``: the model overflowed, dmv said so."""
    if response.status_code != 500 or "/predict" not in str(response.request.url):
        return False
    try:
        return bool(response.json()["error"]["code"] == "non_finite_output")
    except (ValueError, KeyError, TypeError):
        return False


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # sklearn on fuzzed huge floats
@pytest.mark.parametrize("auth", ["admin-token", "no-token"])
def test_no_operation_answers_5xx(fuzzed: tuple[dmv.Project, str], auth: str) -> None:
    project, token = fuzzed
    app = create_app(project, policy=FUZZ_POLICY)
    # A locked server documents itself to a reader only; the document is read with the token.
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", app, headers={"Authorization": f"Bearer {token}"}
    )
    headers = {"Authorization": f"Bearer {token}"} if auth == "admin-token" else {}
    failures: list[str] = []
    skipped: list[str] = []
    calls: dict[str, list[int]] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    paths = {op.path for op in operations}
    # The per-model predict operations come from the registry, so they are fuzzed too.
    assert "/models/price-model/versions/1.1.0-0123.efgh/predict" in paths, sorted(paths)
    assert "/api/v1/models/{name}/versions/{ref}/release" in paths
    for op in operations:
        label = f"{op.method.upper()} {op.path}"
        statuses = calls.setdefault(label, [])
        for mode, fixed in _passes(op):
            fuzz = _fuzzer(op, mode, fixed, headers, EXAMPLES[auth], statuses, failures)
            try:
                fuzz()
            except Unsatisfiable:
                # Nothing in this operation can be made schema-violating (e.g. no inputs).
                assert mode is GenerationMode.NEGATIVE, label
                skipped.append(label)
    assert not failures, "\n".join(failures[:30])
    print(f"\n{auth}: {len(operations)} operations, {sum(map(len, calls.values()))} requests")
    for label, ss in calls.items():
        print(f"  {label}: {dict(Counter(ss))}")
    assert sum(len(s) for s in calls.values()) >= 2 * len(operations)
    if auth == "admin-token":
        # Authenticated, the fuzzer reached past the gate: some requests succeeded.
        assert any(200 <= s < 300 for ss in calls.values() for s in ss)
    else:
        # A locked registry refuses every REST call without a token.
        rest = [s for label, ss in calls.items() if " /api/v1/" in label for s in ss]
        assert rest and all(s in (400, 401, 404, 405, 422) for s in rest), sorted(set(rest))


@pytest.mark.slow
def test_open_project_without_tokens_answers_no_5xx(tmp_path: Path, small_model: Any) -> None:
    """Local mode (no tokens at all): every write route is reachable without a token."""
    p = dmv.init(tmp_path / "proj")
    try:
        with p.run("iris", version="0.0.1-0123.abcd") as run:
            run.log_model(small_model)
        p.set_alias("iris@0.0.1", "production")
        schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(p, policy=FUZZ_POLICY))
        failures: list[str] = []
        for op in (result.ok() for result in schema.get_all_operations()):

            @settings(
                max_examples=6,
                derandomize=True,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=op.as_strategy())
            def fuzz(case: Any) -> None:
                response = case.call()
                if response.status_code >= 500:
                    failures.append(
                        f"{response.status_code} {response.text[:200]} <- {_describe(case)}"
                    )

            fuzz()
        assert not failures, "\n".join(failures[:30])
    finally:
        p.close()


def _checked_fuzzer(
    op: Any,
    mode: GenerationMode,
    fixed: dict[str, str] | None,
    headers: dict[str, str],
    examples: int,
    statuses: Counter[int],
    failures: list[str],
) -> Any:
    """A Hypothesis test sending ``examples`` requests to ``op``, validated by every check."""
    label = f"{op.method.upper()} {op.path}"

    @settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=op.as_strategy(generation_mode=mode, path_parameters=fixed))
    def fuzz(case: Any) -> None:
        response = case.call(headers=headers)
        statuses[response.status_code] += 1
        try:
            case.validate_response(response, headers=headers)  # every check
        except BaseException as exc:  # schemathesis reports a group of failures
            failures.append(
                f"{label}: {response.status_code} {response.text[:160]}\n"
                f"  {str(exc).strip()[:600]}\n  <- {_describe(case)}"
            )

    return fuzz


def _every_check(
    schema: Any, headers: dict[str, str], examples: int
) -> tuple[dict[str, Counter[int]], list[str]]:
    """Fuzz each ``/api/v1`` operation with every check; statuses seen and failures."""
    seen: dict[str, Counter[int]] = {}
    failures: list[str] = []
    operations = [r.ok() for r in schema.get_all_operations()]
    registry = [op for op in operations if op.path.startswith("/api/v1/")]
    assert len(registry) >= 20, [op.path for op in operations]
    for op in registry:
        label = f"{op.method.upper()} {op.path}"
        statuses = seen.setdefault(label, Counter())
        for mode, fixed in _passes(op):
            try:
                _checked_fuzzer(op, mode, fixed, headers, examples, statuses, failures)()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, label
    return seen, failures


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("auth", ["admin-token", "no-token"])
def test_the_registry_api_passes_every_check_when_locked(
    fuzzed: tuple[dmv.Project, str], auth: str
) -> None:
    project, token = fuzzed
    app = create_app(project, policy=FUZZ_POLICY)
    bearer = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers=bearer)
    assert schema.raw_schema["security"] == [{"bearer": []}]  # locked: a token on everything
    seen, failures = _every_check(schema, bearer if auth == "admin-token" else {}, 12)
    assert not failures, "\n".join(failures[:20])
    statuses = Counter[int]()
    for counter in seen.values():
        statuses.update(counter)
    print(f"\n{auth}: {sum(statuses.values())} requests, statuses {dict(statuses)}")
    if auth == "admin-token":
        assert any(200 <= s < 300 for s in statuses), statuses
        assert statuses[422] and statuses[404], statuses  # refused and not-found both reached
    else:
        assert set(statuses) <= {400, 401, 404, 405, 422}, statuses
        assert statuses[401] > sum(statuses.values()) / 2, statuses


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_the_registry_api_passes_every_check_when_open(tmp_path: Path, small_model: Any) -> None:
    p = dmv.init(tmp_path / "proj")
    try:
        with p.run("price-model", version="0.0.1-0123.abcd") as run:
            run.log_model(small_model)
        p.set_alias("price-model@0.0.1", "staging")
        schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(p, policy=FUZZ_POLICY))
        assert schema.raw_schema["security"] == [{}]  # open: local mode, no token anywhere
        seen, failures = _every_check(schema, {}, 8)
        assert not failures, "\n".join(failures[:20])
        assert any(200 <= s < 300 for c in seen.values() for s in c)
    finally:
        p.close()
