"""Two strategies on one account decide at the same moment: the gate's caps hold for the account, not for each
strategy alone. risk_check runs without the account's submission lock, so place_order checks an entry again
under it (review finding H2: both passed max_exposure_pct 30 and together held 40 %)."""

from __future__ import annotations

import threading

from tests.support.fresh_bars import write_fresh_spx
from tests.support.helpers import demo
from tradetrail.db.trading_models import Order
from tradetrail.domain.risk import RiskLimits
from tradetrail.runtime.build import build_app
from tradetrail.schemas.strategy import MarketDataConfig, StrategyConfig
from tradetrail.services.runs.executions import execute_locked, get_execution
from tradetrail.services.strategies.configs import get_strategy, save_strategy
from tradetrail.settings import Settings
from tradetrail.trading.locks import strategy_lock
from tradetrail.workflow.pipeline import STEPS


def _both_decide_then_both_send(app, user_id: int, names: list[str]) -> list[dict]:
    """Run the strategies in threads that meet after risk_check: each gate saw the account before either sent."""
    met = threading.Barrier(len(names), timeout=60)

    def risk_check_then_meet(ctx):
        outcome = dict(STEPS)["risk_check"](ctx)
        met.wait()
        return outcome

    steps = [(name, risk_check_then_meet if name == "risk_check" else fn) for name, fn in STEPS]
    ids: dict[str, str] = {}
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            with app.Session() as s:
                strategy = get_strategy(s, user_id, name)
            with strategy_lock(app, strategy.id) as held:
                assert held
                ids[name] = execute_locked(app, strategy, trigger="manual", steps=steps).execution_id
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    return [get_execution(app, ids[n]) for n in names]


def _step(execution: dict, name: str) -> dict:
    return next(s for s in execution["steps"] if s["name"] == name)


def test_two_strategies_deciding_at_once_stay_within_the_accounts_exposure_cap(settings, tmp_path):
    ahead = write_fresh_spx(tmp_path / "bars")  # the rules analyst buys on the latest session
    app = build_app(Settings(home=settings.home, database_url=settings.database_url,
                             market_data_dir=tmp_path / "bars"), migrate=False)
    user_id, _ = demo(app)
    limits = RiskLimits(max_exposure_pct=30.0)  # each entry alone is capped at 20 % by max_position_pct
    config = StrategyConfig(symbol="SPX", market_data=MarketDataConfig(source="files"), risk=limits)
    with app.Session() as s:
        save_strategy(s, app, user_id, "paper", config)
        save_strategy(s, app, user_id, "paper2", config)

    runs = _both_decide_then_both_send(app, user_id, ["paper", "paper2"])
    for run in runs:  # both gates approved an entry on the account as it was before either sent
        assert _step(run, "risk_check")["output"]["approved"] is True, run["error"]
        assert run["status"] == "succeeded", run["error"]
    placed = [_step(r, "place_order") for r in runs]
    sent = [p for p in placed if p["status"] == "succeeded"]
    held_back = [p for p in placed if p["status"] == "skipped"]
    assert len(sent) == 1 and len(held_back) == 1, [(p["status"], p["output"]) for p in placed]
    out = held_back[0]["output"]
    assert out["reason"].startswith("denied when re-checked before sending"), out
    assert [d["rule"] for d in out["recheck"]["denials"]] == ["max_exposure"], out
    assert out["recheck"]["numbers"]["exposure_after_pct"] > 30

    account = app.broker.account(user_id)
    with app.Session() as s:
        entries = s.query(Order).filter(Order.account == account, Order.leg == "entry").all()
    assert len(entries) == 1
    app.broker.sync(account, ahead[0].to_pydatetime())  # the entry fills at the next open
    values = app.broker.account_values(account)
    exposure = sum(abs(p.quantity) * p.market_price for p in app.broker.positions(account))
    assert 0 < exposure / values.equity * 100 <= limits.max_exposure_pct


def test_the_recheck_keeps_the_smaller_size(settings, tmp_path):
    """Room for part of the second entry: it is sent smaller, and its lineage gives the re-checked decision."""
    write_fresh_spx(tmp_path / "bars")
    app = build_app(Settings(home=settings.home, database_url=settings.database_url,
                             market_data_dir=tmp_path / "bars"), migrate=False)
    user_id, _ = demo(app)
    # each alone may put 60 % of the account into SPX; the two together have the account's cash only
    limits = RiskLimits(max_position_pct=60.0, max_exposure_pct=100.0, risk_per_trade_pct=5.0)
    config = StrategyConfig(symbol="SPX", market_data=MarketDataConfig(source="files"), risk=limits)
    with app.Session() as s:
        save_strategy(s, app, user_id, "paper", config)
        save_strategy(s, app, user_id, "paper2", config)

    runs = _both_decide_then_both_send(app, user_id, ["paper", "paper2"])
    decided = {r["id"]: _step(r, "risk_check")["output"] for r in runs}
    assert all(d["approved"] for d in decided.values()), decided
    placed = {r["id"]: _step(r, "place_order") for r in runs}
    assert [p["status"] for p in placed.values()] == ["succeeded", "succeeded"], placed
    rechecked = {i: p["output"]["recheck"] for i, p in placed.items() if "recheck" in p["output"]}
    assert len(rechecked) == 1, placed
    (run_id, again), = rechecked.items()
    assert again["approved"] and 0 < again["quantity"] < decided[run_id]["quantity"], (decided, again)
    assert "cash" in again["numbers"]["capped_by"], again

    account = app.broker.account(user_id)
    with app.Session() as s:
        entries = {e.execution_id: e for e in s.query(Order).filter(Order.account == account, Order.leg == "entry")}
    assert entries[run_id].quantity == again["quantity"]  # what was sent is the re-checked size
    cash_needed = sum(e.quantity * e.sized_price for e in entries.values())
    assert cash_needed <= 100_000.0, cash_needed  # the account's cash at the sizing prices
