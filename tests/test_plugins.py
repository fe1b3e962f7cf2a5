"""Backends from other packages: installed through real entry points, held to the Protocols.

The third-party registry, artifact store and warehouse
(``tests/fixtures/thirdparty``) expose exactly the members of
:class:`~dmv.registry.RegistryStore`, :class:`~dmv.artifacts.ArtifactStore` and
:class:`~dmv.data.warehouse.Warehouse`, so the reference scenario running on
them shows that the Protocols are the whole contract.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import dmv
from conftest import seed_warehouse
from dmv.artifacts import BACKENDS as ARTIFACT_BACKENDS
from dmv.artifacts import ArtifactStore, FsspecArtifacts, open_artifacts
from dmv.data.engines import BACKENDS as WAREHOUSE_BACKENDS
from dmv.data.engines import open_warehouse
from dmv.data.engines.duckdb import DuckDBWarehouse, open_duckdb
from dmv.data.engines.postgres import open_postgres
from dmv.data.warehouse import Warehouse
from dmv.errors import ConfigError
from dmv.plugins import Backends, scheme_of
from dmv.registry import Registry, RegistryStore, open_registry
from dmv.registry.backends import BACKENDS as REGISTRY_BACKENDS
from test_scenario import develop, make_repo, train

FIXTURE = Path(__file__).parent / "fixtures" / "thirdparty" / "dmv_thirdparty.py"

ENTRY_POINTS = """\
[dmv.registries]
tpreg = dmv_thirdparty:open_registry
sqlite = dmv_thirdparty:refuse
postgresql = dmv_thirdparty:refuse

[dmv.artifacts]
tpblob = dmv_thirdparty:open_artifacts
file = dmv_thirdparty:refuse
s3 = dmv_thirdparty:refuse
memory = dmv_thirdparty:refuse

[dmv.warehouses]
tpwh = dmv_thirdparty:open_warehouse
duckdb = dmv_thirdparty:refuse
postgresql = dmv_thirdparty:refuse
"""


def install(site: Path, name: str, entry_points: str, module: Path | None = None) -> None:
    """A package installed the way pip leaves one: its module and a dist-info beside it."""
    site.mkdir(parents=True, exist_ok=True)
    if module is not None:
        shutil.copy(module, site / module.name)
    info = site / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)


def _forget() -> None:
    for table in (REGISTRY_BACKENDS, ARTIFACT_BACKENDS, WAREHOUSE_BACKENDS):
        table.refresh()
    sys.modules.pop("dmv_thirdparty", None)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on sys.path holding the third-party package ``thirdparty``."""
    where = tmp_path / "site"
    install(where, "thirdparty", ENTRY_POINTS, FIXTURE)
    monkeypatch.syspath_prepend(str(where))
    _forget()
    yield where
    _forget()


def thirdparty() -> ModuleType:
    import dmv_thirdparty  # type: ignore[import-not-found]

    return dmv_thirdparty  # type: ignore[no-any-return]


def test_the_plugins_expose_exactly_the_protocols(site: Path, tmp_path: Path) -> None:
    registry = open_registry(f"tpreg://{tmp_path / 'reg.db'}")
    store = open_artifacts(f"tpblob://{tmp_path / 'blobs'}")
    tp = thirdparty()
    assert type(registry) is tp.ThirdPartyRegistry and type(store) is tp.ThirdPartyArtifacts
    assert isinstance(registry, RegistryStore) and isinstance(store, ArtifactStore)
    for obj, protocol in ((registry, RegistryStore), (store, ArtifactStore)):
        public = {name for name in dir(obj) if not name.startswith("_")}
        assert public == tp.members(protocol)
    # Nothing beyond the Protocol reaches the backing store.
    with pytest.raises(AttributeError):
        registry.engine  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(AttributeError):
        store.fs  # type: ignore[attr-defined]  # noqa: B018
    blob = store.put_bytes(b"third party")
    assert store.get_bytes(blob) == b"third party" and store.size_of(blob.digest) == blob.size
    assert registry.list_models() == []
    registry.close()


def test_the_warehouse_plugin_exposes_exactly_the_protocol(site: Path, tmp_path: Path) -> None:
    tp = thirdparty()
    with open_warehouse(f"tpwh://{tmp_path / 'wh.duckdb'}") as wh:
        assert type(wh) is tp.ThirdPartyWarehouse and not isinstance(wh, DuckDBWarehouse)
        public = {name for name in dir(wh) if not name.startswith("_")}
        assert public == tp.members(Warehouse)
        assert tp.dunders(Warehouse) == {"__enter__", "__exit__"}
        assert tp.dunders(Warehouse) <= set(vars(type(wh)))
        # Nothing beyond the Protocol reaches the engine behind it.
        with pytest.raises(AttributeError):
            wh.con  # type: ignore[attr-defined]  # noqa: B018
        assert wh.dialect == "duckdb" and wh.url == str(tmp_path / "wh.duckdb")
        wh.execute("CREATE TABLE t AS SELECT 1 AS x")
        assert wh.list_tables() == ["t"] and wh.rows("SELECT x FROM t") == [(1,)]
    assert (tmp_path / "wh.duckdb").is_file()


