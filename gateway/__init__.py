"""The gateway: Flask web UI (Chinese) and JSON API `/api/v1` over nameko RPC.

`gateway.app.create_app()` builds the application; `gateway.wsgi:app` is what gunicorn
serves. Services are reached through the pooled proxies of `gateway.rpc`.
"""
