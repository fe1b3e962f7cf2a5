"""Streamed reads for training: Arrow batches, the fingerprint proven as they stream."""

from __future__ import annotations

import contextlib

import duckdb
import pyarrow as pa
import pytest

import data_conftest
import dmv
import spark_conftest
from conftest import part_storage, seed_warehouse
from data_conftest import load, sample_table
from dmv.data.records import SplitSpec
from dmv.data.split import store_split
from dmv.data.streamed import StreamedPart
from dmv.data.warehouse import Warehouse
from dmv.errors import IntegrityError, InvalidInput

pg = data_conftest.pg
pg_url = data_conftest.pg_url
spark_url = spark_conftest.spark_url
spark = spark_conftest.spark

TRAIN = "price_model__0123__abcd__train"


@pytest.fixture
def seeded(project: dmv.Project) -> dmv.Project:
    seed_warehouse(project)
    return project


def _tamper(project: dmv.Project) -> None:
    with duckdb.connect(project.config.location("warehouse")) as con:
        rows = part_storage(con, TRAIN)
        con.execute(
            f"UPDATE {rows} SET target = target + 1 WHERE patient_id = "
            f"(SELECT max(patient_id) FROM {TRAIN})"
        )


def test_batches_carry_every_row_of_the_part_in_batch_size_pieces(seeded: dmv.Project) -> None:
    whole = seeded.dataset("price-model", "0123.abcd", "train", format="arrow")
    with seeded.run("price-model", data="0123.abcd") as run:
        stream = run.dataset("train", format="batches", batch_size=50)
        batches = list(stream)
        assert stream.verified
        again = list(stream)  # a second epoch streams (and proves) again
        run.log_model(_fit(pa.Table.from_batches(batches)), sample_input=_x(whole).head(5))
    sizes = [b.num_rows for b in batches]
    assert all(s == 50 for s in sizes[:-1]) and 0 < sizes[-1] <= 50
    assert sum(sizes) == whole.num_rows == sum(b.num_rows for b in again)
    streamed = pa.Table.from_batches(batches)
    assert streamed.column_names == whole.column_names  # no check column leaks out
    assert streamed.sort_by("patient_id").equals(whole.sort_by("patient_id"))
    assert run.id == "tr0" and run.parts_read == ["train"]


def _x(table: pa.Table) -> object:
    return table.drop_columns(["target", "patient_id"]).to_pandas()


def _fit(table: pa.Table) -> object:
    from sklearn.linear_model import LinearRegression

    return LinearRegression().fit(_x(table), table.column("target").to_numpy())


def test_a_tampered_part_fails_the_run_before_its_last_batch(seeded: dmv.Project) -> None:
    _tamper(seeded)
    got = 0
    with pytest.raises(IntegrityError) as err, seeded.run("price-model", data="0123.abcd") as run:
        for batch in run.dataset("train", format="batches", batch_size=64):
            got += batch.num_rows
    recorded = seeded.split_info("price-model", "0123.abcd").table("train")
    assert TRAIN in err.value.message and "its rows changed" in err.value.message
    assert recorded == TRAIN
    # the last batch was held back: the trainer never saw the whole changed part
    rows = next(
        p["rows"]
        for p in seeded.split_info("price-model", "0123.abcd").result["parts"]
        if p["name"] == "train"
    )
    assert 0 < got < rows
    assert seeded.versions("price-model") == []  # nothing registered
    assert [r.status for r in seeded.failed_runs("price-model")] == ["failed"]


def test_a_stream_left_half_read_is_proven_before_the_run_registers(seeded: dmv.Project) -> None:
    _tamper(seeded)
    with (
        pytest.raises(IntegrityError, match=TRAIN),
        seeded.run("price-model", data="0123.abcd") as r,
    ):
        stream = r.dataset("train", format="batches", batch_size=10)
        next(iter(stream))  # one batch, then the trainer stops reading
        r.log_params(epochs=1)
    assert seeded.versions("price-model") == []


