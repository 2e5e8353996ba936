"""The symbol services (search, contract by conid, batch caching, stale refresh, statistics) and the bar
cache, against the fake gateway and against the bundled sample source."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select, update

from tests.fakes.ibkr_gateway import FakeGateway
from tests.support.ibkr import HISTORY, INFO, SCALE, SEARCH, SPY, ibkr_app
from tradetrail.catalogue.symbols import (
    cache_conids,
    cache_stats,
    contract_by_conid,
    refresh_stale,
    resolve_symbol,
    search_symbols,
)
from tradetrail.db.market_models import BarSeries, CachedBar, SymbolListing, SymbolSearch
from tradetrail.db.models import Symbol
from tradetrail.db.types import utcnow
from tradetrail.domain.errors import NotFound
from tradetrail.marketdata.port import MarketDataError


@pytest.fixture
def gw():
    with FakeGateway(pacing_scale=SCALE) as gateway:
        yield gateway


def age(app, model, days: int) -> None:
    with app.Session() as s:
        s.execute(update(model).values(fetched_at=utcnow() - timedelta(days=days)))
        s.commit()


def test_search_by_ticker_or_name_ranks_the_us_listing_first_and_is_cached(settings, gw):
    app = ibkr_app(settings, gw)
    found = search_symbols(app, "aapl")
    assert [(x["conid"], x["exchange"], x["is_us"], x["cache"]) for x in found] == \
        [(265598, "NASDAQ", True, "miss"), (38708077, "MEXI", False, "miss")]
    assert [x["cache"] for x in search_symbols(app, "AAPL ")] == ["hit", "hit"]
    assert gw.count(SEARCH) == 1
    by_name = search_symbols(app, "twin holdings")  # no such ticker: searched as a company name
    assert [x["conid"] for x in by_name] == [1001, 1002] and gw.count(SEARCH) == 3
    assert search_symbols(app, "zzzz") == [] and search_symbols(app, "aapl", limit=1)[0]["conid"] == 265598

    age(app, SymbolSearch, 8)  # stale, and IBKR is down: the cached answer is served, marked stale
    gw.fail_next(SEARCH, 503, times=2)
    stale = search_symbols(app, "AAPL")
    assert [(x["conid"], x["stale"], x["cache"]) for x in stale] == [(265598, True, "stale"), (38708077, True, "stale")]
    gw.fail_next(SEARCH, 503, times=2)
    with pytest.raises(MarketDataError, match="503"):
        search_symbols(app, "SPY")  # never cached and down: an error, not a guess


def test_contracts_by_conid_single_and_in_a_batch(settings, gw):
    app = ibkr_app(settings, gw)
    spy = contract_by_conid(app, SPY)
    assert (spy["symbol"], spy["exchange"], spy["currency"], spy["cache"]) == ("SPY", "ARCA", "USD", "miss")
    assert contract_by_conid(app, SPY)["cache"] == "hit" and gw.count(INFO) == 1
    with pytest.raises(NotFound, match="no contract 4242"):
        contract_by_conid(app, 4242)
    batch = cache_conids(app, [SPY, 265598, 4242, 265598])
    assert [(x["conid"], x["cache"]) for x in batch["cached"]] == [(SPY, "hit"), (265598, "miss")]
    assert list(batch["failed"]) == ["4242"] and batch["requested"] == 3
    stats = cache_stats(app)
    assert (stats["total"], stats["by_asset_type"], stats["stale"]) == (2, {"STK": 2}, 0)
    assert sorted((e["exchange"], e["count"]) for e in stats["top_exchanges"]) == [("ARCA", 1), ("NASDAQ", 1)]


def test_stale_entries_are_refreshed_or_served_marked_when_ibkr_is_down(settings, gw):
    app = ibkr_app(settings, gw)
    md = app.market_data()
    with app.Session() as s:
        assert resolve_symbol(s, md, "SPY").cache == "miss"
    contract_by_conid(app, 265598)
    age(app, Symbol, 8)
    age(app, SymbolListing, 8)
    assert cache_stats(app)["stale"] == 2
    gw.fail_next(SEARCH, 503, times=2)
    with app.Session() as s:
        got = resolve_symbol(s, md, "SPY")
    assert got.cache == "stale" and got.contract.conid == SPY and "503" in got.note
    report = refresh_stale(app)
    assert sorted(report["refreshed"]) == ["265598", "SPY"] and report["failed"] == {}
    assert report["remaining_stale"] == 0 and cache_stats(app)["stale"] == 0


def test_a_conid_pins_an_ambiguous_ticker(settings, gw):
    app = ibkr_app(settings, gw)
    md = app.market_data()
    with app.Session() as s, pytest.raises(MarketDataError, match="'TWIN' is ambiguous"):
        resolve_symbol(s, md, "TWIN")
    with app.Session() as s:
        got = resolve_symbol(s, md, "1002")
    assert (got.contract.symbol, got.contract.conid, got.contract.exchange) == ("TWIN", 1002, "NASDAQ")
    with app.Session() as s:
        again = resolve_symbol(s, md, "1002")
    assert (again.cache, again.contract.symbol) == ("hit", "TWIN")


def test_the_bar_cache_fetches_only_what_is_missing(settings, gw):
    app = ibkr_app(settings, gw)
    md = app.market_data()
    with app.Session() as s:
        contract = resolve_symbol(s, md, "SPY").contract
    now = datetime.now(UTC)
    full = md.daily_bars(contract, as_of=now, lookback=300)
    assert len(full) == 300 and gw.count(HISTORY) == 1
    assert md.daily_bars(contract, as_of=now - timedelta(days=30), lookback=100).index[-1] <= now - timedelta(days=30)
    assert gw.count(HISTORY) == 1  # inside the span the cache holds
    # The cache is three sessions behind (as if fetched days ago): only the missing days are asked for.
    with app.Session() as s:
        series = s.scalar(select(BarSeries))
        cut = full.index[-3].to_pydatetime()
        s.execute(delete(CachedBar).where(CachedBar.series_id == series.id, CachedBar.time >= cut))
        series.complete_through = cut - timedelta(hours=1)
        s.commit()
    again = md.daily_bars(contract, as_of=now, lookback=300)
    assert gw.count(HISTORY) == 2 and again.equals(full)
    period = [q["period"][0] for _, route, q, _ in gw.log if route == HISTORY][-1]
    assert period.endswith("d") and int(period[:-1]) <= 12


def test_the_symbol_services_work_on_the_sample_source(app):
    found = search_symbols(app, "nasdaq")
    assert [(x["symbol"], x["source"], x["conid"]) for x in found] == [("COMP", "sample", None)]
    assert [x["symbol"] for x in search_symbols(app, "spx")] == ["SPX"]
    assert search_symbols(app, "nothing-like-it") == []
    with pytest.raises(NotFound, match="no contract ids"):
        contract_by_conid(app, 1)
    assert cache_conids(app, [1])["failed"] == {"1": "the sample market data has no contract ids"}
    age(app, Symbol, 8)
    report = refresh_stale(app)
    assert (report["source"], sorted(report["refreshed"]), report["failed"], report["remaining_stale"]) == \
        ("sample", ["COMP", "SPX"], {}, 0)
    stats = cache_stats(app)
    assert (stats["total"], stats["by_asset_type"], stats["by_source"]) == (2, {"IND": 2}, {"sample": 2})
