"""The fake TWS's account values: cash and positions marked at the last close, in the tags TWS reports
(accountSummary, account updates, the ``$LEDGER`` rows). A simple margin model: 25% initial and maintenance
margin on the gross position value, buying power four times the excess."""

from __future__ import annotations

from datetime import datetime

from tests.fakes.tws.conn import Conn
from tests.fakes.tws.market import NY, TwsInstrument


def _money(v: float) -> str:
    return f"{v:.2f}"


def _figures(snap: dict) -> dict:
    cash = snap["cash"]
    value = sum(q * snap["marks"][s] for s, (q, _) in snap["positions"].items())
    gross = sum(abs(q) * snap["marks"][s] for s, (q, _) in snap["positions"].items())
    net = cash + value
    margin = 0.25 * gross
    return {"cash": cash, "value": value, "gross": gross, "net": net, "margin": margin, "excess": net - margin}


def summary_values(snap: dict) -> dict[str, tuple[str, str]]:
    """accountSummary's tags: tag -> (value, currency)."""
    x = _figures(snap)
    usd = {
        "NetLiquidation": x["net"], "TotalCashValue": x["cash"], "SettledCash": x["cash"], "AccruedCash": 0.0,
        "BuyingPower": max(0.0, 4 * x["excess"]), "EquityWithLoanValue": x["net"],
        "PreviousDayEquityWithLoanValue": x["net"], "GrossPositionValue": x["gross"], "RegTEquity": x["net"],
        "RegTMargin": 0.5 * x["gross"], "SMA": max(0.0, x["net"] - 0.5 * x["gross"]), "InitMarginReq": x["margin"],
        "MaintMarginReq": x["margin"], "AvailableFunds": x["excess"], "ExcessLiquidity": x["excess"],
        "FullInitMarginReq": x["margin"], "FullMaintMarginReq": x["margin"], "FullAvailableFunds": x["excess"],
        "FullExcessLiquidity": x["excess"], "LookAheadInitMarginReq": x["margin"],
        "LookAheadMaintMarginReq": x["margin"], "LookAheadAvailableFunds": x["excess"],
        "LookAheadExcessLiquidity": x["excess"],
    }
    out = {tag: (_money(v), "USD") for tag, v in usd.items()}
    out["AccountType"] = ("INDIVIDUAL", "")
    out["Cushion"] = (f"{(x['excess'] / x['net']) if x['net'] else 0:.6f}", "")
    out["Leverage"] = (f"{(x['gross'] / x['net']) if x['net'] else 0:.2f}", "")
    out["LookAheadNextChange"] = ("0", "")
    out["HighestSeverity"] = ("0", "")
    out["DayTradesRemaining"] = ("-1", "")
    for k in range(1, 5):
        out[f"DayTradesRemainingT+{k}"] = ("-1", "")
    return out


def ledger_values(snap: dict, currency: str) -> list[tuple[str, str, str]]:
    """The ``$LEDGER`` rows (``$LEDGER`` alone is the base currency, ``:ALL`` every currency and BASE)."""
    x = _figures(snap)
    currencies = ["USD", "BASE"] if currency in ("ALL", "") else [currency]
    rows = []
    for cur in currencies:
        rows += [("CashBalance", _money(x["cash"]), cur), ("TotalCashBalance", _money(x["cash"]), cur),
                 ("NetLiquidationByCurrency", _money(x["net"]), cur), ("StockMarketValue", _money(x["value"]), cur),
                 ("UnrealizedPnL", "0.00", cur), ("RealizedPnL", "0.00", cur), ("ExchangeRate", "1.00", cur)]
    return rows


def account_values(snap: dict) -> list[tuple[str, str, str]]:
    """reqAccountUpdates' values (tag, value, currency)."""
    rows = [("AccountCode", snap["account"], ""), ("AccountReady", "true", ""), ("Currency", "USD", "USD")]
    rows += [(tag, value, cur) for tag, (value, cur) in summary_values(snap).items()]
    rows += ledger_values(snap, "ALL")
    return rows


MAX_SUMMARIES = 2  # account summary subscriptions TWS lets one client hold at once (then error 322)


