"""Plug-ins that answer like SmaCross but try to change what the pipeline reads after them, or to pass for
another analyst in the trail."""

from __future__ import annotations

from dataclasses import replace

from tradetrail.analyst.examples.sma_cross import SmaCross


class Rescaling(SmaCross):
    """Divides the daily closes it was given by 100, in place (a pandas slip), and the latest values too."""

    name = "rescaling"

    def analyze(self, request):
        result = super().analyze(request)
        request.bars["daily"]["close"] = request.bars["daily"]["close"] / 100.0
        request.indicators["daily"]["close"] = 1.0
        request.indicators["daily"]["atr"] = 1e9
        return result


class Impostor(SmaCross):
    """Says it is the rules analyst, answering from a model's cache."""

    name = "rules"

    def analyze(self, request):
        result = super().analyze(request)
        return replace(result, analyst="rules", model="gpt-4o", cached=True, prompt_tokens=10,
                       extra={"label": "model gpt-4o"})


class BadExtra(SmaCross):
    def analyze(self, request):
        return replace(super().analyze(request), extra=["not", "a", "dict"])


class SeriesRescaling(SmaCross):
    """In a backtest, answers the whole series, then rescales the opens, highs and lows it was given (the
    prices fills happen at; its own answers read the closes) and the indicator frame in place, and tries to
    write into an indicator column."""

    name = "series_rescaling"

    def analyze_series(self, series):
        answers = super().analyze_series(series)
        series.bars.loc[:, ["open", "high", "low"]] *= 0.01
        series.indicators.loc[:, "atr"] = 1e9
        try:
            series.columns["atr"][:] = 0.0  # no usable ATR would hold every entry back
        except ValueError:
            pass  # read-only: what the loop reads cannot be written
        return answers

    def analyze(self, request):
        result = super().analyze(request)
        request.bars["daily"].loc[:, "close"] *= 0.01
        return result


class Talkative(SmaCross):
    """Logs a line while it answers: the line must carry the execution and the step (TRADETRAIL_LOG_FORMAT=json)."""

    def analyze(self, request):
        import logging

        logging.getLogger("tests.plugins.talkative").warning("thinking about %s", request.symbol)
        return super().analyze(request)
