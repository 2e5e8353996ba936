"""The ``tradetrail`` command line. Every command calls the services; none holds business logic."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from tradetrail.cli.errors import ReportingGroup
from tradetrail.domain.errors import NotFound

app = typer.Typer(cls=ReportingGroup, no_args_is_help=True, add_completion=False,
                  help="Scheduled, LLM-assisted trading workflows.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
app.add_typer(db_app, name="db")
console = Console()
err = Console(stderr=True)

UserOpt = Annotated[str, typer.Option("--user", help="whose strategies (default: the demo user)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)  # one line, however long
    raise typer.Exit(code)


def _app(migrate: bool = True):
    from tradetrail.runtime.build import build_app
    from tradetrail.settings import Settings

    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(f"TRADETRAIL_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        _fail(f"invalid settings: {problems}")
    return build_app(settings, migrate=migrate)


def _user_id(application, username: str) -> int:
    from tradetrail.services.strategies.configs import get_user

    with application.Session() as s:
        try:
            return get_user(s, username).id
        except NotFound as exc:
            _fail(f"{exc} (run `tradetrail init` first)")


@app.command()
def init() -> None:
    """Migrate the database, install the built-in prompts, create the demo user and the `demo` strategy."""
    from tradetrail.services.accounts.bootstrap import init as do_init
    from tradetrail.services.accounts.users import give_password_if_none

    application = _app()
    result = do_init(application)
    console.print(f"ready: user [bold]{result['user']}[/bold], strategy [bold]{result['strategy']}[/bold], "
                  f"{len(result['templates'])} prompt templates")
    password = give_password_if_none(application, result["user"])  # a fresh install only: never a default
    if password is not None:
        s = application.settings
        host = "127.0.0.1" if s.host in ("0.0.0.0", "::", "") else s.host
        host = f"[{host}]" if ":" in host else host
        console.print(f"sign in at http://{host}:{s.port}/login as [bold]{result['user']}[/bold] with the password "
                      f"[bold]{password}[/bold]\n(shown only this once; change it with "
                      f"`tradetrail users set-password {result['user']}`)", highlight=False, soft_wrap=True)


def _print_execution(data: dict) -> None:
    table = Table(title=f"execution {data['id']} — {data['strategy']} — {data['status']}")
    for col in ("#", "step", "status", "ms", "summary"):
        table.add_column(col, overflow="fold")
    for st in data["steps"]:
        colour = {"succeeded": "green", "failed": "red", "skipped": "yellow"}.get(st["status"], "white")
        summary = st["error"] or _summary(st["name"], st["output"])
        table.add_row(str(st["number"]), st["name"], f"[{colour}]{st['status']}[/{colour}]",
                      f"{st['duration_ms']:.1f}", summary)
    console.print(table)
    console.print(f"as of {data['as_of']}, total {data['duration_ms']:.1f} ms")


def _summary(name: str, out: dict) -> str:
    if name == "fetch_market_data":
        return ", ".join(f"{tf}: {v.get('count')} bars to {v.get('last', '')[:10]}" for tf, v in out.items())
    if name == "analyze":
        a = out.get("answer", {})
        return f"{out.get('label')}: {a.get('action')} ({a.get('confidence')})"
    if name in ("decide_signal", "complete"):
        return f"{out.get('action') or out.get('signal')}: {out.get('reason')}"
    if name == "render_charts":
        return ", ".join(f"{tf} {v['sha256'][:12]}" for tf, v in out.items() if isinstance(v, dict)) or \
            str(out.get("reason", ""))
    if name == "resolve_contract":
        return f"{out.get('contract', {}).get('name')} (cache {out.get('cache')})"
    text = json.dumps(out, default=str)
    return text if len(text) < 100 else text[:97] + "..."


@app.command()
def run(name: str, as_json: JsonOpt = False, user: UserOpt = "demo") -> None:
    """Run strategy NAME once, now, and show every step."""
    from tradetrail.services.runs.executions import AlreadyRunning, get_execution, run_strategy

    application = _app()
    uid = _user_id(application, user)
    try:
        summary = run_strategy(application, uid, name)
    except (NotFound, AlreadyRunning) as exc:
        _fail(str(exc))
    # Anything else (the database locked or gone, lineage that could not be written) is one line on stderr
    # and exit 1 (cli_errors.py); an execution already created is recorded failed by the executor.
    data = get_execution(application, summary.execution_id)
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    else:
        _print_execution(data)
    if summary.status == "failed":
        raise typer.Exit(1)


@app.command()
def lineage(execution_id: str, as_json: JsonOpt = False) -> None:
    """Show one execution with all its recorded steps."""
    from tradetrail.services.runs.executions import get_execution

    try:
        data = get_execution(_app(), execution_id)
    except NotFound as exc:
        _fail(str(exc))
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    else:
        _print_execution(data)


@app.command()
def serve(host: Annotated[str | None, typer.Option(help="bind address")] = None,
          port: Annotated[int | None, typer.Option(help="port")] = None) -> None:
    """Serve the API (migrations run first)."""
    import uvicorn

    from tradetrail.server.app import create_app

    application = _app()
    s = application.settings
    # Forwarded headers (the client address behind a reverse proxy) are believed only from the proxies named
    # in TRADETRAIL_TRUSTED_PROXIES: uvicorn's default trusts 127.0.0.1, so any local client could pick the
    # address the per-address login limit counts.
    proxies = s.trusted_proxy_list
    uvicorn.run(create_app(application), host=host or s.host, port=port or s.port, log_level=s.log_level.lower(),
                proxy_headers=bool(proxies), forwarded_allow_ips=proxies or None)


def _print_rows(title: str, rows: list[dict], columns: list[str]) -> None:
    table = Table(title=title)
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*["" if row.get(c) is None else str(row.get(c)) for c in columns])
    console.print(table)


def _emit(data, as_json: bool, render) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    else:
        render(data)


@app.command()
def orders(as_json: JsonOpt = False, user: UserOpt = "demo",
           state: Annotated[str | None, typer.Option(help="e.g. SUBMITTED, FILLED, UNKNOWN")] = None,
           strategy: Annotated[str | None, typer.Option(help="strategy name")] = None,
           limit: Annotated[int, typer.Option(min=1, max=1000)] = 100) -> None:
    """Orders, newest first, with their fills (--json)."""
    from tradetrail.services.trading.order_lists import list_fills, list_orders

    application = _app()
    uid = _user_id(application, user)
    rows = list_orders(application, uid, state=state, strategy=strategy, limit=limit)
    data = {"orders": rows, "fills": list_fills(application, uid)}
    for row in rows:
        row["price"] = row["limit_price"] or row["stop_price"]
        row["fill"] = f"{row['filled_quantity']:g} @ {row['avg_fill_price']:g}" if row["avg_fill_price"] else ""
    _emit(data, as_json, lambda d: _print_rows("orders", d["orders"], [
        "id", "strategy", "symbol", "leg", "side", "type", "quantity", "price", "state", "fill"]))


@app.command()
def positions(as_json: JsonOpt = False, user: UserOpt = "demo") -> None:
    """Positions per strategy with average cost and P&L."""
    from tradetrail.trading.portfolio import current, latest_as_of

    application = _app()
    uid = _user_id(application, user)
    data = current(application, uid, latest_as_of(application, uid))
    _emit(data["positions"], as_json, lambda rows: _print_rows("positions", rows, [
        "strategy", "symbol", "quantity", "avg_cost", "market_price", "realized_pnl", "unrealized_pnl"]))


@app.command()
def portfolio(as_json: JsonOpt = False, user: UserOpt = "demo") -> None:
    """Cash, equity, positions, realized and unrealized P&L, and trading statistics."""
    from tradetrail.trading import portfolio as pf

    application = _app()
    uid = _user_id(application, user)
    data = pf.current(application, uid, pf.latest_as_of(application, uid))
    data["statistics"] = pf.stats(application, uid)
    data["trades"] = pf.trades(application, uid)

    def render(d):
        console.print(f"account {d['account']} ({'paper' if d['paper'] else 'LIVE'}): cash {d['cash']:,.2f}, "
                      f"equity {d['equity']:,.2f}, realized {d['realized_pnl']:,.2f}, "
                      f"unrealized {d['unrealized_pnl']:,.2f}")
        _print_rows("positions", d["positions"], ["strategy", "symbol", "quantity", "avg_cost", "market_price",
                                                  "realized_pnl", "unrealized_pnl"])
        console.print(d["statistics"])

    _emit(data, as_json, render)


@app.command()
def reconcile(as_json: JsonOpt = False, user: UserOpt = "demo") -> None:
    """Compare our orders and positions with the broker's and settle every order of unknown fate."""
    from tradetrail.trading.reconcile import reconcile as do_reconcile

    application = _app()
    report = do_reconcile(application, _user_id(application, user))
    _emit(report, as_json, lambda r: console.print_json(data=r))
    if report["position_mismatches"]:
        raise typer.Exit(1)


