"""IBKR through TWS / IB Gateway (the socket API, on ``ib_async``): the ``ibkr_tws`` broker and market data.

One long-lived connection per process (``connection.py``) on an asyncio loop thread of its own, since the
pipeline is synchronous; the historical-data pacing IBKR documents (``pacing.py``); ib_async's objects read
into the ports' types (``shapes.py``). The Client Portal Web API adapter is ``tradetrail.ibkr``; docs/tws.md
says when to choose which.
"""
