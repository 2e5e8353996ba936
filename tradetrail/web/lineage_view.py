"""What the lineage viewer shows beside each recorded step: the pieces other services hold (the prompt the
model read, its raw answer, the orders the run placed, the strategy's fills for the chart's markers).

Presentation only: it reads recorded data through the services and decides nothing about trading.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from tradetrail.domain.errors import NotFound
from tradetrail.services.runs import trail as execution_trail
from tradetrail.services.runs.artifacts import load_for_user
from tradetrail.web.assets import WEB

MAX_TEXT = 200_000  # characters of a prompt or answer shown inline; the full artifact is a link away
STEP_TEMPLATES = frozenset(p.stem for p in Path(WEB / "templates" / "steps").glob("*.html")
                           if not p.stem.startswith("_"))


def step_template(name: str) -> str:
    """The step's own view if there is one (names from our pipeline only), else the generic one."""
    return f"steps/{name}.html" if name in STEP_TEMPLATES else "steps/_generic.html"


def _text(app, user_id: int, sha256: str | None) -> dict[str, Any] | None:
    """An artifact as text for display (JSON pretty-printed), cut at ``MAX_TEXT``; None if there is none."""
    if not sha256:
        return None
    try:
        data, content_type = load_for_user(app, user_id, sha256)
    except NotFound as exc:
        return {"sha256": sha256, "error": str(exc)}
    text = data.decode("utf-8", errors="replace")
    parsed = None
    if "json" in content_type:
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
    return {"sha256": sha256, "text": text[:MAX_TEXT], "truncated": len(text) > MAX_TEXT, "json": parsed}


def _step(execution: dict, name: str) -> dict | None:
    return next((s for s in execution["steps"] if s["name"] == name), None)


def _signal(execution: dict) -> dict | None:
    step = _step(execution, "decide_signal")
    return step["output"] if step and step["status"] == "succeeded" else None


class StepExtras:
    """Per-execution memo of what the step views need, so a page (or each live update) asks once."""

    def __init__(self, app, user_id: int, execution: dict):
        self.app, self.user_id, self.execution = app, user_id, execution
        self._orders: list[dict] | None = None

    def orders(self) -> list[dict]:
        if self._orders is None:
            self._orders = execution_trail.orders_of_execution(self.app, self.user_id, self.execution["id"])
        return self._orders

    def for_step(self, step: dict) -> dict[str, Any]:
        name, extra = step["name"], {}
        if name == "fetch_market_data":
            extra["chart"] = self._candles(step)
        elif name == "analyze":
            extra["prompt"] = _text(self.app, self.user_id, (step.get("artifacts") or {}).get("prompt"))
            extra["answer"] = _text(self.app, self.user_id, (step.get("artifacts") or {}).get("answer"))
        elif name in ("place_order", "track_order"):
            extra["orders"] = self.orders()
        return extra

    def _candles(self, step: dict) -> dict[str, Any] | None:
        """The candle chart's settings: where the bars are, the signal's marker and levels, past fills."""
        digest = (step.get("artifacts") or {}).get("bars_daily")
        if not digest:
            return None
        execution, signal = self.execution, _signal(self.execution)
        as_of = datetime.fromisoformat(execution["as_of"])
        symbol = (step.get("input") or {}).get("symbol")
        fills = execution_trail.strategy_fills(self.app, self.user_id, execution["strategy_id"], symbol, as_of) \
            if symbol else []
        levels = []
        if signal and signal.get("action") in ("BUY", "SELL"):
            for key, title in (("entry", "entry"), ("stop_loss", "stop"), ("take_profit", "target")):
                if isinstance(signal.get(key), (int, float)):
                    levels.append({"price": signal[key], "title": title})
        return {"bars_url": f"/api/artifacts/{digest}", "as_of": int(as_of.timestamp()),
                "signal": {"action": signal.get("action"), "reason": signal.get("reason")} if signal else None,
                "levels": levels,
                "fills": [{"time": int(datetime.fromisoformat(f["filled_at"]).timestamp()), "side": f["side"],
                           "quantity": f["quantity"], "price": f["price"]} for f in fills]}
