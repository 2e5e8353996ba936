"""IBKR Client Portal Web API: the transport shared by the broker and market-data adapters.

``ibind`` does the HTTP (and OAuth 1.0a signing); :class:`tradetrail.ibkr.client.IbkrSession` adds what a
trading service needs on top: one rate limiter for IBKR's documented limits, 429 back-off, reopening the
brokerage session, no automatic retry of anything that could place an order twice, and errors that say
what happened.
"""
