"""Migration 0007 on a database that already traded: every account an order went to becomes the registered
shared account of its user, trading-state scopes hold ``account:<account>``, and it downgrades cleanly."""

from __future__ import annotations

import uuid

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, select, text

from tests.conftest import PG_ADMIN_URL
from tradetrail.db.migrate import alembic_config, upgrade
from tradetrail.db.models import User
from tradetrail.db.trading_models import Order, TradingAccount, TradingStateRow
from tradetrail.db.types import utcnow


@pytest.fixture
def engine(tmp_path, backend):
    if backend == "sqlite":
        eng = create_engine(f"sqlite:///{tmp_path / 'm.db'}")
        yield eng
        eng.dispose()
        return
    name = f"tradetrail_m7_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    eng = create_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
    yield eng
    eng.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _order(user_id: int, account: str, coid: str) -> dict:
    return dict(user_id=user_id, broker="simulated", account=account, client_order_id=coid, leg="entry",
                symbol="SPX", side="BUY", order_type="MKT", quantity=1.0, tif="DAY", state="FILLED",
                filled_quantity=1.0, external=False, created_at=utcnow(), updated_at=utcnow())


def test_upgrade_registers_the_accounts_orders_went_to_and_downgrades(engine):
    upgrade(engine, "0006")
    with engine.begin() as conn:
        uid = conn.execute(User.__table__.insert().values(username="trader", created_at=utcnow())
                           .returning(User.__table__.c.id)).scalar_one()
        for i in range(3):  # three orders, one account
            conn.execute(Order.__table__.insert().values(**_order(uid, "SIM000001", f"tt-m7-{i}")))
    upgrade(engine)
    with engine.connect() as conn:
        rows = conn.execute(select(TradingAccount.__table__.c["user_id", "broker", "account", "kind",
                                                              "strategy_id"])).all()
    assert [tuple(r) for r in rows] == [(uid, "simulated", "SIM000001", "shared", None)]
    scope = "account:" + "D" * 32  # the longest account name
    with engine.begin() as conn:
        conn.execute(TradingStateRow.__table__.insert().values(user_id=uid, scope=scope, state="HALTED", reason="",
                                                               changed_at=utcnow()))
    with engine.connect() as conn:
        assert conn.scalar(select(TradingStateRow.__table__.c.scope)) == scope

    with engine.begin() as conn:
        conn.execute(TradingStateRow.__table__.delete())
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0006")
    assert "trading_accounts" not in inspect(engine).get_table_names()
    upgrade(engine)
    assert "trading_accounts" in inspect(engine).get_table_names()
