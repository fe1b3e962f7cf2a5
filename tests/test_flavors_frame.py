"""Property: the frame built for serving has exactly the dtypes of the sample input."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from dmv.flavors._frame import FrameSpec, build_frame, json_rows, spec_from_frame
from dmv.interface import infer_interface, validate_rows

CATEGORIES = st.lists(
    st.text("abcxyz", min_size=1, max_size=4), min_size=1, max_size=5, unique=True
)


def _column(kind: str, n: int, draw: Any) -> Any:
    nulls = st.booleans()
    if kind == "int64":
        return np.asarray(draw(st.lists(st.integers(-(2**40), 2**40), min_size=n, max_size=n)))
    if kind == "int32":
        values = draw(st.lists(st.integers(-(2**31), 2**31 - 1), min_size=n, max_size=n))
        return np.asarray(values, dtype="int32")
    if kind == "Int64":
        values = draw(st.lists(st.none() | st.integers(-1000, 1000), min_size=n, max_size=n))
        return pd.array(values, dtype="Int64")
    if kind == "float64":
        finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
        values = draw(
            st.lists(st.none() | finite if draw(nulls) else finite, min_size=n, max_size=n)
        )
        return np.asarray([np.nan if v is None else v for v in values], dtype="float64")
    if kind == "float32":
        values = draw(st.lists(st.floats(-1e6, 1e6, width=32), min_size=n, max_size=n))
        return np.asarray(values, dtype="float32")
    if kind == "bool":
        return np.asarray(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    if kind == "boolean":
        values = draw(st.lists(st.none() | st.booleans(), min_size=n, max_size=n))
        return pd.array(values, dtype="boolean")
    if kind == "category":
        cats = draw(CATEGORIES)
        values = draw(st.lists(st.none() | st.sampled_from(cats), min_size=n, max_size=n))
        return pd.Categorical(values, categories=cats, ordered=draw(st.booleans()))
    if kind == "datetime":
        base = datetime(2020, 1, 1)
        offsets = draw(st.lists(st.integers(0, 10**6), min_size=n, max_size=n))
        stamps = pd.to_datetime([base + timedelta(seconds=o) for o in offsets])
        return stamps.tz_localize("UTC") if draw(st.booleans()) else stamps
    values = draw(st.lists(st.text(max_size=5), min_size=n, max_size=n))
    return pd.Series(values, dtype=object)


KINDS = [
    "int64",
    "int32",
    "Int64",
    "float64",
    "float32",
    "bool",
    "boolean",
    "category",
    "datetime",
    "object",
]


@st.composite
def frames(draw: Any) -> pd.DataFrame:
    n = draw(st.integers(1, 6))
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=6))
    data = {f"c{i}_{kind}": _column(kind, n, draw) for i, kind in enumerate(kinds)}
    return pd.DataFrame(data)


@settings(max_examples=150, deadline=None)
@given(frames())
def test_the_served_frame_has_the_dtypes_of_the_sample(sample: pd.DataFrame) -> None:
    spec = spec_from_frame(sample)
    assert spec is not None
    stored = FrameSpec.from_list(spec.to_list())  # as recorded with the version, in JSON
    rows = json_rows(sample)
    built = build_frame(rows, stored)
    assert list(built.columns) == list(sample.columns)
    assert dict(built.dtypes) == dict(sample.dtypes)
    for name in sample.columns:
        if isinstance(sample[name].dtype, pd.CategoricalDtype):
            assert list(built[name].cat.categories) == list(sample[name].cat.categories)
    pd.testing.assert_frame_equal(built, sample, check_exact=False)


@settings(max_examples=60, deadline=None)
@given(frames())
def test_sample_rows_pass_the_inferred_interface(sample: pd.DataFrame) -> None:
    # What a client sends for the sample is valid input: the frame comes from valid rows.
    non_null = sample.dropna(axis=1, how="all")
    if non_null.empty or any(non_null[c].isna().all() for c in non_null.columns):
        return
    try:
        iface = infer_interface(non_null, np.zeros(len(non_null)))
    except Exception:
        return  # a column whose type cannot be inferred (e.g. only empty strings)
    assert validate_rows(iface, json_rows(non_null)) == []