StrategyOpt = Annotated[str | None, typer.Option("--strategy", help="one strategy instead of the whole account")]


def _set_state(user: str, strategy: str | None, state, reason: str) -> None:
    from tradetrail.services.strategies.configs import get_strategy
    from tradetrail.trading.trading_state import scope_for, set_state

    application = _app()
    uid = _user_id(application, user)
    sid = None
    if strategy:
        with application.Session() as s:
            try:
                sid = get_strategy(s, uid, strategy).id
            except NotFound as exc:
                _fail(str(exc))
    console.print_json(data=set_state(application, uid, scope_for(sid), state, reason))


@app.command()
def halt(strategy: StrategyOpt = None, user: UserOpt = "demo",
         reducing: Annotated[bool, typer.Option(help="allow exits (REDUCING) instead of nothing (HALTED)")] = False,
         reason: Annotated[str, typer.Option(help="why, for the record")] = "") -> None:
    """Stop trading: HALTED (no orders) or, with --reducing, exits only."""
    from tradetrail.domain.risk import TradingState

    _set_state(user, strategy, TradingState.REDUCING if reducing else TradingState.HALTED, reason)


@app.command()
def resume(strategy: StrategyOpt = None, user: UserOpt = "demo",
           reason: Annotated[str, typer.Option(help="why, for the record")] = "") -> None:
    """Back to ACTIVE (also restarts the count of consecutive losses)."""
    from tradetrail.domain.risk import TradingState

    _set_state(user, strategy, TradingState.ACTIVE, reason)


