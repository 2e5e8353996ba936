"""``python -m tradetrail.cli``: the command line (the worker supervisor starts its workers this way)."""

from tradetrail.cli import app

app()
