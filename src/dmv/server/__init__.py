"""The dmv server: REST API, model serving and web UI in one ASGI application.

    from dmv.server import create_app
    app = create_app(dmv.open())                                   # everything
    app = create_app(project, serve_refs=["price-model@production"])  # predictions only

Needs the ``server`` extra (FastAPI, uvicorn); importing :mod:`dmv` never imports it.
"""

from dmv.server.app import create_app

__all__ = ["create_app"]
