"""Signed releases: OpenSSF Model Signing for the model files, SLSA provenance for the rest.

A release is signed with the project's key (``[signing]`` in ``dmv.toml``): the
model files as ``dmv export`` writes them are signed in the OpenSSF Model Signing
format (``DIR/model.sig``, checked by ``model_signing verify key``), and the
provenance statement (:mod:`dmv.integrations.provenance`) is signed in a DSSE
envelope. Both are blobs in the artifact store, recorded by an append-only row
in the registry; re-signing adds a row, it never rewrites one.

Trust is the project's configuration, never a stored row: a signature counts
when its key is the project's signing key or one of ``trusted_keys`` and not
revoked. :func:`signature_status` says who signed, when, with which key, and
whether it verifies, naming what was altered when it does not.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dmv.artifacts import Blob
from dmv.errors import ConfigError, ConflictError, DmvError, InvalidInput, NotFound, SignatureError
from dmv.flavors.stored import stored_code
from dmv.integrations import provenance
from dmv.integrations._dsse import (
    PrivateKey,
    generate_key_pair,
    key_id,
    load_private_key,
    load_public_key,
    model_bundle,
    open_dsse,
    public_pem,
    sign_dsse,
    verify_bundle,
)
from dmv.integrations.about import About, about
from dmv.integrations.mlflow_export import mlflow_flavor
from dmv.version import as_reference

if TYPE_CHECKING:
    from dmv.artifacts import ArtifactStore
    from dmv.config import SigningConfig
    from dmv.data.service import ProjectData
    from dmv.registry import RegistryStore
    from dmv.registry.signatures import SignatureRecord
    from dmv.stores import Stores
    from dmv.version import Version

__all__ = [
    "EXPORT_UNSIGNED",
    "SIGNATURE_FILE",
    "SignatureStatus",
    "envelope",
    "generate_keys",
    "release_key",
    "require_signature",
    "sign_release",
    "signature_bundle",
    "signature_status",
    "signing_key",
    "verify_checks",
]

#: The signature's file name in an exported folder.
SIGNATURE_FILE = "model.sig"
#: What an exported folder holds besides the signed model files: the MLflow wrapper
#: dmv writes at export (it changes with dmv, not with the release). The signature
#: lists these as ignored, so ``model_signing verify`` checks exactly the model files.
EXPORT_UNSIGNED = [
    ".git",
    ".gitattributes",
    ".github",
    ".gitignore",
    SIGNATURE_FILE,
    "MLmodel",
    "code",
    "conda.yaml",
    "python_env.yaml",
    "requirements.txt",
    "input_example.json",
    "serving_input_example.json",
    "dmv/dmv.json",
]
_KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


# -- keys ----------------------------------------------------------------------


def generate_keys(name: str, folder: str | os.PathLike[str]) -> dict[str, str]:
    """Write an ECDSA P-256 key pair ``NAME.pem`` (0600) and ``NAME.pub.pem`` in ``folder``."""
    if not _KEY_NAME.fullmatch(name) or name.endswith((".pem", ".")):
        raise InvalidInput(
            f"{name!r} is not a key name",
            hint="a key name is letters, digits, '.', '_' or '-' (at most 64), e.g. release-2026",
        )
    try:
        private, public = generate_key_pair(name, Path(folder))
    except OSError as exc:
        raise InvalidInput(
            f"cannot write the key pair in {folder}: {exc.strerror}",
            hint="name a folder you can write with --dir",
        ) from None
    return {"private": str(private.resolve()), "public": str(public.resolve())}


def signing_key(
    config: SigningConfig, environ: Mapping[str, str] | None = None
) -> PrivateKey | None:
    """The project's private signing key (None: none configured). Never logged or stored."""
    env = os.environ if environ is None else environ
    if config.key is not None:
        try:
            pem = config.key.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"[signing] key {config.key} cannot be read: {exc.strerror}",
                hint="point [signing] key at a PEM private key ('dmv keys generate NAME' "
                "writes one), or use key_env",
            ) from None
        return load_private_key(pem, str(config.key))
    if config.key_env is not None:
        value = env.get(config.key_env)
        if not value:
            raise ConfigError(
                f"[signing] key_env names ${config.key_env}, which is not set",
                hint=f"export {config.key_env} holding the PEM private key in the environment "
                "that releases",
            )
        return load_private_key(value.encode(), f"${config.key_env}")
    return None


def release_key(config: SigningConfig) -> PrivateKey | None:
    """The key a release is signed with now (None: unsigned releases are allowed).

    ConfigError when ``require_signed`` is set and no key is configured, or when the
    configured key cannot be read: checked before anything is released.
    """
    key = signing_key(config)
    if key is None and config.require_signed:
        raise ConfigError(
            "this project requires signed releases (require_signed = true) but no signing "
            "key is configured",
            hint=_KEY_HINT,
        )
    return key


_KEY_HINT = (
    "set key = PATH or key_env = VAR under [signing] in dmv.toml ('dmv keys generate NAME' "
    "writes a key pair)"
)


@dataclass(frozen=True)
class _Trusted:
    name: str
    public: Any
    revoked: bool


