"""Content caches of a run: the chart render cache and the memo of bars JSON, weekly bars and indicators.

What matters: a hit gives exactly what a fresh computation gives (byte for byte for charts), anything the
computation reads changes the key, concurrent misses render once, the cache is bounded, and lineage still
records each chart's hash and says whether it came from the cache.
"""

from __future__ import annotations

import threading
from datetime import date

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import delete

from tests.support.helpers import demo
from tradetrail.charts.cache import ChartCache, chart_cache, render_key
from tradetrail.charts.render import render_chart
from tradetrail.db.models import ChartRender
from tradetrail.domain.bars import bars_to_json, resample_weekly
from tradetrail.domain.indicators import IndicatorParams, compute_indicators
from tradetrail.marketdata.sample import load_sample_daily
from tradetrail.schemas.strategy import MarketDataConfig, StrategyConfig
from tradetrail.services.runs.executions import get_execution, run_strategy
from tradetrail.services.strategies.configs import save_strategy
from tradetrail.workflow.memo import Memo, bars_memo, frame_key


@pytest.fixture(scope="module")
def daily() -> pd.DataFrame:
    return load_sample_daily("SPX").iloc[:600].copy()


@pytest.fixture(scope="module")
def indicators(daily) -> pd.DataFrame:
    return compute_indicators(daily, IndicatorParams())


def test_a_hit_is_byte_identical_to_a_fresh_render(daily, indicators):
    cache = ChartCache()
    first = cache.render(daily, indicators, title="SPX daily", max_bars=120)
    second = cache.render(daily.copy(), indicators.copy(), title="SPX daily", max_bars=120)  # equal, not same
    assert (first.hit, second.hit) == (False, True) and first.key == second.key
    assert second.png == first.png == render_chart(daily, indicators, title="SPX daily", max_bars=120)
    assert (cache.hits, cache.misses) == (1, 1)


def test_only_what_the_render_reads_is_in_the_key(daily, indicators):
    key = render_key(daily, indicators, title="SPX daily", max_bars=120)
    older = daily.copy()
    older.iloc[0, older.columns.get_loc("close")] += 1.0  # before the drawn window: the picture is the same
    assert render_key(older, indicators, title="SPX daily", max_bars=120) == key
    assert render_chart(older, indicators, title="SPX daily", max_bars=120) == render_chart(
        daily, indicators, title="SPX daily", max_bars=120)
    changed = daily.copy()
    changed.iloc[-1, changed.columns.get_loc("close")] += 0.01  # the last bar: another picture, another key
    shifted = indicators.copy()
    shifted.iloc[-5, shifted.columns.get_loc("rsi")] += 0.5
    other_zone = daily.tz_convert("America/New_York")  # the same instants, other date labels
    keys = {render_key(changed, indicators, title="SPX daily", max_bars=120),
            render_key(daily, shifted, title="SPX daily", max_bars=120),
            render_key(daily, indicators, title="SPX weekly", max_bars=120),
            render_key(daily, indicators, title="SPX daily", max_bars=119),
            render_key(other_zone, indicators.tz_convert("America/New_York"), title="SPX daily", max_bars=120),
            render_key(daily, indicators.drop(columns=["rsi"]), title="SPX daily", max_bars=120),
            render_key(daily, indicators.astype({"rsi": "float32"}), title="SPX daily", max_bars=120)}
    assert len(keys) == 7 and key not in keys