def test_the_protocols_list_every_call_in_groups() -> None:
    """Each Protocol's docstring names every member it declares, and nothing else."""
    for protocol in (RegistryStore, ArtifactStore):
        named = set((protocol.__doc__ or "").split("``")[1::2])
        declared = {n for n in vars(protocol) if not n.startswith("_")}
        declared |= set(protocol.__annotations__)
        assert named == declared, protocol.__name__


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path)


def test_reference_scenario_on_third_party_backends(site: Path, repo: Path, tmp_path: Path) -> None:
    root = repo
    registry_file, blobs = tmp_path / "tp" / "registry.db", tmp_path / "tp" / "blobs"
    p = dmv.init(root, registry=f"tpreg://{registry_file}", artifacts=f"tpblob://{blobs}")
    try:
        assert type(p.registry).__name__ == "ThirdPartyRegistryStore"
        assert type(p.artifacts).__name__ == "ThirdPartyArtifactStore"
        seed_warehouse(p)
        base = ["age", "bmi", "bp"]
        develop(p, base)
        assert p.show("price-model@0.1.0-0123.abcd").interface_compat == "breaking"
        released = p.release("price-model@0.1.0-0123.efgh")
        assert str(released.version) == "price-model 1.1.0-0123.efgh"
        again = train(p, "0123.efgh", [*base, "s1"], 0.5)  # retrain, nothing changed
        assert again.version is not None and again.version.number == "0.1.0-0123.efgh"
        assert again.id == "tr1"
        assert [v.version.number for v in p.versions("price-model")] == [
            "0.0.1-0123.abcd",
            "0.0.2-0123.abcd",
            "0.1.0-0123.abcd",
            "0.1.0-0123.efgh",
            "1.1.0-0123.efgh",
        ]
        assert [r.id for r in p.runs("price-model@0.1.0-0123.efgh")] == ["tr0", "tr1"]
    finally:
        p.close()
    # Everything went where the plug-ins put it; dmv's own defaults were never opened.
    opened = thirdparty().OPENED
    assert f"tpreg://{registry_file}" in opened and f"tpblob://{blobs}" in opened
    assert registry_file.is_file() and any((blobs / "blobs").iterdir())
    assert not (root / ".dmv" / "registry.db").exists()
    assert not (root / ".dmv" / "artifacts").exists()

    # A fresh process finds the plug-ins through their entry points alone.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path])}
    exe = Path(sys.executable).with_name("dmv")

    def cli(*args: str) -> str:
        done = subprocess.run(
            [str(exe), "-C", str(root), *args], capture_output=True, text=True, env=env
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    listed = json.loads(cli("versions", "price-model", "--json"))
    assert [v["version"] for v in listed][-1] == "1.1.0-0123.efgh"
    shown = json.loads(cli("show", "price-model@1.1.0-0123.efgh", "--json"))
    assert shown["version"] == "1.1.0-0123.efgh"
    assert "1.1.0-0123.efgh" in cli("show", "price-model@latest")


def test_reference_scenario_on_a_third_party_warehouse(
    site: Path, repo: Path, tmp_path: Path
) -> None:
    """Retrieval from a SQLite file, two stored splits, runs reading them, release, retrain:
    every warehouse call goes through the Protocol."""
    import sqlite3

    from sklearn.datasets import load_diabetes

    root = repo
    x, y = load_diabetes(return_X_y=True, as_frame=True)
    source = tmp_path / "clinic.db"
    with sqlite3.connect(source) as con:
        x.assign(target=y, patient_id=range(len(x))).to_sql("patients", con, index=False)
    con.close()
    warehouse = tmp_path / "tp" / "warehouse.duckdb"
    p = dmv.init(root, warehouse=f"tpwh://{warehouse}")
    try:
        model = "price-model"
        p.data_query(model, sql="SELECT * FROM patients", source=f"sqlite:///{source}", id="0123")
        p.data_split(model, "0123", by="key:patient_id", id="abcd")
        p.data_split(model, "0123", by="key:patient_id", salt="2", id="efgh")
        base = ["age", "bmi", "bp"]
        develop(p, base)
        released = p.release("price-model@0.1.0-0123.efgh")
        assert str(released.version) == "price-model 1.1.0-0123.efgh"
        again = train(p, "0123.efgh", [*base, "s1"], 0.5)  # retrain, nothing changed
        assert again.version is not None and again.version.number == "0.1.0-0123.efgh"
        assert again.id == "tr1"
        assert [r.id for r in p.runs("price-model@0.1.0-0123.efgh")] == ["tr0", "tr1"]
    finally:
        p.close()
    # The splits went where the plug-in put them; dmv's own default was never opened.
    assert f"tpwh://{warehouse}" in thirdparty().OPENED
    assert not (root / ".dmv" / "warehouse.duckdb").exists()
    with open_duckdb(str(warehouse), read_only=True) as wh:
        assert wh.list_tables() and wh.list_views()  # the splits share their storage


def test_an_entry_point_never_shadows_a_built_in_warehouse(site: Path, tmp_path: Path) -> None:
    """``duckdb``, a plain path and ``postgresql`` stay dmv's own engines."""
    assert "tpwh" in WAREHOUSE_BACKENDS.schemes()
    for location in (str(tmp_path / "a.duckdb"), f"duckdb:///{tmp_path / 'b.duckdb'}"):
        assert WAREHOUSE_BACKENDS.factory(location) is open_duckdb
        with open_warehouse(location) as wh:
            assert type(wh) is DuckDBWarehouse
    for location in ("postgresql://h/db", "postgresql+psycopg://h/db", "postgres://h/db"):
        assert WAREHOUSE_BACKENDS.factory(location) is open_postgres


def test_an_entry_point_never_shadows_a_built_in(site: Path, tmp_path: Path) -> None:
    """``sqlite``, ``postgresql``, ``file``, ``s3`` and fsspec's ``memory`` stay dmv's own."""
    assert "tpreg" in REGISTRY_BACKENDS.schemes() and "tpblob" in ARTIFACT_BACKENDS.schemes()
    for location in (str(tmp_path / "r.db"), f"sqlite:///{tmp_path / 's.db'}"):
        registry = open_registry(location)
        assert type(registry) is Registry
        registry.close()
    assert REGISTRY_BACKENDS.factory("postgresql://h/db") is Registry
    for location in (str(tmp_path / "a"), f"file://{tmp_path / 'b'}", "memory://dmv-plugins"):
        assert type(open_artifacts(location)) is FsspecArtifacts
    assert ARTIFACT_BACKENDS.factory("s3://bucket/prefix") is FsspecArtifacts


def test_a_duplicate_registration_is_refused(site: Path, tmp_path: Path) -> None:
    open_registry(f"tpreg://{tmp_path / 'reg.db'}").close()  # the entry point is loaded
    with pytest.raises(ConfigError, match="registered already"):
        REGISTRY_BACKENDS.register("tpreg", Registry)
    with pytest.raises(ConfigError, match="registered already"):
        REGISTRY_BACKENDS.register("sqlite", thirdparty().open_registry)
    with pytest.raises(ConfigError, match="registered already"):
        ARTIFACT_BACKENDS.register("file", thirdparty().open_artifacts)
    # Two packages claiming one scheme: neither is used.
    install(site, "otherparty", "[dmv.artifacts]\ntpblob = dmv_otherparty:open\n")
    ARTIFACT_BACKENDS.refresh()
    with pytest.raises(ConfigError, match="registered already") as info:
        open_artifacts(f"tpblob://{tmp_path / 'blobs'}")
    assert info.value.hint is not None and "dmv_otherparty:open" in info.value.hint


def test_a_table_for_a_new_kind_of_store() -> None:
    """What a kind of store with its own rules needs: lazy built-ins, a default scheme,
    its own error for an unknown scheme."""
    from dmv.errors import InvalidInput

    table: Backends[object] = Backends(
        "widget",
        "dmv.test-widgets",
        default="duckdb",
        unknown=lambda scheme, known: InvalidInput(f"no widget for {scheme} ({known})"),
    )
    table.register("duckdb", "pathlib:PurePosixPath")
    table.register("duckdb", "pathlib:PurePosixPath")  # the same factory again is fine
    assert table.schemes() == ["duckdb"]
    assert table.scheme_of("/data/w.duckdb") == "duckdb"
    assert table.scheme_of(r"C:\data\w.duckdb") == "duckdb"
    assert type(table.open("w.duckdb")).__name__ == "PurePosixPath"
    with pytest.raises(InvalidInput, match="no widget for trino"):
        table.open("trino://host/db")
    with pytest.raises(ConfigError, match="registered already"):
        table.register("DuckDB", "pathlib:PureWindowsPath")
    assert scheme_of("postgresql+psycopg://h/db") == "postgresql"
    assert scheme_of("SC://host:15002") == "sc"
