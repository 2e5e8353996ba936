"""The IBKR Client Portal Web API broker (``TRADETRAIL_BROKER=ibkr_web``), behind the broker port.

- Placing: one POST per order or bracket; the parent carries our client order id (``cOID``), the children
  ``parentId`` = that id and no id of their own (as IBKR documents). Every leg is written to
  ``ibkr_order_links`` first, so the children can be recognised later in IBKR's lists, which echo our id
  (``order_ref``) only for the parent. Confirmation questions go back to the order manager, which answers
  only allow-listed message ids. A timeout, a dropped connection, a 5xx or ``reply id not found`` is
  ambiguous: it is raised (or returned as such), never retried here.
- Reading: live orders (``/iserver/account/orders``: may be empty on the first call of a session, so an
  empty first answer is read again before it counts), executions (``/iserver/account/trades``, 7 days),
  positions and balances from ``/portfolio``. :meth:`order` answers None only when a complete read shows
  no such order, and raises :class:`OrderStatusUnknown` when IBKR cannot tell.
- Fills come from executions; a working order whose fills are older than the 7 days of executions IBKR
  keeps is booked from its cumulative status (filled quantity at the average price).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta

from ibind import OrderRequest
from ibind.client.ibkr_utils import parse_order_request
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tradetrail.broker.port import (
    AccountValues,
    BrokerError,
    BrokerFill,
    BrokerHealth,
    BrokerOrder,
    BrokerPosition,
    OrderStatusUnknown,
    PlaceResult,
    Question,
)
from tradetrail.db.ibkr_models import IbkrOrderLink
from tradetrail.db.types import utcnow
from tradetrail.domain.contract import Contract
from tradetrail.domain.orders import OrderSpec
from tradetrail.ibkr import shapes
from tradetrail.ibkr.client import IbkrSession
from tradetrail.ibkr.errors import BadReply, IbkrError, IbkrHttpError, NotAuthenticated, RateLimited
from tradetrail.ibkr.pacing import INTERVALS

log = logging.getLogger(__name__)
TRADES_DAYS = 7
PRICE_TOLERANCE = 1e-6


class IbkrWebBroker:
    name = "ibkr_web"
    simulated = False

    def __init__(self, session: IbkrSession, engine: Engine, *, account: str | None = None):
        self.session, self.engine, self._configured = session, engine, account
        self._lock = threading.RLock()
        self._accounts: dict | None = None
        self._accounts_epoch = -1
        self._portfolio_epoch = -1
        self._portfolio_accounts: list = []
        self._live: tuple[float, int, list[dict], datetime] | None = None  # (monotonic, epoch, orders, when)
        self._live_reads: dict[int, int] = {}
        self._trades: tuple[float, int, list[dict], datetime] | None = None  # (monotonic, days, executions, when)
        self._changed_at = 0.0  # monotonic time of our last order-changing request
        self._pending: dict[str, list[OrderSpec]] = {}
        self.last_values: dict = {}

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # -- session and account ------------------------------------------------------------------------------
    def health(self) -> BrokerHealth:
        status = self._status()
        if not (status.get("authenticated") and status.get("connected")) and not status.get("competing"):
            try:
                self.session.reopen("health check: brokerage session not authenticated",
                                    seen_epoch=self.session.sent_epoch)
                status = self._status()
            except NotAuthenticated as exc:
                status = {**status, "message": str(exc)}
        message = status.get("fail") or status.get("message") or ""
        if status.get("authenticated") and status.get("connected") and not status.get("competing"):
            self._iserver_accounts()  # whether it is a paper account; also the pre-flight orders need
        if not status.get("authenticated"):
            message = message or "not authenticated: log in to the CP Gateway (or check the OAuth settings)"
        if status.get("competing"):
            message = message or "another session of this IBKR user is active (TWS, mobile or web)"
        return BrokerHealth(broker=self.name, authenticated=bool(status.get("authenticated")),
                            connected=bool(status.get("connected")), competing=bool(status.get("competing")),
                            paper=self._paper_hint(), message=str(message))

    def _status(self) -> dict:
        try:
            return self.session.auth_status()
        except NotAuthenticated as exc:
            return {"authenticated": False, "connected": True, "competing": False, "message": str(exc)}

    def _iserver_accounts(self) -> dict:
        """``/iserver/accounts``: the pre-flight IBKR wants before orders; once per brokerage session."""
        with self._lock:
            if self._accounts is None or self._accounts_epoch != self.session.epoch:
                data = self.session.get("iserver/accounts")
                if not isinstance(data, dict) or not isinstance(data.get("accounts"), list):
                    raise BadReply(f"IBKR /iserver/accounts: unexpected answer {str(data)[:200]}")
                self._accounts, self._accounts_epoch = data, self.session.epoch
            return self._accounts

    def _portfolio_preflight(self) -> None:
        """``/portfolio/accounts`` must precede other ``/portfolio`` calls; once per brokerage session."""
        with self._lock:
            if self._portfolio_epoch != self.session.epoch:
                data = self.session.get("portfolio/accounts")
                self._portfolio_accounts = data if isinstance(data, list) else []
                self._portfolio_epoch = self.session.epoch

    def account(self, user_id: int, strategy_id: int | None = None) -> str:
        if strategy_id is not None:
            raise BrokerError("a replay-clock strategy trades on a simulated account of its own; IBKR cannot trade a "
                              "replayed market (leave the strategy's broker empty or set it to simulated)")
        accounts = [str(a) for a in self._iserver_accounts()["accounts"]]
        if self._configured:
            if self._configured not in accounts:
                raise BrokerError(f"TRADETRAIL_IBKR_ACCOUNT={self._configured} is not among the accounts this IBKR "
                                  f"login can trade ({', '.join(accounts) or 'none'})")
            return self._configured
        if not accounts:
            raise BrokerError("this IBKR login lists no account to trade")
        return accounts[0]

    def _paper_hint(self) -> bool:
        if self._accounts is not None and "isPaper" in self._accounts:
            return bool(self._accounts["isPaper"])
        return (self._configured or "").upper().startswith("D")

    def _paper(self, account: str) -> bool:
        info = self._iserver_accounts()
        if "isPaper" in info:
            return bool(info["isPaper"])
        for entry in self._portfolio_accounts:
            if isinstance(entry, dict) and entry.get("accountId") == account and entry.get("type"):
                return entry["type"] == "DEMO"
        return account.upper().startswith("D")

    def account_values(self, account: str) -> AccountValues:
        self._portfolio_preflight()
        summary = self._read(f"portfolio/{account}/summary", dict)
        ledger = self._read(f"portfolio/{account}/ledger", dict)
        try:
            equity = shapes.num(summary["netliquidation"]["amount"], "net liquidation")
        except (KeyError, TypeError):
            raise BadReply(f"IBKR /portfolio/{account}/summary has no netliquidation amount") from None
        base = ledger.get("BASE") if isinstance(ledger.get("BASE"), dict) else {}
        cash = shapes.num(base.get("cashbalance"), "cash balance") if base else None
        if cash is None:
            cash = shapes.num((summary.get("totalcashvalue") or {}).get("amount"), "total cash")
        if equity is None or cash is None:
            raise BadReply(f"IBKR /portfolio/{account}: no cash or net liquidation value")
        currency = (summary["netliquidation"].get("currency") or base.get("currency") or "USD")
        if currency == "BASE":
            currency = "USD"
        stamps = {"summary_at": shapes.epoch(summary["netliquidation"].get("timestamp")),  # epoch ms
                  "ledger_at": shapes.epoch(base.get("timestamp"))}  # epoch seconds: the quirk
        self.last_values = {"account": account, "cash": cash, "equity": equity, "currency": currency,
                            **{k: v.isoformat() if v else None for k, v in stamps.items()}}
        return AccountValues(account=account, cash=float(cash), equity=float(equity), currency=str(currency),
                             paper=self._paper(account))

    def _read(self, path: str, kind: type):
        try:
            data = self.session.get(path)
        except IbkrHttpError as exc:
            raise BrokerError(f"IBKR /{path}: {exc}") from None
        if not isinstance(data, kind):
            raise BadReply(f"IBKR /{path}: unexpected answer {str(data)[:200]}")
        return data

    # -- placing ------------------------------------------------------------------------------------------
    def place(self, account: str, contract: Contract, orders: list[OrderSpec]) -> PlaceResult:
        if not contract.conid:
            return PlaceResult("rejected", reason=f"{contract.symbol} has no IBKR contract id: resolve it through "
                                                  "the 'ibkr' market data")
        parent = orders[0].client_order_id
        tickets = [self._ticket(account, contract, o, parent) for o in orders]
        self._save_links(account, contract, orders)
        try:
            self._iserver_accounts()  # IBKR's pre-flight; failing here, nothing was sent
        except IbkrError as exc:
            return PlaceResult("rejected", reason=f"not sent: {exc}")
        self._changed()
        try:
            data = self.session.call("POST", f"iserver/account/{account}/orders", body={"orders": tickets},
                                     retry=False)
        except (NotAuthenticated, RateLimited) as exc:  # refused before it reached the order book
            return PlaceResult("rejected", reason=str(exc))
        except IbkrHttpError as exc:
            return self._refusal(exc, "order placement")
        return self._interpret(account, data, orders)

    def reply(self, account: str, reply_id: str, confirmed: bool) -> PlaceResult:
        specs = self._pending.pop(reply_id, None)
        self._changed()
        try:
            data = self.session.call("POST", f"iserver/reply/{reply_id}", body={"confirmed": bool(confirmed)},
                                     retry=False)
        except (NotAuthenticated, RateLimited) as exc:
            self.session.question_done()
            return PlaceResult("ambiguous", reason=f"reply not delivered: {exc}")
        except IbkrHttpError as exc:
            self.session.question_done()
            if "reply id not found" in exc.error_text.lower():  # the question expired: the order may be live
                return PlaceResult("ambiguous", reason=exc.error_text)
            return self._refusal(exc, "confirmation reply")
        except Exception:
            self.session.question_done()
            raise
        if not confirmed:
            self.session.question_done()
            return PlaceResult("rejected", reason="Order not confirmed")
        return self._interpret(account, data, specs or [])

    def _refusal(self, exc: IbkrHttpError, what: str) -> PlaceResult:
        """An HTTP error answer: a definite refusal for 4xx with a reason; 5xx stays ambiguous."""
        text = exc.error_text or exc.text[:300]
        if exc.status < 500 or "already registered" in text:
            return PlaceResult("rejected", reason=text or f"HTTP {exc.status}")
        raise IbkrError(f"IBKR {what}: HTTP {exc.status} {text}".rstrip())

    def _interpret(self, account: str, data, specs: list[OrderSpec]) -> PlaceResult:
        """IBKR's answer to an order or a reply: orders, a question, or an error (the documented union)."""
        if isinstance(data, dict):
            if "error" in data:
                self.session.question_done()
                return PlaceResult("rejected", reason=str(data["error"]))
            if "messageId" in data or "prompt" in data:
                self.session.question_done()
                return PlaceResult("ambiguous", reason=f"IBKR prompt {data.get('messageId', '?')} not answerable "
                                                       f"here (order {data.get('orderId')}): {data.get('text', '')}")
            raise BadReply(f"IBKR order answer not understood: {str(data)[:300]}")
        if not isinstance(data, list) or not data or not all(isinstance(x, dict) for x in data):
            raise BadReply(f"IBKR order answer not understood: {str(data)[:300]}")
        first = data[0]
        if "id" in first and ("message" in first or "messageIds" in first):
            reply_id = str(first["id"])
            self._pending[reply_id] = specs
            self.session.hold_for_question()
            text = " ".join(str(m) for m in first.get("message") or []).strip()
            return PlaceResult("needs_confirmation", questions=(
                Question(reply_id, tuple(str(m) for m in first.get("messageIds") or ()), text),))
        if all("order_id" in x for x in data):
            self.session.question_done()
            ids = {spec.client_order_id: str(x["order_id"]) for spec, x in zip(specs, data, strict=False)}
            if len(data) != len(specs):
                ids = {specs[0].client_order_id: str(data[0]["order_id"])} if specs else {}
            self._remember_ids(ids)
            return PlaceResult("accepted", broker_order_ids=ids)
        raise BadReply(f"IBKR order answer not understood: {str(data)[:300]}")

    @staticmethod
    def _ticket(account: str, contract: Contract, o: OrderSpec, parent: str) -> dict:
        child = o.parent_client_order_id is not None
        price = o.limit_price if o.order_type.value == "LMT" else o.stop_price if o.order_type.value == "STP" else None
        request = OrderRequest(conid=int(contract.conid), side=o.side.value, quantity=o.quantity,
                               order_type=o.order_type.value, acct_id=account, price=price, tif=o.tif,
                               coid=None if child else o.client_order_id, parent_id=parent if child else None)
        return parse_order_request(request)

    def _save_links(self, account: str, contract: Contract, orders: list[OrderSpec]) -> None:
        with self._session() as s:
            for i, o in enumerate(orders):
                if s.get(IbkrOrderLink, o.client_order_id) is None:
                    s.add(IbkrOrderLink(client_order_id=o.client_order_id, account=account,
                                        parent_client_order_id=o.parent_client_order_id, position=i,
                                        conid=int(contract.conid), symbol=contract.symbol, side=o.side.value,
                                        order_type=o.order_type.value, quantity=o.quantity,
                                        limit_price=o.limit_price, stop_price=o.stop_price, tif=o.tif))
            s.commit()

    def _remember_ids(self, ids: dict[str, str]) -> None:
        if not ids:
            return
        with self._session() as s:
            for link in s.scalars(select(IbkrOrderLink).where(IbkrOrderLink.client_order_id.in_(list(ids)))):
                link.broker_order_id = ids[link.client_order_id]
            s.commit()

    def _changed(self) -> None:
        """We just asked IBKR to change orders: cached lists are stale from now on."""
        self._changed_at = time.monotonic()
        self._live = self._trades = None

    # -- reading ------------------------------------------------------------------------------------------
    def _live_orders(self) -> list[dict]:
        """Live orders, read twice when the first read of a brokerage session is empty (the documented
        quirk), and reused for IBKR's pacing interval unless we changed orders since."""
        with self._lock:
            fresh = INTERVALS["live_orders"] * self.session.limiter.scale
            if self._live and self._live[1] == self.session.epoch and time.monotonic() - self._live[0] < fresh:
                return self._live[2]
            self._iserver_accounts()
            reads = 0
            for _ in range(3):  # twice, and once more if the session was reopened while we read
                epoch = self.session.epoch
                started, wall = time.monotonic(), utcnow()
                data = self.session.get("iserver/account/orders")
                if not isinstance(data, dict):
                    raise BadReply(f"IBKR live orders: unexpected answer {str(data)[:200]}")
                orders = data.get("orders") or []
                if not isinstance(orders, list):
                    raise BadReply(f"IBKR live orders: 'orders' is not a list: {str(orders)[:200]}")
                if orders:
                    break
                # An empty read counts only in a settled session: the epoch even (no reopen in flight) and the
                # same before and after it (no reopen, here or in another process, while we read).
                now_epoch = self.session.epoch
                if now_epoch == epoch and now_epoch % 2 == 0:
                    reads = self._live_reads.get(now_epoch, 0) + 1
                    self._live_reads = {now_epoch: reads}  # only the current session's count is kept
                    if reads >= 2:
                        break
                else:
                    reads = 0
            if not orders and reads < 2:
                raise IbkrError("IBKR live orders: the brokerage session was reopened during every read; an "
                                "empty first read of a session proves nothing")
            self._live = (started, epoch, [o for o in orders if isinstance(o, dict)], wall)
            return self._live[2]

    def _executions(self, days: int) -> list[dict]:
        with self._lock:
            fresh = INTERVALS["trades"] * self.session.limiter.scale
            if self._trades and self._trades[1] >= days and time.monotonic() - self._trades[0] < fresh:
                return self._trades[2]
            started, wall = time.monotonic(), utcnow()
            data = self.session.get("iserver/account/trades", {"days": days})
            if not isinstance(data, list):
                raise BadReply(f"IBKR trades: unexpected answer {str(data)[:200]}")
            self._trades = (started, days, [t for t in data if isinstance(t, dict)], wall)
            return self._trades[2]

    def _match(self, account: str, live: list[dict]) -> dict[str, tuple[str | None, str | None]]:
        """IBKR order id → (our client order id, its parent's) for the live orders that are ours; children
        never seen with their IBKR id yet are recognised by parent, side, type, size and price (and their id
        remembered)."""
        out: dict[str, tuple[str | None, str | None]] = {}
        by_id = {str(o.get("orderId")): o for o in live if o.get("orderId") is not None}
        with self._session() as s:
            links = s.scalars(select(IbkrOrderLink).where(IbkrOrderLink.account == account)).all() if live else []
            by_coid = {k.client_order_id: k for k in links}
            known = {k.broker_order_id: k for k in links if k.broker_order_id}
            for oid in by_id:
                if oid in known:
                    out[oid] = (known[oid].client_order_id, known[oid].parent_client_order_id)
            for oid, o in by_id.items():
                ref = o.get("order_ref")
                if oid in out or not ref:
                    continue
                link = by_coid.get(ref)
                if link is not None and link.parent_client_order_id is None and _side(o) == link.side:
                    out[oid] = (ref, None)
                    link.broker_order_id = link.broker_order_id or oid
                elif link is None and len(str(ref)) <= 40:
                    out[oid] = (str(ref), None)  # placed elsewhere with an id of its own
            parents = {coid: oid for oid, (coid, parent) in out.items() if coid in by_coid and parent is None}
            for child in (k for k in links if k.parent_client_order_id in parents and k.broker_order_id is None):
                taken = set(out)
                candidates = [o for oid, o in by_id.items() if oid not in taken and _same(o, child)
                              and o.get("order_ref") in (None, "", child.parent_client_order_id)]
                if candidates:
                    parent_id = _int(parents[child.parent_client_order_id])
                    best = min(candidates, key=lambda o: (_int(o.get("orderId")) <= parent_id,
                                                          abs(_int(o.get("orderId")) - parent_id)))
                    oid = str(best["orderId"])
                    out[oid] = (child.client_order_id, child.parent_client_order_id)
                    child.broker_order_id = oid
            s.commit()
        return out

    def _mapped(self, account: str) -> list[tuple[dict, BrokerOrder]]:
        live = [o for o in self._live_orders() if o.get("acct", o.get("account", account)) == account]
        mapping = self._match(account, live)
        return [(o, _broker_order(o, *mapping.get(str(o.get("orderId")), (None, None)))) for o in live]

    def orders(self, account: str) -> list[BrokerOrder]:
        return [bo for _, bo in self._mapped(account)]

    def order(self, account: str, client_order_id: str) -> BrokerOrder | None:
        with self._session() as s:
            link = s.get(IbkrOrderLink, client_order_id)
        with self._lock:  # proof of absence needs lists read after this order was last sent (by any process)
            if link is not None and self._live is not None and self._live[3] <= link.created_at:
                self._live = None
            if link is not None and self._trades is not None and self._trades[3] <= link.created_at:
                self._trades = None
        try:
            found = self._find(account, client_order_id, link)
            if found is None:
                # Absence is proven only by lists read now: a cached one may predate a send still in flight in
                # another process when it was read (its POST waiting for its turn in the shared budget).
                with self._lock:
                    self._live = self._trades = None
                found = self._find(account, client_order_id, link)
        except IbkrError as exc:
            raise OrderStatusUnknown(str(exc)) from None
        return found  # None: a fresh read of live orders and 7 days of executions; IBKR does not have it

    def _find(self, account: str, client_order_id: str, link) -> BrokerOrder | None:
        for bo in self.orders(account):
            if bo.client_order_id == client_order_id:
                return bo
        executions = [t for t in self._executions(TRADES_DAYS) if _is_of(t, client_order_id, link)]
        return _from_executions(executions, client_order_id, link) if executions else None

    def fills(self, account: str, since: datetime | None = None) -> list[BrokerFill]:
        days = TRADES_DAYS if since is None else max(1, min(TRADES_DAYS, (utcnow() - since).days + 1))
        executions = [t for t in self._executions(days) if t.get("account", t.get("accountCode", account)) == account]
        with self._session() as s:
            ids = {str(t.get("order_id")) for t in executions}
            links = {k.broker_order_id: k.client_order_id for k in s.scalars(select(IbkrOrderLink).where(
                IbkrOrderLink.broker_order_id.in_(ids)))} if ids else {}
        out = []
        for t in executions:
            oid = str(t.get("order_id"))
            coid = links.get(oid) or (t.get("order_ref") or None)
            when = shapes.epoch(t.get("trade_time_r")) or shapes.ib_time(t.get("trade_time"))
            out.append(BrokerFill(exec_id=str(t["execution_id"]), broker_order_id=oid, client_order_id=coid,
                                  symbol=str(t.get("symbol") or ""), side=shapes.side(t.get("side")),
                                  quantity=float(shapes.num(t.get("size"), "size") or 0.0),
                                  price=float(shapes.num(t.get("price"), "price") or 0.0),
                                  commission=abs(shapes.num(t.get("commission"), "commission") or 0.0),
                                  time=when or utcnow()))
        return out + self._cumulative_fills(account, executions)

    def _cumulative_fills(self, account: str, executions: list[dict]) -> list[BrokerFill]:
        """Fills of working orders whose executions are all older than the 7 days IBKR keeps: booked once
        from the order's cumulative status, so a long-lived order's position is not lost."""
        seen = {str(t.get("order_id")) for t in executions}
        horizon = utcnow() - timedelta(days=TRADES_DAYS)
        out = []
        for raw, bo in self._mapped(account):
            last = shapes.epoch(raw.get("lastExecutionTime_r"))
            if bo.filled_quantity > 0 and bo.broker_order_id not in seen and last is not None and last < horizon \
                    and bo.avg_fill_price:
                out.append(BrokerFill(exec_id=f"ibkr-cum-{bo.broker_order_id}", broker_order_id=bo.broker_order_id,
                                      client_order_id=bo.client_order_id, symbol=bo.symbol, side=bo.side,
                                      quantity=bo.filled_quantity, price=bo.avg_fill_price, commission=0.0,
                                      time=last))
        return out

    def account_state(self, account: str) -> tuple[AccountValues, list[BrokerPosition]]:
        return self.account_values(account), self.positions(account)

    def positions(self, account: str) -> list[BrokerPosition]:
        self._portfolio_preflight()
        self.session.call("POST", f"portfolio/{account}/positions/invalidate")
        out: list[BrokerPosition] = []
        for page in range(50):
            rows = self._read(f"portfolio/{account}/positions/{page}", list)
            for r in rows:
                qty = shapes.num(r.get("position"), "position") or 0.0
                if qty:
                    out.append(BrokerPosition(symbol=str(r.get("ticker") or r.get("contractDesc") or ""),
                                              conid=shapes.conid_of(r["conid"]) if r.get("conid") else None,
                                              quantity=qty, avg_cost=shapes.num(r.get("avgPrice") or r.get("avgCost"),
                                                                                "average cost") or 0.0,
                                              market_price=shapes.num(r.get("mktPrice"), "market price")))
            if len(rows) < 100:
                break
        return out

    def cancel(self, account: str, broker_order_id: str) -> bool:
        self._iserver_accounts()
        self._changed()
        try:
            data = self.session.call("DELETE", f"iserver/account/{account}/order/{broker_order_id}", retry=False)
        except IbkrHttpError as exc:
            log.warning("IBKR refused to cancel order %s: %s", broker_order_id, exc)
            return False
        if isinstance(data, dict) and "error" not in data and (data.get("msg") or data.get("order_id")):
            return True  # "Request was submitted": accepted, not yet cancelled (the caller polls)
        log.warning("IBKR did not accept the cancellation of %s: %s", broker_order_id, str(data)[:200])
        return False

    def sync(self, account: str, now: datetime, contracts: tuple[Contract, ...] = ()) -> None:
        """Nothing to do: IBKR's clock is the real one."""

    def describe(self) -> dict:
        """Session details for status pages (never a secret)."""
        return {**self.session.describe(), "account_configured": self._configured,
                "accounts": (self._accounts or {}).get("accounts"), "last_values": self.last_values}


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _close(a: float | None, b: float | None) -> bool:
    return a is None or b is None or abs(a - b) <= PRICE_TOLERANCE * max(1.0, abs(b))


