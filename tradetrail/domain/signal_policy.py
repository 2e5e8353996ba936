"""How an analysis becomes a signal. The policy, in order (the first failing rule makes it HOLD):

1. ``analyst_action``  — the analyst said HOLD: HOLD.
2. ``min_confidence``  — the analyst's confidence must be at least ``min_confidence`` (default 60).
3. ``confirmation``    — with ``require_confirmation`` (default on), the primary timeframe's 3-of-4
   confirmation must point the same way: BUY needs BULLISH, SELL needs BEARISH.
4. ``higher_timeframe`` — with ``require_higher_timeframe`` (default off), the confirmation timeframe
   (weekly) must not point the other way.
5. ``reward_risk``     — |take-profit − entry| ÷ |entry − stop| must be at least ``min_reward_risk`` (1.0).

Every rule is evaluated and reported (passed or not, with its numbers), so a HOLD always says why and a
BUY or SELL shows everything it passed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class SignalPolicy:
    min_confidence: int = 60
    require_confirmation: bool = True
    require_higher_timeframe: bool = False
    min_reward_risk: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.min_confidence <= 100:
            raise ValueError(f"min_confidence must be 0..100, got {self.min_confidence}")
        if not 0 < self.min_reward_risk <= 20:
            raise ValueError(f"min_reward_risk must be in (0, 20], got {self.min_reward_risk}")


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
        return asdict(self)


_WANTED = {"BUY": "BULLISH", "SELL": "BEARISH"}
_OPPOSITE = {"BUY": "BEARISH", "SELL": "BULLISH"}


def reward_risk(p: Proposal) -> float | None:
    """|target − entry| ÷ |entry − stop|, unrounded (rounding could lift 0.99996 over a minimum of 1.0)."""
    if p.entry is None or p.stop_loss is None or p.take_profit is None or p.entry == p.stop_loss:
        return None
    return abs(p.take_profit - p.entry) / abs(p.entry - p.stop_loss)


def decide(p: Proposal, primary: str | None, higher: str | None, policy: SignalPolicy) -> SignalDecision:
    """Apply the policy; ``primary``/``higher`` are confirmation directions (BULLISH/BEARISH/NEUTRAL/None)."""
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
        rules.append(RuleResult("reward_risk", rr is not None and rr >= policy.min_reward_risk,
                                f"reward/risk {rr and round(rr, 4)} vs minimum {policy.min_reward_risk}"))
    failed = [r for r in rules if not r.passed]
    rr = None if rr is None else round(rr, 4)  # decided on the exact ratio; stored rounded
    if failed:
        return SignalDecision("HOLD", p.confidence, p.entry, p.stop_loss, p.take_profit, rr,
                              reason=f"{failed[0].rule}: {failed[0].detail}", rules=rules)
    return SignalDecision(p.action, p.confidence, p.entry, p.stop_loss, p.take_profit, rr,
                          reason=f"{p.action}: all rules passed", rules=rules)
