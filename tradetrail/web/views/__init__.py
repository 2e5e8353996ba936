"""One module per page (or group of pages), each with a ``router`` from ``web.routing.page_router()``."""
