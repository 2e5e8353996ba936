// A backtest's interactive charts (TradingView Lightweight Charts, its attribution logo kept): equity beside
// buy and hold with both drawdowns in a pane below, and the daily bars with each trade's entry and exit.
// Each <figure data-chart="backtest-..."> holds its JSON's address in <script type="application/json"
// class="chart-config">; the figure gets data-chart-ready (or data-chart-error) when drawn.
(function () {
  "use strict";
  var base = window.tradetrailChartBase;  // chart_base.js
  var LWC = base.LWC, settings = base.config, load = base.load, newChart = base.newChart, failed = base.failed;
  var UP = base.UP, DOWN = base.DOWN, EQUITY = "#1e6fd9", HOLD = "#8a94a3";

  function points(dates, values) {
    var out = [];
    for (var i = 0; i < dates.length; i++) out.push({ time: dates[i], value: values[i] });
    return out;
  }

  function equity(figure, data) {
    var canvas = figure.querySelector(".chart-canvas");
    canvas.style.height = "460px";  // two panes (a CSSOM change: the CSP forbids style attributes, not this)
    var chart = newChart(canvas);
    var line = chart.addSeries(LWC.LineSeries, { color: EQUITY, lineWidth: 2, title: "equity" });
    line.setData(points(data.dates, data.equity));
    var hold = chart.addSeries(LWC.LineSeries, { color: HOLD, lineWidth: 1, title: "buy and hold" });
    hold.setData(points(data.dates, data.buy_and_hold));
    var pct = { type: "custom", formatter: function (v) { return v.toFixed(2) + " %"; } };
    var drawdown = chart.addSeries(LWC.AreaSeries, {
      lineColor: DOWN, topColor: "rgba(239,83,80,0.05)", bottomColor: "rgba(239,83,80,0.35)", lineWidth: 1,
      invertFilledArea: true, title: "drawdown", priceFormat: pct,
    }, 1);
    drawdown.setData(points(data.dates, data.drawdown_pct));
    var holdDrawdown = chart.addSeries(LWC.LineSeries, { color: HOLD, lineWidth: 1, title: "buy and hold drawdown",
                                                         priceFormat: pct }, 1);
    holdDrawdown.setData(points(data.dates, data.buy_and_hold_drawdown_pct));
    var panes = chart.panes();
    if (panes.length > 1) panes[1].setStretchFactor(0.45);
    chart.timeScale().fitContent();
    figure.setAttribute("data-points", String(data.dates.length));
  }

  function candles(figure, data) {
    var bars = data.bars;
    var chart = newChart(figure.querySelector(".chart-canvas"));
    var series = chart.addSeries(LWC.CandlestickSeries, {
      upColor: UP, downColor: DOWN, borderVisible: false, wickUpColor: UP, wickDownColor: DOWN,
    });
    var rows = [];
    for (var i = 0; i < bars.t.length; i++) {
      rows.push({ time: bars.t[i], open: bars.open[i], high: bars.high[i], low: bars.low[i], close: bars.close[i] });
    }
    series.setData(rows);
    var markers = [];
    data.trades.forEach(function (trade) {
      if (trade.entry_t !== null) {
        markers.push({ time: trade.entry_t, position: "belowBar", color: EQUITY, shape: "arrowUp",
                       text: trade.quantity + " @ " + trade.entry_price.toFixed(2) });
      }
      if (trade.exit_t !== null && trade.exit_price !== null) {
        markers.push({ time: trade.exit_t, position: "aboveBar", color: trade.pnl >= 0 ? UP : DOWN,
                       shape: "arrowDown", text: trade.exit_price.toFixed(2) });
      }
    });
    markers.sort(function (a, b) { return a.time - b.time; });
    LWC.createSeriesMarkers(series, markers);
    var tested = data.tested || {}, first = bars.t.indexOf(tested.first_t), last = bars.t.indexOf(tested.last_t);
    if (first >= 0 && last >= first) {  // the tested range, with a little room for the markers at its edges
      chart.timeScale().setVisibleLogicalRange({ from: Math.max(0, first - 5), to: last + 3 });
    } else {
      chart.timeScale().fitContent();
    }
    figure.setAttribute("data-bars", String(rows.length));
    figure.setAttribute("data-markers", String(markers.length));
  }

  var KINDS = { "backtest-equity": equity, "backtest-candles": candles };

  function init() {
    if (!LWC) return;
    [].slice.call(document.querySelectorAll("figure[data-chart^='backtest-']")).forEach(function (figure) {
      var draw = KINDS[figure.getAttribute("data-chart")];
      if (!draw || figure.hasAttribute("data-chart-started")) return;
      figure.setAttribute("data-chart-started", "true");
      var config;
      try { config = settings(figure); } catch (error) { failed(figure, "bad settings"); return; }
      load(config.url).then(function (data) {
        draw(figure, data);
        figure.setAttribute("data-chart-ready", "true");
      }).catch(function (error) { failed(figure, String(error && error.message || error)); });
    });
  }

  document.addEventListener("DOMContentLoaded", init);
})();
