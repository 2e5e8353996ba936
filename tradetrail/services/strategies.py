"""Strategies: create, change (each change is a new immutable version), look up, validate."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from tradetrail.db.models import Strategy, StrategyVersion, User
from tradetrail.marketdata.port import MarketDataError
from tradetrail.prompts.templates import PromptTemplateError
from tradetrail.schemas.strategy import StrategyConfig
from tradetrail.services.prompts import latest_template


class NotFound(LookupError):
    """The named resource does not exist (for this user)."""


class InvalidStrategy(ValueError):
    """A strategy that cannot run as configured; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


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


def current_version(session: Session, strategy: Strategy) -> StrategyVersion:
    return session.scalar(select(StrategyVersion).where(StrategyVersion.strategy_id == strategy.id,
                                                        StrategyVersion.version == strategy.current_version))


def check_runnable(session: Session, app, user_id: int, config: StrategyConfig) -> None:
    """Checks that need the database or a source: the symbol exists, the prompts exist."""
    problems = []
    try:
        app.market_data(config.market_data.source).resolve(config.symbol)
    except MarketDataError as exc:
        problems.append(f"symbol: {exc}")
    for role, name in config.analyst.prompts.model_dump().items():
        try:
            latest_template(session, name, user_id=user_id)
        except PromptTemplateError as exc:
            problems.append(f"analyst.prompts.{role}: {exc}")
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