def test_batch_size_and_format_are_checked(seeded: dmv.Project) -> None:
    with seeded.experiment("price-model", data="0123.abcd") as run:
        for bad in (0, -1, 2.5, True, 10**9):
            with pytest.raises(InvalidInput, match="batch_size"):
                run.dataset("train", format="batches", batch_size=bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="batch_size"):
            run.dataset("train", format="pandas", batch_size=10)


def test_the_stream_is_a_pytorch_iterable_dataset(seeded: dmv.Project) -> None:
    import torch
    from torch.utils.data import DataLoader, IterableDataset

    with seeded.experiment("price-model", data="0123.abcd") as run:
        ds = run.dataset("train", format="batches", batch_size=100).torch()
        assert isinstance(ds, IterableDataset)
        items = list(DataLoader(ds, batch_size=None))
    assert all(isinstance(i["age"], torch.Tensor) for i in items)
    assert sum(len(i["age"]) for i in items) == sum(
        p["rows"]
        for p in seeded.split_info("price-model", "0123.abcd").result["parts"]
        if p["name"] == "train"
    )
    assert items[0]["age"].dtype == torch.float64


@pytest.mark.postgres
def test_postgres_part_streams_through_a_cursor_and_a_tampered_one_fails(pg: Warehouse) -> None:
    load(pg, "src", sample_table(3000))
    result = store_split(pg, "SELECT * FROM src", SplitSpec("key", "user_id"), "m__d__s")
    part = result.part("train")
    stream = StreamedPart(lambda: contextlib.nullcontext(pg), part, batch_size=256)
    batches = list(stream)
    assert stream.verified and sum(b.num_rows for b in batches) == part.rows
    assert max(b.num_rows for b in batches) == 256
    t = f'"{part.table}"'
    pg.execute(f"UPDATE {t} SET label = label + 1 WHERE id = (SELECT max(id) FROM {t})")
    stream = StreamedPart(lambda: contextlib.nullcontext(pg), part, batch_size=256)
    seen = 0
    with pytest.raises(IntegrityError) as err:
        for b in stream:
            seen += b.num_rows
    assert part.table in err.value.message and part.fingerprint in err.value.message
    assert seen < part.rows and not stream.verified
    with pytest.raises(IntegrityError):
        stream.prove()
    # a fresh stream, never read, is proven in the engine and refused too
    fresh = StreamedPart(lambda: contextlib.nullcontext(pg), part)
    with pytest.raises(IntegrityError):
        fresh.prove()


@pytest.mark.slow
def test_spark_part_streams_over_connect_and_a_tampered_one_fails(spark: Warehouse) -> None:
    load(spark, "events", sample_table(3000))
    result = store_split(spark, "SELECT * FROM events", SplitSpec("key", "user_id"), "m__ds__ss")
    part = result.part("train")
    stream = StreamedPart(lambda: contextlib.nullcontext(spark), part, batch_size=500)
    batches = list(stream)
    assert stream.verified and sum(b.num_rows for b in batches) == part.rows
    assert [b.num_rows for b in batches[:-1]] == [500] * (len(batches) - 1)
    spark.execute(f'INSERT INTO "{part.table}" SELECT * FROM events LIMIT 1')
    stream = StreamedPart(lambda: contextlib.nullcontext(spark), part, batch_size=500)
    with pytest.raises(IntegrityError, match=part.table):
        for _ in stream:
            pass


@pytest.mark.slow
def test_spark_retrieval_statements_honour_source_timeout(spark_url: str) -> None:
    import time

    from dmv.data.engines import open_warehouse
    from dmv.errors import DataError

    wh = open_warehouse(spark_url)
    try:
        wh.retrieval_sandbox(timeout=2)
        started = time.monotonic()
        with pytest.raises(DataError, match="statement timeout after 2 s") as err:
            wh.rows("SELECT sum(id % 7) FROM range(0, 200000000000)")
        assert time.monotonic() - started < 60
        assert err.value.hint is not None and "source_timeout" in err.value.hint
    finally:
        wh.close()
