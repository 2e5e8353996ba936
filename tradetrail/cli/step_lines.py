"""One line per recorded step, as a trader reads it: ``decide_signal  ✓  0.00 s  BUY 3/4 confirmations, R/R
2.1``. Presentation only: it reads what each step recorded and decides nothing; a step it does not know (or
an output spilled to the artifact store) reads as its status alone."""

from __future__ import annotations

from typing import Any

MARKS = {"succeeded": "✓", "failed": "✗", "skipped": "–", "running": "…"}
NAME_WIDTH = 18


def _date(value: Any) -> str:
    return str(value or "")[:10]


def _qty(value: Any) -> str:
    try:
        return f"{float(value):,.4f}".rstrip("0").rstrip(".")
    except (TypeError, ValueError):
        return str(value)


class StepLines:
    """Summaries for the steps of one run, in order (a later step's line may use an earlier step's output:
    the signal counts the confirmations the indicators recorded)."""

    def __init__(self) -> None:
        self.seen: dict[str, dict] = {}

    def line(self, step: dict, width: int | None = None) -> str:
        name, status = step["name"], step["status"]
        seconds = (step.get("duration_ms") or 0) / 1000
        head = f"{name:<{NAME_WIDTH}} {MARKS.get(status, '?')} {seconds:6.2f} s  "
        out = step.get("output") if isinstance(step.get("output"), dict) else {}
        self.seen[name] = out
        text = self.summary(name, status, out, step.get("error"))
        line = head + " ".join(text.split())  # one line, whatever the step wrote
        if width and len(line) > width:
            line = line[:width - 1].rsplit(" ", 1)[0] + "…"
        return line

    def summary(self, name: str, status: str, out: dict, error: str | None) -> str:
        if status == "failed":
            return error or "failed"
        if status == "skipped" or "$artifact" in out:
            return str(out.get("reason") or status)
        describe = getattr(self, f"_{name}", None)
        try:
            return describe(out) if describe else status
        except (KeyError, TypeError, ValueError, AttributeError):  # an older or unusual output: say no more
            return status

    def _load_strategy(self, out: dict) -> str:
        text = f"{out['name']} version {out['version']}"
        replay = out.get("replay")
        if replay:
            text += f", replay session {replay['run']} ({_date(replay['as_of'])})"
        return text

    def _check_broker(self, out: dict) -> str:
        state = "healthy" if out.get("healthy") else (out.get("message") or "not healthy")
        return f"{out['broker']} ({'paper' if out.get('paper') else 'LIVE'}): {state}"

    def _resolve_contract(self, out: dict) -> str:
        c = out["contract"]
        return f"{c['symbol']} {c.get('name') or ''} ({c.get('sec_type')}, {c.get('exchange')}), cache " \
               f"{out.get('cache')}"

    def _fetch_market_data(self, out: dict) -> str:
        parts = [(tf, v) for tf, v in out.items() if isinstance(v, dict) and "count" in v]
        if not parts:
            return "no bars"
        (tf, first), rest = parts[0], parts[1:]
        return ", ".join([f"{first['count']:,} {tf} bars to {_date(first.get('last'))}",
                          *(f"{v['count']:,} {tf}" for tf, v in rest)])

    def _compute_indicators(self, out: dict) -> str:
        parts = []
        for tf, c in (out.get("confirmation") or {}).items():
            votes = max(c.get("bullish", 0), c.get("bearish", 0))
            parts.append(f"{tf} {c['direction']} {votes}/{len(c.get('votes', [])) or 4}")
        return ", ".join(parts) if parts else "indicators computed"

    def _render_charts(self, out: dict) -> str:
        charts = {tf: v for tf, v in out.items() if isinstance(v, dict) and "sha256" in v}
        if not charts:
            return str(out.get("reason") or "no charts")
        return ", ".join(f"{tf} {v.get('bars_shown', '?')} bars ({v.get('cache', '?')})" for tf, v in charts.items())

    def _analyze(self, out: dict) -> str:
        a = out.get("answer") or {}
        who = out.get("model") or out.get("analyst") or "analyst"
        cached = ", cached answer" if out.get("cached") else ""
        return f"{who}: {a.get('action')} at confidence {a.get('confidence')}{cached}"

    def _decide_signal(self, out: dict) -> str:
        action = out["action"]
        if action not in ("BUY", "SELL"):
            failed = [r["detail"] for r in out.get("rules", []) if not r.get("passed")]
            return f"{action}: {failed[0] if failed else out.get('reason', '')}"
        text = action
        confirmation = (self.seen.get("compute_indicators", {}).get("confirmation") or {}).get("daily")
        if confirmation:
            key = "bullish" if action == "BUY" else "bearish"
            text += f" {confirmation.get(key, 0)}/{len(confirmation.get('votes', [])) or 4} confirmations"
        if out.get("reward_risk") is not None:
            text += f", R/R {out['reward_risk']:.1f}"
        return text

    def _risk_check(self, out: dict) -> str:
        if not out.get("approved"):
            return f"denied: {out.get('reason', '')}" if out.get("denials") else str(out.get("reason", ""))
        if out.get("action") == "exit":
            return f"approved closing {_qty(out['quantity'])} units"
        caps = (out.get("numbers") or {}).get("capped_by") or {}
        text = f"approved {_qty(out['quantity'])} units"
        return text + (f", capped by {', '.join(caps)}" if caps else ", sized by risk_per_trade_pct")

    def _place_order(self, out: dict) -> str:
        orders = out.get("orders") or {}
        legs = ", ".join(coid.rsplit("-", 1)[-1] for coid in orders)
        return f"{out.get('status')}: sent {legs}" if legs else str(out.get("status") or out.get("reason"))

    def _track_order(self, out: dict) -> str:
        orders, fills = out.get("orders") or [], out.get("fills") or []
        by_state: dict[str, list[str]] = {}
        for o in orders:
            by_state.setdefault(o["state"], []).append(o["leg"])
        states = "; ".join(f"{', '.join(legs)} {state}" for state, legs in by_state.items())
        return f"{states or 'no orders'}; {len(fills) or 'no'} fill{'s' if len(fills) > 1 else ''}"

    def _update_portfolio(self, out: dict) -> str:
        held = [p for p in out.get("positions", []) if p.get("quantity")]
        held_text = "no position" if not held else f"{len(held)} position{'s' if len(held) > 1 else ''}"
        return f"equity {out['equity']:,.2f}, cash {out['cash']:,.2f}, {held_text}"

    def _complete(self, out: dict) -> str:
        signal, reason = str(out.get("signal")), str(out.get("reason") or "")
        return reason if reason.startswith(signal) else f"{signal}: {reason}"
