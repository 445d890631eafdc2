"""ASGI entry point for uvicorn: ``uvicorn vrm.asgi:app``."""

from vrm.app import create_app

app = create_app()
