"""The fake TWS's account values: cash and positions marked at the last close, in the tags TWS reports
(accountSummary, account updates, the ``$LEDGER`` rows). A simple margin model: 25% initial and maintenance
margin on the gross position value, buying power four times the excess."""

from __future__ import annotations


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
