"""How an analysis becomes a signal. The policy, in order (the first failing rule makes it HOLD):

1. ``analyst_action``  — the analyst said HOLD: HOLD.
2. ``min_confidence``  — the analyst's confidence must be at least ``min_confidence`` (default 60).
3. ``confirmation``    — with ``require_confirmation`` (default on), the primary timeframe's 3-of-4
   confirmation must point the same way: BUY needs BULLISH, SELL needs BEARISH.
4. ``higher_timeframe`` — with ``require_higher_timeframe`` (default off), the confirmation timeframe
   (weekly) must not point the other way.
5. ``reward_risk``     — |take-profit − entry| ÷ |entry − stop| must be at least ``min_reward_risk`` (1.0).
6. ``market_fit``      — a BUY's levels must fit the market as the primary timeframe last closed (always on):
   the entry at most ``max_entry_distance_atr`` (1.0) ATRs from the last close, the stop below the close and
   the target above it. Without a usable last close and ATR the rule fails: it never passes unchecked. A SELL
   closes the position at the market and uses no level, so the check is recorded for it but never holds an
   exit back (a crash that leaves the model's levels behind must not trap the trader in the position).

Without protective orders (``decide(..., protective=False)``: the strategy's ``orders.protective`` is
``none``) an entry has no stop or target and the position is closed only by a SELL signal: ``reward_risk`` and
the stop/target parts of ``market_fit`` are recorded as not applied (the entry distance still applies), and a
SELL — then the only way out — is never held back by ``min_confidence``, ``confirmation`` or
``higher_timeframe`` (recorded as not applied). With
protective orders (the default) a BUY or SELL without a stop-loss and a take-profit fails ``reward_risk`` (its
numbers name what is missing and why).

Every rule is evaluated and reported (passed or not, with its numbers), so a HOLD always says why and a
BUY or SELL shows everything it passed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from tradetrail.domain.bounds import Bound, check_bool, check_number
from tradetrail.domain.records import as_dict

POLICY_BOUNDS: dict[str, Bound] = {
    "min_confidence": Bound(0, 100, whole=True),
    "min_reward_risk": Bound(0, 20, lo_open=True),
    "max_entry_distance_atr": Bound(0.1, 10.0),
}
POLICY_FLAGS = ("require_confirmation", "require_higher_timeframe")


@dataclass(frozen=True)
class SignalPolicy:
    min_confidence: int = 60
    require_confirmation: bool = True
    require_higher_timeframe: bool = False
    min_reward_risk: float = 1.0
    max_entry_distance_atr: float = 1.0

    def __post_init__(self) -> None:
        for name, bound in POLICY_BOUNDS.items():
            check_number("signal_policy", name, getattr(self, name), bound)
        for name in POLICY_FLAGS:
            check_bool("signal_policy", name, getattr(self, name))


@dataclass(frozen=True)
class Market:
    """The primary timeframe as it last closed: what the levels must fit."""

    close: float | None
    atr: float | None


@dataclass(frozen=True)
class Proposal:
    """What the analyst proposed (levels may be missing for HOLD)."""

    action: str
    confidence: int
    entry: float | None
    stop_loss: float | None
    take_profit: float | None


@dataclass(frozen=True)
class RuleResult:
    rule: str
    passed: bool
    detail: str
    numbers: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SignalDecision:
    action: str  # BUY | SELL | HOLD
    confidence: int
    entry: float | None
    stop_loss: float | None
    take_profit: float | None
    reward_risk: float | None
    reason: str
    rules: list[RuleResult] = field(default_factory=list)

    def to_dict(self) -> dict:
        return as_dict(self)


_WANTED = {"BUY": "BULLISH", "SELL": "BEARISH"}
_OPPOSITE = {"BUY": "BEARISH", "SELL": "BULLISH"}


def reward_risk(p: Proposal) -> float | None:
    """|target − entry| ÷ |entry − stop|, unrounded (rounding could lift 0.99996 over a minimum of 1.0)."""
    if p.entry is None or p.stop_loss is None or p.take_profit is None or p.entry == p.stop_loss:
        return None
    return abs(p.take_profit - p.entry) / abs(p.entry - p.stop_loss)


def _num(value: float | None) -> float | None:
    """A number fit for JSON: 8 significant digits, None when missing or not finite."""
    if type(value) is not float and (not isinstance(value, (int, float)) or isinstance(value, bool)):
        return None
    return float(f"{value:.8g}") if math.isfinite(value) else None


def market_fit(p: Proposal, market: Market, policy: SignalPolicy, protective: bool = True) -> RuleResult:
    """Do the BUY/SELL levels fit the market? Every problem is named, with the numbers. Without protective
    orders only the entry is checked (there is no stop or target to place)."""
    close, atr, bound = market.close, market.atr, policy.max_entry_distance_atr
    numbers = {"close": _num(close), "atr": _num(atr), "entry": _num(p.entry), "stop_loss": _num(p.stop_loss),
               "take_profit": _num(p.take_profit), "max_entry_distance_atr": bound}
    if numbers["close"] is None or numbers["atr"] is None or close <= 0 or atr <= 0:
        return RuleResult("market_fit", False, f"no usable last close and ATR to check the levels against "
                                               f"(close {close}, ATR {atr})", numbers)
    if not protective:
        numbers["applied"] = "entry distance only (no protective orders)"
    levels = (numbers["entry"], numbers["stop_loss"], numbers["take_profit"]) if protective else (numbers["entry"],)
    if None in levels:
        return RuleResult("market_fit", False, "the levels are missing or not finite" if protective else
                          "the entry is missing or not finite", numbers)
    distance = abs(p.entry - close) / atr
    numbers["entry_distance_atr"] = _num(distance)
    problems = []
    if not distance <= bound:  # also catches an overflow to infinity
        problems.append(f"entry {p.entry:g} is {distance:.4g} ATR from the last close {close:g} (ATR {atr:.4g}), "
                        f"more than {bound:g} ATR")
    buy = p.action == "BUY"
    if not protective:
        if problems:
            return RuleResult("market_fit", False, problems[0], numbers)
        return RuleResult("market_fit", True, f"entry {distance:.2f} ATR from the last close {close:g} (bound "
                                              f"{bound:g}); no stop or target to check (no protective orders)",
                          numbers)
    if (p.stop_loss >= close) if buy else (p.stop_loss <= close):
        problems.append(f"stop {p.stop_loss:g} is already {'at or above' if buy else 'at or below'} the last close "
                        f"{close:g}")
    if (p.take_profit <= close) if buy else (p.take_profit >= close):
        problems.append(f"target {p.take_profit:g} is already reached ({'at or below' if buy else 'at or above'} "
                        f"the last close {close:g})")
    if problems:
        return RuleResult("market_fit", False, "; ".join(problems), numbers)
    return RuleResult("market_fit", True, f"entry {distance:.2f} ATR from the last close {close:g} "
                                          f"(bound {bound:g}), stop and target on the right sides", numbers)


def _reward_risk_rule(p: Proposal, rr: float | None, policy: SignalPolicy, protective: bool) -> RuleResult:
    if not protective:
        return RuleResult("reward_risk", True, f"not applied: no protective orders (reward/risk "
                                               f"{rr and round(rr, 4)})", {"applied": False})
    detail = f"reward/risk {rr and round(rr, 4)} vs minimum {policy.min_reward_risk}"
    missing = [name for name in ("stop_loss", "take_profit") if getattr(p, name) is None]
    if missing:  # the detail keeps its recorded form; the numbers say why
        return RuleResult("reward_risk", False, detail, {
            "missing": missing, "why": "with protective orders (orders.protective bracket) no entry is sent "
                                       "without a stop-loss and a take-profit"})
    return RuleResult("reward_risk", rr is not None and rr >= policy.min_reward_risk, detail)


EXIT_UNBLOCKED = frozenset({"min_confidence", "confirmation", "higher_timeframe"})


def _exit_unblocked(rule: RuleResult) -> RuleResult:
    """Without protective orders a SELL is the only way out of a position: the confidence and confirmation rules
    are recorded for it but never hold it back (a stop would otherwise have been there to close the trade)."""
    if rule.rule not in EXIT_UNBLOCKED or rule.passed:
        return rule
    return RuleResult(rule.rule, True, f"not applied to an exit without protective orders (it is the only way out "
                                       f"of the position): {rule.detail}", rule.numbers | {"applied": False})


def decide(p: Proposal, primary: str | None, higher: str | None, policy: SignalPolicy,
           market: Market, *, protective: bool = True) -> SignalDecision:
    """Apply the policy; ``primary``/``higher`` are confirmation directions (BULLISH/BEARISH/NEUTRAL/None),
    ``market`` the primary timeframe's last close and ATR, ``protective`` whether an entry carries a stop and a
    take-profit (see the module docstring)."""
    rr = reward_risk(p)
    rules = [RuleResult("analyst_action", p.action != "HOLD", f"analyst said {p.action}")]
    rules.append(RuleResult("min_confidence", p.confidence >= policy.min_confidence,
                            f"confidence {p.confidence} vs minimum {policy.min_confidence}"))
    if policy.require_confirmation:
        wanted = _WANTED.get(p.action)
        rules.append(RuleResult("confirmation", wanted is not None and primary == wanted,
                                f"3-of-4 confirmation is {primary or 'missing'}"
                                + (f", {p.action} needs {wanted}" if wanted else "")))
    if policy.require_higher_timeframe:
        opposite = _OPPOSITE.get(p.action)
        rules.append(RuleResult("higher_timeframe", opposite is not None and higher != opposite,
                                f"higher timeframe is {higher or 'missing'}"))
    if p.action != "HOLD":
        rules.append(_reward_risk_rule(p, rr, policy, protective))
        fit = market_fit(p, market, policy, protective)
        if p.action == "SELL" and not fit.passed:  # recorded, not binding: an exit sends no level
            fit = RuleResult(fit.rule, True, f"not applied to an exit (it closes at the market): {fit.detail}",
                             fit.numbers | {"applied": False})
        rules.append(fit)
    if p.action == "SELL" and not protective:
        rules = [_exit_unblocked(r) for r in rules]
    failed = [r for r in rules if not r.passed]
    rr = None if rr is None else round(rr, 4)  # decided on the exact ratio; stored rounded
    if failed:
        return SignalDecision("HOLD", p.confidence, p.entry, p.stop_loss, p.take_profit, rr,
                              reason=f"{failed[0].rule}: {failed[0].detail}", rules=rules)
    return SignalDecision(p.action, p.confidence, p.entry, p.stop_loss, p.take_profit, rr,
                          reason=f"{p.action}: all rules passed", rules=rules)
