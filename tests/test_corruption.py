"""A damaged store is a storage or integrity error with its path and the recovery, on
every command: never "a bug in dmv", never a silent success on broken data.

Each store (the SQLite registry, the DuckDB warehouse, a model file in the
artifact store) is damaged the three ways files get damaged: truncated to half,
one page overwritten, every byte replaced by random ones. Every command of a
representative set is then run through the real CLI entry point.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import pytest

import dmv
from conftest import seed_warehouse
from dmv.cli import main

REF = "price-model@0.0.1-0123.abcd"
STORES = ("registry", "warehouse", "artifact")
DAMAGE = ("truncate", "page", "random")

#: command → the stores it reads (a damaged store it never reads must not stop it).
COMMANDS: dict[str, tuple[list[str], set[str]]] = {
    "show": (["show", REF], {"registry"}),
    "versions": (["versions", "price-model"], {"registry"}),
    "runs": (["runs", REF], {"registry"}),
    "fsck": (["fsck"], {"registry", "warehouse"}),
    "fsck --deep": (["fsck", "--deep"], {"registry", "warehouse", "artifact"}),
    "data list": (["data", "list", "price-model"], {"registry"}),
    "data split": (
        ["data", "split", "price-model", "0123", "--by", "key:patient_id", "--id", "zz"],
        {"registry", "warehouse"},
    ),
    "data verify": (["data", "verify", "price-model", "0123.abcd"], {"registry", "warehouse"}),
    "verify": (["verify", REF], {"registry", "warehouse", "artifact"}),
    "release": (["release", REF], {"registry", "warehouse", "artifact"}),
    "backup": (["backup", "{tmp}/backup"], {"registry", "warehouse", "artifact"}),
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with a stored split and a version trained on it, with a model file."""
    from sklearn.linear_model import Ridge

    root = tmp_path_factory.mktemp("corrupt") / "proj"
    p = dmv.init(root)
    seed_warehouse(p)
    with p.run("price-model", data="0123.abcd") as run:
        rows = run.dataset("train")
        features = rows[["age", "bmi"]]
        run.log_model(Ridge().fit(features, rows["target"]), sample_input=features.head(3))
    p.close()
    return root


def damage(path: Path, how: str) -> None:
    size = path.stat().st_size
    os.chmod(path, 0o644)
    if how == "truncate":
        os.truncate(path, size // 2)
    elif how == "page":  # one 4 KiB page in the middle of the file, same length
        offset = min(2 * 4096, size // 4)
        with open(path, "r+b") as fh:
            fh.seek(offset)
            fh.write(random.Random(7).randbytes(min(4096, size - offset)))
    else:
        path.write_bytes(random.Random(7).randbytes(size))


def damaged_file(root: Path, store: str) -> Path:
    if store == "registry":
        return root / ".dmv" / "registry.db"
    if store == "warehouse":
        return root / ".dmv" / "warehouse.duckdb"
    p = dmv.open(root)
    model = next(a for a in p.runs(REF)[0].artifacts if a.name == "model")
    path = Path(p.artifacts.path_of(model.digest))
    p.close()
    return path


@pytest.mark.parametrize("how", DAMAGE)
@pytest.mark.parametrize("store", STORES)
@pytest.mark.parametrize("command", list(COMMANDS))
def test_damaged_store_gets_a_storage_error_on_every_command(
    template: Path,
    tmp_path: Path,
    store: str,
    how: str,
    command: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "proj"
    shutil.copytree(template, root)
    path = damaged_file(root, store)
    damage(path, how)
    argv, reads = COMMANDS[command]
    if command == "fsck" and how == "truncate":
        reads = reads | {"artifact"}  # without --deep, fsck still compares sizes
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code = main(["-C", str(root), *argv, "--json"])
    out = capsys.readouterr()
    text = out.out + out.err
    assert "bug in dmv" not in text and "internal error" not in text
    if store not in reads:
        assert code == 0, text
        return
    if store == "artifact":
        assert code == 6, text  # an integrity error: the file does not match its digest
    else:
        assert code == 8, text  # a storage error: the store cannot be read
    if store == "artifact" and not command.startswith("fsck"):
        # names which artifact of which version is damaged, never where it is kept
        assert path.name[:8] in text, text  # the digest
        if command in ("verify", "release"):
            assert "tr0 model" in text, text
        assert str(path) not in text, text
    else:
        assert str(path) in text, text  # names the damaged file
    if command.startswith("fsck"):
        body = json.loads(out.out)
        row = next(
            s for s in body["stores"] if s["store"] == store.replace("artifact", "artifacts")
        )
        assert row["status"] == ("problems" if store == "artifact" else "damaged")
    elif command == "verify" and store == "artifact":
        body = json.loads(out.out)  # a report whose failed check names the file
        assert body["ok"] is False
        # The file's hash fails, and so does the behavioural check that cannot load it.
        assert [c["check"] for c in body["checks"] if c["status"] == "fail"] == [
            "artifact tr0/model",
            "behaviour tr0/model",
        ]
    else:
        error = json.loads(out.out)["error"]
        assert error["code"] in ("storage_error", "integrity_error", "artifact_error")
        assert "restore" in error.get("hint", "")
    if store == "registry" or (store == "warehouse" and "split" in command):
        assert "damaged" in text
    if command == "release":
        versions = _versions_if_readable(root)
        assert versions is None or all(v.version.x == 0 for v in versions)  # nothing released


def _versions_if_readable(root: Path) -> list[dmv.VersionInfo] | None:
    try:
        p = dmv.open(root)
        try:
            return p.versions("price-model")
        finally:
            p.close()
    except dmv.DmvError:
        return None


def test_a_damaged_warehouse_is_never_written_to(template: Path, tmp_path: Path) -> None:
    root = tmp_path / "proj"
    shutil.copytree(template, root)
    path = root / ".dmv" / "warehouse.duckdb"
    damage(path, "truncate")
    size = path.stat().st_size
    p = dmv.open(root)
    with pytest.raises(dmv.StorageError, match="truncated") as exc:
        p.data_split("price-model", "0123", by="key:patient_id", id="zz")
    assert exc.value.details["path"] == str(path)
    assert path.stat().st_size == size  # no split was added to the damaged file
    assert [s.split for s in p.data_splits("price-model")] == ["abcd", "efgh"]
    p.close()


@pytest.mark.parametrize("how", DAMAGE)
@pytest.mark.parametrize("command", ["serve", "server"])
def test_a_server_does_not_start_on_a_damaged_registry(
    template: Path, tmp_path: Path, how: str, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "proj"
    shutil.copytree(template, root)
    path = damaged_file(root, "registry")
    damage(path, how)
    argv = [command, REF] if command == "serve" else [command]
    code = main(["-C", str(root), *argv, "--port", "0"])
    err = capsys.readouterr().err
    assert code == 8 and str(path) in err and "damaged" in err and "dmv restore" in err
