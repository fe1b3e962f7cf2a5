"""The web UI: pages through the in-process client, and in Debian's Chromium.

One real project is built once for the module: iris classifiers trained with
scikit-learn and versioned exactly as ``seed/diagram1.png`` draws it
(experiments; 0.0.1 → 0.0.2 logic → 0.1.0 interface → 0.1.0-0123.efgh data, two
runs on the last; released as 1.1.0-0123.efgh with the alias ``production``),
plus a second, small model with a deprecated version for the filters.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sklearn")

import dmv
from dmv.reports.tree_layout import change_between
from dmv.server.ui import create_router

MODEL = "iris-model"
SMALL = "iris-small"
FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).parent / "screenshots"
TRAIN_PY = "# the training code of the iris models\nSEED = 0\n"


# -- the project ------------------------------------------------------------------


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", *args],
        cwd=root,
        check=True,
        capture_output=True,
        env={
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.org",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.org",
            "HOME": str(root),
            "PATH": "/usr/bin:/bin",
        },
    )


def build_project(root: Path) -> dmv.Project:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    project = dmv.init(root)
    code: list[str] = []
    if shutil.which("git"):
        (root / "train.py").write_text(TRAIN_PY, encoding="utf-8")
        _git(root, "init", "-q", "-b", "main")
        _git(root, "add", "-A")
        _git(root, "commit", "-q", "-m", "training code")
        code = ["train.py"]
    project.create_model(
        MODEL,
        purpose="tell iris species apart",
        function="classification",
        primary_metric="accuracy",
    )
    project.create_model(SMALL, purpose="a smaller try", function="classification")
    frame = load_iris(as_frame=True).frame
    import duckdb

    with duckdb.connect(project.config.location("warehouse")) as con:
        con.register("frame", frame.assign(flower_id=range(len(frame))))
        con.execute("CREATE TABLE iris AS SELECT * FROM frame")
    for model, data, splits in ((MODEL, "0123", ("abcd", "efgh")), (SMALL, "0456", ("aaaa",))):
        project.data_query(model, sql="SELECT * FROM iris", id=data)
        for salt, split in enumerate(splits):
            project.data_split(model, data, by="key:flower_id", salt=str(salt), id=split)

    def train(model: str, data: str, c: float, cols: list[str], experiment: bool = False) -> Any:
        if experiment:
            block = project.experiment(model, data=data, params={"C": c}, code=code)
        else:
            block = project.run(model, data=data, params={"C": c}, code=code)
        with block as run:
            train_rows, test_rows = run.dataset("train"), run.dataset("test")
            clf = LogisticRegression(C=c, max_iter=500).fit(train_rows[cols], train_rows["target"])
            metric = "accuracy" if model == MODEL else "f1"
            run.log_metrics({metric: clf.score(train_rows[cols], train_rows["target"])}, "train")
            run.log_metrics({metric: clf.score(test_rows[cols], test_rows["target"])}, "test")
            run.log_model(clf, sample_input=train_rows[cols].head(5))
        return run

    train(MODEL, "0123.abcd", 1.0, FEATURES, experiment=True)
    train(MODEL, "0123.abcd", 0.3, FEATURES, experiment=True)
    train(MODEL, "0123.abcd", 1.0, FEATURES)  # 0.0.1-0123.abcd
    train(MODEL, "0123.abcd", 0.5, FEATURES)  # 0.0.2: a hyperparameter changed
    train(MODEL, "0123.abcd", 0.5, FEATURES[:3])  # 0.1.0: one input fewer
    train(MODEL, "0123.efgh", 0.5, FEATURES[:3])  # 0.1.0-0123.efgh: a new split
    train(MODEL, "0123.efgh", 0.5, FEATURES[:3])  # its tr1: training noise
    project.release(f"{MODEL}@0.1.0-0123.efgh")
    project.set_alias(f"{MODEL}@1.1.0-0123.efgh", "production")
    train(SMALL, "0456.aaaa", 1.0, FEATURES[:2])
    train(SMALL, "0456.aaaa", 2.0, FEATURES[:2])
    project.deprecate(f"{SMALL}@0.0.1-0456.aaaa")
    return project


@pytest.fixture(scope="module")
def ui_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dmv.Project]:
    project = build_project(tmp_path_factory.mktemp("ui") / "proj")
    yield project
    project.close()


def make_app(project: dmv.Project) -> Any:
    from fastapi import FastAPI

    app = FastAPI()
    app.include_router(create_router(project))
    return app


@pytest.fixture(scope="module")
def client(ui_project: dmv.Project) -> Any:
    from fastapi.testclient import TestClient

    return TestClient(make_app(ui_project))


# -- reading pages -----------------------------------------------------------------


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text inside tags of interest."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))


def tags(html: str, name: str | None = None, **attrs: str) -> list[dict[str, str]]:
    parser = Tags()
    parser.feed(html)
    return [
        a
        for t, a in parser.tags
        if (name is None or t == name)
        and all(a.get(k.rstrip("_").replace("_", "-")) == v for k, v in attrs.items())
    ]


def arrows(html: str) -> set[tuple[str, str, str]]:
    """The labelled arrows of a version tree: (from, change, to)."""
    return {
        (a["data-from"], a["data-change"], a["data-to"])
        for a in tags(html, "text")
        if "data-change" in a
    }


def boxes(html: str) -> dict[str, dict[str, float]]:
    """Each version box's rectangle, by its number."""
    out = {}
    for m in re.finditer(r'data-version="([^"]+)">.*?<rect x="([\d.]+)" y="([\d.]+)"', html, re.S):
        out[m.group(1)] = {"x": float(m.group(2)), "y": float(m.group(3))}
    return out


EXPECTED_ARROWS = {
    ("0.0.1-0123.abcd", "logic", "0.0.2-0123.abcd"),
    ("0.0.2-0123.abcd", "interface", "0.1.0-0123.abcd"),
    ("0.1.0-0123.abcd", "data", "0.1.0-0123.efgh"),
    ("0.1.0-0123.efgh", "release", "1.1.0-0123.efgh"),
}


