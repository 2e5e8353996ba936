"""Strategies: create, change (each change is a new immutable version), look up, validate."""

from __future__ import annotations

from pydantic import ValidationError
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from tradetrail.catalogue.prompt_store import latest_template
from tradetrail.db.models import Strategy, StrategyVersion, User
from tradetrail.domain.errors import NotFound
from tradetrail.marketdata.port import MarketDataError
from tradetrail.prompts.templates import PromptTemplateError
from tradetrail.schemas.strategy import StrategyConfig
from tradetrail.services.errors import InvalidStrategy, StrategyInUse


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user named {username!r}")
    return user


def get_strategy(session: Session, user_id: int, name: str) -> Strategy:
    strategy = session.scalar(select(Strategy).where(Strategy.user_id == user_id, Strategy.name == name))
    if strategy is None:
        raise NotFound(f"no strategy named {name!r}")
    return strategy


def strategy_id_named(app, user_id: int, name: str | None) -> int | None:
    """The id of the user's strategy ``name`` (None for None); ``NotFound`` if they have none of that name."""
    if name is None:
        return None
    with app.Session() as s:
        return get_strategy(s, user_id, name).id


def user_id_named(app, username: str) -> int:
    """The id of the user ``username``; ``NotFound`` if there is none."""
    with app.Session() as s:
        return get_user(s, username).id


_VERSION = select(StrategyVersion).where(StrategyVersion.strategy_id == bindparam("strategy"),
                                         StrategyVersion.version == bindparam("version"))  # built once: every run


def current_version(session: Session, strategy: Strategy) -> StrategyVersion:
    return session.scalar(_VERSION, {"strategy": strategy.id, "version": strategy.current_version})


def check_runnable(session: Session, app, user_id: int, config: StrategyConfig) -> None:
    """Checks that need the database or a source: the symbol exists (resolved through the symbol cache, so the
    strategy's runs are served from what this lookup cached), the prompts exist, a replay-clock strategy
    trades at the simulator, an analyst plug-in is allowed and accepts its params."""
    from tradetrail.catalogue.symbols import resolve_symbol

    problems = []
    if problem := config.replay_broker_problem():
        problems.append(f"broker: {problem}")
    if config.analyst.kind == "plugin":  # allowed, importable, and built with these params (checked before import)
        from tradetrail.analyst.plugins import PluginError, load_plugin

        try:
            load_plugin(config.analyst.plugin, config.analyst.params, app.settings.analyst_plugins)
        except PluginError as exc:
            problems.append(f"analyst.plugin: {exc}")
    try:
        with app.Session() as cache:
            resolve_symbol(cache, app.market_data(config.market_data.source), config.symbol)
    except MarketDataError as exc:
        problems.append(f"symbol: {exc}")
    for role, name in config.analyst.prompts.model_dump().items():
        try:
            latest_template(session, name, user_id=user_id)
        except PromptTemplateError as exc:
            problems.append(f"analyst.prompts.{role}: {exc}")
    sched = config.schedule
    if sched.cron and sched.market_sessions_only:
        from tradetrail.catalogue.calendars import calendar
        from tradetrail.db.types import utcnow
        from tradetrail.domain.schedule import ScheduleError, next_runs

        try:
            next_runs(sched.cron, sched.timezone, utcnow(), 1, calendar=calendar())
        except ScheduleError as exc:
            problems.append(f"schedule.cron: {exc}")
    if problems:
        raise InvalidStrategy(problems)


def save_strategy(session: Session, app, user_id: int, name: str, config: StrategyConfig,
                  *, enabled: bool = True) -> Strategy:
    """Create ``name`` or add a new version of it (an unchanged config adds nothing)."""
    check_runnable(session, app, user_id, config)
    strategy = session.scalar(select(Strategy).where(Strategy.user_id == user_id, Strategy.name == name))
    data = config.to_json()
    if strategy is None:
        strategy = Strategy(user_id=user_id, name=name, enabled=enabled, current_version=1)
        session.add(strategy)
        session.flush()
        session.add(StrategyVersion(strategy_id=strategy.id, version=1, config=data))
    else:
        if current_version(session, strategy).config != data:
            strategy.current_version += 1
            session.add(StrategyVersion(strategy_id=strategy.id, version=strategy.current_version, config=data))
        strategy.enabled = enabled
    session.commit()
    return strategy


def strategy_dict(session: Session, strategy: Strategy, *, with_config: bool = False) -> dict:
    version = current_version(session, strategy)
    config = version.config if version else {}
    data = {"id": strategy.id, "name": strategy.name, "enabled": strategy.enabled,
            "version": strategy.current_version, "symbol": config.get("symbol"), "mode": config.get("mode"),
            "cron": (config.get("schedule") or {}).get("cron"),
            "created_at": strategy.created_at.isoformat(), "updated_at": strategy.updated_at.isoformat()}
    if with_config:
        data["config"] = config
    return data


