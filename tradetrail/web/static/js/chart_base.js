// What every chart script of the UI shares (loaded before them): the chart's look, reading a figure's
// <script type="application/json" class="chart-config">, fetching JSON of this site, and saying on the
// figure that a chart could not be drawn. TradingView Lightweight Charts; its attribution logo stays on.
(function () {
  "use strict";
  var LWC = window.LightweightCharts;

  function config(figure) {
    var node = figure.querySelector("script.chart-config");
    return node ? JSON.parse(node.textContent) : {};
  }

  function load(url, what) {
    return fetch(url, { credentials: "same-origin" }).then(function (response) {
      if (!response.ok) throw new Error((what || url) + ": HTTP " + response.status);
      return response.json();
    });
  }

  function newChart(canvas) {
    return LWC.createChart(canvas, {
      autoSize: true,
      layout: { attributionLogo: true, background: { color: "#ffffff" }, textColor: "#373c44" },
      grid: { vertLines: { color: "#eef0f3" }, horzLines: { color: "#eef0f3" } },
      rightPriceScale: { borderVisible: false },
      timeScale: { borderVisible: false },
    });
  }

  function failed(figure, message) {
    figure.setAttribute("data-chart-error", message);
    var note = document.createElement("p");
    note.className = "loss";
    note.textContent = "The chart could not be drawn: " + message;
    figure.appendChild(note);
  }

  window.tradetrailChartBase = { LWC: LWC, UP: "#26a69a", DOWN: "#ef5350", config: config, load: load,
                                 newChart: newChart, failed: failed };
})();