# -- pure parts ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "change"),
    [
        ("0.0.1-0123.abcd", "0.0.2-0123.abcd", "logic"),
        ("0.0.2-0123.abcd", "0.1.0-0123.abcd", "interface"),
        ("0.1.0-0123.abcd", "0.1.0-0123.efgh", "data"),
        ("0.1.0-0123.abcd", "0.1.0-0124.abcd", "data"),
        ("0.0.1-0123.abcd", "0.0.2-0123.efgh", "logic+data"),
        ("0.1.3-0123.abcd", "0.2.0-0999.abcd", "interface+data"),
        ("0.1.0-0123.efgh", "1.1.0-0123.efgh", "release"),
        ("0.0.1-0123.abcd", "0.0.1-0123.abcd", ""),
    ],
)
def test_change_between_consecutive_prereleases(a: str, b: str, change: str) -> None:
    parse = dmv.Version.parse_number
    assert change_between(parse("m", a), parse("m", b)) == change


def _info(number: str, created_at: float = 0.0, **fields: Any) -> Any:
    from dmv.registry.records import VersionInfo

    version = dmv.Version.parse_number("m", number)
    state = "released" if version.x else "prerelease"
    return VersionInfo(version, state, created_at, **fields)


def test_layout_puts_interfaces_in_rows_data_below_and_releases_in_generations() -> None:
    from dmv.reports.tree import build_tree
    from dmv.reports.tree_layout import layout

    versions = [
        _info("0.0.1-a.b", created_at=1),
        _info("0.0.2-a.b", created_at=2),
        _info("0.0.2-a.c", created_at=3),
        _info("0.1.0-a.c", created_at=4),
        _info("1.0.2-a.c", created_at=5, released_from="0.0.2-a.c"),
        _info("2.0.2-a.c", created_at=6, released_from="0.0.2-a.c"),
    ]
    tree = layout(build_tree("m", versions), {})
    at = {b.version: b for b in tree.boxes}
    assert at["0.0.1-a.b"].y == at["0.0.2-a.b"].y < at["0.0.2-a.c"].y  # data branches below
    assert at["0.0.1-a.b"].x < at["0.0.2-a.b"].x < at["0.0.2-a.c"].x  # …indented
    assert at["0.0.2-a.c"].x < at["0.0.2-a.b"].x + at["0.0.2-a.b"].w
    assert at["0.1.0-a.c"].y > at["0.0.2-a.c"].y  # a new interface: a new row
    assert at["0.1.0-a.c"].y < at["1.0.2-a.c"].y < at["2.0.2-a.c"].y  # one row per generation
    assert {(a.source, a.change, a.target) for a in tree.arrows} == {
        ("0.0.1-a.b", "logic", "0.0.2-a.b"),
        ("0.0.2-a.b", "data", "0.0.2-a.c"),
        ("0.0.2-a.c", "interface", "0.1.0-a.c"),
        ("0.0.2-a.c", "release", "1.0.2-a.c"),
        ("0.0.2-a.c", "release", "2.0.2-a.c"),
    }
    assert [s.title for s in tree.bands] == ["interface 0", "interface 1", "release 1", "release 2"]
    assert [s.empty for s in tree.stages if s.level == 0] == ["no experiment runs", "", ""]


def test_the_trend_leaves_room_for_its_longest_version_label() -> None:
    """Below the plot and right of the last version, as far as the rotated label reaches."""
    from dmv.server.ui._chart import label_room, trend

    def summary(value: float) -> dict[str, dict[str, Any]]:
        runs = {"tr0": value}
        return {
            "test": {"rmse": {"runs": runs, "n": 1, "median": value, "min": value, "max": value}}
        }

    short = "0.0.1-0123.abcd"
    long = "0.1.0-20261126t042812.20261126t042813"
    for labels in ([short, short], [short, long], [long, short]):
        rows = [(v, False, summary(1.0 + i), None, 0) for i, v in enumerate(labels)]
        t = trend(rows, "rmse", "test")
        below = label_room(max(labels, key=len))[1]
        assert t.height >= t.axis_y + 4 + below
        last = t.spreads[-1]
        assert t.width >= last.x + 3 + label_room(last.label)[0]
    assert label_room(long)[1] > 150  # the fixed 78 px margin held 12 characters


def test_sixty_versions_fit_the_page_and_deep_stacks_collapse() -> None:
    from dmv.reports.tree import build_tree
    from dmv.reports.tree_layout import WIDTH, layout

    versions = [
        _info(f"0.{y}.{z}-d{d}.s", created_at=float(100 * y + 10 * z + d))
        for y in range(3)
        for z in range(4)
        for d in range(5)
    ]
    tree = build_tree("m", versions)
    drawing = layout(tree, {})
    assert drawing.width <= WIDTH
    assert drawing.collapsed == 24  # each Y.Z of five keeps its first and two newest
    groups = [b for b in drawing.boxes if b.kind == "group"]
    assert len(groups) == 12 and groups[0].href == "?expand=0.0.0#tree"
    full = layout(tree, {}, expand={"all"})
    assert full.collapsed == 0 and len(full.boxes) == 60 and full.width <= WIDTH


def test_lineage_reads_the_stored_split_and_its_leakage_check(ui_project: dmv.Project) -> None:
    from dmv.server.ui._views import lineage

    version = dmv.Version.parse(f"{MODEL} 1.1.0-0123.efgh")
    out = lineage(ui_project, version)
    stored = ui_project.split_info(version)
    assert out["recorded"] is True
    assert [(p["table"], p["rows"]) for p in out["parts"]] == [
        (p["table"], p["rows"]) for p in stored.parts
    ]
    assert out["parts"][0]["table"] == "iris_model__0123__efgh__train"
    assert out["leakage"]["ok"] is True
    assert out["retrieval"] == {
        "kind": "sql",
        "sql": "SELECT * FROM iris",
        "source": "warehouse",
        "paths": None,
    }
    assert out["rule"].startswith("by key flower_id, train 0.8 / valid 0.1 / test 0.1")
    unknown = lineage(ui_project, dmv.Version.parse(f"{MODEL} 0.0.1-9999.zzzz"))
    assert unknown["recorded"] is False and unknown["parts"][0]["rows"] is None


