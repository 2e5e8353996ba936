"""The HTTP process: the API (``api/``) and the web UI's pages (``web/``) in one ASGI app, with the
background work a server runs (start-up reconciliation, the embedded scheduler, the broker keep-alive)."""