schedule_app = typer.Typer(no_args_is_help=True, help="Schedules.")
app.add_typer(schedule_app, name="schedule")


@schedule_app.command("preview")
def schedule_preview(name: str, user: UserOpt = "demo", as_json: JsonOpt = False,
                     count: Annotated[int, typer.Option(min=1, max=500)] = 10) -> None:
    """The next COUNT run times of strategy NAME (in UTC and in the strategy's time zone)."""
    from tradetrail.domain.schedule import ScheduleError
    from tradetrail.services.strategies.configs import next_runs

    application = _app()
    uid = _user_id(application, user)
    try:
        data = next_runs(application, uid, name, count)
    except (NotFound, ScheduleError) as exc:
        _fail(str(exc))
    if not data["cron"]:
        _fail(f"strategy {name!r} has no schedule (schedule.cron is empty)")
    _emit(data, as_json, lambda d: _print_rows(f"{name}: {d['cron']} ({d['timezone']})", d["next"],
                                               ["local", "utc"]))


@app.command()
def runs(strategy: Annotated[str, typer.Option("--strategy", help="strategy name")], user: UserOpt = "demo",
         as_json: JsonOpt = False, limit: Annotated[int, typer.Option(min=1, max=100)] = 20) -> None:
    """Recent executions of a strategy, newest first, with their scheduled slot if any."""
    from tradetrail.services.runs.lineage import recent

    application = _app()
    uid = _user_id(application, user)
    try:
        rows = recent(application, uid, strategy=strategy, limit=limit)
    except NotFound as exc:
        _fail(str(exc))
    _emit(rows, as_json, lambda r: _print_rows(f"runs of {strategy}", r, [
        "id", "status", "trigger", "started_at", "as_of", "failed_step"]))


broker_app = typer.Typer(no_args_is_help=True, help="The broker connection.")
app.add_typer(broker_app, name="broker")
symbols_app = typer.Typer(no_args_is_help=True, help="The symbol cache.")
app.add_typer(symbols_app, name="symbols")


@broker_app.command("status")
def broker_status(user: UserOpt = "demo", as_json: JsonOpt = False) -> None:
    """Is the broker session healthy (authenticated, connected, not competing)? Exit 1 if not."""
    from tradetrail.services.trading.broker_status import broker_status as status

    application = _app()
    data = status(application, user_id=_user_id(application, user))
    _emit(data, as_json, lambda d: console.print_json(data=d))
    if not data.get("healthy", False):
        raise typer.Exit(1)


