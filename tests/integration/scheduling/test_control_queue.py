"""Beat's dispatch and sweep never wait behind runs (#11 item 14): with every pool process of the worker busy
in a slow run, a slot that becomes due is still claimed at its time and an orphaned execution is still swept.

Real processes: ``tradetrail worker`` (default queues) and ``tradetrail beat`` on the local Redis; the
model is a fake OpenAI-compatible server that holds both runs for 75 s.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tests.fakes.openai_server import Behaviour
from tests.support.celery_procs import wait_for_log
from tests.support.helpers import demo, wait_for
from tradetrail.db.models import Execution, ScheduleSlot, Strategy
from tradetrail.db.types import utcnow
from tradetrail.schemas.strategy import StrategyConfig
from tradetrail.services.runs.executions import create_execution
from tradetrail.services.strategies.configs import save_strategy
from tradetrail.settings import RUNS_QUEUE, Settings
from tradetrail.worker.celery_app import CONTROL_QUEUE, make_celery

pytestmark = pytest.mark.slow


def _strategy(app, user_id: int, name: str, created, **extra) -> Strategy:
    config = StrategyConfig.model_validate({"symbol": "SPX", "schedule": {"cron": "* * * * *", "timezone": "UTC"},
                                            "market_data": {"source": "sample", "replay_start": "2010-01-04"},
                                            **extra})
    with app.Session() as s:
        strategy = save_strategy(s, app, user_id, name, config)
        s.execute(update(Strategy).where(Strategy.id == strategy.id).values(created_at=created))
        s.commit()
        return strategy


def test_beat_routes_dispatch_and_sweep_to_the_control_queue_and_lets_stale_ones_expire(settings):
    conf = make_celery(Settings(home=settings.home, database_url=settings.database_url,
                                scheduler_interval_s=5, sweep_interval_s=60)).conf
    entries = conf.beat_schedule
    assert {e["task"] for e in entries.values()} == {"tradetrail.dispatch", "tradetrail.sweep", "tradetrail.notify"}
    control = {name: e for name, e in entries.items() if e["task"] != "tradetrail.notify"}
    assert all(e["options"]["queue"] == CONTROL_QUEUE for e in control.values())
    # the notification sender waits on receivers: on the runs queue, never in the dispatcher's way
    assert entries["notify"]["options"]["queue"] == RUNS_QUEUE
    # at least a minute: beat's clock stamps the expiry and the worker's reads it (review: 10 s of skew dropped
    # every dispatch)
    assert entries["dispatch"]["options"]["expires"] == 60 and entries["sweep"]["options"]["expires"] == 60
    slow = make_celery(Settings(home=settings.home, database_url=settings.database_url,
                                scheduler_interval_s=45, sweep_interval_s=600)).conf.beat_schedule
    assert slow["dispatch"]["options"]["expires"] == 90 and slow["sweep"]["options"]["expires"] == 600
    assert conf.task_routes["tradetrail.dispatch"] == {"queue": CONTROL_QUEUE}  # also when sent by hand


@pytest.mark.once  # what is tested (queues, processes, the CLI) is the same on either backend
def test_dispatch_and_sweep_happen_on_time_while_every_pool_process_is_busy(app, cli_env, redis_url, procs, fake):
    user_id, demo_strategy = demo(app)
    fake.enqueue(Behaviour.slow(75), Behaviour.slow(75))
    ago = utcnow() - timedelta(seconds=61)
    for name in ("slow-a", "slow-b"):
        _strategy(app, user_id, name, ago, analyst={"kind": "llm"})
    env = {**cli_env, "TRADETRAIL_EXECUTOR": "celery", "TRADETRAIL_REDIS_URL": redis_url,
           "TRADETRAIL_LLM_BASE_URL": fake.base_url, "TRADETRAIL_LLM_TIMEOUT_S": "120",
           "TRADETRAIL_SCHEDULER_INTERVAL_S": "2", "TRADETRAIL_SWEEP_INTERVAL_S": "2"}
    procs.start(env, "worker", "--concurrency", "2", log="worker.log")
    wait_for_log(procs, "worker.log", " ready.", 120, count=2)
    procs.start(env, "beat", log="beat.log")
    wait_for(lambda: len(fake.chat_requests) == 2, 120, "both pool processes to be busy at the model")

    # Every pool process is busy for the next ~75 s. A strategy created now is first due at the next minute,
    # and an execution left running by a dead process appears.
    punctual = _strategy(app, user_id, f"punctual-{random.randint(0, 999)}", utcnow(), analyst={"kind": "rules"})
    orphan = create_execution(app, demo_strategy)

    def swept():
        with app.Session() as s:
            return s.get(Execution, orphan.execution_id).status == "failed"
    wait_for(swept, 20, "beat's sweep to run while the pool is busy")

    def claimed():
        with app.Session() as s:
            return s.scalar(select(ScheduleSlot).where(ScheduleSlot.strategy_id == punctual.id))
    slot = wait_for(claimed, 85, "the punctual strategy's slot to be claimed")
    late = slot.claimed_at - slot.scheduled_for
    assert timedelta(0) <= late < timedelta(seconds=10), late  # at its minute, not after a slow run ended
    assert len(fake.chat_requests) == 2  # and the slow runs were indeed still running
