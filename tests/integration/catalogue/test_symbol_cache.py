"""The 7-day symbol cache, on the real database, with a folder of files as the source."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from tradetrail.app_context import App
from tradetrail.catalogue.symbols import TTL, resolve_symbol
from tradetrail.db.models import Symbol
from tradetrail.db.types import utcnow
from tradetrail.domain.contract import Contract
from tradetrail.marketdata.files import FilesMarketData
from tradetrail.marketdata.port import MarketDataError

CSV = "Date,Open,High,Low,Close,Volume\n2024-01-02,100,102,99,101,1000\n2024-01-03,101,103,100,102.5,1500\n"
ACME = Contract(source="files", symbol="ACME", name="ACME", sec_type="STK", exchange="", currency="USD")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "marketdata"
    path.mkdir()
    (path / "ACME.csv").write_text(CSV)
    return path


def rows(app: App) -> list[Symbol]:
    with app.Session() as s:
        return list(s.scalars(select(Symbol).order_by(Symbol.id)))


def age_row(app: App, symbol: str, age: timedelta) -> datetime:
    when = utcnow() - age
    with app.Session() as s:
        s.execute(update(Symbol).where(Symbol.symbol == symbol).values(fetched_at=when))
        s.commit()
    return when


def test_first_resolve_is_a_miss_and_stores_a_row(app: App, folder: Path) -> None:
    before = utcnow()
    with app.Session() as s:
        got = resolve_symbol(s, FilesMarketData(folder), "acme")
    assert got.cache == "miss"
    assert got.contract == ACME
    assert got.note == ""
    [row] = rows(app)
    assert (row.source, row.symbol, row.name, row.sec_type, row.exchange, row.currency, row.conid, row.details) == (
        "files", "ACME", "ACME", "STK", "", "USD", None, {})
    assert before <= row.fetched_at <= utcnow()
    assert datetime.fromisoformat(got.fetched_at) == row.fetched_at


def test_second_resolve_is_a_hit_without_asking_the_source(app: App, folder: Path) -> None:
    source = FilesMarketData(folder)
    with app.Session() as s:
        first = resolve_symbol(s, source, "ACME")
    (folder / "ACME.csv").unlink()  # a call to the source would now fail
    with app.Session() as s:
        second = resolve_symbol(s, source, " acme ")
    assert (first.cache, second.cache) == ("miss", "hit")
    assert second.contract == first.contract == ACME
    assert datetime.fromisoformat(second.fetched_at) == datetime.fromisoformat(first.fetched_at)
    assert len(rows(app)) == 1


def test_a_row_just_inside_the_ttl_is_still_a_hit(app: App, folder: Path) -> None:
    source = FilesMarketData(folder)
    with app.Session() as s:
        resolve_symbol(s, source, "ACME")
    when = age_row(app, "ACME", TTL - timedelta(minutes=5))
    (folder / "ACME.csv").unlink()
    with app.Session() as s:
        got = resolve_symbol(s, source, "ACME")
    assert got.cache == "hit"
    assert abs(datetime.fromisoformat(got.fetched_at) - when) < timedelta(milliseconds=1)


def test_an_old_row_is_refreshed_when_the_source_works(app: App, folder: Path) -> None:
    source = FilesMarketData(folder)
    with app.Session() as s:
        resolve_symbol(s, source, "ACME")
    with app.Session() as s:  # make the cached row differ from what the source says, and 8 days old
        s.execute(update(Symbol).values(name="Old name", exchange="OLD"))
        s.commit()
    old = age_row(app, "ACME", timedelta(days=8))
    before = utcnow()
    with app.Session() as s:
        got = resolve_symbol(s, source, "ACME")
    assert got.cache == "refreshed"
    assert got.contract == ACME
    [row] = rows(app)
    assert (row.name, row.exchange) == ("ACME", "")
    assert before <= row.fetched_at <= utcnow()
    assert row.fetched_at - old > timedelta(days=7)
    assert datetime.fromisoformat(got.fetched_at) == row.fetched_at
    with app.Session() as s:
        assert resolve_symbol(s, source, "ACME").cache == "hit"


def test_an_old_row_is_served_stale_with_a_note_when_the_source_fails(app: App, folder: Path) -> None:
    source = FilesMarketData(folder)
    with app.Session() as s:
        resolve_symbol(s, source, "ACME")
    old = age_row(app, "ACME", timedelta(days=8))
    (folder / "ACME.csv").unlink()
    with app.Session() as s:
        got = resolve_symbol(s, source, "ACME")
    assert got.cache == "stale"
    assert got.contract == ACME
    assert got.note.startswith("source unavailable (no data file for 'ACME'")
    assert got.note.endswith(f"serving the cached row from {old:%Y-%m-%d}")
    [row] = rows(app)
    assert abs(row.fetched_at - old) < timedelta(milliseconds=1)  # still old: the next run tries again
    assert abs(datetime.fromisoformat(got.fetched_at) - old) < timedelta(milliseconds=1)


def test_unknown_symbol_without_a_row_is_an_error(app: App, folder: Path) -> None:
    with app.Session() as s, pytest.raises(MarketDataError, match="no data file for 'NOPE'"):
        resolve_symbol(s, FilesMarketData(folder), "nope")
    with app.Session() as s:
        assert s.scalar(select(func.count()).select_from(Symbol)) == 0


def test_cache_rows_are_per_source(app: App, folder: Path) -> None:
    with app.Session() as s:
        resolve_symbol(s, FilesMarketData(folder), "ACME")
    with app.Session() as s, pytest.raises(MarketDataError, match="the sample data has no symbol 'ACME'"):
        resolve_symbol(s, app.market_data("sample"), "ACME")
    with app.Session() as s:
        spx = resolve_symbol(s, app.market_data("sample"), "spx")
    assert (spx.cache, spx.contract.name, spx.contract.sec_type) == ("miss", "S&P 500 Index", "IND")
    assert [(r.source, r.symbol) for r in rows(app)] == [("files", "ACME"), ("sample", "SPX")]
