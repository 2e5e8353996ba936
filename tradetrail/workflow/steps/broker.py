"""check_broker: the broker session must be healthy before anything else is asked of it."""

from __future__ import annotations

from tradetrail.workflow.context import RunContext, StepError, StepOutcome


def check_broker(ctx: RunContext) -> StepOutcome:
    broker = ctx.app.broker
    ctx.step_input["broker"] = broker.name
    try:
        health = broker.health()
    except Exception as exc:  # noqa: BLE001 - an unreachable broker is an unhealthy broker
        raise StepError(f"broker {broker.name} unreachable: {type(exc).__name__}: {exc}") from exc
    if not health.healthy:
        problems = [p for p, bad in (("not authenticated", not health.authenticated),
                                     ("not connected", not health.connected),
                                     ("competing session", health.competing)) if bad]
        raise StepError(f"broker {broker.name} session not healthy: {', '.join(problems)}"
                        + (f" ({health.message})" if health.message else ""), output=health.to_dict())
    return StepOutcome(output=health.to_dict())
