"""``dmv show``, ``dmv diff`` and ``dmv versions`` say enough: tested through the CLI.

A real project: the diabetes data in the DuckDB warehouse, two stored splits,
training code committed to a real git repository, three training runs of one
version (training noise) and a second version with another input and split.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

import dmv
from conftest import seed_warehouse
from dmv.cli import main

IFACE = {"inputs": [{"name": "age", "type": "float"}], "outputs": [{"name": "y", "type": "float"}]}
WIDER = {
    "inputs": [{"name": "age", "type": "float"}, {"name": "bmi", "type": "float"}],
    "outputs": [{"name": "y", "type": "float"}],
}


def _git(root: Path, *args: str) -> None:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
        "HOME": str(root),
        "PATH": "/usr/bin:/bin",
    }
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, env=env)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("show") / "proj"
    project = dmv.init(path)
    (path / "train.py").write_text("SEED = 0\n", encoding="utf-8")
    (path / ".gitignore").write_text(".dmv/\n", encoding="utf-8")
    _git(path, "init", "-q", "-b", "main")
    _git(path, "add", "-A")
    _git(path, "commit", "-q", "-m", "code")
    project.create_model("price-model", purpose="price forecast", primary_metric="r2")
    seed_warehouse(project)
    for i, r2 in enumerate((0.40, 0.46, 0.43)):
        with project.run(
            "price-model",
            data="0123.abcd",
            params={"alpha": 0.5},
            interface=IFACE,
            code=["train.py"],
        ) as run:
            run.log_metrics({"r2": r2, "rmse": 60.0 - i}, split="test")
            run.log_metrics({"r2": 0.5}, split="train")
    with project.run(
        "price-model", data="0123.efgh", params={"alpha": 0.1}, interface=WIDER, code=["train.py"]
    ) as run:
        run.log_metrics({"r2": 0.5, "rmse": 55.0}, split="test")
    project.close()
    return path


def cli(capsys: pytest.CaptureFixture[str], root: Path, *args: str) -> tuple[int, str]:
    code = main(["-C", str(root), *args])
    out, err = capsys.readouterr()
    return code, out + err


def test_show_explains_the_version_part_by_part(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = cli(capsys, root, "show", "price-model@0.0.1-0123.abcd")
    assert code == 0, out
    for part, value in (("Y", "0"), ("Z", "1"), ("DATA", "0123"), ("SPLIT", "abcd")):
        assert re.search(rf"^{part} +{value} ", out, re.M), part
    # metrics per split: the median over the three runs with its spread and n
    assert re.search(r"^r2 \* +test +0\.43 +0\.4 … 0\.46 +3$", out, re.M), out
    assert re.search(r"^rmse +test +59 +58 … 60 +3$", out, re.M)
    assert "alpha" in out and "0.5" in out
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert re.search(rf"commit +{commit} +main +clean", out)
    assert "SELECT * FROM patients" in out and "sql from warehouse" in out
    assert "by key patient_id, train 0.8 / valid 0.1 / test 0.1" in out
    assert re.search(r"train +\d{3} rows +price_model__0123__abcd__train", out)
    assert "serving run  tr2" in out and "runs: tr0 tr1 tr2" in out


def test_show_json_carries_the_same(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out = cli(capsys, root, "show", "price-model@0.0.1-0123.abcd", "--json")
    d = json.loads(out)
    assert [p["part"] for p in d["parts"]] == ["name", "X", "Y", "Z", "DATA", "SPLIT"]
    r2 = d["metrics"]["test"]["r2"]
    assert (r2["median"], r2["min"], r2["max"], r2["n"]) == (0.43, 0.40, 0.46, 3)
    assert r2["runs"] == {"tr0": 0.40, "tr1": 0.46, "tr2": 0.43}
    assert d["code"]["branch"] == "main" and d["code"]["clean"] is True
    assert d["params"] == {"alpha": 0.5}
    lineage = d["data_lineage"]
    assert lineage["retrieval"]["sql"] == "SELECT * FROM patients"
    assert lineage["stored"]["spec"]["column"] == "patient_id"
    assert sum(p["rows"] for p in lineage["stored"]["parts"]) == 442
    assert d["release"] == {
        "state": "prerelease",
        "generation": 0,
        "released_from": None,
        "released_as": [],
        "aliases": [],
    }
    assert d["interface"]["inputs"][0]["name"] == "age" and d["logic"]


def test_versions_json_fills_interface_and_logic(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out = cli(capsys, root, "versions", "price-model", "--json")
    listed = json.loads(out)
    assert len(listed) == 2
    assert all(v["interface"] and v["logic"] for v in listed)
    assert [len(v["interface"]["inputs"]) for v in listed] == [1, 2]


def test_versions_of_a_state_with_none_says_so(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = cli(capsys, root, "versions", "price-model", "--state", "released")
    assert code == 0 and out.strip() == "price-model has no released versions"


def test_diff_is_aligned_with_a_headline_naming_every_change(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = cli(
        capsys, root, "diff", "price-model@0.0.1-0123.abcd", "price-model@0.1.0-0123.efgh"
    )
    assert code == 0, out
    assert out.splitlines()[1] == "changed: interface, logic (alpha), split"
    assert "{'" not in out and "None" not in out  # no Python reprs
    assert re.search(r"^  input +bmi +added ", out, re.M)
    assert re.search(r"^  alpha +0\.5 +0\.1 +-0\.4$", out, re.M)
    assert re.search(r"^  SPLIT +abcd +efgh$", out, re.M)
    assert re.search(r'^  split salt +"" +2$', out, re.M)  # the split spec, key by key
    code, out = cli(
        capsys, root, "diff", "price-model@0.0.1-0123.abcd", "price-model@0.1.0-0123.efgh", "--json"
    )
    assert json.loads(out)["headline"] == ["interface", "logic (alpha)", "split"]


def test_versions_show_the_primary_metric_median_with_n(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = cli(capsys, root, "versions", "price-model")
    assert code == 0 and out.splitlines()[0].rstrip().endswith("R2")
    assert re.search(r"^0\.0\.1-0123\.abcd .* 0\.43 \(test, n=3\)$", out, re.M), out
    assert re.search(r"^0\.1\.0-0123\.efgh .* 0\.5 \(test, n=1\)$", out, re.M), out


def test_show_diff_and_versions_need_no_server_libraries(root: Path) -> None:
    import sys

    code = (
        "import sys\n"
        "from dmv.cli import main\n"
        f"for args in (['show', 'price-model@0.0.1'], ['versions', 'price-model'],"
        " ['diff', 'price-model@0.0.1', 'price-model@0.1.0'], ['tree', 'price-model']):\n"
        f"    assert main(['-C', {str(root)!r}, *args]) == 0\n"
        "print(sorted(m for m in ('fastapi', 'jinja2', 'starlette') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
