"""Backtests: a strategy's decision code over a historical series, in one pass, on an account of its own.

The loop calls the functions a live run calls (indicators, 3-of-4 confirmation, analyst, signal policy, risk
gate, order rules, the simulator's fill rules); it only skips sessions where nothing can happen.
"""
