"""The one family of errors the services raise to the faces. The API maps each to a status once
(``api/errors.py``); the CLI prints its message. Errors raised below the services and passed through
unchanged (a name that is not the user's, bad input to a lower layer, an outside service failing) are
re-exported here, so a face imports its errors from one place."""

from __future__ import annotations

from tradetrail.analyst.port import AnalysisFailed
from tradetrail.app_context import ConfigurationError
from tradetrail.domain.errors import NotFound
from tradetrail.domain.schedule import ScheduleError
from tradetrail.marketdata.port import MarketDataError
from tradetrail.prompts.templates import PromptTemplateError

__all__ = ["AccountError", "AlreadyRunning", "AnalysisFailed", "Busy", "ConfigurationError", "DocumentError",
           "InvalidBacktest", "InvalidStrategy", "LoginRefused", "MarketDataError", "NotFound", "PromptExists",
           "PromptInUse", "PromptTemplateError", "ScheduleError", "StrategyInUse", "TooManyAttempts",
           "TooManyBacktests"]


class AccountError(ValueError):
    """Bad account input (name taken, weak password, ...); the message says what is wrong."""


class LoginRefused(Exception):
    """Wrong name or password: one message for both, so names cannot be probed."""


class TooManyAttempts(Exception):
    def __init__(self, retry_after_s: int):
        super().__init__(f"too many failed logins; try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class InvalidStrategy(ValueError):
    """A strategy that cannot run as configured; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


class DocumentError(ValueError):
    """Text that is not a strategy document at all (not YAML or JSON, not a mapping, too large): one line says
    why. Its fields, once it is one, fail as ``InvalidStrategy``."""


class StrategyInUse(Exception):
    """The strategy has history (executions, orders) that deleting it would destroy."""


class AlreadyRunning(RuntimeError):
    """Another execution of the same strategy is running (in this process or another)."""


class Busy(RuntimeError):
    """Every slot of the run-now pool is taken; try again shortly."""


class PromptInUse(Exception):
    """Deleting the template would leave a strategy without its prompt."""


class PromptExists(Exception):
    """Creating a template under a name the user already has one of (a new version is a PUT)."""


class InvalidBacktest(ValueError):
    """A backtest cannot run as asked (range, cash, analyst, too little data): the message says why."""


class TooManyBacktests(Exception):
    """The user already has as many backtests waiting or running as one may; answered 429 with a retry time."""

    def __init__(self, limit: int, retry_after_s: int = 5):
        super().__init__(f"{limit} of your backtests are still waiting or running; try again when one has finished")
        self.retry_after_s = retry_after_s