@symbols_app.command("search")
def symbols_search(query: str, as_json: JsonOpt = False,
                   limit: Annotated[int, typer.Option(min=1, max=50)] = 20) -> None:
    """Search the configured source by ticker or name (answers are cached)."""
    from tradetrail.catalogue.symbols import search_symbols
    from tradetrail.marketdata.port import MarketDataError

    try:
        rows = search_symbols(_app(), query, limit=limit)
    except MarketDataError as exc:
        _fail(str(exc))
    _emit(rows, as_json, lambda r: _print_rows(f"symbols matching {query!r}", r, [
        c for c in ("symbol", "conid", "name", "sec_type", "exchange", "currency", "cache") if r and c in r[0]]))


@symbols_app.command("stats")
def symbols_stats(as_json: JsonOpt = False) -> None:
    """Cache statistics: total, by asset type, stale rows, top exchanges."""
    from tradetrail.catalogue.symbols import cache_stats

    data = cache_stats(_app())
    _emit(data, as_json, lambda d: console.print_json(data=d))


def _node(name: str, suffix: str = "") -> str:
    """A Celery node name: NAME@%h, or NAME@HOST as given; ``suffix`` goes after the name part."""
    base, _, host = name.partition("@")
    return f"{base}{suffix}@{host or '%h'}"


@app.command()
def worker(concurrency: Annotated[int | None, typer.Option(help="processes running executions")] = None,
           loglevel: Annotated[str, typer.Option(help="Celery log level")] = "INFO",
           queues: Annotated[str | None, typer.Option(
               help="runs, control or both (default TRADETRAIL_WORKER_QUEUES: both)")] = None,
           name: Annotated[str | None, typer.Option(
               help="node name, NAME or NAME@HOST (default TRADETRAIL_WORKER_NAME, else tradetrail-<pid>)")] = None,
           parent_pid: Annotated[int | None, typer.Option(hidden=True)] = None) -> None:
    """Start a Celery worker (distributed mode: TRADETRAIL_EXECUTOR=celery, TRADETRAIL_REDIS_URL).

    By default it consumes both queues: a pool of --concurrency processes runs the executions and a process
    of its own runs beat's dispatch and sweep, so scheduling never waits behind runs."""
    import os

    from tradetrail.db.session import dispose_all
    from tradetrail.settings import worker_queues

    if queues is not None:
        try:
            queues = worker_queues(queues)
        except ValueError as exc:
            _fail(f"--queues {exc}")
    application = _app(migrate=parent_pid is None)  # validates settings; migrates once, before any process starts
    dispose_all()  # nothing open is handed to the processes started below
    s = application.settings
    wanted = (queues or s.worker_queues).split(",")
    node = name or s.worker_name or f"tradetrail-{os.getpid()}"
    n = concurrency or s.worker_concurrency
    if len(wanted) > 1:
        import logging

        from tradetrail.worker.supervisor import Supervisor

        logging.basicConfig(level=loglevel.upper(), format="[%(asctime)s: %(levelname)s/supervisor] %(message)s")
        me = [sys.executable, "-m", "tradetrail.cli", "worker", f"--loglevel={loglevel}", f"--parent-pid={os.getpid()}"]
        code = Supervisor({"runs": [*me, "--queues=runs", f"--concurrency={n}", f"--name={node}"],
                           "control": [*me, "--queues=control", f"--name={_node(node, '-control')}"]}).run()
        raise typer.Exit(code)
    if parent_pid is not None:
        from tradetrail.worker.supervisor import exit_with_parent

        exit_with_parent(parent_pid)
    from tradetrail.worker.celery_app import CONTROL_QUEUE, RUNS_QUEUE, celery_app

    if wanted == ["runs"]:
        args = ["--pool=prefork", f"--concurrency={n}", "-Q", RUNS_QUEUE]
    else:  # dispatch and sweep are short: one process, one at a time, never behind a run
        args = ["--pool=solo", "-Q", CONTROL_QUEUE]
    celery_app.worker_main(["worker", f"--loglevel={loglevel}", *args, f"--hostname={_node(node)}"])


