"""One client connection of the fake TWS and what it subscribed to."""

from __future__ import annotations

import asyncio


class Conn:
    def __init__(self, serial: int, writer: asyncio.StreamWriter):
        self.serial = serial
        self.writer = writer
        self.client_id: int | None = None
        self.next_valid = 1
        self.positions = False  # reqPositions: position updates follow fills
        self.account_updates = False  # reqAccountUpdates: portfolio and account values follow fills
        self.market_data_type = 1  # reqMarketDataType: 1 live, 2 frozen, 3 delayed, 4 delayed frozen
        self.closed = False
        self.summaries: set[int] = set()  # account summary subscriptions held (TWS allows two)
        self.backlog: list[tuple] = []  # requests waiting behind a delayed one (``delay_answers``)
