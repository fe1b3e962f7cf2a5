"""Integrations with the tools teams already run: MLflow, OpenLineage, model cards, notebooks.

Each module here is optional and loads its third-party client on first use;
``import dmv`` imports none of them. MLflow itself is never imported by dmv: it
runs in its own environment (see :mod:`dmv.integrations._mlflow_env`).
"""