# -- in-process pages ---------------------------------------------------------------


def test_models_page_lists_models_with_their_versions(client: Any) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert "<title>Models · dmv</title>" in r.text
    row = r.text.split(f'data-model="{MODEL}"')[1].split("</tr>")[0]
    for text in (
        "tell iris species apart",
        "classification",
        "0.1.0-0123.efgh",
        "1.1.0-0123.efgh",
        "@production",
    ):
        assert text in row
    assert f'data-model="{SMALL}"' in r.text
    assert "not released" in r.text.split(f'data-model="{SMALL}"')[1].split("</tr>")[0]


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ("q=small", {SMALL}),
        ("q=PRODUCTION", {MODEL}),  # an alias, any case
        ("q=iris", {MODEL, SMALL}),
        ("q=nothing-like-it", set()),
        ("state=released", {MODEL}),
        ("state=deprecated", {SMALL}),
        ("state=prerelease", {MODEL, SMALL}),
        ("metric=f1", {SMALL}),
        ("metric=accuracy&state=released", {MODEL}),
    ],
)
def test_models_filters_on_the_server(client: Any, query: str, shown: set[str]) -> None:
    r = client.get(f"/?{query}")
    assert r.status_code == 200
    assert {a["data-model"] for a in tags(r.text, "tr") if "data-model" in a} == shown


def test_metric_filter_shows_the_metric_column(client: Any) -> None:
    html = client.get("/?metric=accuracy").text
    assert '<th class="num">accuracy</th>' in html
    cell = re.search(r'<td class="num metric" title="test, 1.1.0-0123.efgh[^"]*">([\d.]+)<', html)
    assert cell is not None and 0.5 < float(cell.group(1)) <= 1.0


def test_unknown_state_is_a_422_page(client: Any) -> None:
    r = client.get("/?state=retired")
    assert r.status_code == 422
    assert "unknown release state" in r.text and "prerelease, released, deprecated" in r.text


def test_model_page_draws_the_version_tree(client: Any) -> None:
    r = client.get(f"/ui/models/{MODEL}")
    assert r.status_code == 200
    html = r.text
    assert f"<title>{MODEL} · dmv</title>" in html
    assert arrows(html) == EXPECTED_ARROWS
    b = boxes(html)
    assert set(b) == {
        "0.0.1-0123.abcd",
        "0.0.2-0123.abcd",
        "0.1.0-0123.abcd",
        "0.1.0-0123.efgh",
        "1.1.0-0123.efgh",
    }
    # one row per interface, logic along it, the new split below, the release lower still
    assert b["0.0.1-0123.abcd"]["y"] == b["0.0.2-0123.abcd"]["y"] < b["0.1.0-0123.abcd"]["y"]
    assert b["0.0.1-0123.abcd"]["x"] < b["0.0.2-0123.abcd"]["x"]
    assert b["0.1.0-0123.abcd"]["y"] < b["0.1.0-0123.efgh"]["y"] < b["1.1.0-0123.efgh"]["y"]
    assert [a["data-experiment"] for a in tags(html, "a") if "data-experiment" in a] == [
        "x.x.x-0123.abcd"
    ]
    assert "ex1, ex2" in html
    for stage in ("Experiment stage", "Development stage", "Production stage"):
        assert stage in html
    # every part of a number has its own colour class, and the legend names them
    assert '<tspan class="p-y">1</tspan>' in html and "SPLIT stored split" in html
    for a in tags(html, "a"):
        if "data-version" in a:
            assert a["href"] == f"/ui/models/{MODEL}/versions/{a['data-version']}"


def test_model_page_lists_versions_with_state_runs_and_aliases(client: Any) -> None:
    html = client.get(f"/ui/models/{MODEL}").text
    rows = {a["data-version"]: a for a in tags(html, "tr") if "data-version" in a}
    assert list(rows) == [
        "0.0.1-0123.abcd",
        "0.0.2-0123.abcd",
        "0.1.0-0123.abcd",
        "0.1.0-0123.efgh",
        "1.1.0-0123.efgh",
    ]
    assert rows["1.1.0-0123.efgh"]["class"] == "state-released"
    efgh = html.split('<tr data-version="0.1.0-0123.efgh"')[1].split("</tr>")[0]
    assert '<td class="num">2</td>' in efgh
    released = html.split('<tr data-version="1.1.0-0123.efgh"')[1].split("</tr>")[0]
    assert "@production" in released and "0.1.0-0123.efgh" in released