def _side(o: dict) -> str | None:
    try:
        return shapes.side(o.get("side"))
    except IbkrError:
        return None


def _same(o: dict, link: IbkrOrderLink) -> bool:
    """Whether a live order looks like the leg we sent (contract, side, type, size, price)."""
    try:
        if shapes.conid_of(o.get("conid")) != link.conid or shapes.side(o.get("side")) != link.side:
            return False
    except IbkrError:
        return False
    if shapes.order_type(o.get("origOrderType") or o.get("orderType")) != link.order_type:
        return False
    size = shapes.num(o.get("totalSize"), "size")
    if size is not None and abs(size - link.quantity) > 1e-9:
        return False
    price = shapes.num(o.get("price"), "price")
    wanted = link.limit_price if link.order_type == "LMT" else link.stop_price if link.order_type == "STP" else None
    return _close(price, wanted) or _close(shapes.num(o.get("auxPrice"), "price"), wanted)


def _broker_order(o: dict, coid: str | None, parent: str | None) -> BrokerOrder:
    filled = shapes.num(o.get("filledQuantity"), "filled quantity") or 0.0
    remaining = shapes.num(o.get("remainingQuantity"), "remaining quantity")
    total = shapes.num(o.get("totalSize"), "size")
    kind = shapes.order_type(o.get("origOrderType") or o.get("orderType"))
    price = shapes.num(o.get("price"), "price")
    avg = shapes.num(o.get("avgPrice"), "average price")
    state = shapes.status(o.get("status"), filled)
    return BrokerOrder(broker_order_id=str(o.get("orderId")), client_order_id=coid,
                       symbol=str(o.get("ticker") or o.get("symbol") or ""), side=shapes.side(o.get("side")),
                       order_type=kind, quantity=total if total is not None else filled + (remaining or 0.0),
                       filled_quantity=filled, avg_fill_price=avg if filled else None, status=state,
                       limit_price=price if kind == "LMT" else None,
                       stop_price=(shapes.num(o.get("auxPrice"), "price") or price) if kind == "STP" else None,
                       parent_client_order_id=parent,
                       reason=str(o.get("status")) if state in ("CANCELLED", "REJECTED") else "")


