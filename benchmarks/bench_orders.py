"""The order path on the simulated broker: save a bracket intent and send it, then the broker sync that
fills it and the account sync that books the fill. Usage: python -m benchmarks.bench_orders [--n 50]"""

from __future__ import annotations

import argparse
import time
import uuid

import pandas as pd

from benchmarks.common import bench_app, median
from tradetrail.domain.orders import OrderType, Side, bracket
from tradetrail.marketdata.sample import SampleMarketData, load_sample_daily
from tradetrail.services.accounts.bootstrap import init
from tradetrail.trading.orders import save_intents, send
from tradetrail.trading.reconcile import sync_account


def main(n: int = 50) -> dict:
    contract = SampleMarketData().resolve("SPX")
    sessions = load_sample_daily("SPX").index
    start = sessions.searchsorted(pd.Timestamp("2006-01-03 21:00", tz="UTC"))
    place, fill = [], []
    with bench_app("sqlite") as app:
        user_id = init(app)["user_id"]
        account = app.broker.account(user_id)
        for i in range(n):
            t0, t1 = sessions[start + 2 * i].to_pydatetime(), sessions[start + 2 * i + 1].to_pydatetime()
            app.broker.sync(account, t0, (contract,))
            close = float(load_sample_daily("SPX").loc[sessions[start + 2 * i], "close"])
            legs = bracket(str(uuid.uuid4()), Side.BUY, 1, entry_type=OrderType.MKT, entry_price=close,
                           stop_price=close * 0.5, target_price=close * 1.5)
            a = time.perf_counter()
            rows = save_intents(app, user_id=user_id, strategy_id=None, execution_id=None, account=account,
                                contract=contract, specs=legs, risk_per_unit=close * 0.5)
            if send(app, rows).status != "accepted":
                raise SystemExit("benchmark order was not accepted")
            b = time.perf_counter()
            app.broker.sync(account, t1, (contract,))
            if not sync_account(app, user_id, account)["fills"]:
                raise SystemExit("benchmark order did not fill")
            c = time.perf_counter()
            place.append((b - a) * 1000)
            fill.append((c - b) * 1000)
    figures = {"order_place_bracket_ms": median(place), "order_fill_and_book_ms": median(fill)}
    for name, value in figures.items():
        print(f"{name}: {value:.2f} ms (median of {n})")
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50)
    main(parser.parse_args().n)
