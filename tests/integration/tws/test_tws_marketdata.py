"""The ibkr_tws market data against the fake TWS: symbols searched and qualified through the symbol cache (asked
once), ambiguity and unknown tickers reported, daily bars through the pacing limiter (the fake's own pacing is
never broken), a 162 backed off and recorded, and no path that ends in "0 bars"."""

from __future__ import annotations

import pytest

from tests.integration.tws.tws_harness import AAPL, SPY, make_app_fixture, tws_fixture, until  # noqa: F401
from tradetrail.catalogue.symbols import contract_by_conid, resolve_symbol, search_symbols
from tradetrail.db.types import utcnow
from tradetrail.domain.errors import NotFound
from tradetrail.marketdata.port import MarketDataError


def test_search_and_resolution_go_through_the_symbol_cache_and_ask_tws_once(settings, tws, make_app):
    app = make_app(settings, tws)
    [spy] = search_symbols(app, "SPY")
    assert (spy["conid"], spy["symbol"], spy["exchange"], spy["source"], spy["cache"]) == \
        (SPY, "SPY", "ARCA", "ibkr_tws", "miss")
    asked = tws.count("reqContractDetails")
    assert search_symbols(app, "spy")[0]["cache"] == "hit" and tws.count("reqContractDetails") == asked

    by_name = search_symbols(app, "apple")  # not a ticker: TWS's matching symbols by company name
    assert [(x["conid"], x["symbol"]) for x in by_name] == [(AAPL, "AAPL")]
    assert tws.count("reqMatchingSymbols") == 1

    md = app.market_data()
    with app.Session() as s:
        first = resolve_symbol(s, md, "AAPL")
    with app.Session() as s:
        second = resolve_symbol(s, md, "aapl")
    assert (first.cache, second.cache) == ("miss", "hit")
    assert (first.contract.conid, first.contract.exchange, first.contract.name, first.contract.source) == \
        (AAPL, "NASDAQ", "APPLE INC", "ibkr_tws")
    assert first.contract.details["resolution"].startswith("US primary listing (NASDAQ)")
    assert md.resolve(str(SPY)).symbol == "SPY"  # a conid as the symbol
    assert contract_by_conid(app, AAPL)["symbol"] == "AAPL"
    with pytest.raises(NotFound, match="TWS has no contract 4242"):
        contract_by_conid(app, 4242)


def test_an_ambiguous_or_unknown_ticker_is_reported_never_guessed(settings, tws, make_app):
    md = make_app(settings, tws).market_data()
    with pytest.raises(MarketDataError, match=r"ambiguous at IBKR: conid 1001 \(NYSE, STK\), conid 1002 \(NASDAQ"):
        md.resolve("TWIN")
    with pytest.raises(MarketDataError, match="knows no contract with the ticker 'NOPE'"):
        md.resolve("NOPE")
    assert md.resolve("1002").name == "TWIN HOLDINGS B"


def test_daily_bars_come_through_the_limiter_and_the_bar_cache(settings, tws, make_app):
    app = make_app(settings, tws)
    md = app.market_data()
    contract = md.resolve("SPY")
    bars = md.daily_bars(contract, as_of=utcnow(), lookback=300)
    expected = tws.bars("SPY")[-300:]
    assert len(bars) == 300 and list(bars["close"]) == [b["close"] for b in expected]
    assert bars.index[-1].date() == expected[-1]["date"]
    assert (bars.index[-1].hour, bars.index[-1].minute) in ((20, 0), (21, 0))  # 16:00 New York in UTC
    asked = tws.count("reqHistoricalData")
    assert len(md.daily_bars(contract, as_of=utcnow(), lookback=250)) == 250
    assert tws.count("reqHistoricalData") == asked == 1  # the cache answered

    # Six requests for one contract at once and an identical one: the limiter spaces them, the fake (which
    # answers 162 to a request that breaks IBKR's pacing) refuses none.
    for days in (10, 11, 12, 13, 14, 15, 10):
        assert md._history(SPY, f"{days} D")
    assert tws.count("reqHistoricalData") == 8
    assert app.tws_connection().pacer.report()["pacing_violations"] == []


def test_a_pacing_violation_is_backed_off_recorded_and_asked_again(settings, tws, make_app):
    app = make_app(settings, tws)
    md = app.market_data()
    contract = md.resolve("AAPL")
    tws.pacing_violation_next(1)
    bars = md.daily_bars(contract, as_of=utcnow(), lookback=100)
    assert len(bars) == 100 and bars["close"].iloc[-1] == tws.last_close("AAPL")
    assert tws.count("reqHistoricalData") == 2
    [event] = app.tws_connection().pacer.report()["pacing_violations"]
    assert event["code"] == 162 and "pacing violation" in event["text"] and event["backoff_s"] > 0
    assert f"conid {AAPL}" in event["request"]


def test_pacing_violations_in_a_row_are_an_error_never_zero_bars(settings, tws, make_app):
    app = make_app(settings, tws)
    md = app.market_data()
    contract = md.resolve("SPY")
    tws.pacing_violation_next(10)
    with pytest.raises(MarketDataError, match=r"pacing violation \(162\) 3 times in a row"):
        md.daily_bars(contract, as_of=utcnow(), lookback=100)
    assert tws.count("reqHistoricalData") == 3
    assert len(app.tws_connection().pacer.report()["pacing_violations"]) == 3


def test_bars_while_the_gateway_restarts_are_a_clear_error(settings, tws, make_app):
    app = make_app(settings, tws)
    md = app.market_data()
    contract = md.resolve("SPY")
    tws.refuse_connections(2.0)
    until(lambda: not app.tws_connection().connected, what="the drop")
    with pytest.raises(MarketDataError, match="refused the connection"):
        md.daily_bars(contract, as_of=utcnow(), lookback=100)
    assert tws.count("reqHistoricalData") == 0
    until(lambda: app.tws_connection().connected, timeout=30, what="the reconnection")
    assert len(md.daily_bars(contract, as_of=utcnow(), lookback=100)) == 100


def test_no_market_data_subscription_is_a_clear_error_and_delayed_data_a_note(settings, tws, make_app):
    app = make_app(settings, tws)
    md = app.market_data()
    contract = md.resolve("SPY")
    tws.market_data_error_next(354)
    with pytest.raises(MarketDataError, match=r"error 354.*TRADETRAIL_TWS_MARKET_DATA_TYPE=delayed"):
        md.daily_bars(contract, as_of=utcnow(), lookback=100)
    tws.market_data_error_next(10167)  # delayed data shown: a warning, the bars follow
    assert len(md.daily_bars(contract, as_of=utcnow(), lookback=100)) == 100
    notes = app.tws_connection().status()["market_data_notes"]
    assert [n.split(":")[0] for n in notes] == ["354", "10167"]