def _is_of(t: dict, coid: str, link: IbkrOrderLink | None) -> bool:
    """Whether an execution belongs to our order: by IBKR order id when we know it, else by ``order_ref``
    (which only a parent carries; a child echoing its parent's id is told apart by its side)."""
    if link is not None and link.broker_order_id and str(t.get("order_id")) == link.broker_order_id:
        return True
    if t.get("order_ref") != coid:
        return False
    return link is None or (link.parent_client_order_id is None and shapes.side(t.get("side")) == link.side)


def _from_executions(executions: list[dict], coid: str, link: IbkrOrderLink | None) -> BrokerOrder:
    """An order no longer in the live list, rebuilt from its executions (filled, or partly filled)."""
    qty = sum(shapes.num(t.get("size"), "size") or 0.0 for t in executions)
    value = sum((shapes.num(t.get("size"), "size") or 0.0) * (shapes.num(t.get("price"), "price") or 0.0)
                for t in executions)
    total = link.quantity if link is not None else qty
    first = executions[0]
    return BrokerOrder(broker_order_id=str(first.get("order_id")), client_order_id=coid,
                       symbol=str(first.get("symbol") or ""), side=shapes.side(first.get("side")),
                       order_type=link.order_type if link else "", quantity=total, filled_quantity=qty,
                       avg_fill_price=value / qty if qty else None,
                       status="FILLED" if qty >= total - 1e-9 else "PARTIALLY_FILLED",
                       limit_price=link.limit_price if link else None, stop_price=link.stop_price if link else None,
                       parent_client_order_id=link.parent_client_order_id if link else None)