def test_model_page_charts_the_primary_metric_across_versions(
    client: Any, ui_project: dmv.Project
) -> None:
    html = client.get(f"/ui/models/{MODEL}").text
    figure = html.split('<figure class="trend"')[1].split("</figure>")[0]
    assert 'data-metric="accuracy" data-split="test"' in figure
    spreads = [a for a in tags(figure, "g") if "data-spread" in a]
    every = [v.version.number for v in ui_project.versions(MODEL)]
    # Only versions measured on the same rows as the newest (split efgh) are drawn, in
    # precedence order; the others are listed with the dmv evaluate that would add them.
    numbers = [n for n in every if n.endswith("efgh")]
    assert [a["data-spread"] for a in spreads] == numbers == ["0.1.0-0123.efgh", "1.1.0-0123.efgh"]
    assert "Compared on the same rows: <code>0123.efgh/test</code>" in html
    others = html.split('<details class="other-rows"')[1].split("</details>")[0]
    for number in every:
        if number not in numbers:
            assert f"dmv evaluate {MODEL}@{number} --on 0123.efgh --part test" in others
    points = {}
    for number in numbers:
        runs = ui_project.runs(f"{MODEL}@{number}")
        values = sorted(r.metrics["test"]["accuracy"] for r in runs)
        points[number] = values
        g = next(a for a in spreads if a["data-spread"] == number)
        assert int(g["data-n"]) == len(values)
        assert float(g["data-median"]) == pytest.approx(statistics.median(values))
    efgh = figure.split('data-spread="0.1.0-0123.efgh"')[1].split("</g>")[0]
    assert efgh.count("<circle") == 2  # a point per run
    released = next(a for a in spreads if a["data-spread"] == "1.1.0-0123.efgh")
    assert "released" in released["class"]
    # a text alternative: the values as a table, and a label on the image
    assert "The values as a table" in figure and 'aria-label="accuracy on test across' in figure
    # the versions table has the metric's median over runs with n
    row = html.split('<tr data-version="0.1.0-0123.efgh"')[1].split("</tr>")[0]
    cell = tags(row, "td", class_="num metric")[0]
    assert cell["data-n"] == "2" and float(cell["data-median"]) == pytest.approx(
        sum(points["0.1.0-0123.efgh"]) / 2
    )


def test_model_page_charts_a_chosen_metric_and_refuses_an_unknown_one(client: Any) -> None:
    r = client.get(f"/ui/models/{MODEL}?metric=accuracy")
    assert r.status_code == 200 and 'data-metric="accuracy"' in r.text
    assert '<option value="accuracy" selected>' in r.text
    r = client.get(f"/ui/models/{MODEL}?metric=nope")
    assert r.status_code == 404 and "recorded: accuracy" in r.text


def test_diff_page_overlays_the_runs_of_both_versions(client: Any) -> None:
    html = client.get(f"/ui/diff?a={MODEL}@0.0.1-0123.abcd&b={MODEL}@1.1.0-0123.efgh").text
    # Measured on different rows (abcd, efgh): never drawn side by side.
    assert "Runs side by side" not in html
    html = client.get(f"/ui/diff?a={MODEL}@0.1.0-0123.efgh&b={MODEL}@1.1.0-0123.efgh").text
    assert "Runs side by side" in html
    overlay = html.split('<div class="overlay">')[1].split("</figure>")[0]
    groups = [a for a in tags(overlay, "g") if "data-spread" in a]
    assert [(g["data-spread"], g["class"].split()[1]) for g in groups] == [
        ("0.1.0-0123.efgh", "series-0"),
        ("1.1.0-0123.efgh", "series-1"),
    ]
    assert [g["data-n"] for g in groups] == ["2", "2"]


def test_version_page_shows_components_interface_lineage_and_runs(
    client: Any, ui_project: dmv.Project
) -> None:
    info = ui_project.show(f"{MODEL}@0.1.0-0123.efgh")
    r = client.get(f"/ui/models/{MODEL}/versions/0.1.0-0123.efgh")
    assert r.status_code == 200
    html = r.text
    assert f"<title>{MODEL} 0.1.0-0123.efgh · dmv</title>" in html
    assert info.interface_fp and info.interface_fp[:27] in html
    assert info.logic_fp and info.logic_fp[:27] in html
    inputs = html.split('data-side="inputs"')[1].split("</table>")[0]
    assert "petal length (cm)" in inputs and "petal width (cm)" not in inputs
    assert "Python" in html and "scikit-learn" in html
    assert "iris_model__0123__efgh__train" in html and "iris_model__0123__efgh__test" in html
    assert "no stored split recorded" in html.lower() or " rows" in html
    assert '<pre class="sql">SELECT * FROM iris</pre>' in html
    assert "by key flower_id" in html
    assert {a["data-run"] for a in tags(html, "tr") if "data-run" in a} >= {"tr0", "tr1"}
    bars = [a for a in tags(html, "rect") if "data-run" in a]
    assert {(a["data-run"], a["data-split"]) for a in bars} == {
        ("tr0", "train"),
        ("tr0", "test"),
        ("tr1", "train"),
        ("tr1", "test"),
    }
    assert "Released as" in html and "1.1.0-0123.efgh" in html
    if shutil.which("git"):
        commits = [a for a in tags(html, "code", class_="commit")]
        assert commits and all(len(a["title"]) == 40 for a in commits)
        assert '<span class="badge good">clean</span>' in html


def test_version_page_resolves_aliases_and_partial_numbers(client: Any) -> None:
    for ref in ("production", "latest", "1.1", "1"):
        r = client.get(f"/ui/models/{MODEL}/versions/{ref}")
        assert r.status_code == 200, ref
        assert f"<title>{MODEL} 1.1.0-0123.efgh · dmv</title>" in r.text
        assert "points here now" in r.text
    r = client.get(f"/ui/models/{MODEL}/versions/1.1.0-0123.efgh")
    assert "Released from" in r.text and "0.1.0-0123.efgh" in r.text


def test_diff_page_highlights_changed_parts(client: Any) -> None:
    r = client.get(f"/ui/diff?a={MODEL}@0.0.1-0123.abcd&b={MODEL}@0.1.0-0123.efgh")
    assert r.status_code == 200
    parts = {a["data-part"]: a["class"] for a in tags(r.text, "tr") if "data-part" in a}
    assert parts == {
        "name": "same",
        "x": "same",
        "y": "changed",
        "z": "changed",
        "data": "same",
        "split": "changed",
    }
    rows = {a["data-row"]: a["class"] for a in tags(r.text, "tr") if "data-row" in a}
    assert rows["interface fingerprint"] == "changed"
    assert rows["logic fingerprint"] == "changed"
    assert rows["C"] == "changed"  # 1.0 → 0.5
    assert rows["input petal width (cm)"] == "changed"  # removed
    # Measured on different splits: the metrics are not put side by side.
    assert "accuracy (test)" not in rows
    assert "not compared: measured on other rows" in rows
    assert 'data-change="interface+data"' in r.text
    # the headline names every component that changed, not only the parts of the number
    assert 'data-headline="interface|logic (C)|split"' in r.text
    assert "Interface changes" in r.text and "removed" in r.text