@app.command()
def beat(loglevel: Annotated[str, typer.Option(help="Celery log level")] = "INFO") -> None:
    """Start Celery beat: it sends the dispatcher every TRADETRAIL_SCHEDULER_INTERVAL_S seconds and at each
    whole minute, and the sweep every TRADETRAIL_SWEEP_INTERVAL_S, to the control queue."""
    from tradetrail.db.session import dispose_all

    application = _app()
    dispose_all()
    from tradetrail.worker.celery_app import celery_app

    schedule_file = application.settings.home / "celerybeat-schedule"
    application.settings.home.mkdir(parents=True, exist_ok=True)
    celery_app.start(["beat", f"--loglevel={loglevel}", f"--schedule={schedule_file}"])


users_app = typer.Typer(no_args_is_help=True, help="Users (API and web logins).")
app.add_typer(users_app, name="users")
tokens_app = typer.Typer(no_args_is_help=True, help="API tokens (sent as 'Authorization: Bearer <token>').")
app.add_typer(tokens_app, name="tokens")


def _password(value: str | None, ask: bool) -> str | None:
    if value is None and ask:
        value = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    return value


@users_app.command("create")
def users_create(name: str,
                 password: Annotated[str | None, typer.Option(help="login password (asked for if omitted)")] = None,
                 no_password: Annotated[bool, typer.Option("--no-password", help="token access only")] = False
                 ) -> None:
    """Create user NAME with an argon2-hashed password."""
    from tradetrail.services.accounts.users import AccountError, create_user

    try:
        user = create_user(_app(), name, None if no_password else _password(password, True))
    except AccountError as exc:
        _fail(str(exc))
    console.print(f"user [bold]{user['username']}[/bold] created (id {user['id']})")


@users_app.command("set-password")
def users_set_password(name: str,
                       password: Annotated[str | None, typer.Option(help="new password (asked for if omitted)")] = None
                       ) -> None:
    """Set NAME's password (ends their browser sessions)."""
    from tradetrail.services.accounts.users import AccountError, set_password

    try:
        set_password(_app(), name, _password(password, True))
    except (AccountError, NotFound) as exc:
        _fail(str(exc))
    console.print(f"password of [bold]{name}[/bold] changed")


@tokens_app.command("create")
def tokens_create(name: Annotated[str, typer.Argument(help="the user the token acts for")],
                  label: Annotated[str, typer.Option(help="what the token is for")] = "cli") -> None:
    """Create an API token for user NAME and print it (it is shown only this once)."""
    from tradetrail.services.accounts.users import AccountError, create_token

    try:
        token = create_token(_app(), name, label)
    except (AccountError, NotFound) as exc:
        _fail(str(exc))
    err.print(f"token {token['id']} ({token['name']}) for {name}; store it now, it is not shown again:")
    sys.stdout.write(token["token"] + "\n")


@tokens_app.command("list")
def tokens_list(name: Annotated[str, typer.Argument(help="user")], as_json: JsonOpt = False) -> None:
    """NAME's tokens (prefix only) with when they were last used."""
    from tradetrail.services.accounts.users import list_tokens

    application = _app()
    rows = list_tokens(application, _user_id(application, name))
    _emit(rows, as_json, lambda r: _print_rows(f"tokens of {name}", r, [
        "id", "name", "prefix", "created_at", "last_used_at", "revoked_at"]))


@tokens_app.command("revoke")
def tokens_revoke(name: Annotated[str, typer.Argument(help="user")], token_id: int) -> None:
    """Revoke token TOKEN_ID of user NAME."""
    from tradetrail.services.accounts.users import revoke_token

    application = _app()
    try:
        revoke_token(application, _user_id(application, name), token_id)
    except NotFound as exc:
        _fail(str(exc))
    console.print(f"token {token_id} revoked")


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations up to REVISION (default: head)."""
    from tradetrail.db.migrate import current_revision, upgrade

    application = _app(migrate=False)
    upgrade(application.engine, revision)
    console.print(f"schema at revision {current_revision(application.engine)}")


@db_app.command("current")
def db_current() -> None:
    """Print the schema revision of the database."""
    from tradetrail.db.migrate import current_revision

    console.print(current_revision(_app(migrate=False).engine) or "empty (run `tradetrail db upgrade`)")


if __name__ == "__main__":
    app()
