"""Halt and resume trading, for every account of a user, one account, or one strategy: the name is resolved
to its scope here, once, for the API, the web UI and the command line."""

from __future__ import annotations

from tradetrail.domain.trading_states import TradingState
from tradetrail.services.strategies.configs import strategy_id_named
from tradetrail.trading import trading_state
from tradetrail.trading.trading_accounts import find_account


def scope_named(app, user_id: int, *, strategy: str | None = None, account: str | None = None) -> str:
    """The trading-state scope of ``account`` (one of the user's), else of ``strategy``, else every account.
    ``NotFound`` for a name that is not the user's."""
    if account is not None:
        find_account(app, user_id, account)
        return trading_state.account_scope(account)
    return trading_state.scope_for(strategy_id_named(app, user_id, strategy))


def halt(app, user_id: int, *, strategy: str | None = None, account: str | None = None, reducing: bool = False,
         reason: str = "") -> dict:
    """HALTED (no orders) or, with ``reducing``, REDUCING (exits only)."""
    state = TradingState.REDUCING if reducing else TradingState.HALTED
    return trading_state.set_state(app, user_id, scope_named(app, user_id, strategy=strategy, account=account),
                                   state, reason)


def resume(app, user_id: int, *, strategy: str | None = None, account: str | None = None, reason: str = "") -> dict:
    """Back to ACTIVE (which also restarts the strategy's count of consecutive losses)."""
    return trading_state.set_state(app, user_id, scope_named(app, user_id, strategy=strategy, account=account),
                                   TradingState.ACTIVE, reason)