def test_diff_of_a_release_and_its_prerelease_differs_only_in_release_parts(client: Any) -> None:
    r = client.get(f"/ui/diff?a={MODEL}@0.1.0-0123.efgh&b={MODEL}@production")
    parts = {a["data-part"]: a["class"] for a in tags(r.text, "tr") if "data-part" in a}
    assert [p for p, c in parts.items() if c == "changed"] == ["x"]
    assert 'data-change="release"' in r.text


def test_a_model_without_versions_has_an_empty_tree(project: dmv.Project) -> None:
    from fastapi.testclient import TestClient

    project.create_model("empty-one")
    html = TestClient(make_app(project)).get("/ui/models/empty-one").text
    assert "no prerelease yet" in html and "nothing released" in html
    assert arrows(html) == set() and boxes(html) == {}
    other = dmv.init(project.root / "other")
    try:
        assert "No models yet" in TestClient(make_app(other)).get("/").text
    finally:
        other.close()


def test_diff_form_without_refs(client: Any) -> None:
    r = client.get("/ui/diff")
    assert r.status_code == 200 and 'name="a"' in r.text and 'name="b"' in r.text


@pytest.mark.parametrize(
    ("url", "status", "message"),
    [
        ("/ui/models/no-such-model", 404, "no-such-model"),
        (f"/ui/models/{MODEL}/versions/9.9.9-0123.abcd", 404, "does not exist"),
        (f"/ui/models/{MODEL}/versions/staging", 404, "has no alias"),
        (f"/ui/models/{MODEL}/versions/01.2", 422, "leading zero"),
        ("/ui/models/Bad_Name", 422, "Bad_Name"),
        (f"/ui/diff?a={MODEL}@0.0.1-0123.abcd&b=", 422, "is empty"),
        (f"/ui/diff?a={MODEL}&b={MODEL}@latest", 422, "no &#39;@&#39;"),
        ("/ui/static/secret.py", 404, "no static file"),
    ],
)
def test_errors_are_friendly_pages(client: Any, url: str, status: int, message: str) -> None:
    r = client.get(url)
    assert r.status_code == status
    assert "text/html" in r.headers["content-type"]
    assert message in r.text
    assert f'<p class="status">{status}</p>' in r.text
    assert "Traceback" not in r.text


def test_error_page_carries_the_hint(client: Any) -> None:
    r = client.get(f"/ui/models/{MODEL}/versions/9.9.9-0123.abcd")
    assert '<p class="hint">' in r.text and f"dmv versions {MODEL}" in r.text


