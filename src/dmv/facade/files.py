"""The model files a version serves, and their exchange with other tools."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from dmv.errors import InvalidInput
from dmv.facade._base import FacadeBase
from dmv.integrations.about import about
from dmv.integrations.card import render_card
from dmv.integrations.mlflow_export import export_mlflow
from dmv.integrations.mlflow_import import import_registry
from dmv.integrations.signing import signature_bundle, signature_status
from dmv.release.serving_run import load_served, model_file
from dmv.version import Reference, Version

if TYPE_CHECKING:
    from dmv.flavors import Model
    from dmv.progress import Progress

__all__ = ["FilesMixin"]


class FilesMixin(FacadeBase):
    """The model files a version serves, and their exchange with other tools."""

    # -- integrations: MLflow, model cards -------------------------------------

    def export_model(
        self,
        ref: str | Reference | Version,
        out: str | os.PathLike[str],
        *,
        format: str = "mlflow",
        trust_pickle: bool | None = None,
    ) -> dict[str, Any]:
        """Write the version as an MLflow model directory ``out`` (see docs/integrations.md)."""
        if format != "mlflow":
            raise InvalidInput(f"unknown export format {format!r}", hint="use mlflow")
        trust = self.stores.trusts_pickle if trust_pickle is None else trust_pickle
        ab = about(self.registry, self.data_access, ref)
        sig = signature_bundle(self.registry, self.artifacts, ab.version)
        return export_mlflow(ab, self.artifacts, out, trust_pickle=trust, signature=sig)

    def import_mlflow(
        self,
        tracking_uri: str,
        *,
        model: str | None = None,
        python: str | None = None,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Copy an MLflow registry's models, versions and aliases into this project."""
        return import_registry(
            self.stores, tracking_uri, model=model, python=python, progress=progress
        )

    def card(self, ref: str | Reference | Version, *, format: str = "md") -> str:
        """A model card (Hugging Face-style YAML metadata + sections) for the version."""
        info = self.show(ref)
        signed = None
        if info.state != "prerelease":
            signed = signature_status(self.stores, self.data_access, info.version).to_dict()
        return render_card(
            self.registry, self.data_access, info.version, format=format, signature=signed
        )

    # -- model files ----------------------------------------------------------

    def load_model(
        self,
        ref: str | Reference | Version,
        run_id: str | None = None,
        *,
        trust_pickle: bool | None = None,
    ) -> Any:
        """The model object a version serves (or of one run), loaded after its hash is verified.

        The library's own object: a scikit-learn estimator, a LightGBM
        ``Booster``, an XGBoost model, a TorchScript module, or an object whose
        ``predict`` runs an ONNX model. A pickled model (``unsafe-format``) is
        loaded only with ``trust_pickle`` (default: the project's ``trust``).
        """
        return self.served_model(ref, run_id, trust_pickle=trust_pickle).native

    def model_file(
        self, ref: str | Reference | Version, run_id: str | None = None
    ) -> dict[str, Any]:
        """The served model file's kind: flavor, format and whether it is ``unsafe-format``."""
        return model_file(self.registry, self.show(ref), run_id)

    def served_model(
        self,
        ref: str | Reference | Version,
        run_id: str | None = None,
        *,
        trust_pickle: bool | None = None,
    ) -> Model:
        """A :class:`dmv.flavors.Model`: the version's model as the server runs it."""
        trust = self.stores.trusts_pickle if trust_pickle is None else trust_pickle
        return load_served(
            self.registry, self.artifacts, self.show(ref), run_id, trust_pickle=trust
        )
