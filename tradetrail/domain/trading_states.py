"""What each trading state allows, and how states combine: the one rule the risk gate, reconciliation and
the state store all apply (HALTED: nothing; REDUCING: exits only; ACTIVE: everything)."""

from __future__ import annotations

from enum import StrEnum


class TradingState(StrEnum):
    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"  # exits only
    HALTED = "HALTED"  # nothing


SEVERITY = (TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED)


def strictest(*states: TradingState) -> TradingState:
    """The state that allows least among ``states`` (ACTIVE when none)."""
    return max(states, key=SEVERITY.index, default=TradingState.ACTIVE)


def allows(state: TradingState | str, *, exit: bool) -> bool:
    """Whether an order may be sent in ``state``: an exit unless HALTED, anything else only when ACTIVE."""
    state = TradingState(state)
    return state == TradingState.ACTIVE or (exit and state == TradingState.REDUCING)


def after_mismatch(state: TradingState | str) -> TradingState:
    """The state a scope goes to when its books and the broker's differ: REDUCING, unless already HALTED."""
    state = TradingState(state)
    return state if state == TradingState.HALTED else TradingState.REDUCING
