"""Reading orders for the faces (CLI, API): filters (state, strategy, symbol, account), newest first, with
their event trail on request."""

from __future__ import annotations

from sqlalchemy import select

from tradetrail.db.models import Strategy
from tradetrail.db.trading_models import Fill, Order, OrderEvent
from tradetrail.domain.errors import NotFound
from tradetrail.trading.trading_accounts import find_account, traded


def order_dict(o: Order, strategy: str | None) -> dict:
    return {"id": o.id, "client_order_id": o.client_order_id, "parent_client_order_id": o.parent_client_order_id,
            "strategy": strategy, "execution_id": o.execution_id, "account": o.account, "broker": o.broker,
            "symbol": o.symbol, "leg": o.leg, "side": o.side, "type": o.order_type, "quantity": o.quantity,
            "limit_price": o.limit_price, "stop_price": o.stop_price, "tif": o.tif, "state": o.state,
            "broker_order_id": o.broker_order_id, "filled_quantity": o.filled_quantity,
            "avg_fill_price": o.avg_fill_price, "reason": o.reason, "external": o.external,
            "sized_price": o.sized_price, "price_allowance_pct": o.price_allowance_pct,
            "created_at": o.created_at.isoformat(), "updated_at": o.updated_at.isoformat()}


def list_orders(app, user_id: int, *, state: str | None = None, strategy: str | None = None,
                symbol: str | None = None, account: str | None = None, limit: int = 100,
                offset: int = 0) -> list[dict]:
    """``NotFound`` for a strategy or an account that is not the user's (another user's too): never an empty
    list, so a filter answers like every other route whether the name exists elsewhere or nowhere."""
    limit = max(1, min(limit, 1000))
    if account is not None:
        find_account(app, user_id, account)
    with app.Session() as s:
        names = dict(s.execute(select(Strategy.id, Strategy.name).where(Strategy.user_id == user_id)).all())
        q = select(Order).where(Order.user_id == user_id, traded(Order.account))
        if state:
            q = q.where(Order.state == state.upper())
        if symbol:
            q = q.where(Order.symbol == symbol.upper())
        if account is not None:
            q = q.where(Order.account == account)
        if strategy is not None:
            ids = [i for i, n in names.items() if n == strategy]
            if not ids:
                raise NotFound(f"no strategy named {strategy!r}")
            q = q.where(Order.strategy_id == ids[0])
        rows = s.scalars(q.order_by(Order.id.desc()).offset(max(0, offset)).limit(limit)).all()
        return [order_dict(o, names.get(o.strategy_id)) for o in rows]


def order_detail(app, user_id: int, order_id: int) -> dict:
    with app.Session() as s:
        o = s.get(Order, order_id)
        if o is None or o.user_id != user_id:
            raise NotFound(f"no order {order_id}")
        name = s.scalar(select(Strategy.name).where(Strategy.id == o.strategy_id)) if o.strategy_id else None
        out = order_dict(o, name)
        out["events"] = [{"at": e.at.isoformat(), "from": e.from_state, "to": e.to_state, "detail": e.detail}
                         for e in s.scalars(select(OrderEvent).where(OrderEvent.order_id == o.id)
                                            .order_by(OrderEvent.id))]
        out["fills"] = [{"exec_id": f.exec_id, "side": f.side, "quantity": f.quantity, "price": f.price,
                         "commission": f.commission, "filled_at": f.filled_at.isoformat()}
                        for f in s.scalars(select(Fill).where(Fill.order_id == o.id).order_by(Fill.id))]
        return out


def list_fills(app, user_id: int, account: str | None = None) -> list[dict]:
    if account is not None:
        find_account(app, user_id, account)
    with app.Session() as s:
        q = select(Fill, Order.client_order_id, Order.strategy_id).join(Order, Fill.order_id == Order.id) \
            .where(Order.user_id == user_id, traded(Fill.account))
        if account is not None:
            q = q.where(Fill.account == account)
        rows = s.execute(q.order_by(Fill.filled_at, Fill.id)).all()
        return [{"exec_id": f.exec_id, "client_order_id": coid, "strategy_id": sid, "account": f.account,
                 "symbol": f.symbol,
                 "side": f.side, "quantity": f.quantity, "price": f.price, "commission": f.commission,
                 "filled_at": f.filled_at.isoformat()} for f, coid, sid in rows]