def list_strategies(app, user_id: int, *, limit: int = 50, offset: int = 0) -> list[dict]:
    with app.Session() as s:
        rows = s.scalars(select(Strategy).where(Strategy.user_id == user_id).order_by(Strategy.name)
                         .limit(limit).offset(offset)).all()
        return [strategy_dict(s, r) for r in rows]


def stored_config(raw: dict) -> StrategyConfig:
    """A stored configuration, validated; ``InvalidStrategy`` naming what no longer holds (saved by an earlier
    version with rules since tightened), so a caller can say so instead of failing."""
    try:
        return StrategyConfig.model_validate(raw)
    except ValidationError as exc:
        raise InvalidStrategy([f"{'.'.join(str(p) for p in e['loc']) or 'config'}: the stored configuration no "
                               f"longer validates: {e['msg']}" for e in exc.errors()]) from None


def strategy_detail(app, user_id: int, name: str) -> dict:
    with app.Session() as s:
        return strategy_dict(s, get_strategy(s, user_id, name), with_config=True)


# Names a page's address would shadow: /strategies/new is the wizard, so a strategy called "new" had no page.
RESERVED_NAMES = frozenset({"new"})


def create_strategy(app, user_id: int, name: str, config: StrategyConfig, *, enabled: bool = True) -> dict:
    """A new strategy; ``InvalidStrategy`` if the name is taken or reserved, or it cannot run as configured."""
    if name in RESERVED_NAMES:
        raise InvalidStrategy([f"name: {name!r} is reserved (the web UI's /strategies/{name} is the wizard)"])
    with app.Session() as s:
        if s.scalar(select(Strategy.id).where(Strategy.user_id == user_id, Strategy.name == name)) is not None:
            raise InvalidStrategy([f"a strategy named {name!r} exists"])
        return strategy_dict(s, save_strategy(s, app, user_id, name, config, enabled=enabled), with_config=True)


def update_strategy(app, user_id: int, name: str, config: StrategyConfig) -> dict:
    """A new version of an existing strategy (an unchanged config adds none)."""
    with app.Session() as s:
        strategy = get_strategy(s, user_id, name)
        return strategy_dict(s, save_strategy(s, app, user_id, name, config, enabled=strategy.enabled),
                             with_config=True)


def set_enabled(app, user_id: int, name: str, enabled: bool) -> dict:
    with app.Session() as s:
        strategy = get_strategy(s, user_id, name)
        strategy.enabled = enabled
        s.commit()
        return strategy_dict(s, strategy)


def delete_strategy(app, user_id: int, name: str) -> None:
    """Delete a strategy that never ran; one with executions or orders is paused instead by the caller."""
    from tradetrail.db.models import Execution
    from tradetrail.db.trading_models import Order

    with app.Session() as s:
        strategy = get_strategy(s, user_id, name)
        if (s.scalar(select(Execution.id).where(Execution.strategy_id == strategy.id).limit(1)) is not None
                or s.scalar(select(Order.id).where(Order.strategy_id == strategy.id).limit(1)) is not None):
            raise StrategyInUse(f"strategy {name!r} has executions or orders; its lineage is kept — pause it "
                                "instead")
        s.delete(strategy)
        s.commit()


def validate_config(app, user_id: int, config: StrategyConfig) -> list[str]:
    """Every reason the configuration cannot run (empty when it can)."""
    with app.Session() as s:
        try:
            check_runnable(s, app, user_id, config)
        except InvalidStrategy as exc:
            return exc.problems
    return []


def next_runs(app, user_id: int, name: str, count: int = 10) -> dict:
    """The next ``count`` fire times in UTC and in the strategy's time zone; with ``market_sessions_only``, those
    up to the exchange calendar's end when fewer fall before it (``calendar_end`` then names its last day)."""
    from zoneinfo import ZoneInfo

    from tradetrail.catalogue.calendars import calendar
    from tradetrail.db.types import utcnow
    from tradetrail.domain.schedule import BeyondCalendar, fire_times

    with app.Session() as s:
        config = stored_config(current_version(s, get_strategy(s, user_id, name)).config)
    sched = config.schedule
    rows, calendar_end = [], None
    if sched.cron:
        zone = ZoneInfo(sched.timezone)
        times = fire_times(sched.cron, sched.timezone, utcnow(),
                           calendar=calendar() if sched.market_sessions_only else None)
        try:
            for t in times:
                rows.append({"utc": t.isoformat(), "local": t.astimezone(zone).isoformat()})
                if len(rows) >= count:
                    break
        except BeyondCalendar as exc:  # the calendar says nothing past its end: the runs up to it
            calendar_end = exc.last_day
    return {"strategy": name, "cron": sched.cron, "timezone": sched.timezone,
            "market_sessions_only": sched.market_sessions_only, "next": rows, "calendar_end": calendar_end}
