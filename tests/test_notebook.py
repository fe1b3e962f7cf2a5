"""What notebooks show: HTML reprs of versions, runs, splits and diffs; versions in pandas."""

from __future__ import annotations

import pandas as pd

import dmv
from conftest import seed_warehouse
from dmv.reprs import Html, diff_html


def test_versions_sort_in_pandas_by_dmv_precedence() -> None:
    df = pd.DataFrame(
        {
            "version": [
                "m 1.10.0-0123.efgh",
                "m 1.2.0-0123.efgh",
                "m 0.0.2-0123.abcd",
                "m 1.2.0-0123.abcd",
                "m 0.0.10-0123.abcd",
            ]
        }
    )
    ordered = sorted(df["version"].map(dmv.Version.parse))
    numbers = [v.number for v in ordered]
    # X, Y, Z numerically (10 after 2), not as text; DATA.SPLIT last.
    assert numbers[:2] == ["0.0.2-0123.abcd", "0.0.10-0123.abcd"]
    assert numbers[-1] == "1.10.0-0123.efgh"
    assert set(numbers[2:4]) == {"1.2.0-0123.abcd", "1.2.0-0123.efgh"}
    refs = df["version"].str.replace(" ", "@").map(dmv.Reference.parse)
    assert refs.map(lambda r: r.name).unique().tolist() == ["m"]


def test_html_reprs_of_version_run_split_and_diffs(project: dmv.Project) -> None:
    from sklearn.linear_model import Ridge

    seed_warehouse(project)
    for alpha in (1.0, 2.0):
        with project.run(
            "price-model", data="0123.abcd", params={"alpha": alpha, "note": "<script>x</script>"}
        ) as run:
            train = run.dataset("train")
            x = train.drop(columns=["target", "patient_id"])
            run.log_model(Ridge(alpha=alpha).fit(x, train["target"]), sample_input=x.head(3))
            run.log_metrics({"r2": 0.5}, split="test")
    a, b = "price-model@0.0.1-0123.abcd", "price-model@0.0.2-0123.abcd"

    page = project.show(a)._repr_html_()
    assert "price-model 0.0.1-0123.abcd" in page and "<table" in page and "Y interface" in page

    run_page = project.runs(a)[0]._repr_html_()
    assert "tr0" in run_page and "r2" in run_page
    assert "<script>" not in run_page and "&lt;script&gt;" in run_page

    split_page = project.split_info("price-model", "0123.abcd")._repr_html_()
    assert "price_model__0123__abcd__train" in split_page and "passed" in split_page

    iface = project.interface_diff(a, b)._repr_html_()
    assert "no change" in iface
    diff = Html(diff_html(project.diff(a, b)))._repr_html_()
    assert "0.0.1-0123.abcd" in diff and "logic" in diff
