"""The ``tradetrail`` command line, one module per command group. Every command calls the services; none holds
business logic."""

from __future__ import annotations

import typer

from tradetrail.cli import backtest, notify, processes, runs, setup, strategies, symbols, trading, users
from tradetrail.cli.errors import ReportingGroup

app = typer.Typer(cls=ReportingGroup, no_args_is_help=True, add_completion=False,
                  help="Scheduled, LLM-assisted trading workflows.")
for command in (setup.init, runs.run, runs.lineage, processes.serve, trading.orders, trading.positions,
                trading.portfolio, trading.reconcile, trading.halt, trading.resume, runs.runs, processes.worker,
                processes.beat, backtest.backtest, backtest.backtest_session):
    app.command()(command)
for group, name in ((strategies.strategies_app, "strategies"),
                    (setup.db_app, "db"), (runs.schedule_app, "schedule"), (trading.broker_app, "broker"),
                    (symbols.symbols_app, "symbols"), (users.users_app, "users"), (users.tokens_app, "tokens"),
                    (notify.notify_app, "notify")):
    app.add_typer(group, name=name)
