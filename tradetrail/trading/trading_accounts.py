"""Which account a strategy trades on, and the accounts a user has.

Real-clock strategies share the user's account at their broker. A replay-clock strategy trades on a
simulated account of its own: the simulator keeps one market clock per instrument and account, and a
real-clock run on the same instrument once moved that clock years past the replay and filled the replayed
strategy's stop there. Every account a run uses is registered (``trading_accounts``), so listings,
statistics and reconciliation go over all of a user's accounts and answer 404 for anyone else's.
"""

from __future__ import annotations

from sqlalchemy import bindparam, select

from tradetrail.db.backtest_models import SESSION_ACCOUNT_PREFIX
from tradetrail.db.models import Strategy
from tradetrail.db.trading_models import TradingAccount
from tradetrail.db.types import utcnow
from tradetrail.db.upsert import insert_ignore
from tradetrail.domain.errors import NotFound

SHARED, STRATEGY = "shared", "strategy"


def owns_account(config) -> bool:
    """A replay-clock strategy trades on an account of its own."""
    return config.market_data.replay_start is not None


def strategy_account(app, user_id: int, strategy_id: int, config) -> str:
    """The account this strategy trades on at ``app.broker`` (created and registered on first use)."""
    own = owns_account(config)
    account = app.broker.account(user_id, strategy_id if own else None)
    register(app, user_id, app.broker.name, account, strategy_id if own else None)
    return account


def shared_account(app, user_id: int) -> str:
    """The account the user's real-clock strategies share at ``app.broker``."""
    account = app.broker.account(user_id)
    register(app, user_id, app.broker.name, account)
    return account


_TA = TradingAccount.__table__
_REGISTERED = select(_TA.c.id).where(_TA.c.user_id == bindparam("user"), _TA.c.broker == bindparam("broker"),
                                     _TA.c.account == bindparam("account"))  # built once: every run asks


def register(app, user_id: int, broker: str, account: str, strategy_id: int | None = None) -> None:
    """Record the account once. Every run asks: a read finds it registered without a write transaction
    (on SQLite one writer at a time for the whole file); a race between two first runs is settled by the
    insert-or-ignore on the unique key."""
    with app.Session() as s:
        if s.scalar(_REGISTERED, {"user": user_id, "broker": broker, "account": account}) is not None:
            return
    with app.engine.begin() as conn:
        insert_ignore(conn, TradingAccount.__table__,
                      {"user_id": user_id, "broker": broker, "account": account,
                       "kind": SHARED if strategy_id is None else STRATEGY, "strategy_id": strategy_id,
                       "created_at": utcnow()}, key=["user_id", "broker", "account"])


def _row(r: TradingAccount, names: dict[int, str]) -> dict:
    return {"account": r.account, "broker": r.broker, "kind": r.kind,
            "strategy": names.get(r.strategy_id) if r.strategy_id is not None else None}


def user_accounts(app, user_id: int) -> list[dict]:
    """Every registered account of the user: shared ones first, then strategies' own, by name."""
    with app.Session() as s:
        names = dict(s.execute(select(Strategy.id, Strategy.name).where(Strategy.user_id == user_id)).all())
        rows = s.scalars(select(TradingAccount).where(TradingAccount.user_id == user_id)
                         .order_by(TradingAccount.kind, TradingAccount.account)).all()
        return [_row(r, names) for r in rows]


def find_account(app, user_id: int, account: str) -> dict:
    """One of the user's accounts; ``NotFound`` for an account that is not theirs (or does not exist)."""
    for row in user_accounts(app, user_id):
        if row["account"] == account:
            return row
    raise NotFound(f"no account {account!r}")


def traded(column):
    """A condition keeping the user's books: every account but the isolated ones of backtest session re-runs
    (their orders, trades and snapshots are seen from the re-run's lineage, never in listings or statistics)."""
    return column.not_like(f"{SESSION_ACCOUNT_PREFIX}%")