def test_concurrent_misses_on_one_chart_render_it_once(daily, indicators):
    cache = ChartCache()
    start = threading.Barrier(6)
    results = []

    def draw():
        start.wait()
        results.append(cache.render(daily, indicators, title="SPX daily", max_bars=100))

    threads = [threading.Thread(target=draw) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.misses == 1 and cache.hits == 5
    assert len({r.png for r in results}) == 1 and sum(not r.hit for r in results) == 1


def test_the_cache_is_bounded_and_forgets_the_least_recently_used(daily, indicators):
    cache = ChartCache(max_entries=2)
    for bars in (100, 110, 120):
        cache.render(daily, indicators, title="t", max_bars=bars)
    assert len(cache) == 2
    assert cache.render(daily, indicators, title="t", max_bars=120).hit
    assert not cache.render(daily, indicators, title="t", max_bars=100).hit  # evicted first
    tiny = ChartCache(max_bytes=1000)  # no chart fits: nothing is kept, every render still works
    assert not tiny.render(daily, indicators, title="t", max_bars=100).hit and len(tiny) == 0


def test_invalid_input_fails_as_an_uncached_render_does(daily, indicators):
    with pytest.raises(ValueError, match="bars are empty") as cached:
        ChartCache().render(daily.iloc[:0], indicators.iloc[:0], title="t")
    with pytest.raises(ValueError) as fresh:
        render_chart(daily.iloc[:0], indicators.iloc[:0], title="t")
    assert str(cached.value) == str(fresh.value)


def test_the_memo_returns_what_a_fresh_computation_returns_and_copies(daily):
    memo = Memo(4)
    key = frame_key("weekly", daily)
    first = memo.get(key, lambda: resample_weekly(daily))
    first.iloc[-1, 0] = -1.0  # a run changing its frame must not change another run's
    second = memo.get(key, lambda: pytest.fail("computed twice"))
    pd.testing.assert_frame_equal(second, resample_weekly(daily))
    assert frame_key("weekly", daily.iloc[:-1]) != key and frame_key("indicators", daily) != key
    nan = daily.copy()
    nan.iloc[-1, 0] = np.nan
    assert frame_key("weekly", nan) != key
    assert memo.get(frame_key("json", daily), lambda: bars_to_json(daily)) == bars_to_json(daily)


def _same_market(app, user_id: int, name: str) -> None:
    config = StrategyConfig(symbol="SPX", market_data=MarketDataConfig(source="sample",
                                                                      replay_start=date(2012, 3, 1)))
    with app.Session() as s:
        save_strategy(s, app, user_id, name, config)


def _charts(app, user_id: int, name: str) -> tuple[dict, dict]:
    data = get_execution(app, run_strategy(app, user_id, name).execution_id)
    assert data["status"] == "succeeded", data["error"]
    step = next(s for s in data["steps"] if s["name"] == "render_charts")
    return step["output"], step["artifacts"]


def test_strategies_on_one_market_share_renders_and_lineage_says_so(app):
    user_id, _ = demo(app)
    for name in ("a", "b", "c", "d"):
        _same_market(app, user_id, name)
    chart_cache.clear()
    bars_memo.clear()
    out_a, art_a = _charts(app, user_id, "a")
    out_b, art_b = _charts(app, user_id, "b")
    assert {out_a[tf]["cache"] for tf in ("daily", "weekly")} == {"miss"}
    assert {out_b[tf]["cache"] for tf in ("daily", "weekly")} == {"hit"}
    assert art_a == art_b == {f"chart_{tf}": out_a[tf]["sha256"] for tf in ("daily", "weekly")}
    for tf in ("daily", "weekly"):
        assert out_b[tf]["sha256"] == out_a[tf]["sha256"] and out_b[tf]["render_key"] == out_a[tf]["render_key"]
        png, content_type = app.artifacts.load(out_b[tf]["sha256"])
        assert content_type == "image/png" and len(png) == out_b[tf]["bytes"]
    chart_cache.clear()  # as a process that drew nothing yet: finds the drawings kept by render key
    bars_memo.clear()
    out_c, art_c = _charts(app, user_id, "c")
    assert {out_c[tf]["cache"] for tf in ("daily", "weekly")} == {"stored"} and art_c == art_a
    with app.engine.begin() as conn:
        conn.execute(delete(ChartRender))
    chart_cache.clear()
    bars_memo.clear()
    out_d, art_d = _charts(app, user_id, "d")  # drawn afresh: the very same bytes
    assert {out_d[tf]["cache"] for tf in ("daily", "weekly")} == {"miss"} and art_d == art_a


def test_a_kept_drawing_whose_bytes_are_gone_or_damaged_is_drawn_again(app):
    user_id, _ = demo(app)
    for name in ("a", "b", "c"):
        _same_market(app, user_id, name)
    chart_cache.clear()
    bars_memo.clear()
    out_a, _ = _charts(app, user_id, "a")
    daily_sha = out_a["daily"]["sha256"]
    path = app.artifacts.store._path(daily_sha)
    path.write_bytes(b"not the chart")  # damaged: its bytes no longer hash to its name
    path_weekly = app.artifacts.store._path(out_a["weekly"]["sha256"])
    path_weekly.unlink()  # gone
    chart_cache.clear()
    out_b, art_b = _charts(app, user_id, "b")
    assert (out_b["daily"]["cache"], out_b["weekly"]["cache"]) == ("miss", "miss")
    assert out_b["daily"]["sha256"] == daily_sha and path_weekly.exists()  # drawn again: the same picture
    png, _ = app.artifacts.load(out_b["weekly"]["sha256"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_second_level_is_asked_on_a_miss_and_told_of_every_drawing(daily, indicators):
    class Kept:
        def __init__(self):
            self.rows: dict[str, bytes] = {}
            self.asked: list[str] = []

        def find(self, key):
            self.asked.append(key)
            return self.rows.get(key)

        def keep(self, key, png):
            self.rows[key] = png

    kept = Kept()
    first = ChartCache().render(daily, indicators, title="SPX daily", max_bars=90, stored=kept)
    assert first.source == "miss" and kept.rows == {first.key: first.png} and kept.asked == [first.key]
    other = ChartCache()  # another process: nothing drawn in it yet
    second = other.render(daily, indicators, title="SPX daily", max_bars=90, stored=kept)
    assert (second.source, second.png) == ("stored", first.png) and (other.hits, other.misses) == (1, 0)
    third = other.render(daily, indicators, title="SPX daily", max_bars=90, stored=kept)
    assert third.source == "hit" and kept.asked == [first.key, first.key]  # in memory: not asked again
