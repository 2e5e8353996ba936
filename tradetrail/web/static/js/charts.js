// Interactive charts with TradingView Lightweight Charts (its attribution logo stays on): the candles a run
// saw, with its signal and levels and the strategy's fills, and the equity curve. Settings come from a
// <script type="application/json" class="chart-config"> inside each <figure data-chart>.
(function () {
  "use strict";
  var base = window.tradetrailChartBase;  // chart_base.js
  var LWC = base.LWC, config = base.config, newChart = base.newChart, failed = base.failed;
  var SHOWN_BARS = 150;
  var UP = base.UP, DOWN = base.DOWN, COLORS = ["#1e6fd9", "#e67e22", "#8e44ad", "#16a085", "#c0392b"];

  // the time of the last bar at or before t (markers must sit on a bar)
  function snap(times, t) {
    var lo = 0, hi = times.length - 1, found = null;
    while (lo <= hi) {
      var mid = (lo + hi) >> 1;
      if (times[mid] <= t) { found = times[mid]; lo = mid + 1; } else { hi = mid - 1; }
    }
    return found;
  }

  function candles(figure, settings) {
    return base.load(settings.bars_url, "bars").then(function (bars) {
      var chart = newChart(figure.querySelector(".chart-canvas"));
      var series = chart.addSeries(LWC.CandlestickSeries, {
        upColor: UP, downColor: DOWN, borderVisible: false, wickUpColor: UP, wickDownColor: DOWN,
      });
      series.priceScale().applyOptions({ scaleMargins: { top: 0.05, bottom: 0.25 } });
      var volume = chart.addSeries(LWC.HistogramSeries, { priceFormat: { type: "volume" }, priceScaleId: "" });
      volume.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
      var data = [], volumes = [];
      for (var i = 0; i < bars.t.length; i++) {
        data.push({ time: bars.t[i], open: bars.open[i], high: bars.high[i], low: bars.low[i], close: bars.close[i] });
        volumes.push({ time: bars.t[i], value: bars.volume[i] || 0,
                       color: bars.close[i] >= bars.open[i] ? "rgba(38,166,154,0.35)" : "rgba(239,83,80,0.35)" });
      }
      series.setData(data);
      volume.setData(volumes);
      var times = bars.t, markers = [];
      (settings.fills || []).forEach(function (fill) {
        var at = snap(times, fill.time);
        if (at === null) return;
        var buy = fill.side === "BUY";
        markers.push({ time: at, position: buy ? "belowBar" : "aboveBar", color: buy ? UP : DOWN,
                       shape: buy ? "arrowUp" : "arrowDown", text: (buy ? "B " : "S ") + fill.quantity + " @ " + fill.price.toFixed(2) });
      });
      if (settings.signal && (settings.signal.action === "BUY" || settings.signal.action === "SELL")) {
        var last = snap(times, settings.as_of);
        if (last !== null) {
          markers.push({ time: last, position: settings.signal.action === "BUY" ? "belowBar" : "aboveBar",
                         color: "#1e6fd9", shape: "circle", text: "signal " + settings.signal.action });
        }
      }
      markers.sort(function (a, b) { return a.time - b.time; });
      LWC.createSeriesMarkers(series, markers);
      var lineColors = { entry: "#1e6fd9", stop: DOWN, target: UP };
      (settings.levels || []).forEach(function (level) {
        series.createPriceLine({ price: level.price, color: lineColors[level.title] || "#555", lineWidth: 1,
                                 lineStyle: LWC.LineStyle.Dashed, axisLabelVisible: true, title: level.title });
      });
      var n = data.length;
      chart.timeScale().setVisibleLogicalRange({ from: Math.max(0, n - SHOWN_BARS), to: n + 2 });
      figure.setAttribute("data-bars", String(n));
      figure.setAttribute("data-markers", String(markers.length));
    });
  }

  function equity(figure, settings) {
    var chart = newChart(figure.querySelector(".chart-canvas"));
    var points = 0;
    (settings.series || []).forEach(function (line, index) {
      var series = chart.addSeries(LWC.LineSeries, { color: COLORS[index % COLORS.length], lineWidth: 2,
                                                     title: line.account });
      var data = line.points.map(function (p) { return { time: Math.floor(Date.parse(p.at) / 1000), value: p.equity }; });
      series.setData(data);
      points += data.length;
    });
    chart.timeScale().fitContent();
    figure.setAttribute("data-points", String(points));
    return Promise.resolve();
  }

  var KINDS = { candles: candles, equity: equity };

  function init(root) {
    if (!LWC) return;
    var scope = root && root.querySelectorAll ? root : document;
    var figures = [].slice.call(scope.querySelectorAll("figure[data-chart]"));
    if (scope.matches && scope.matches("figure[data-chart]")) figures.push(scope);
    figures.forEach(function (figure) {
      if (figure.hasAttribute("data-chart-ready") || figure.hasAttribute("data-chart-started")) return;
      var draw = KINDS[figure.getAttribute("data-chart")];
      if (!draw) return;
      figure.setAttribute("data-chart-started", "true");
      var settings;
      try { settings = config(figure); } catch (error) { failed(figure, "bad settings"); return; }
      Promise.resolve().then(function () { return draw(figure, settings); }).then(function () {
        figure.setAttribute("data-chart-ready", "true");
      }).catch(function (error) { failed(figure, String(error && error.message || error)); });
    });
  }

  window.tradetrailCharts = { init: init };
  document.addEventListener("DOMContentLoaded", function () { init(document); });
})();
