"""Signed releases: OpenSSF Model Signing checked by the real ``model_signing`` CLI, SLSA
provenance in DSSE checked by securesystemslib, tampering named, require_signed serving,
key rotation and revocation.

One project is trained and released once for the module (signed with key ``alpha``);
tests that change it work on a copy of its folder.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import dmv
from dmv.errors import ConfigError, SignatureError
from dmv.server import create_app
from test_scenario import git, make_project, make_repo, train

BASE = ["age", "bmi", "bp"]
MODEL_SIGNING = Path(sys.executable).with_name("model_signing")


def cli(
    root: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``dmv ARGS`` in a real subprocess, in project ``root``."""
    return subprocess.run(
        [sys.executable, "-m", "dmv", "-C", str(root), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), **(env or {})},
        timeout=300,
        check=False,
    )


def configure(root: Path, signing: str) -> None:
    """Replace the ``[signing]`` table of ``dmv.toml`` with ``signing``."""
    toml = root / "dmv.toml"
    text = toml.read_text().split("[signing]")[0]
    toml.write_text(text + "[signing]\n" + signing)


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A git project whose model 1.0.1 is released signed by key ``alpha``; a second
    prerelease (another alpha) waits to be released by the tests that need one."""
    tmp = tmp_path_factory.mktemp("signed")
    repo = make_repo(tmp)
    keys = tmp / "keys"
    done = cli(repo, "keys", "generate", "alpha", "--dir", str(keys), "--json")
    assert done.returncode == 0, done.stderr
    paths = json.loads(done.stdout)
    p = make_project(repo)
    configure(
        repo,
        f'key = "{paths["private"]}"\ntrusted_keys = {{ alpha = "{paths["public"]}" }}\n',
    )
    git(repo, "add", "dmv.toml")
    git(repo, "commit", "-qm", "project settings")
    p = dmv.open(repo)
    first = train(p, "0123.efgh", BASE, 0.5)
    second = train(p, "0123.efgh", BASE, 0.25)  # another logic version, released later
    assert first.version is not None and second.version is not None
    info = p.release(first.version.ref)
    p.close()
    return {
        "root": repo,
        "keys": keys,
        "alpha": paths,
        "release": info.version.ref,
        "prerelease": second.version.ref,
        "commit": git(repo, "rev-parse", "HEAD"),
    }


@pytest.fixture
def copy(released: dict[str, Any], tmp_path: Path) -> Iterator[Path]:
    """A copy of the released project, free to change."""
    target = tmp_path / "price-repo"
    shutil.copytree(released["root"], target, symlinks=True)
    yield target


# -- keys ----------------------------------------------------------------------------------


def test_keys_generate_writes_a_private_0600_and_a_public_pem(
    released: dict[str, Any], tmp_path: Path
) -> None:
    private, public = Path(released["alpha"]["private"]), Path(released["alpha"]["public"])
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    # never overwritten; a name that is not a file name is refused
    again = cli(tmp_path, "keys", "generate", "alpha", "--dir", str(private.parent))
    assert again.returncode == 4 and "never overwritten" in again.stderr
    bad = cli(tmp_path, "keys", "generate", "../evil", "--dir", str(tmp_path))
    assert bad.returncode == 2 and "not a key name" in bad.stderr
    assert not (tmp_path.parent / "evil.pem").exists()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    refused = cli(tmp_path, "keys", "generate", "gamma", "--dir", str(blocker / "sub"))
    assert refused.returncode == 2 and "cannot write the key pair" in refused.stderr
    human = cli(tmp_path, "keys", "generate", "beta", "--dir", str(tmp_path / "k"))
    assert human.returncode == 0 and "beta.pub.pem" in human.stdout


# -- the release is signed -------------------------------------------------------------------


def test_a_release_is_signed_and_show_says_by_whom_with_which_key(
    released: dict[str, Any],
) -> None:
    done = cli(released["root"], "show", released["release"], "--json")
    assert done.returncode == 0, done.stderr
    sig = json.loads(done.stdout)["signature"]
    assert sig["status"] == "verified" and sig["verified"] is True
    assert sig["key"] == "alpha" and len(sig["key_id"]) == 64 and sig["signer"]
    assert sig["signed_at"]
    text = cli(released["root"], "show", released["release"]).stdout
    assert "signature    verified: alpha" in text
    p = dmv.open(released["root"])
    assert [e.action for e in p.audit(action="version.sign")] == ["version.sign"]
    # the private key is nowhere in what dmv prints or stores
    secret = Path(released["alpha"]["private"]).read_text().splitlines()[1]
    assert secret not in done.stdout and secret not in text
    registry = (released["root"] / ".dmv" / "registry.db").read_bytes()
    assert secret.encode() not in registry and b"PRIVATE KEY" not in registry


def test_model_signing_cli_accepts_the_export_and_rejects_one_changed_byte(
    released: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "export"
    done = cli(released["root"], "export", released["release"], str(out), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["model_signature"] == str(out / "model.sig")
    argv = [
        str(MODEL_SIGNING),
        "verify",
        "key",
        "--public_key",
        released["alpha"]["public"],
        "--signature",
        str(out / "model.sig"),
        "--ignore-paths",
        str(out / "model.sig"),
        str(out),
    ]
    ok = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "Verification succeeded" in ok.stdout
    # one byte of the model file changes: the third-party verifier refuses it
    model = out / "dmv" / "model.bin"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    bad = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert bad.returncode != 0
    assert "dmv/model.bin" in bad.stdout + bad.stderr


def test_provenance_verifies_with_securesystemslib_and_names_commit_split_and_run(
    released: dict[str, Any],
) -> None:
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey

    done = cli(released["root"], "provenance", released["release"], "--json")
    assert done.returncode == 0, done.stderr
    envelope = Envelope.from_dict(json.loads(done.stdout))
    public = Path(released["alpha"]["public"]).read_text()
    keyid = next(iter(envelope.signatures))
    key = SSlibKey(
        keyid=str(keyid),
        keytype="ecdsa",
        scheme="ecdsa-sha2-nistp256",
        keyval={"public": public},
    )
    verified = envelope.verify([key], 1)  # raises VerificationError when it does not verify
    assert keyid in verified
    statement = json.loads(envelope.payload)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    names = {s["name"] for s in statement["subject"]}
    assert "dmv/model.bin" in names
    build = statement["predicate"]["buildDefinition"]
    deps = {d["name"]: d for d in build["resolvedDependencies"]}
    assert deps["code"]["digest"] == {"gitCommit": released["commit"]}
    assert {"SPLIT efgh train", "SPLIT efgh valid", "SPLIT efgh test"} <= set(deps)
    assert deps["SPLIT efgh train"]["annotations"]["fingerprint"]
    assert len(deps["DATA 0123"]["digest"]["sha256"]) == 64
    assert build["externalParameters"]["parameters"] == {"alpha": 0.5}
    run = statement["predicate"]["runDetails"]
    assert run["builder"]["id"] == "dmv" and run["builder"]["version"]["dmv"]
    assert run["metadata"]["invocationId"] == "tr0"
    assert {b["annotations"]["split"] for b in run["byproducts"]} == {"train", "test"}

    # a changed payload no longer verifies with the independent library
    from securesystemslib.exceptions import VerificationError

    forged = json.loads(done.stdout)
    statement["predicate"]["runDetails"]["metadata"]["invocationId"] = "tr9"
    forged["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    with pytest.raises(VerificationError):
        Envelope.from_dict(forged).verify([key], 1)


def test_the_api_returns_the_provenance_and_signature(released: dict[str, Any]) -> None:
    p = dmv.open(released["root"])
    client = TestClient(create_app(p))
    name, number = released["release"].split("@")
    got = client.get(f"/api/v1/models/{name}/versions/{number}/provenance")
    assert got.status_code == 200
    assert got.json() == p.provenance(released["release"])
    sig = client.get(f"/api/v1/models/{name}/versions/latest/signature").json()
    assert sig["status"] == "verified" and sig["key"] == "alpha"
    # the web UI's version page and the model card say who signed, with which key
    page = client.get(f"/ui/models/{name}/versions/{number}")
    assert page.status_code == 200
    assert ">verified</span> signed by" in page.text and "<code>alpha</code>" in page.text
    assert "Signature: verified: signed by" in p.card(released["release"])
    # a prerelease has none: a clear 404
    _, pre = released["prerelease"].split("@")
    missing = client.get(f"/api/v1/models/{name}/versions/{pre}/provenance")
    assert missing.status_code == 404 and "not signed" in missing.json()["error"]["message"]


# -- tampering is caught and named ------------------------------------------------------------


def test_tampered_registry_row_is_named(released: dict[str, Any], copy: Path) -> None:
    with sqlite3.connect(copy / ".dmv" / "registry.db") as conn:
        conn.execute("""UPDATE runs SET params = '{"alpha": 0.1}' WHERE number = 0""")
    p = dmv.open(copy)
    found = p.signature(released["release"])
    assert found.status == "invalid" and found.check == "provenance"
    assert "build parameter parameters" in found.problem


def test_tampered_split_record_is_named(released: dict[str, Any], copy: Path) -> None:
    with sqlite3.connect(copy / ".dmv" / "registry.db") as conn:
        (parts,) = conn.execute("SELECT parts FROM splits WHERE split = 'efgh'").fetchone()
        doc = json.loads(parts)
        doc["parts"][0]["fingerprint"] = "md5sum-v1:1:0000000000000000"
        conn.execute("UPDATE splits SET parts = ? WHERE split = 'efgh'", (json.dumps(doc),))
    found = dmv.open(copy).signature(released["release"])
    assert found.status == "invalid" and "SPLIT efgh train" in found.problem


def test_tampered_model_file_and_envelope_are_named(released: dict[str, Any], copy: Path) -> None:
    p = dmv.open(copy)
    sig = p.registry.list_signatures(p.resolve(released["release"]))[-1]
    # an envelope replaced by one signed with another key, its row pointed at it
    from dmv.integrations._dsse import load_private_key, sign_dsse

    keys = cli(copy, "keys", "generate", "mallory", "--dir", str(copy.parent / "m"), "--json")
    mallory = load_private_key(Path(json.loads(keys.stdout)["private"]).read_bytes(), "test")
    forged = sign_dsse(mallory, {"_type": "https://in-toto.io/Statement/v1"})
    forged["signatures"][0]["keyid"] = sig.key_id
    blob = p.artifacts.put_bytes(json.dumps(forged).encode())
    with sqlite3.connect(copy / ".dmv" / "registry.db") as conn:
        conn.execute(
            "UPDATE signatures SET envelope_digest = ?, envelope_size = ?",
            (blob.digest, blob.size),
        )
    found = dmv.open(copy).signature(released["release"])
    assert found.status == "invalid" and found.check == "envelope"
    assert "provenance envelope" in found.problem and "does not verify" in found.problem
    # the model file's bytes change in the artifact store
    art = next(a for r in p.runs(released["release"]) for a in r.artifacts if a.kind == "model")
    path = Path(p.artifacts.path_of(art.digest))
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[10] ^= 0xFF
    path.write_bytes(bytes(data))
    found = dmv.open(copy).signature(released["release"])
    assert found.status == "invalid" and "model" in found.problem
    done = cli(copy, "verify", released["release"], "--json")
    assert done.returncode != 0
    checks = {c["check"]: c["status"] for c in json.loads(done.stdout)["checks"]}
    assert checks["signature"] == "fail"


# -- require_signed ------------------------------------------------------------------------


def test_require_signed_refuses_a_release_without_a_key(
    released: dict[str, Any], copy: Path
) -> None:
    configure(copy, "require_signed = true\n")
    done = cli(copy, "release", released["prerelease"])
    assert done.returncode == 2 and "requires signed releases" in done.stderr
    p = dmv.open(copy)
    assert p.show(released["prerelease"]).state == "prerelease"  # nothing was released


def test_serve_with_require_signed_refuses_unsigned_and_untrusted(
    released: dict[str, Any], copy: Path
) -> None:
    alpha = released["alpha"]
    # an unsigned release: made while no key was configured
    configure(copy, "")
    p = dmv.open(copy)
    unsigned = p.release(released["prerelease"]).version.ref
    p.close()
    configure(copy, f'require_signed = true\ntrusted_keys = {{ alpha = "{alpha["public"]}" }}\n')
    done = cli(copy, "serve", unsigned, "--port", "0")
    assert done.returncode == 6 and "is not signed" in done.stderr, done.stderr
    # a release signed by a key this project does not trust
    beta = cli(copy, "keys", "generate", "beta", "--dir", str(copy.parent / "b"), "--json")
    beta_pub = json.loads(beta.stdout)["public"]
    configure(copy, f'require_signed = true\ntrusted_keys = {{ beta = "{beta_pub}" }}\n')
    done = cli(copy, "serve", released["release"], "--port", "0")
    assert done.returncode == 6, done.stderr
    assert "signed by a key this project does not trust" in done.stderr
    # `dmv server` serves everything but never loads what is not signed by a trusted key
    configure(copy, f'require_signed = true\ntrusted_keys = {{ alpha = "{alpha["public"]}" }}\n')
    client = TestClient(create_app(dmv.open(copy)))
    name = "price-model"
    row = {"age": 0.01, "bmi": 0.02, "bp": 0.03}
    good = client.post(
        f"/models/{name}/versions/{released['release'].split('@')[1]}/predict",
        json={"inputs": [row]},
    )
    assert good.status_code == 200, good.text
    refused = client.post(
        f"/models/{name}/versions/{unsigned.split('@')[1]}/predict", json={"inputs": [row]}
    )
    assert refused.status_code == 503
    body = refused.json()["error"]
    assert body["details"]["cause"] == "signature_error" and "not signed" in body["message"]


# -- rotation and revocation -----------------------------------------------------------------


def test_rotation_then_revocation_then_resigning(released: dict[str, Any], copy: Path) -> None:
    alpha = released["alpha"]
    beta = json.loads(
        cli(copy, "keys", "generate", "beta", "--dir", str(copy.parent / "b"), "--json").stdout
    )
    # beta signs later releases; alpha's release still verifies with alpha's public key
    configure(
        copy,
        f'key = "{beta["private"]}"\n'
        f'trusted_keys = {{ alpha = "{alpha["public"]}", beta = "{beta["public"]}" }}\n',
    )
    p = dmv.open(copy)
    later = p.release(released["prerelease"]).version.ref
    assert p.signature(later).key == "beta" and p.signature(later).verified
    assert p.signature(released["release"]).key == "alpha"
    assert p.signature(released["release"]).verified
    p.close()
    # alpha is revoked: its release is reported as signed by a revoked key
    configure(
        copy,
        f'key = "{beta["private"]}"\nrequire_signed = true\n'
        f'trusted_keys = {{ alpha = {{ path = "{alpha["public"]}", revoked = true }}, '
        f'beta = "{beta["public"]}" }}\n',
    )
    p = dmv.open(copy)
    found = p.signature(released["release"])
    assert found.status == "revoked" and "alpha is revoked" in found.problem
    with pytest.raises(SignatureError, match="signed by a revoked key"):
        p.require_signature(released["release"])
    done = cli(copy, "verify", released["release"], "--json")
    checks = {c["check"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["signature"]["status"] == "fail" and "revoked" in checks["signature"]["detail"]
    # re-signed with the current key: verified again, the old signature kept, audited
    done = cli(copy, "sign", released["release"], "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["status"] == "verified" and out["key"] == "beta" and out["number"] == 2
    p = dmv.open(copy)
    assert p.signature(released["release"]).verified
    assert len(p.registry.list_signatures(p.resolve(released["release"]))) == 2
    assert len(p.audit(action="version.sign")) == 3  # alpha's, beta's release, the re-sign
    # a valid signature of another release, copied onto this one, is caught
    with sqlite3.connect(copy / ".dmv" / "registry.db") as conn:
        (target,) = conn.execute(
            "SELECT version_id FROM signatures ORDER BY id DESC LIMIT 1"
        ).fetchone()  # the re-signed release
        conn.execute(
            "INSERT INTO signatures (version_id, key_id, public_key, signer, signed_at, "
            "bundle_digest, bundle_size, envelope_digest, envelope_size) SELECT ?, key_id, "
            "public_key, signer, signed_at, bundle_digest, bundle_size, envelope_digest, "
            "envelope_size FROM signatures WHERE version_id != ? ORDER BY id DESC LIMIT 1",
            (target, target),
        )
    replayed = dmv.open(copy).signature(released["release"])
    assert replayed.status == "invalid" and "differ from what was signed" in replayed.problem


# -- configuration ----------------------------------------------------------------------------


def test_signing_configuration_errors_are_clear(tmp_path: Path) -> None:
    dmv.init(tmp_path)
    configure(tmp_path, 'key = "a.pem"\nkey_env = "K"\n')
    with pytest.raises(ConfigError, match="both key and key_env"):
        dmv.open(tmp_path)
    configure(tmp_path, "trusted_keys = { a = 3 }\n")
    with pytest.raises(ConfigError, match=r"trusted_keys\.a"):
        dmv.open(tmp_path)
    configure(tmp_path, 'surprise = "x"\n')
    done = cli(tmp_path, "versions", "x")
    assert done.returncode == 2 and "unknown key(s) surprise" in done.stderr


def test_key_env_signs_and_a_missing_variable_refuses(released: dict[str, Any], copy: Path) -> None:
    configure(copy, 'key_env = "DMV_TEST_SIGNING_KEY"\n')
    done = cli(copy, "sign", released["release"], env={"DMV_TEST_SIGNING_KEY": ""})
    assert done.returncode == 2 and "DMV_TEST_SIGNING_KEY" in done.stderr
    pem = Path(released["alpha"]["private"]).read_text()
    done = cli(copy, "sign", released["release"], "--json", env={"DMV_TEST_SIGNING_KEY": pem})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "verified"
    assert pem.splitlines()[1] not in done.stdout + done.stderr


# -- upkeep --------------------------------------------------------------------------------


def test_fsck_keeps_and_backup_copies_the_signature_blobs(
    released: dict[str, Any], copy: Path, tmp_path: Path
) -> None:
    p = dmv.open(copy)
    sig = p.registry.list_signatures(p.resolve(released["release"]))[-1]
    report = p.fsck(repair=True, deep=True, grace_seconds=0)
    assert report.ok and not report.orphans
    assert p.signature(released["release"]).verified  # nothing of it was collected
    p.backup(tmp_path / "backup")
    manifest = json.loads((tmp_path / "backup" / "dmv-backup.json").read_text())
    copied = {b["digest"] for b in manifest["artifacts"]["blobs"]}
    assert {sig.bundle_digest, sig.envelope_digest} <= copied
    # a blob of a signature that goes missing is named by fsck
    Path(p.artifacts.path_of(sig.envelope_digest)).unlink()
    report = p.fsck()
    assert any("provenance envelope" in str(problem) for problem in report.problems)


def test_a_release_without_a_model_file_is_signed_too(
    any_project: dmv.Project, tmp_path: Path
) -> None:
    """On SQLite and on PostgreSQL: the signatures table, its audit and its reads."""
    from dmv.integrations.signing import generate_keys

    keys = generate_keys("solo", tmp_path / "keys")
    configure(any_project.root, f'key = "{keys["private"]}"\nrequire_signed = true\n')
    p = dmv.open(any_project.root)
    with p.run("price-model", version="0.1.0-0123.efgh") as run:
        run.log_metrics({"rmse": 1.0}, split="test")
    info = p.release("price-model@0.1.0-0123.efgh")
    found = p.signature(info.version)
    assert found.verified and found.key == "signing key"
    subject = json.loads(base64.b64decode(p.provenance(info.version)["payload"]))["subject"]
    assert subject == []
    assert [e.details for e in p.audit(action="version.sign")] == [
        {"key_id": found.signature.key_id if found.signature else None, "signature": 1}
    ]
    p.close()
