"""Export to Parquet and reading parts as pandas or Arrow."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import data_conftest
from data_conftest import load, sample_table
from dmv.data.export import export_part, read_part
from dmv.data.records import SplitSpec
from dmv.data.split import store_split
from dmv.data.warehouse import Warehouse
from dmv.errors import InvalidInput, NotFound

duck = data_conftest.duck


def test_export_and_read_parts(duck: Warehouse, tmp_path: Path) -> None:
    load(duck, "src", sample_table(2000))
    result = store_split(duck, "SELECT * FROM src", SplitSpec("key", "user_id"), "m__e")
    train = result.part("train")
    out = export_part(duck, train.table, tmp_path / "out" / "train.parquet")
    table = pq.read_table(out.path)
    assert out.rows == train.rows == table.num_rows and out.bytes > 0
    assert table.column_names == [c.name for c in train.columns]
    assert not list((tmp_path / "out").glob(".*partial"))
    frame = read_part(duck, train.table)
    assert isinstance(frame, pd.DataFrame) and len(frame) == train.rows
    assert sorted(frame["id"]) == sorted(table.column("id").to_pylist())
    arrow = read_part(duck, result.part("test").table, format="arrow")
    assert isinstance(arrow, pa.Table) and arrow.num_rows == result.part("test").rows


def test_export_errors(duck: Warehouse, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="m__none__train"):
        export_part(duck, "m__none__train", tmp_path / "x.parquet")
    with pytest.raises(InvalidInput):
        read_part(duck, "x; DROP TABLE y")
    load(duck, "t", sample_table(5))
    with pytest.raises(InvalidInput):
        read_part(duck, "t", format="csv")  # type: ignore[arg-type]