class AccountDesk:
    """The fake TWS's positions and account messages (a mixin of ``FakeTWS``, run with its lock held)."""

    def _apply_position(self, inst: TwsInstrument, side: str, q: float, price: float) -> float | None:
        qty, avg = self._positions.get(inst.symbol, (0.0, 0.0))
        signed = q if side == "BOT" else -q
        realized = None
        if qty == 0 or (qty > 0) == (signed > 0):
            new = qty + signed
            avg = (abs(qty) * avg + q * price) / abs(new)
        else:
            closing = min(q, abs(qty))
            realized = (price - avg) * closing * (1 if qty > 0 else -1)
            new = qty + signed
            avg = 0.0 if abs(new) < 1e-9 else (avg if (new > 0) == (qty > 0) else price)
        if abs(new) < 1e-9:
            self._positions.pop(inst.symbol, None)
        else:
            self._positions[inst.symbol] = (new, round(avg, 6))
        return realized

    def _position_updates(self, inst: TwsInstrument) -> None:
        qty, avg = self._positions.get(inst.symbol, (0.0, 0.0))
        for c in self._live():
            if c.positions:
                self._send(c, self._position_fields(inst, qty, avg))
            if c.account_updates:
                self._send(c, self._portfolio_fields(inst, qty, avg))
                for tag, value, cur in account_values(self._snapshot()):
                    self._send(c, [6, 2, tag, value, cur, self.account])

    def _position_fields(self, inst: TwsInstrument, qty: float, avg: float) -> list:
        return [61, 3, self.account, inst.conid, inst.symbol, inst.sec_type, "", 0, "", "", "", inst.currency,
                inst.symbol, inst.symbol, qty, avg]

    def _portfolio_fields(self, inst: TwsInstrument, qty: float, avg: float) -> list:
        close = self.last_close(inst.symbol)
        unrealized = round((close - avg) * qty, 2) if qty else 0
        return [7, 8, inst.conid, inst.symbol, inst.sec_type, "", 0, "", "", inst.primary_exchange, inst.currency,
                inst.symbol, inst.symbol, qty, close, round(close * qty, 2), avg, unrealized, 0, self.account]


    def _snapshot(self) -> dict:
        marks = {s: self.last_close(s) for s in self._positions}
        return {"account": self.account, "cash": self._cash, "positions": dict(self._positions), "marks": marks}

    def _req_positions(self, conn: Conn, f: list[str]) -> None:
        conn.positions = True
        for symbol, (qty, avg) in self._positions.items():
            self._send(conn, self._position_fields(self.instrument(symbol), qty, avg))
        self._send(conn, [62, 1])

    def _cancel_positions(self, conn: Conn, f: list[str]) -> None:
        conn.positions = False

    def _req_account_updates(self, conn: Conn, f: list[str]) -> None:
        conn.account_updates = f[2] == "1"
        if not conn.account_updates:
            return
        for tag, value, cur in account_values(self._snapshot()):
            self._send(conn, [6, 2, tag, value, cur, self.account])
        for symbol, (qty, avg) in self._positions.items():
            self._send(conn, self._portfolio_fields(self.instrument(symbol), qty, avg))
        self._send(conn, [8, 1, datetime.now(NY).strftime("%H:%M")])
        self._send(conn, [54, 1, self.account])

    def _cancel_account_summary(self, conn: Conn, f: list[str]) -> None:
        conn.summaries.discard(int(f[2]))

    def _req_account_updates_multi(self, conn: Conn, f: list[str]) -> None:
        req_id, model = int(f[2]), f[4]
        for tag, value, cur in account_values(self._snapshot()):
            self._send(conn, [73, 1, req_id, self.account, model, tag, value, cur])
        self._send(conn, [74, 1, req_id])

    def _req_account_summary(self, conn: Conn, f: list[str]) -> None:
        req_id, tags = int(f[2]), [t.strip() for t in f[4].split(",") if t.strip()]
        if len(conn.summaries) >= MAX_SUMMARIES:  # TWS's limit, counted per client until cancelled
            self._error(conn, req_id, 322, "Error processing request:-'bd' : cause - Maximum number of account "
                                           "summary requests exceeded")
            return
        conn.summaries.add(req_id)
        snap = self._snapshot()
        values = summary_values(snap)
        for tag in tags:
            if tag.startswith("$LEDGER"):
                rows = ledger_values(snap, tag.partition(":")[2] or "BASE")
            else:
                rows = [(tag, *values[tag])] if tag in values else []
            for name, value, cur in rows:
                self._send(conn, [63, 1, req_id, self.account, name, value, cur])
        self._send(conn, [64, 1, req_id])