def login_form_token(client: Any) -> str:
    """The CSRF token of a fresh login form (its cookie is now in ``client``)."""
    html = client.get("/login").text
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def post_login(client: Any, token: str, next_: str = "/") -> Any:
    from urllib.parse import urlencode

    form = urlencode({"token": token, "next": next_, "csrf_token": login_form_token(client)})
    return client.post(
        "/login",
        content=form,
        headers={"content-type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )


def test_login_sets_an_httponly_cookie_and_logout_clears_it(client: Any) -> None:
    assert 'name="token"' in client.get("/login").text
    r = post_login(client, "dmv_abc", "/ui/models/iris-model")
    assert r.status_code == 303 and r.headers["location"] == "/ui/models/iris-model"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("dmv_token=dmv_abc") and "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()
    # Logging out is a POST carrying the session's CSRF token; a GET only shows the button.
    page = client.get("/logout")
    assert page.status_code == 200 and "dmv_token" not in page.headers.get("set-cookie", "")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found and found.group(1)
    forged = client.post(
        "/logout",
        content="csrf_token=forged",
        headers={"content-type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert forged.status_code == 403 and "dmv_token" not in forged.headers.get("set-cookie", "")
    r = client.post(
        "/logout",
        content=f"csrf_token={found.group(1)}",
        headers={"content-type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and 'dmv_token=""' in r.headers["set-cookie"]
    client.cookies.clear()


def test_login_needs_the_token_of_its_own_form(client: Any) -> None:
    """Login CSRF: a form posted from elsewhere (no double-submit cookie) logs nobody in."""
    client.cookies.clear()
    r = client.post(
        "/login",
        content="token=dmv_attacker&next=%2F&csrf_token=guessed",
        headers={"content-type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert r.status_code == 403 and "dmv_token=" not in r.headers.get("set-cookie", "")
    assert "expired" in r.text
    client.cookies.clear()


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil"])
def test_login_never_redirects_off_site(client: Any, target: str) -> None:
    r = post_login(client, "dmv_abc", target)
    assert r.headers["location"] == "/"
    client.cookies.clear()


def test_login_without_a_token_asks_again(client: Any) -> None:
    r = post_login(client, "")
    assert r.status_code == 422 and "dmv token create" in r.text
    client.cookies.clear()


def test_stylesheet_is_served_by_dmv(client: Any) -> None:
    r = client.get("/ui/static/app.css")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/css")
    assert "--c-split" in r.text
    html = client.get("/").text
    assert "http://" not in html and "https://" not in html  # nothing from elsewhere


# -- through the whole server ---------------------------------------------------------

create_app: Any = getattr(pytest.importorskip("dmv.server"), "create_app", None)
needs_app = pytest.mark.skipif(create_app is None, reason="dmv.server.create_app is not there yet")


@needs_app
def test_the_server_app_serves_the_ui(ui_project: dmv.Project) -> None:
    from fastapi.testclient import TestClient

    with TestClient(create_app(ui_project)) as c:
        assert c.get("/").status_code == 200
        assert arrows(c.get(f"/ui/models/{MODEL}").text) == EXPECTED_ARROWS
        assert c.get(f"/ui/models/{MODEL}/versions/nope").status_code == 404


@needs_app
def test_with_tokens_the_ui_needs_a_read_token(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    tokens = pytest.importorskip("dmv.tokens")
    project = dmv.init(tmp_path / "p")
    project.create_model("one")
    project.create_model("two")
    try:
        secret, _ = tokens.create_token(project.registry, "reader", "read", model="one")
        with TestClient(create_app(project)) as c:
            r = c.get("/ui/models/one")
            # A person gets the login form itself, not advice to send a header.
            assert r.status_code == 401 and 'name="token"' in r.text
            assert "Authorization" not in r.text
            assert 'name="next" value="/ui/models/one"' in r.text
            bad = post_login(c, "dmv_wrong")
            assert bad.status_code == 401 and "dmv_token=" not in bad.headers.get("set-cookie", "")
            post_login(c, secret)
            assert c.get("/ui/models/one").status_code == 200
            assert c.get("/ui/models/two").status_code == 403
            listed = {a["data-model"] for a in tags(c.get("/").text, "tr") if "data-model" in a}
            assert listed == {"one"}
    finally:
        project.close()


# -- in the browser ------------------------------------------------------------------------

browser_mark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"Debian's Chromium is not installed at {CHROMIUM}"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def serving(project: dmv.Project) -> Iterator[str]:
    """The project's web UI under a real uvicorn on loopback, for the browser; its URL."""
    uvicorn = pytest.importorskip("uvicorn")
    app = create_app(project) if create_app is not None else make_app(project)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the UI server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def server_url(ui_project: dmv.Project) -> Iterator[str]:
    with serving(ui_project) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Debian's Chromium is not installed at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, server_url: str) -> Iterator[Any]:
    context = browser.new_context(base_url=server_url, viewport={"width": 1400, "height": 900})
    p = context.new_page()
    p.set_default_timeout(10_000)
    external: list[str] = []
    p.on(
        "request", lambda req: None if req.url.startswith(server_url) else external.append(req.url)
    )
    yield p
    context.close()
    assert not external, f"the page loaded files from elsewhere: {external}"


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@browser_mark
@pytest.mark.browser
def test_browse_from_models_to_a_model_to_a_version(page: Any) -> None:
    response = page.goto("/")
    assert response.status == 200
    assert page.title() == "Models · dmv"
    shot(page, "models")
    page.click(f"a.model-link:text-is('{MODEL}')")
    page.wait_for_url(f"**/ui/models/{MODEL}")
    assert page.title() == f"{MODEL} · dmv"
    tree = page.locator("svg.tree")
    assert tree.is_visible()
    shot(page, "model-tree")
    page.locator('svg.tree a[data-version="0.1.0-0123.efgh"]').click()
    page.wait_for_url(f"**/ui/models/{MODEL}/versions/0.1.0-0123.efgh")
    assert page.locator("h1").inner_text().replace("\n", " ") == f"{MODEL} 0.1.0-0123.efgh"
    assert page.locator("figure.chart rect.bar").count() == 4
    shot(page, "version")
    page.click(".facts a[href$='/versions/1.1.0-0123.efgh']")
    page.wait_for_url("**/versions/1.1.0-0123.efgh")
    assert "production" in page.locator(".subtitle").inner_text()


@browser_mark
@pytest.mark.browser
def test_the_tree_in_the_browser_has_the_right_arrows(page: Any) -> None:
    page.goto(f"/ui/models/{MODEL}")
    labels = page.locator("svg.tree text[data-change]")
    label_text = "el => el.lastChild.textContent"  # after the <title> tooltip
    seen = {
        (
            labels.nth(i).get_attribute("data-from"),
            labels.nth(i).evaluate(label_text),
            labels.nth(i).get_attribute("data-to"),
        )
        for i in range(labels.count())
    }
    assert seen == EXPECTED_ARROWS

    def box(v: str) -> Any:
        return page.locator(f'svg.tree a[data-version="{v}"] rect').bounding_box()

    # Each label sits just above the box its arrow leads to; releases drop below.
    for src, change, dst in EXPECTED_ARROWS:
        label = page.locator(f'svg.tree text[data-change="{change}"]').bounding_box()
        a, b = box(src), box(dst)
        assert b["y"] - 20 < label["y"] < b["y"]
        assert b["x"] - 1 <= label["x"] < b["x"] + b["width"]
        if change == "release":
            assert b["y"] > a["y"] + a["height"]
    assert page.evaluate("() => document.documentElement.scrollWidth <= innerWidth")


@browser_mark
@pytest.mark.browser
def test_search_and_filter_in_the_browser(page: Any) -> None:
    page.goto("/")
    page.fill("input[name=q]", "production")
    page.press("input[name=q]", "Enter")
    page.wait_for_url("**/?q=production**")
    assert page.locator("tr[data-model]").all_inner_texts()[0].startswith(MODEL)
    assert page.locator("tr[data-model]").count() == 1
    page.goto("/")
    page.select_option("select[name=state]", "deprecated")
    page.click("button:text('Filter')")
    page.wait_for_url("**state=deprecated**")
    assert [r.get_attribute("data-model") for r in page.locator("tr[data-model]").all()] == [SMALL]
    page.goto("/?metric=accuracy")
    assert page.locator("td.metric").count() == 1
    shot(page, "models-filtered")


@browser_mark
@pytest.mark.browser
def test_diff_page_in_the_browser(page: Any) -> None:
    page.goto(f"/ui/models/{MODEL}")
    row = page.locator('tr[data-version="0.1.0-0123.efgh"]')
    row.locator("a:text('diff with previous')").click()
    page.wait_for_url("**/ui/diff?**")
    changed = page.locator('tr[data-part="split"]')
    same = page.locator('tr[data-part="x"]')
    assert changed.get_attribute("class") == "changed"
    bg = "el => getComputedStyle(el.querySelectorAll('td')[1]).backgroundColor"
    assert changed.evaluate(bg) != same.evaluate(bg)  # highlighted
    assert page.locator('tr.changed[data-part="data"]').count() == 0
    shot(page, "diff")


@browser_mark
@pytest.mark.browser
def test_a_bad_ref_shows_the_error_page(page: Any) -> None:
    response = page.goto(f"/ui/models/{MODEL}/versions/7.7.7-0123.abcd")
    assert response.status == 404
    assert "does not exist" in page.locator("h1").inner_text()
    assert page.locator(".hint").is_visible()
    shot(page, "error-404")


# -- long histories in the browser --------------------------------------------------------

HISTORY_SIZES = (5, 20, 60)


def build_history(root: Path) -> dmv.Project:
    """Models with 5, 20 and 60 real derived versions: three interfaces, several stored
    splits (the 60 has one logic trained on six, so its stack collapses), retrained
    versions (training noise as runs), and for the larger two three release generations."""
    import duckdb

    project = dmv.init(root, allow_dirty=True)
    with duckdb.connect(project.config.location("warehouse")) as con:
        con.execute("CREATE TABLE rows AS SELECT range AS id, range % 7 AS v FROM range(300)")
    splits = ("abcd", "efgh", "ijkl", "mnop", "qrst", "uvwx")
    for size in HISTORY_SIZES:
        model = f"history-{size}"
        project.create_model(model, primary_metric="acc")
        project.data_query(model, sql="SELECT * FROM rows", id="0123")
        deep = size == 60
        for salt, split in enumerate(splits if deep else splits[:3]):
            project.data_split(model, "0123", by="key:id", salt=str(salt), id=split)
        plan = [(0, 0, s) for s in (splits if deep else splits[:3])]
        plan += [
            (y, z, s) for y in range(3) for z in range(7) for s in splits[:3] if (y, z) != (0, 0)
        ]
        for made, (y, z, split) in enumerate(plan[:size], start=1):
            iface = {
                "inputs": [{"name": f"f{i}", "type": "float"} for i in range(y + 1)],
                "outputs": [{"name": "y", "type": "float"}],
            }
            data, params = f"0123.{split}", {"C": z}
            for noise in range(3 if made % 4 == 0 else 1):  # retrained: more runs, one version
                with project.run(model, data=data, params=params, interface=iface) as r:
                    r.log_metrics({"acc": 0.5 + 0.005 * made + 0.01 * noise}, "test")
            if made in (size // 3, 2 * size // 3, size) and size > 5:
                project.release(r.version, major=True)
    return project


@pytest.fixture(scope="module")
def history_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    project = build_history(tmp_path_factory.mktemp("history") / "proj")
    with serving(project) as url:
        yield url
    project.close()


@browser_mark
@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("size", HISTORY_SIZES)
def test_a_long_history_fits_the_page_without_sideways_scrolling(
    browser: Any, history_url: str, size: int
) -> None:
    context = browser.new_context(base_url=history_url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(f"/ui/models/history-{size}")
        tree = page.locator("svg.tree")
        assert tree.is_visible()
        overflow = page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert overflow[0] <= overflow[1], f"the page scrolls sideways: {overflow}"
        box = tree.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 1280
        wrap = page.locator(".tree-wrap").evaluate("el => [el.scrollWidth, el.clientWidth]")
        assert wrap[0] <= wrap[1]
        shown = page.locator("svg.tree a[data-version]").count()
        hidden = int(tree.get_attribute("data-collapsed"))
        total = size + (3 if size > 5 else 0)
        assert shown + hidden == total
        # the text stays readable: the drawing is not shrunk below its own size
        assert box["width"] >= int(tree.get_attribute("width")) - 1
        shot(page, f"tree-{size}")
        assert (hidden > 0) == (size == 60)  # only the 60 has a stack deeper than four
        # the chart compares only the versions measured on the newest one's rows; every
        # other version is listed with the dmv evaluate that would bring it in
        spread = page.locator("figure.trend g[data-spread]")
        others = page.locator("details.other-rows li")
        assert spread.count() >= 1 and others.count() >= 1
        assert spread.count() + others.count() == total
        assert all("dmv evaluate" in t for t in others.all_inner_texts())
        runs = page.locator("figure.trend circle.run").count()
        assert runs > spread.count() if size > 5 else runs >= spread.count()  # retrained
        if hidden:
            page.locator("svg.tree a[data-group]").first.click()
            page.wait_for_url("**expand=**")
            assert page.locator("svg.tree a[data-version]").count() > shown
            assert page.evaluate("() => document.documentElement.scrollWidth <= 1280")
            shot(page, f"tree-{size}-expanded")
    finally:
        context.close()


# -- what a newcomer's data looks like in the browser -------------------------------------

AIRPORTS = [f"{a}{b}{c}" for a in "ABDL" for b in "AEOX" for c in "KLNS"][:60]
FLIGHT_SPLITS = ("abcdef", "20261126t042812")


def build_flights(root: Path) -> dmv.Project:
    """One model with the long labels real ids give (a 6-character SPLIT, a timestamp id)
    and an interface whose category list is long while the input names are short."""
    import duckdb

    project = dmv.init(root, allow_dirty=True)
    with duckdb.connect(project.config.location("warehouse")) as con:
        con.execute(
            "CREATE TABLE flights AS SELECT range AS id, range % 900 AS distance, "
            "range % 7 AS carrier, range % 11 AS delay FROM range(400)"
        )
    project.create_model("flights", primary_metric="rmse", metric_goal="min")
    project.data_query("flights", sql="SELECT * FROM flights", id="0123")
    iface = {
        "inputs": [
            {"name": "distance", "type": "float"},
            {"name": "dest", "type": "enum", "values": AIRPORTS},
            {"name": "carrier", "type": "int"},
            {"name": "bill_length_mm", "type": "float", "nullable": True},
        ],
        "outputs": [{"name": "delay", "type": "float"}],
    }
    for salt, split in enumerate(FLIGHT_SPLITS):
        project.data_split("flights", "0123", by="key:id", salt=str(salt), id=split)
        for z in range(2):
            with project.run(
                "flights", data=f"0123.{split}", params={"z": z}, interface=iface
            ) as r:
                r.log_metrics({"rmse": 3.0 + 0.1 * z + 0.05 * salt}, "test")
    return project


@pytest.fixture(scope="module")
def flights_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    project = build_flights(tmp_path_factory.mktemp("flights") / "proj")
    with serving(project) as url:
        yield url
    project.close()


# Each version label under a chart, as (its box, the chart's box): a label is whole when its
# box lies inside the drawing's.
_LABEL_BOXES = """figure => {
  const svg = figure.querySelector("svg").getBoundingClientRect();
  return [...figure.querySelectorAll("text.vlabel")].map(t => {
    const b = t.getBoundingClientRect();
    return {text: t.textContent, left: b.left - svg.left, top: b.top - svg.top,
            right: svg.right - b.right, bottom: svg.bottom - b.bottom};
  });
}"""


@browser_mark
@pytest.mark.browser
@pytest.mark.parametrize("width", [1280, 800])
def test_the_metric_charts_version_labels_are_whole(
    browser: Any, flights_url: str, width: int
) -> None:
    context = browser.new_context(base_url=flights_url, viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        # the two versions were measured on different splits: the model page charts the
        # newest (the longest label) and lists the other with its dmv evaluate; the diff
        # page does not chart them against each other
        a, b = "flights@0.0.1-0123.abcdef", "flights@0.0.2-0123.20261126t042812"
        for url in ("/ui/models/flights",):
            page.goto(url)
            figures = page.locator("figure.trend")
            assert figures.count() >= 1, url
            labels = [
                lb for i in range(figures.count()) for lb in figures.nth(i).evaluate(_LABEL_BOXES)
            ]
            assert "0.0.2-0123.20261126t042812" in {lb["text"] for lb in labels}
            assert "0.0.1-0123.abcdef" in page.locator("details.other-rows").inner_text()
            cut = [lb for lb in labels if min(lb["left"], lb["top"], lb["right"], lb["bottom"]) < 0]
            assert not cut, f"{url}: labels cut off by the chart's edge: {cut}"
        page.goto(f"/ui/diff?a={a}&b={b}")
        assert "dmv evaluate" in page.content()  # not compared, and how to compare them
        shot(page, f"trend-labels-{width}")
    finally:
        context.close()


# For each word of each input's name: the number of lines its glyphs are drawn on.
_WORD_LINES = """table => [...table.querySelectorAll("tbody td:first-child code")].map(code => {
  const text = code.firstChild;
  const words = [];
  for (const m of text.textContent.matchAll(/\\S+/g)) {
    const range = document.createRange();
    range.setStart(text, m.index);
    range.setEnd(text, m.index + m[0].length);
    const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
    words.push([m[0], tops.size]);
  }
  return words;
})"""


@browser_mark
@pytest.mark.browser
@pytest.mark.parametrize("width", [1280, 900, 420])
def test_interface_input_names_never_break_inside_a_word(
    browser: Any, flights_url: str, width: int
) -> None:
    context = browser.new_context(base_url=flights_url, viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        page.goto("/ui/models/flights/versions/0.0.1-0123.abcdef")
        table = page.locator('table.fields[data-side="inputs"]')
        words = [w for cell in table.evaluate(_WORD_LINES) for w in cell]
        assert [w for w, _ in words] == ["distance", "dest", "carrier", "bill_length_mm"]
        broken = [w for w, lines in words if lines != 1]
        assert not broken, f"input names broken across lines at {width} px: {broken}"
        # the long category list still wraps inside its own cell, not past the page
        assert page.evaluate("() => document.documentElement.scrollWidth <= innerWidth")
        shot(page, f"interface-names-{width}")
    finally:
        context.close()


def test_the_models_page_is_paginated(project: dmv.Project) -> None:
    from fastapi.testclient import TestClient

    for i in range(57):
        project.create_model(f"m-{i:02d}", purpose="paged")
    c = TestClient(make_app(project))
    first = c.get("/?q=m-")
    shown = [a["data-model"] for a in tags(first.text, "tr") if "data-model" in a]
    assert shown == [f"m-{i:02d}" for i in range(50)]
    assert "page 1 of 2" in first.text and 'rel="next" href="/?q=m-&amp;page=2"' in first.text
    second = c.get("/?q=m-&page=2")
    shown = [a["data-model"] for a in tags(second.text, "tr") if "data-model" in a]
    assert shown == [f"m-{i:02d}" for i in range(50, 57)]
    assert 'rel="prev"' in second.text and 'rel="next"' not in second.text
    assert c.get("/?page=3").status_code == 404
    bad = c.get("/?page=0")
    assert bad.status_code == 422 and "not a page number" in bad.text


def test_pages_hold_under_a_strict_content_security_policy(client: Any) -> None:
    """Nothing inline: no scripts, no event handlers, no style attributes or blocks."""
    for url in (
        "/",
        f"/ui/models/{MODEL}",
        f"/ui/models/{MODEL}/versions/0.1.0-0123.efgh",
        f"/ui/diff?a={MODEL}@0.0.1-0123.abcd&b={MODEL}@production",
        "/login",
    ):
        html = client.get(url).text
        assert "<script" not in html and "<style" not in html, url
        for attrs in (a for _, a in _all_tags(html)):
            assert not any(k.startswith("on") or k == "style" for k in attrs), (url, attrs)


def _all_tags(html: str) -> list[tuple[str, dict[str, str]]]:
    parser = Tags()
    parser.feed(html)
    return parser.tags
