"""The command line as a trader reads it, through real subprocesses against the test database: strategies
from YAML or JSON files (errors name the field by its path), ``run`` showing one line per step through a
pipe, and listings that read at 80 columns."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.support.cli import tt

pytestmark = pytest.mark.once  # what the command line prints: the same on either backend

WIDTH = 80
STEPS = ["load_strategy", "check_broker", "resolve_contract", "fetch_market_data", "compute_indicators",
         "render_charts", "analyze", "decide_signal", "risk_check", "place_order", "track_order",
         "update_portfolio", "complete"]


def _narrow(cli_env) -> dict:
    return {**cli_env, "COLUMNS": str(WIDTH)}


def _fits(text: str, words: list[str]) -> None:
    """No line wider than the screen, and each of ``words`` whole on some line (never split across two)."""
    lines = text.splitlines()
    assert all(len(line.rstrip()) <= WIDTH for line in lines), max(lines, key=len)
    for word in words:
        assert any(re.search(rf"(^|\s){re.escape(word)}(\s|$)", line) for line in lines), (word, text)


def test_strategies_from_files_with_errors_named_by_field(cli_env, tmp_path):
    env = _narrow(cli_env)
    tt(env, "init")
    shown = tt(env, "strategies", "show", "demo").stdout
    assert shown.startswith("# version 1, enabled") and "\nname: demo\n" in shown
    good = tmp_path / "swing.yaml"
    good.write_text(shown.replace("name: demo", "name: swing"))
    assert "swing.yaml: valid (strategy swing)" in tt(env, "strategies", "validate", "--file", str(good)).stdout
    out = tt(env, "strategies", "create", "--file", str(good)).stdout
    assert "strategy swing created (name from the file): version 1, enabled" in out
    as_json = tmp_path / "other.json"  # JSON is YAML; the name from --name
    as_json.write_text(json.dumps({k: v for k, v in yaml.safe_load(shown).items() if k != "name"}))
    out = tt(env, "strategies", "create", "-f", str(as_json), "--name", "other", "--paused").stdout
    assert "strategy other created (name from --name): version 1, paused" in out

    good.write_text(shown.replace("name: demo", "name: swing").replace("max_position_pct: 20.0",
                                                                       "max_position_pct: 10.0"))
    assert "strategy swing saved: version 2, enabled" in tt(env, "strategies", "edit", "swing", "-f", str(good)).stdout
    assert "strategy swing paused: version 2, paused" in tt(env, "strategies", "pause", "swing").stdout
    assert "strategy other enabled" in tt(env, "strategies", "enable", "other").stdout
    listed = tt(env, "strategies", "list").stdout
    _fits(listed, ["swing", "paused", "other", "enabled", "35 9 * * mon-fri"])
    assert re.search(r"swing\s+paused\s+2\s+SPX", listed)

    bad = tmp_path / "bad.yaml"
    bad.write_text(shown.replace("max_position_pct: 20.0", "max_position_pct: 500")
                   .replace("entry_type: MKT", "entry_type: XYZ"))
    for args in (("validate", "-f", str(bad)), ("create", "-f", str(bad), "--name", "bad")):
        proc = tt(env, "strategies", *args, check=False)
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.splitlines() == [f"{bad}: risk.max_position_pct: Input should be less than or equal "
                                            "to 100", f"{bad}: orders.entry_type: Input should be 'MKT' or 'LMT'"]
    not_a_mapping = tmp_path / "list.yaml"
    not_a_mapping.write_text("- symbol: SPX\n")
    for path, message in ((tmp_path / "missing.yaml", "no such file"),  # more bad files: tests/unit/services
                          (not_a_mapping, "not a strategy: the document is a list, not a mapping")):
        proc = tt(env, "strategies", "validate", "-f", str(path), check=False)
        assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr
        assert proc.stderr.startswith(f"error: {path}: {message}"), proc.stderr
    proc = tt(env, "strategies", "edit", "other", "-f", str(good), check=False)
    assert proc.returncode == 2 and "the file is strategy 'swing', not 'other'" in proc.stderr
    proc = tt(env, "strategies", "create", "-f", str(as_json), check=False)
    assert proc.returncode == 2 and "no name: give --name NAME or a `name:` key" in proc.stderr


def test_run_through_a_pipe_prints_each_step_then_the_outcome_and_listings_fit_80_columns(cli_env):
    env = _narrow(cli_env)
    tt(env, "init")
    first = tt(env, "run", "demo").stdout.splitlines()
    assert [line.split()[0] for line in first[:len(STEPS)]] == STEPS
    assert all(len(line) <= WIDTH for line in first)
    lines = dict(zip(STEPS, first, strict=False))
    assert re.fullmatch(r"fetch_market_data\s+✓\s+\d+\.\d\d s\s+1,500 daily bars to 2005-01-03, \d+ weekly",
                        lines["fetch_market_data"])
    assert re.fullmatch(r"decide_signal\s+✓\s+\d+\.\d\d s\s+BUY 3/4 confirmations, R/R 2\.0", lines["decide_signal"])
    assert re.fullmatch(r"risk_check\s+✓\s+\d+\.\d\d s\s+approved 16 units, capped by max_position_pct",
                        lines["risk_check"])
    assert re.fullmatch(r"execution [0-9a-f]{8} succeeded in \d+\.\d\d s, market as of 2005-01-03 21:00",
                        first[len(STEPS)])
    short = first[len(STEPS)].split()[1]
    assert first[len(STEPS) + 1] == f"every step in full: tradetrail lineage {short}"
    again = tt(env, "lineage", short).stdout.splitlines()  # the short id names the execution
    assert [line.split()[0] for line in again[1:len(STEPS) + 1]] == STEPS
    for _ in range(2):  # the second session sells, the third fills the exit: orders of every kind, a closed trade
        tt(env, "run", "demo")

    orders = tt(env, "orders").stdout
    _fits(orders, ["CANCELLED", "FILLED", "target", "MKT"])
    assert re.search(r"\bentry\s+BUY 16\s+MKT\s+FILLED\s+16 @ 1,202\.68", orders)
    assert re.search(r"\btarget\s+SELL 16\s+LMT 1,237\.64\s+CANCELLED", orders)
    runs = tt(env, "runs", "--strategy", "demo").stdout
    _fits(runs, ["succeeded", "manual", "2005-01-04", "21:00"])
    ids = re.findall(r"^([0-9a-f]{8,})\s+succeeded", runs, re.MULTILINE)
    assert len(ids) == 3 and all(len(i) < 36 for i in ids)
    book = tt(env, "portfolio").stdout
    _fits(book, ["cash", "equity", "unrealized", "99,754.40"])
    assert "{" not in book and "'" not in book  # a table, not a Python dict
    assert re.search(r"^win rate\s+0\.0 %$", book, re.MULTILINE)
    assert re.search(r"^average loss\s+-245\.60$", book, re.MULTILINE)
    _fits(book, ["avg cost", "1,187.46"])  # its positions table (`positions` prints the same)
