"""The import point of the fake TWS / IB Gateway (``tests/fakes/tws/``): a real TCP server speaking the TWS
socket protocol at server version 178 for ib_async, with scenario hooks. See ``tests.fakes.tws.server``."""

from tests.fakes.tws.book import FakeTwsExecution, FakeTwsOrder
from tests.fakes.tws.market import INSTRUMENTS, TwsInstrument
from tests.fakes.tws.orders import REJECT_TEXT
from tests.fakes.tws.server import TEXT, FakeTWS

__all__ = ["FakeTWS", "FakeTwsExecution", "FakeTwsOrder", "INSTRUMENTS", "REJECT_TEXT", "TEXT", "TwsInstrument"]
