"""Signed releases: signing, the signature's status, the provenance envelope."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dmv.errors import ConfigError
from dmv.facade._base import FacadeBase
from dmv.integrations import signing
from dmv.version import Reference, Version

if TYPE_CHECKING:
    from dmv.integrations.signing import SignatureStatus
    from dmv.registry.signatures import SignatureRecord

__all__ = ["SigningMixin"]


class SigningMixin(FacadeBase):
    """Signed releases: signing, the signature's status, the provenance envelope."""

    def sign(self, ref: str | Reference | Version) -> SignatureRecord:
        """Sign the released version ``ref`` (again) with the current key; audited."""
        key = signing.release_key(self.stores.config.signing)
        if key is None:
            raise ConfigError(
                "no signing key is configured",
                hint="set key = PATH or key_env = VAR under [signing] in dmv.toml "
                "('dmv keys generate NAME' writes a key pair)",
            )
        return signing.sign_release(self.stores, self.data_access, self.resolve(ref), key)

    def signature(self, ref: str | Reference | Version, *, full: bool = True) -> SignatureStatus:
        """Who signed the version, when, with which key, and whether it verifies."""
        return signing.signature_status(self.stores, self.data_access, ref, full=full)

    def provenance(self, ref: str | Reference | Version) -> dict[str, Any]:
        """The version's signed provenance: a DSSE envelope (in-toto Statement, SLSA v1)."""
        return signing.envelope(self.stores, ref)

    def require_signature(self, ref: str | Reference | Version) -> None:
        """Refuse a version that is not signed by a trusted key when ``require_signed``."""
        if self.stores.config.signing.require_signed:
            signing.require_signature(self.stores, self.data_access, ref)
