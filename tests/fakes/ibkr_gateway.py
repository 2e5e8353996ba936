"""A fake IBKR Client Portal gateway: a real HTTP server on 127.0.0.1 (base path ``/v1/api``), answering in
the documented shapes with their quirks (see ``shared/reference/ibkr-apis.md``), never in shapes that would
be convenient for our adapter:

- conids are strings in ``secdef/search`` and integers elsewhere; numbers in lists are sometimes strings;
  the ledger's timestamps are epoch seconds, the summary's epoch milliseconds;
- live orders are empty on the first call of a brokerage session; ``order_ref`` is echoed only for orders
  placed with a ``cOID`` (a bracket's parent), never for its children, and lists carry no parent id;
- placing may chain confirmation questions (``/iserver/reply/{id}``), a reply id is single-use
  (``reply id not found``), and any other request while a question is open voids it;
- a ``cOID`` can be used once (``Local order ID=... is already registered``); cancel answers only
  "Request was submitted" and the order is cancelled a moment later;
- history answers at most 1,000 bars, each stamped at its session's open (epoch ms).
It also enforces IBKR's pacing (scaled like the client's) and answers 429 to a violation, recording it.

Switchable faults: ``expire_session()`` / ``idle_timeout_s`` (401 until ``ssodh/init``), ``fail_next``
(429, 503, or any status), ``slow`` (seconds before answering a route), ``drop_after_accept`` (the order
is booked, then the connection is closed without an answer), ``void_next_reply`` and ``questions``.
Every request is counted per route (``count``) so tests can assert what was asked of IBKR, and stamped
(``stamps``: monotonic time, route, the client's port) so tests can measure the rate several processes
reached together (``most_in_window``, ``closest``). ``slow_unauthorized`` holds a 401 answer back for that
many seconds (a request that meets an expired session while another process reopens it); ``book`` puts a
working order at the gateway as if another program had placed it.

Fills, by simple rules: a MKT order fills at once at the last daily close, a BUY LMT at or above the last
close fills at the close; a bracket's children stay working (``fill`` triggers one by hand).
Test code only; the package never imports it.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

NY = ZoneInfo("America/New_York")
BASE = "/v1/api"
QUESTION_TEXT = {
    "o163": "The following order exceeds the price percentage limit of 3%.",
    "o354": "You are submitting an order without market data. We strongly recommend against this as it may "
            "result in erroneous and unexpected trades. Are you sure you want to submit this order?",
    "o10151": "A Market Order is an instruction to trade your order at any available price.",
    "o451": "The following order value estimate exceeds the Total Value Limit of 100,000 USD.",
}
# Documented pacing (seconds between calls); the global limit is 10 per second.
PACING = {"GET /iserver/account/orders": 5.0, "GET /iserver/account/trades": 5.0, "GET /portfolio/accounts": 5.0,
          "POST /tickle": 1.0}


@dataclass
class Instrument:
    conid: int
    symbol: str
    name: str
    exchange: str
    currency: str = "USD"
    sec_type: str = "STK"
    start_price: float = 100.0


@dataclass
class FakeOrder:
    order_id: int
    acct: str
    conid: int
    side: str
    order_type: str
    quantity: float
    price: float | None
    tif: str
    coid: str | None
    parent: int | None
    status: str = "PreSubmitted"
    filled: float = 0.0
    avg_price: float | None = None
    created: float = field(default_factory=time.time)
    last_exec_ms: int | None = None
    cancel_at: float | None = None


INSTRUMENTS = [
    Instrument(265598, "AAPL", "APPLE INC", "NASDAQ", start_price=80.0),
    Instrument(38708077, "AAPL", "APPLE INC", "MEXI", currency="MXN", start_price=1500.0),
    Instrument(756733, "SPY", "SPDR S&P 500 ETF TRUST", "ARCA", start_price=200.0),
    Instrument(416904, "SPX", "S&P 500 Stock Index", "CBOE", sec_type="IND", start_price=2000.0),
    Instrument(1001, "TWIN", "TWIN HOLDINGS A", "NYSE", start_price=50.0),
    Instrument(1002, "TWIN", "TWIN HOLDINGS B", "NASDAQ", start_price=51.0),
]


def weekdays_until(until: date, count: int) -> list[date]:
    """The ``count`` weekdays ending at ``until``, oldest first (the fakes' trading sessions)."""
    days, d = [], until
    while len(days) < count:
        if d.weekday() < 5:
            days.append(d)
        d -= timedelta(days=1)
    return days[::-1]


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


class FakeGateway:
    """Start with ``with FakeGateway() as gw:``; ``gw.url`` is the base URL (``http://127.0.0.1:P/v1/api``)."""

    def __init__(self, *, account: str = "DU1234567", pacing_scale: float = 1.0, history_days: int = 1600):
        self.account = account
        self.scale = pacing_scale
        self.instruments = {i.conid: i for i in INSTRUMENTS}
        self.history_days = history_days
        self._bars: dict[int, list[dict]] = {}
        self.lock = threading.RLock()
        self.calls: Counter[str] = Counter()
        self.log: list[tuple[float, str, dict, Any]] = []
        self.stamps: list[tuple[float, str, int]] = []
        self.slow_unauthorized = 0.0
        self.violations: list[str] = []
        self.orders: dict[int, FakeOrder] = {}
        self.executions: list[dict] = []
        self.coids: set[str] = set()
        self.positions: dict[int, list[float]] = {}  # conid -> [quantity, average cost]
        self.cash = 1_000_000.0
        self._next_order = 1_000_001
        self._pending: dict[str, dict] = {}
        self._open_question: str | None = None
        # session
        self.authenticated, self.competing, self.session_no = True, False, 1
        self._live_reads_in_session = 0
        self.idle_timeout_s: float | None = None
        self._last_activity = time.monotonic()
        # faults
        self.questions: list[str] = []
        self._forced: dict[str, deque] = {}
        self.slow: dict[str, float] = {}
        self.drop_after_accept = False
        self.void_next_reply: str | None = None  # "discard" the order, or keep it "live" anyway
        self.cancel_delay_s = 0.05
        self.on_order_booked: list = []
        self._recent: dict[str, float] = {}
        self._window: deque[float] = deque()
        self._history_running = 0
        handler = type("Handler", (_Handler,), {"gw": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # -- lifecycle -----------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{BASE}"

    def __enter__(self) -> FakeGateway:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- test controls -------------------------------------------------------------------------------------
    def count(self, route: str) -> int:
        return self.calls[route]

    def fail_next(self, route: str, status: int, body: Any = None, headers: dict | None = None,
                  times: int = 1) -> None:
        self._forced.setdefault(route, deque()).extend([(status, body, headers or {})] * times)

    def expire_session(self) -> None:
        """The brokerage session is gone (idle, nightly reset): 401 until ``ssodh/init``."""
        with self.lock:
            self.authenticated = False

    def book(self, conid: int, side: str = "BUY", quantity: float = 1, price: float = 1.0,
             coid: str | None = None) -> int:
        """A working LMT order at the gateway (priced away from the market, so it stays working); its id."""
        with self.lock:
            [order] = self._book(self.account, [{"conid": conid, "orderType": "LMT", "side": side,
                                                 "quantity": quantity, "price": price, "tif": "GTC",
                                                 **({"cOID": coid} if coid else {})}])
            return order.order_id

    def most_in_window(self, seconds: float, since: float = 0.0) -> int:
        """The most requests (any route) the gateway received within any ``seconds`` (from ``since``)."""
        times = sorted(t for t, _, _ in self.stamps if t >= since)
        most, first = 0, 0
        for last, t in enumerate(times):
            while t - times[first] >= seconds:
                first += 1
            most = max(most, last - first + 1)
        return most

    def closest(self, route: str, since: float = 0.0) -> float | None:
        """The shortest time between two requests of ``route`` (None with fewer than two)."""
        times = sorted(t for t, r, _ in self.stamps if r == route and t >= since)
        return min((b - a for a, b in zip(times, times[1:], strict=False)), default=None)

    def fill(self, order_id: int, price: float) -> None:
        """Fill a working order (e.g. a bracket child) completely at ``price``."""
        with self.lock:
            self._fill(self.orders[order_id], price)

    def bars(self, conid: int) -> list[dict]:
        """The whole daily series of an instrument (deterministic; ends with a strong rise)."""
        if conid not in self._bars:
            inst = self.instruments[conid]
            days = weekdays_until(datetime.now(NY).date(), self.history_days)
            out, n = [], len(days)
            for i, d in enumerate(days):
                trend = inst.start_price * math.exp(0.0006 * i + 0.03 * math.sin(i / 23.0))
                boost = math.exp(0.004 * max(0, i - (n - 60)))  # the last 60 sessions rise faster
                c = round(trend * boost, 2)
                o = round(c * (1 - 0.004 * math.sin(i * 1.7)), 2)
                h = round(max(o, c) * 1.006, 2)
                low = round(min(o, c) * 0.994, 2)
                t = datetime.combine(d, datetime.min.time().replace(hour=9, minute=30), tzinfo=NY)
                out.append({"o": o, "h": h, "l": low, "c": c, "v": float(100_000 + 1000 * (i % 17)), "t": _ms(t)})
            self._bars[conid] = out
        return self._bars[conid]

    def last_close(self, conid: int) -> float:
        now_ms = _ms(datetime.now(UTC))
        done = [b for b in self.bars(conid) if b["t"] + 6.5 * 3600 * 1000 <= now_ms]
        return (done or self.bars(conid))[-1]["c"]

    # -- request handling ----------------------------------------------------------------------------------
    ROUTES = [
        ("POST", r"/tickle", "tickle", "POST /tickle"),
        ("POST", r"/iserver/auth/status", "auth_status", "POST /iserver/auth/status"),
        ("GET", r"/iserver/auth/status", "auth_status", "GET /iserver/auth/status"),
        ("POST", r"/iserver/auth/ssodh/init", "ssodh_init", "POST /iserver/auth/ssodh/init"),
        ("GET", r"/iserver/accounts", "iserver_accounts", "GET /iserver/accounts"),
        ("GET", r"/portfolio/accounts", "portfolio_accounts", "GET /portfolio/accounts"),
        ("GET", r"/iserver/secdef/search", "secdef_search", "GET /iserver/secdef/search"),
        ("GET", r"/iserver/contract/(\d+)/info", "contract_info", "GET /iserver/contract/{conid}/info"),
        ("GET", r"/iserver/marketdata/history", "history", "GET /iserver/marketdata/history"),
        ("POST", r"/iserver/account/([^/]+)/orders", "place", "POST /iserver/account/{acct}/orders"),
        ("POST", r"/iserver/reply/([^/]+)", "reply", "POST /iserver/reply/{id}"),
        ("GET", r"/iserver/account/orders", "live_orders", "GET /iserver/account/orders"),
        ("GET", r"/iserver/account/trades/?", "trades", "GET /iserver/account/trades"),
        ("DELETE", r"/iserver/account/([^/]+)/order/(\d+)", "cancel", "DELETE /iserver/account/{acct}/order/{id}"),
        ("POST", r"/portfolio/([^/]+)/positions/invalidate", "invalidate",
         "POST /portfolio/{acct}/positions/invalidate"),
        ("GET", r"/portfolio/([^/]+)/positions/(\d+)", "positions", "GET /portfolio/{acct}/positions/{page}"),
        ("GET", r"/portfolio/([^/]+)/summary", "summary", "GET /portfolio/{acct}/summary"),
        ("GET", r"/portfolio/([^/]+)/ledger", "ledger", "GET /portfolio/{acct}/ledger"),
    ]
    SESSION_FREE = {"POST /tickle", "POST /iserver/auth/status", "GET /iserver/auth/status",
                    "POST /iserver/auth/ssodh/init"}

    def route(self, method: str, path: str) -> tuple[str, str, tuple] | None:
        for m, pattern, name, template in self.ROUTES:
            match = re.fullmatch(BASE + pattern, path)
            if m == method and match:
                return name, template, match.groups()
        return None

    def _pace(self, template: str) -> str | None:
        """Record and report a violation of IBKR's documented pacing (with slack for the jitter of threads on a
        busy machine at test scale; an unpaced client is off by orders of magnitude)."""
        now = time.monotonic()
        with self.lock:
            while self._window and now - self._window[0] > 1.0 * self.scale:
                self._window.popleft()
            self._window.append(now)
            # IBKR's 10 at its own scale; scaled down, the jitter of threads is a large part of a window
            if len(self._window) > (10 if self.scale >= 1.0 else 12):
                return f"{template}: more than 10 requests within {self.scale:g} s"
            need = PACING.get(template)
            last = self._recent.get(template)
            self._recent[template] = now
            if need is not None and last is not None and now - last < 0.5 * need * self.scale:
                return f"{template}: {now - last:.3f} s after the previous call (limit {need * self.scale:g} s)"
        return None

    def handle(self, method: str, path: str, query: dict, body: Any, port: int = 0) -> tuple[int, Any, dict, str]:
        """(status, JSON body, headers, action) where action is '' or 'drop'."""
        arrived = time.monotonic()
        found = self.route(method, path)
        if found is None:
            return 404, {"error": f"no route {method} {path}"}, {}, ""
        name, template, args = found
        with self.lock:
            self.calls[template] += 1
            self.log.append((time.time(), template, query, body))
            self.stamps.append((arrived, template, port))
            if self._open_question and name != "reply":  # another request voids an open question
                self._pending.pop(self._open_question, None)
                self._open_question = None
        violation = self._pace(template)
        if violation:
            self.violations.append(violation)
            return 429, {"error": "Too Many Requests"}, {}, ""
        forced = self._forced.get(template)
        if forced:
            status, fbody, headers = forced.popleft()
            return status, fbody, headers, ""
        with self.lock:
            if self.idle_timeout_s is not None and time.monotonic() - self._last_activity > self.idle_timeout_s:
                self.authenticated = False
            self._last_activity = time.monotonic()
            unauthorized = not self.authenticated and template not in self.SESSION_FREE
        if unauthorized:
            if self.slow_unauthorized:
                time.sleep(self.slow_unauthorized)
            return 401, None, {}, ""
        if name == "history":
            with self.lock:
                if self._history_running >= 5:
                    self.violations.append("history: more than 5 concurrent requests")
                    return 429, {"error": "Too many history charts requests"}, {}, ""
                self._history_running += 1
            try:
                result = getattr(self, "h_" + name)(query, body, *args)
            finally:
                with self.lock:
                    self._history_running -= 1
        else:
            with self.lock:
                result = getattr(self, "h_" + name)(query, body, *args)
        status, payload = result[:2]
        action = result[2] if len(result) > 2 else ""
        delay = self.slow.get(template, 0.0)
        if delay:
            time.sleep(delay)
        return status, payload, {}, action

    # -- session -------------------------------------------------------------------------------------------
    def _auth(self) -> dict:
        return {"authenticated": self.authenticated, "competing": self.competing, "connected": True,
                "message": "", "MAC": "00:11:22:33:44:55", "fail": "", "established": self.authenticated,
                "hardware_info": "abcdef|00:11:22:33:44:55",
                "serverInfo": {"serverName": "JifN19053", "serverVersion": "Build 10.25.0p, Dec 5, 2023"}}

    def h_tickle(self, q, b):
        return 200, {"session": uuid.uuid4().hex, "ssoExpires": 540000, "collission": False, "userId": 12345678,
                     "hmds": {"error": "no bridge"}, "iserver": {"authStatus": self._auth()}}

    def h_auth_status(self, q, b):
        return 200, self._auth()

    def h_ssodh_init(self, q, b):
        if not isinstance(b, dict) or "publish" not in b:
            return 400, {"error": "publish is required", "statusCode": 400}
        if self.competing and not b.get("compete"):
            return 200, self._auth()
        self.authenticated, self.competing = True, False
        self.session_no += 1
        self._live_reads_in_session = 0
        return 200, self._auth()

    def h_iserver_accounts(self, q, b):
        a = self.account
        return 200, {"accounts": [a], "acctProps": {a: {"hasChildAccounts": False, "supportsCashQty": True,
                                                         "supportsFractions": False}},
                     "aliases": {a: a}, "allowFeatures": {"showGFIS": True, "allowCrypto": False},
                     "chartPeriods": {"STK": ["*"]}, "groups": [], "profiles": [], "selectedAccount": a,
                     "serverInfo": {"serverName": "JifN19053", "serverVersion": "Build 10.25.0p"},
                     "sessionId": "6576f6e2.00000014", "isFT": False, "isPaper": True}

    def h_portfolio_accounts(self, q, b):
        a = self.account
        return 200, [{"id": a, "PrepaidCrypto-Z": False, "PrepaidCrypto-P": False, "brokerageAccess": True,
                      "accountId": a, "accountVan": a, "accountTitle": "Paper Trader", "displayName": a,
                      "accountAlias": None, "accountStatus": 1644814800000, "currency": "USD", "type": "DEMO",
                      "tradingType": "PMRGN", "businessType": "IB_PROSERVE", "ibEntity": "IBLLC-US",
                      "faclient": False, "clearingStatus": "O", "covestor": False, "noClientTrading": False,
                      "trackVirtualFXPortfolio": True,
                      "parent": {"mmc": [], "accountId": "", "isMParent": False, "isMChild": False,
                                 "isMultiplex": False}, "desc": a}]

    # -- contracts -----------------------------------------------------------------------------------------
    def h_secdef_search(self, q, b):
        text = (q.get("symbol") or [""])[0].strip()
        by_name = (q.get("name") or ["false"])[0].lower() == "true"
        if by_name:
            hits = [i for i in self.instruments.values() if text.upper() in i.name.upper()]
        else:
            hits = [i for i in self.instruments.values() if i.symbol == text.upper()]
        if not hits:
            return 200, {"error": f"No symbol found for {text}"}
        out = []
        for i in hits:
            sections = [{"secType": i.sec_type}]
            if i.sec_type == "STK":
                sections.append({"secType": "OPT", "months": "JAN25;FEB25;MAR25", "exchange": "SMART;AMEX;CBOE"})
            out.append({"conid": str(i.conid), "companyHeader": f"{i.name} - {i.exchange}", "companyName": i.name,
                        "symbol": i.symbol, "description": i.exchange, "restricted": None, "fop": None,
                        "opt": "20250117;20250221" if i.sec_type == "STK" else None, "war": None,
                        "sections": sections})
        return 200, out

    def h_contract_info(self, q, b, conid):
        i = self.instruments.get(int(conid))
        if i is None:
            return 400, {"error": f"Contract {conid} not found"}
        return 200, {"cfi_code": "", "symbol": i.symbol, "cusip": None, "expiry_full": None, "con_id": i.conid,
                     "maturity_date": None, "industry": "Technology", "instrument_type": i.sec_type,
                     "trading_class": i.symbol, "valid_exchanges": f"SMART,{i.exchange}", "allow_sell_long": False,
                     "is_zero_commission_security": False, "local_symbol": i.symbol,
                     "contract_clarification_type": None, "classifier": None, "currency": i.currency,
                     "text": None, "underlying_con_id": 0, "r_t_h": True, "multiplier": None,
                     "underlying_issuer": None, "contract_month": None, "company_name": i.name,
                     "smart_available": True, "exchange": i.exchange, "category": "Computers"}

    def h_history(self, q, b):
        conid = int((q.get("conid") or ["0"])[0])
        period = (q.get("period") or ["1w"])[0]
        if conid not in self.instruments or (q.get("bar") or [""])[0] != "1d":
            return 500, {"error": "No data."}
        unit = re.fullmatch(r"(\d+)(min|h|d|w|m|y)", period)
        if unit is None:
            return 400, {"error": f"invalid period {period}"}
        n, u = int(unit.group(1)), unit.group(2)
        days = {"d": n, "w": 7 * n, "m": 31 * n, "y": 366 * n}.get(u, 1)
        now = datetime.now(UTC)
        start_ms = _ms(now - timedelta(days=days))
        points = [p for p in self.bars(conid) if start_ms <= p["t"] <= _ms(now)][-1000:]
        if not points:
            return 500, {"error": "No data."}
        i = self.instruments[conid]
        return 200, {"serverId": "20477", "symbol": i.symbol, "text": i.name, "priceFactor": 100,
                     "startTime": datetime.fromtimestamp(points[0]["t"] / 1000, UTC).strftime("%Y%m%d-%H:%M:%S"),
                     "high": "36615/34167/20160", "low": "34719/34398/7200", "timePeriod": period,
                     "barLength": 86400, "mdAvailability": "S", "mktDataDelay": 0, "outsideRth": False,
                     "tradingDayDuration": 1440, "volumeFactor": 1, "priceDisplayRule": 1,
                     "priceDisplayValue": "2", "chartPanStartTime": "20231211-04:00:00", "direction": -1,
                     "negativeCapable": False, "messageVersion": 2, "travelTime": 48, "data": points,
                     "points": len(points)}

    # -- orders --------------------------------------------------------------------------------------------
    def h_place(self, q, b, acct):
        if acct != self.account:
            return 200, {"error": f"Account {acct} is not a valid account"}
        tickets = b.get("orders") if isinstance(b, dict) else None
        if not isinstance(tickets, list) or not tickets:
            return 400, {"error": "orders must be a non-empty list"}
        parent_coid = tickets[0].get("cOID")
        for t in tickets:
            problem = self._check_ticket(t, parent_coid)
            if problem:
                return 200, {"error": problem}
        if parent_coid in self.coids:
            return 200, {"error": f"Order couldn't be submitted: Local order ID={parent_coid} is already registered."}
        return self._ask_or_book(acct, tickets, list(self.questions))

    def _check_ticket(self, t: dict, parent_coid: str | None) -> str | None:
        for key in ("conid", "orderType", "side", "quantity", "tif"):
            if key not in t:
                return f"missing {key}"
        if not isinstance(t["conid"], int) or t["conid"] not in self.instruments:
            return f"invalid conid {t['conid']!r}"
        if t["orderType"] not in ("MKT", "LMT", "STP") or t["side"] not in ("BUY", "SELL"):
            return "invalid order type or side"
        if t["orderType"] in ("LMT", "STP") and not isinstance(t.get("price"), (int, float)):
            return "invalid order price fields"
        if "parentId" in t and t["parentId"] != parent_coid:
            return f"parentId {t['parentId']} does not name the parent's cOID"
        return None

    def _ask_or_book(self, acct: str, tickets: list[dict], remaining: list[str]):
        if remaining:
            mid = remaining[0]
            reply_id = str(uuid.uuid4())
            self._pending[reply_id] = {"acct": acct, "tickets": tickets, "remaining": remaining[1:]}
            self._open_question = reply_id
            return 200, [{"id": reply_id, "message": [QUESTION_TEXT.get(mid, f"Question {mid}?")],
                          "isSuppressed": False, "messageIds": [mid]}]
        if tickets[0].get("cOID") in self.coids:
            return 200, {"error": f"Order couldn't be submitted: Local order ID={tickets[0]['cOID']} is already "
                                  "registered."}
        booked = self._book(acct, tickets)
        for hook in self.on_order_booked:
            hook(booked)
        answer = [{"order_id": str(o.order_id), "order_status": o.status, "encrypt_message": "1"} for o in booked]
        return 200, answer, "drop" if self.drop_after_accept else ""

    def h_reply(self, q, b, reply_id):
        pending = self._pending.pop(reply_id, None)
        self._open_question = None
        if pending is None:
            return 400, {"error": f"reply id not found: '{reply_id}'"}
        if self.void_next_reply:
            mode, self.void_next_reply = self.void_next_reply, None
            if mode == "live":  # the question expired, yet the order went live (seen on paper)
                self._book(pending["acct"], pending["tickets"])
            return 400, {"error": f"reply id not found: '{reply_id}'"}
        if not isinstance(b, dict) or b.get("confirmed") is not True:
            return 200, {"error": "Order not confirmed"}
        return self._ask_or_book(pending["acct"], pending["tickets"], pending["remaining"])

    def _book(self, acct: str, tickets: list[dict]) -> list[FakeOrder]:
        booked, parent_id = [], None
        for t in tickets:
            o = FakeOrder(order_id=self._next_order, acct=acct, conid=t["conid"], side=t["side"],
                          order_type=t["orderType"], quantity=float(t["quantity"]), price=t.get("price"),
                          tif=t["tif"], coid=t.get("cOID"), parent=parent_id if "parentId" in t else None)
            self._next_order += 1
            if parent_id is None:
                parent_id = o.order_id
                if o.coid:
                    self.coids.add(o.coid)
            self.orders[o.order_id] = o
            booked.append(o)
        parent = booked[0]
        parent.status = "Submitted"
        last = self.last_close(parent.conid)
        if parent.order_type == "MKT" or (parent.order_type == "LMT" and (
                (parent.side == "BUY" and parent.price >= last) or (parent.side == "SELL" and parent.price <= last))):
            self._fill(parent, last)
        return booked

    def _fill(self, o: FakeOrder, price: float) -> None:
        qty = o.quantity - o.filled
        now = datetime.now(UTC)
        o.avg_price = ((o.avg_price or 0.0) * o.filled + price * qty) / o.quantity
        o.filled, o.status, o.last_exec_ms = o.quantity, "Filled", _ms(now)
        sign = 1 if o.side == "BUY" else -1
        pos = self.positions.setdefault(o.conid, [0.0, 0.0])
        new_qty = pos[0] + sign * qty
        if sign > 0 and new_qty:
            pos[1] = (pos[0] * pos[1] + qty * price) / new_qty
        pos[0] = new_qty
        self.cash -= sign * qty * price + 1.0
        i = self.instruments[o.conid]
        self.executions.append({
            "execution_id": f"0000e0d5.{o.order_id:08x}.01.01", "symbol": i.symbol, "supports_tax_opt": "1",
            "side": "B" if o.side == "BUY" else "S", "order_description": f"{'Bot' if sign > 0 else 'Sold'} "
            f"{qty:g} @ {price} on {i.exchange}", "trade_time": now.strftime("%Y%m%d-%H:%M:%S"),
            "trade_time_r": _ms(now), "size": qty, "price": f"{price}", "submitter": "user1234",
            "exchange": i.exchange, "commission": "1.0", "net_amount": round(qty * price, 2),
            "account": o.acct, "accountCode": o.acct, "company_name": i.name, "contract_description_1": i.symbol,
            "sec_type": i.sec_type, "listing_exchange": i.exchange, "conid": i.conid, "conidEx": str(i.conid),
            "clearing_id": "IB", "clearing_name": "IB", "liquidation_trade": "0", "is_event_trading": "0",
            "order_id": o.order_id, **({"order_ref": o.coid} if o.coid else {})})
        for child in self.orders.values():
            if child.parent == o.order_id and child.status == "PreSubmitted":
                child.status = "Submitted"
        if o.parent is not None:  # one-cancels-other
            for sibling in self.orders.values():
                if sibling.parent == o.parent and sibling is not o and sibling.status in ("Submitted", "PreSubmitted"):
                    sibling.status = "Cancelled"

    def _settle_cancels(self) -> None:
        for o in self.orders.values():
            if o.cancel_at is not None and time.monotonic() >= o.cancel_at and o.status == "PendingCancel":
                o.status = "Cancelled"
                for child in self.orders.values():
                    if child.parent == o.order_id and child.status not in ("Filled", "Cancelled"):
                        child.status = "Cancelled"
                if o.parent is not None:
                    for sibling in self.orders.values():
                        if sibling.parent == o.parent and sibling.status not in ("Filled", "Cancelled"):
                            sibling.status = "Cancelled"

    def _live_entry(self, o: FakeOrder) -> dict:
        i = self.instruments[o.conid]
        names = {"MKT": ("Market", "MARKET"), "LMT": ("Limit", "LIMIT"), "STP": ("Stop", "STOP")}[o.order_type]
        entry = {"acct": o.acct, "conidex": str(o.conid), "conid": o.conid, "account": o.acct, "orderId": o.order_id,
                 "cashCcy": i.currency, "sizeAndFills": f"{o.filled:g}/{o.quantity:g}",
                 "orderDesc": f"{o.side.title()} {o.quantity:g} {i.symbol} {names[0]}",
                 "description1": i.symbol, "ticker": i.symbol, "secType": i.sec_type,
                 "listingExchange": i.exchange, "remainingQuantity": o.quantity - o.filled,
                 "filledQuantity": o.filled, "totalSize": o.quantity, "companyName": i.name, "status": o.status,
                 "order_ccp_status": o.status, "origOrderType": names[1], "supportsTaxOpt": "1",
                 "orderType": names[0], "bgColor": "#FFFFFF", "fgColor": "#000000", "timeInForce": o.tif,
                 "side": o.side}
        if o.price is not None:
            entry["price"] = f"{o.price}"
        if o.avg_price is not None:
            entry["avgPrice"] = f"{o.avg_price:.4f}"
        if o.last_exec_ms is not None:
            entry["lastExecutionTime_r"] = o.last_exec_ms
            entry["lastExecutionTime"] = datetime.fromtimestamp(o.last_exec_ms / 1000, UTC).strftime("%y%m%d%H%M%S")
        if o.coid:
            entry["order_ref"] = o.coid
        return entry

    def h_live_orders(self, q, b):
        self._live_reads_in_session += 1
        if self._live_reads_in_session == 1:  # the documented first-call quirk
            return 200, {"orders": [], "snapshot": True}
        self._settle_cancels()
        return 200, {"orders": [self._live_entry(o) for o in sorted(self.orders.values(), key=lambda o: -o.order_id)],
                     "snapshot": True}

    def h_trades(self, q, b):
        days = int((q.get("days") or ["1"])[0])
        since = _ms(datetime.now(UTC) - timedelta(days=max(1, min(7, days))))
        return 200, [e for e in self.executions if e["trade_time_r"] >= since]

    def h_cancel(self, q, b, acct, order_id):
        o = self.orders.get(int(order_id))
        if o is None or o.acct != acct or o.status in ("Filled", "Cancelled"):
            return 200, {"error": f"OrderID {order_id} doesn't exist"}
        o.status, o.cancel_at = "PendingCancel", time.monotonic() + self.cancel_delay_s
        return 200, {"msg": "Request was submitted", "order_id": o.order_id, "conid": o.conid, "account": acct}

    # -- portfolio -----------------------------------------------------------------------------------------
    def h_invalidate(self, q, b, acct):
        return 200, {"message": "success"}

    def h_positions(self, q, b, acct, page):
        if acct != self.account or int(page) > 0:
            return 200, []
        out = []
        for conid, (qty, avg) in self.positions.items():
            if not qty:
                continue
            i = self.instruments[conid]
            px = self.last_close(conid)
            out.append({"acctId": acct, "conid": conid, "contractDesc": i.symbol, "position": qty, "mktPrice": px,
                        "mktValue": round(qty * px, 2), "currency": i.currency, "avgCost": avg, "avgPrice": avg,
                        "realizedPnl": 0.0, "unrealizedPnl": round(qty * (px - avg), 2), "exchs": None,
                        "expiry": None, "putOrCall": None, "multiplier": None, "strike": "0", "exerciseStyle": None,
                        "conExchMap": [], "assetClass": i.sec_type, "undConid": 0, "model": "",
                        "time": 12, "chineseName": "", "allExchanges": i.exchange, "listingExchange": i.exchange,
                        "countryCode": "US", "name": i.name, "lastTradingDay": None, "group": "", "sector": "",
                        "sectorGroup": "", "ticker": i.symbol, "type": "COMMON", "hasOptions": True,
                        "fullName": i.symbol, "isUS": i.currency == "USD", "isEventContract": False,
                        "pageSize": 100})
        return 200, out

    def _equity(self) -> float:
        return self.cash + sum(q * self.last_close(c) for c, (q, _) in self.positions.items())

    def h_summary(self, q, b, acct):
        now_ms = _ms(datetime.now(UTC))

        def metric(amount, currency="USD", value=None):
            return {"amount": amount, "currency": currency, "isNull": False, "severity": 0, "timestamp": now_ms,
                    "value": value}
        equity = round(self._equity(), 2)
        return 200, {"accountcode": metric(0, None, acct), "accounttype": metric(0, None, "INDIVIDUAL"),
                     "netliquidation": metric(equity), "totalcashvalue": metric(round(self.cash, 2)),
                     "buyingpower": metric(round(4 * self.cash, 2)), "availablefunds": metric(round(self.cash, 2)),
                     "excessliquidity": metric(round(self.cash, 2)), "equitywithloanvalue": metric(equity),
                     "grosspositionvalue": metric(round(equity - self.cash, 2)), "initmarginreq": metric(0.0),
                     "maintmarginreq": metric(0.0)}

    def h_ledger(self, q, b, acct):
        now_s = int(time.time())  # the ledger's timestamps are epoch seconds (the quirk)
        equity = round(self._equity(), 2)

        def entry(currency):
            return {"commoditymarketvalue": 0.0, "futuremarketvalue": 0.0, "settledcash": round(self.cash, 2),
                    "exchangerate": 1, "sessionid": 1, "cashbalance": round(self.cash, 2),
                    "corporatebondsmarketvalue": 0.0, "warrantsmarketvalue": 0.0, "netliquidationvalue": equity,
                    "interest": 0.0, "unrealizedpnl": 0.0, "stockmarketvalue": round(equity - self.cash, 2),
                    "moneyfunds": 0.0, "currency": currency, "realizedpnl": 0.0, "funds": 0.0, "acctcode": acct,
                    "issueroptionsmarketvalue": 0.0, "key": "LedgerList", "timestamp": now_s, "severity": 0,
                    "stockoptionmarketvalue": 0.0, "futuresonlypnl": 0.0, "tbondsmarketvalue": 0.0,
                    "futureoptionmarketvalue": 0.0, "cashbalancefxsegment": 0.0, "secondkey": currency,
                    "tbillsmarketvalue": 0.0, "dividends": 0.0}
        return 200, {"USD": entry("USD"), "BASE": entry("BASE")}


class _Handler(BaseHTTPRequestHandler):
    gw: FakeGateway
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def _serve(self, method: str) -> None:
        parsed = urlparse(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            self._send(400, {"error": "body is not JSON"}, {})
            return
        status, payload, headers, action = self.gw.handle(method, parsed.path, parse_qs(parsed.query), body,
                                                          self.client_address[1])
        if action == "drop":  # booked, but the client never hears back
            self.close_connection = True
            return
        self._send(status, payload, headers)

    def _send(self, status: int, payload: Any, headers: dict) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client went away (a killed process)
            pass

    def do_GET(self) -> None:  # noqa: N802
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve("DELETE")
