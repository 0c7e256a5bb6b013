"""WSGI entry point: `gunicorn -w 1 --threads 8 gateway.wsgi:app`."""

from __future__ import annotations

from gateway.app import create_app

app = create_app()