def _trusted(config: SigningConfig) -> dict[str, _Trusted]:
    """The keys the project trusts (or revoked), by key id."""
    out: dict[str, _Trusted] = {}
    for entry in config.trusted_keys:
        try:
            pem = entry.path.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"[signing] trusted_keys.{entry.name}: {entry.path} cannot be read: {exc.strerror}",
                hint="point it at a public key file (NAME.pub.pem), or remove the entry",
            ) from None
        public = load_public_key(pem, f"[signing] trusted_keys.{entry.name} ({entry.path})")
        kid = key_id(public)
        # a key listed twice is revoked if any entry says so
        revoked = entry.revoked or (kid in out and out[kid].revoked)
        out[kid] = _Trusted(entry.name, public, revoked)
    if config.has_key:
        try:
            key = signing_key(config)
        except ConfigError:
            key = None  # e.g. a server without the key: it trusts trusted_keys only
        if key is not None and key_id(key) not in out:
            out[key_id(key)] = _Trusted("signing key", key.public_key(), False)
    return out


# -- what is signed ------------------------------------------------------------


def _model_files(store: ArtifactStore, ab: About) -> dict[str, bytes]:
    """The model files as ``dmv export`` writes them (path → bytes), each hash-checked.

    Empty for a version whose serving run logged no model: its provenance is still signed.
    """
    art, run = ab.model_artifact, ab.run
    if run is None or art is None:
        return {}
    meta = dict(art.meta or {})
    what = f"{ab.version} {run.id} {art.name}"
    data = store.get_bytes(Blob(art.digest, art.size), what=what)
    files = {"dmv/model.bin": data}
    for rel, content in stored_code(store, meta, what).items():
        files[f"dmv/model_code/{rel}"] = content
    native = mlflow_flavor(meta)
    if native is not None:
        files[native[1]] = data
    return files


def _subject(store: ArtifactStore, ab: About, model: Mapping[str, bytes]) -> dict[str, bytes]:
    """The provenance subject: the model files under ``dmv/`` and the run's other artifacts."""
    out = {k: v for k, v in model.items() if k.startswith("dmv/")}
    for art in ab.run.artifacts if ab.run else ():
        if art.kind != "model":
            what = f"{ab.version} {ab.run.id if ab.run else ''} {art.name}"
            out[f"artifacts/{art.name}"] = store.get_bytes(Blob(art.digest, art.size), what=what)
    return out


def sign_release(
    stores: Stores, data: ProjectData, version: Version, key: PrivateKey
) -> SignatureRecord:
    """Sign the released ``version`` with ``key``: its model files and its provenance.

    Adds a signature (audited ``version.sign``); an earlier one stays as it was.
    """
    ab = about(stores.registry, data, version.ref)
    if ab.info.state == "prerelease":
        raise ConflictError(
            f"{ab.version} is not a released version: only releases are signed",
            hint=f"release it first ('dmv release {ab.version.ref}'), then sign the release",
        )
    files = _model_files(stores.artifacts, ab)
    bundle = model_bundle(key, version.name, files, EXPORT_UNSIGNED)
    statement = provenance.statement(ab, _subject(stores.artifacts, ab, files))
    envelope_doc = sign_dsse(key, statement)
    stored_bundle = stores.artifacts.put_bytes(json.dumps(bundle, indent=2).encode())
    stored_envelope = stores.artifacts.put_bytes(json.dumps(envelope_doc, indent=2).encode())
    return stores.registry.add_signature(
        ab.version,
        key_id=key_id(key),
        public_key=public_pem(key),
        signed_at=time.time(),
        bundle=(stored_bundle.digest, stored_bundle.size),
        envelope=(stored_envelope.digest, stored_envelope.size),
    )


# -- what verifies ---------------------------------------------------------------


@dataclass
class SignatureStatus:
    """Whether a version is signed, by whom, when, with which key, and if it verifies.

    ``status``: ``verified``, ``unsigned``, ``untrusted`` (a key the project does not
    trust), ``revoked`` (a key marked revoked) or ``invalid`` (``problem`` names what
    was altered).
    """

    version: str
    status: str
    problem: str = ""
    check: str = ""
    signature: SignatureRecord | None = None
    key: str | None = None
    signatures: int = 0

    @property
    def verified(self) -> bool:
        return self.status == "verified"

    def to_dict(self) -> dict[str, Any]:
        from dmv.registry.records import iso  # lazy: sqlalchemy

        sig = self.signature
        return {
            "version": self.version,
            "status": self.status,
            "verified": self.verified,
            "problem": self.problem or None,
            "signer": sig.signer if sig else None,
            "signed_at": iso(sig.signed_at) if sig else None,
            "key_id": sig.key_id if sig else None,
            "key": self.key,
            "signatures": self.signatures,
        }

    def summary(self) -> str:
        sig = self.signature
        if sig is None:
            return "not signed"
        from dmv.registry.records import iso  # lazy: sqlalchemy

        who = f"signed by {sig.signer} at {iso(sig.signed_at)} with key "
        who += f"{self.key or 'unknown'} ({sig.key_id[:16]}…)"
        return f"{who}: {self.status}" + (f" — {self.problem}" if self.problem else "")


