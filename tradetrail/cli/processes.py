"""The long-running processes: ``serve`` (API and web UI), ``worker`` and ``beat`` (distributed mode)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from tradetrail.cli.common import (
    _app,
    _fail,
)


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


def _node(name: str, suffix: str = "") -> str:
    """A Celery node name: NAME@%h, or NAME@HOST as given; ``suffix`` goes after the name part."""
    base, _, host = name.partition("@")
    return f"{base}{suffix}@{host or '%h'}"


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
