"""DATA and SPLIT ids: derived, stable, lengthened on collision, never counters."""

from __future__ import annotations

import datetime as dt

import pytest

import data_conftest
import dmv
from dmv.data.ids import (
    data_id_for,
    definition_digest,
    normalise_sql,
    split_id_for,
)
from dmv.data.sources import Retrieval, Source
from dmv.data.warehouse import Warehouse
from dmv.errors import ConflictError, InvalidInput, VersionError
from dmv.version import check_data_id

duck = data_conftest.duck


def _definition(sql: str, url: str = "postgresql://u:pw@h/db") -> dict[str, object]:
    return Retrieval(Source.from_url(url), sql).definition()


def test_same_definition_same_id_whatever_the_whitespace() -> None:
    a = data_id_for(_definition("SELECT a,  b\nFROM t -- note\nWHERE x = 'a  b';"))
    b = data_id_for(
        _definition(
            "select a, b from t where x = 'a  b'".replace("select", "SELECT")
            .replace("from", "FROM")
            .replace("where", "WHERE")
        )
    )
    assert a == b and len(a) == 6 and check_data_id(a) == a
    assert (
        normalise_sql("SELECT 'a  b'  ,  \"c  d\" /* x */ FROM t ;")
        == "SELECT 'a  b' , \"c  d\" FROM t"
    )


def test_different_definitions_get_different_ids() -> None:
    base = data_id_for(_definition("SELECT a FROM t"))
    assert data_id_for(_definition("SELECT b FROM t")) != base
    assert data_id_for(_definition("SELECT a FROM t", "postgresql://u@other/db")) != base
    with_params = Retrieval(
        Source.from_url("postgresql://h/db"), "SELECT %(x)s", {"x": 1}
    ).definition()
    other_params = Retrieval(
        Source.from_url("postgresql://h/db"), "SELECT %(x)s", {"x": 2}
    ).definition()
    assert data_id_for(with_params) != data_id_for(other_params)


def test_definition_holds_no_credentials() -> None:
    definition = _definition("SELECT 1", "postgresql://u:topsecret@h/db?token=abc")
    text = repr(definition)
    assert "topsecret" not in text and "abc" not in text
    # the password does not change the id either
    assert data_id_for(definition) == data_id_for(
        _definition("SELECT 1", "postgresql://u:other@h/db")
    )


def test_collision_lengthens_and_the_same_definition_keeps_its_id() -> None:
    definition = _definition("SELECT 1")
    short = data_id_for(definition)
    digest = definition_digest(definition)
    assert data_id_for(definition, existing={short: digest}) == short
    longer = data_id_for(definition, existing={short: "another definition"})
    assert len(longer) == 7 and longer.startswith(short)
    assert len(data_id_for(definition, existing={short, longer})) == 8


def test_timestamp_and_explicit_ids() -> None:
    when = dt.datetime(2026, 11, 26, 4, 28, 7, tzinfo=dt.UTC)
    definition = _definition("SELECT 1")
    assert data_id_for(definition, "timestamp", now=when) == "20261126t042807"
    assert (
        data_id_for(definition, "timestamp", existing={"20261126t042807"}, now=when)
        == "20261126t042808"
    )
    assert data_id_for(definition, explicit="0123") == "0123"
    with pytest.raises(InvalidInput):
        data_id_for(definition, explicit="Bad-Id")
    with pytest.raises(ConflictError):
        data_id_for(definition, existing={"0123": "another"}, explicit="0123")
    with pytest.raises(InvalidInput):
        data_id_for(definition, style="counter")  # type: ignore[arg-type]


def test_split_ids_follow_content_and_spec() -> None:
    spec = {"by": "key", "column": "u", "ratios": {"train": 0.8, "valid": 0.1, "test": 0.1}}
    a = split_id_for("md5sum-v1:10:00000000000000ff", spec)
    assert a == split_id_for("md5sum-v1:10:00000000000000ff", dict(spec))
    assert a != split_id_for("md5sum-v1:10:00000000000000fe", spec)
    assert a != split_id_for("md5sum-v1:10:00000000000000ff", {**spec, "salt": "x"})
    assert check_data_id(a, "SPLIT") == a


def test_warehouse_definition_uses_identity(duck: Warehouse) -> None:
    definition = Retrieval(Source.from_url(None, duck), "SELECT 1").definition()
    assert definition == {"kind": "sql", "source": "warehouse", "sql": "SELECT 1", "params": {}}


def test_a_split_named_without_its_data_says_the_form_and_where_to_find_it(
    project: dmv.Project, capsys: pytest.CaptureFixture[str]
) -> None:
    from dmv.cli import main
    from dmv.version import Version, parse_data_split

    with pytest.raises(InvalidInput, match=r"must be DATA\.SPLIT") as caught:
        parse_data_split("j5sko1")
    assert "0123.abcd" in (caught.value.hint or "")
    assert "dmv data list MODEL" in (caught.value.hint or "")
    with pytest.raises(VersionError) as bad_version:
        Version.parse("m 0.1.0-j5sko1")
    assert "dmv data list MODEL" in (bad_version.value.hint or "")
    assert main(["-C", str(project.root), "data", "check", "m", "j5sko1"]) == 2
    err = capsys.readouterr().err
    assert "must be DATA.SPLIT" in err and "hint:" in err and "dmv data list" in err