def _json_blob(store: ArtifactStore, digest: str, size: int, what: str) -> Any:
    raw = store.get_bytes(Blob(digest, size), what=what)
    try:
        return json.loads(raw)
    except ValueError:
        raise SignatureError(f"{what} is not JSON", hint="restore it from a backup") from None


def signature_status(
    stores: Stores, data: ProjectData, ref: Any, *, full: bool = True
) -> SignatureStatus:
    """The current (latest) signature of the version ``ref`` points at, checked.

    ``full`` also rebuilds the provenance from the registry, the stored split's
    records and the code record, and names every part that differs from the signed one.
    """
    ab = about(stores.registry, data, ref)
    sigs = stores.registry.list_signatures(ab.version)
    status = SignatureStatus(str(ab.version), "unsigned", signatures=len(sigs))
    if not sigs:
        return status
    sig = sigs[-1]
    status.signature = sig
    trusted = _trusted(stores.config.signing).get(sig.key_id)
    if trusted is None:
        status.status, status.check = "untrusted", "untrusted"
        status.problem = f"key {sig.key_id[:16]}… is not among [signing] trusted_keys"
        return status
    status.key = trusted.name
    if trusted.revoked:
        status.status, status.check = "revoked", "revoked"
        status.problem = f"key {trusted.name} is revoked in [signing] trusted_keys"
        return status
    try:
        bundle = _json_blob(stores.artifacts, sig.bundle_digest, sig.bundle_size, "the bundle")
        files = _model_files(stores.artifacts, ab)
        verify_bundle(bundle, trusted.public, files, f"{ab.version} model signature")
        doc = _json_blob(
            stores.artifacts, sig.envelope_digest, sig.envelope_size, "the provenance envelope"
        )
        signed = open_dsse(doc, trusted.public, f"{ab.version} provenance envelope")
        if full:
            now = provenance.statement(ab, _subject(stores.artifacts, ab, files))
            changed = provenance.differences(signed, now)
            if changed:
                raise SignatureError(
                    f"{ab.version}: the registry no longer matches the signed provenance: "
                    f"{', '.join(changed)} changed",
                    hint="a record was altered after the release was signed; restore the "
                    "registry from a backup ('dmv restore')",
                    check="provenance",
                )
    except DmvError as exc:
        status.status, status.problem = "invalid", exc.message
        status.check = str(exc.details.get("check") or exc.code)
        return status
    status.status = "verified"
    return status


def verify_checks(stores: Stores, data: ProjectData, ref: Any) -> list[tuple[str, str, str]]:
    """The signature's line in ``dmv verify``: (check, status, detail)."""
    config = stores.config.signing
    found = signature_status(stores, data, ref)
    if found.verified:
        return [("signature", "ok", found.summary())]
    if found.status == "invalid":
        return [("signature", "fail", found.summary())]
    if found.status == "unsigned" and not (config.has_key or config.trusted_keys):
        return [("signature", "skip", "not signed (no [signing] in dmv.toml)")]
    return [("signature", "fail" if config.require_signed else "warn", found.summary())]


def require_signature(stores: Stores, data: ProjectData, ref: Any) -> SignatureStatus:
    """Refuse (SignatureError) a version not signed by a trusted, unrevoked key, or altered."""
    found = signature_status(stores, data, ref, full=True)
    if found.verified:
        return found
    what = {
        "unsigned": "is not signed",
        "untrusted": "is signed by a key this project does not trust",
        "revoked": "is signed by a revoked key",
        "invalid": "has a signature that does not verify",
    }[found.status]
    raise SignatureError(
        f"{found.version} {what}"
        + (f": {found.problem}" if found.problem and found.status != "unsigned" else "")
        + " (require_signed = true)",
        hint="sign it with a trusted key ('dmv sign REF'), list its key in [signing] "
        "trusted_keys, or serve another version; 'dmv verify REF' shows every check",
        check=found.check or found.status,
    )


def _latest(registry: RegistryStore, version: Version) -> SignatureRecord | None:
    sigs = registry.list_signatures(version)
    return sigs[-1] if sigs else None


def envelope(stores: Stores, ref: Any) -> dict[str, Any]:
    """The version's provenance, as the DSSE envelope that was signed (NotFound: unsigned)."""
    info = stores.registry.resolve(as_reference(ref))
    sig = _latest(stores.registry, info.version)
    if sig is None:
        raise NotFound(
            f"{info.version} is not signed: it has no provenance",
            hint="configure [signing] key in dmv.toml and sign it with 'dmv sign REF'",
        )
    doc: dict[str, Any] = _json_blob(
        stores.artifacts, sig.envelope_digest, sig.envelope_size, f"{info.version} provenance"
    )
    return doc


def signature_bundle(registry: RegistryStore, store: ArtifactStore, version: Version) -> bytes:
    """The current model signature of ``version`` (empty: unsigned), as ``model.sig`` holds it."""
    sig = _latest(registry, version)
    if sig is None:
        return b""
    return store.get_bytes(Blob(sig.bundle_digest, sig.bundle_size), what=f"{version} signature")
