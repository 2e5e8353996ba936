"""Where every module of the one-way restructure went (issue #12), and a rewriter for code written before it.

``MOVES`` maps an old dotted module path to its new one; ``SYMBOL_MOVES`` names the few definitions that left
a module for another one (``App`` now lives below the engine, ``NotFound`` in the domain). ``rewrite`` turns
``import``/``from`` statements and ``"tradetrail.x.y"`` strings in the given files into the new paths, so a
branch that still imports the old ones can be brought over:

    python -m scripts.module_moves tradetrail/web/views/new_page.py tests/test_web_new_page.py

It is idempotent: a path that already names a new module is left alone. Run ruff's import sorter afterwards.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

MOVES: dict[str, str] = {
    # the composition root and the container the engine sees
    "tradetrail.services.app": "tradetrail.runtime.build",
    "tradetrail.services.startup": "tradetrail.runtime.startup",
    "tradetrail.services.health": "tradetrail.runtime.health",
    "tradetrail.services.failure_text": "tradetrail.db.failure_text",
    # the trading core, below the workflow
    "tradetrail.services.locks": "tradetrail.trading.locks",
    "tradetrail.services.orders": "tradetrail.trading.orders",
    "tradetrail.services.books": "tradetrail.trading.books",
    "tradetrail.services.reconcile": "tradetrail.trading.reconcile",
    "tradetrail.services.risk_inputs": "tradetrail.trading.risk_inputs",
    "tradetrail.services.trading_state": "tradetrail.trading.trading_state",
    "tradetrail.services.portfolio": "tradetrail.trading.portfolio",
    "tradetrail.services.trading_accounts": "tradetrail.trading.trading_accounts",
    # catalogue look-ups a run needs
    "tradetrail.services.symbols": "tradetrail.catalogue.symbols",
    "tradetrail.services.calendars": "tradetrail.catalogue.calendars",
    "tradetrail.services.replay": "tradetrail.catalogue.replay_clock",
    "tradetrail.services.prompts": "tradetrail.services.prompts.user_prompts",
    # use cases by capability
    "tradetrail.services.executions": "tradetrail.services.runs.executions",
    "tradetrail.services.run_now": "tradetrail.services.runs.run_now",
    "tradetrail.services.lineage": "tradetrail.services.runs.lineage",
    "tradetrail.services.execution_search": "tradetrail.services.runs.search",
    "tradetrail.services.execution_trail": "tradetrail.services.runs.trail",
    "tradetrail.services.artifacts": "tradetrail.services.runs.artifacts",
    "tradetrail.services.strategies": "tradetrail.services.strategies.configs",
    "tradetrail.services.strategy_names": "tradetrail.services.strategies.names",
    "tradetrail.services.strategy_versions": "tradetrail.services.strategies.versions",
    "tradetrail.services.strategy_drafts": "tradetrail.services.strategies.drafts",
    "tradetrail.services.strategy_overview": "tradetrail.services.strategies.overview",
    "tradetrail.services.prompt_diffs": "tradetrail.services.prompts.diffs",
    "tradetrail.services.accounts": "tradetrail.services.accounts.users",
    "tradetrail.services.bootstrap": "tradetrail.services.accounts.bootstrap",
    "tradetrail.services.account_overview": "tradetrail.services.trading.overview",
    "tradetrail.services.orders_query": "tradetrail.services.trading.order_lists",
    "tradetrail.services.broker_status": "tradetrail.services.trading.broker_status",
    "tradetrail.services.scheduler": "tradetrail.services.scheduling.scheduler",
    "tradetrail.services.embedded": "tradetrail.services.scheduling.embedded",
    "tradetrail.services.run_processes": "tradetrail.services.scheduling.run_processes",
    "tradetrail.services.sweep": "tradetrail.services.scheduling.sweep",
    # one meaning per name; adapters of one outside service in one package
    "tradetrail.workflow.replay": "tradetrail.workflow.rerun",
    "tradetrail.broker.ibkr_web": "tradetrail.ibkr.broker",
    "tradetrail.marketdata.ibkr": "tradetrail.ibkr.marketdata",
    "tradetrail.cli_errors": "tradetrail.cli.errors",
    # the HTTP process composes the API and the web UI, so neither face imports the other
    "tradetrail.api.app": "tradetrail.server.app",
}

# Definitions that moved to another module than the rest of theirs: old module -> {name: new module}.
SYMBOL_MOVES: dict[str, dict[str, str]] = {
    "tradetrail.services.app": {"App": "tradetrail.app_context", "ConfigurationError": "tradetrail.app_context"},
    "tradetrail.services.strategies": {"NotFound": "tradetrail.domain.errors"},
    "tradetrail.services.prompts": {name: "tradetrail.catalogue.prompt_store" for name in (
        "TemplateRef", "save_template", "latest_template", "latest_templates", "template_version",
        "seed_default_templates")},
    "tradetrail.marketdata.port": {"Contract": "tradetrail.domain.contract"},
}

_NEW = set(MOVES.values()) | {m for names in SYMBOL_MOVES.values() for m in names.values()}
_ROOT = Path(__file__).resolve().parent.parent


def _is_module(dotted: str) -> bool:
    """A module of the current tree (``tradetrail.services.accounts.cookies``): never an old path."""
    base = _ROOT.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()
_DOTTED = re.compile(r"\btradetrail(?:\.[A-Za-z_]\w*)+")


def _longest(name: str, table) -> str | None:
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in table:
            return ".".join(parts[:n])
    return None


def new_path(dotted: str) -> str:
    """``dotted`` (a module, or a module's attribute) under the new layout; unchanged if it did not move."""
    old, new = _longest(dotted, MOVES), _longest(dotted, _NEW)
    parts = dotted.split(".")
    current = next((".".join(parts[:n]) for n in range(len(parts), 0, -1) if _is_module(".".join(parts[:n]))), None)
    if current is not None and old is not None and len(current) > len(old):
        new = current if new is None or len(current) > len(new) else new
    if old is None or (new is not None and len(new) >= len(old)):
        old = _longest(dotted, SYMBOL_MOVES)
        if old is None or dotted[len(old) + 1:].split(".")[0] not in SYMBOL_MOVES[old]:
            return dotted
    rest = dotted[len(old) + 1:]
    first = rest.split(".")[0] if rest else ""
    target = SYMBOL_MOVES.get(old, {}).get(first) or MOVES.get(old, old)
    return f"{target}.{rest}" if rest else target


def _from_lines(node: ast.ImportFrom, indent: str) -> list[str]:
    """The statement(s) replacing one ``from tradetrail... import ...``, grouped by target module."""
    groups: dict[str, list[str]] = {}
    for alias in node.names:
        as_ = f" as {alias.asname}" if alias.asname else ""
        full = f"{node.module}.{alias.name}"
        if full in MOVES:  # a module imported from its package
            parent, leaf = MOVES[full].rsplit(".", 1)
            groups.setdefault(parent, []).append(leaf + (as_ or (f" as {alias.name}" if leaf != alias.name else "")))
            continue
        if any(n == full or n.startswith(full + ".") for n in _NEW) or (full not in MOVES and _is_module(full)):
            groups.setdefault(node.module, []).append(alias.name + as_)
            continue
        moved = SYMBOL_MOVES.get(node.module, {}).get(alias.name)
        module = moved or new_path(node.module)
        groups.setdefault(module, []).append(alias.name + as_)
    return [f"{indent}from {module} import {', '.join(names)}\n" for module, names in groups.items()]


def rewrite_text(text: str) -> str:
    """``text`` with imports and dotted strings pointing at the new modules."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return _DOTTED.sub(lambda m: new_path(m.group(0)), text)
    lines = text.splitlines(keepends=True)
    edits: list[tuple[int, int, list[str]]] = []
    handled: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            handled.update(range(node.lineno - 1, node.end_lineno))
        if isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").startswith("tradetrail"):
            indent = re.match(r"\s*", lines[node.lineno - 1]).group(0)
            replacement = _from_lines(node, indent)
            unchanged = f"{indent}from {node.module} import " + ", ".join(
                alias.name + (f" as {alias.asname}" if alias.asname else "") for alias in node.names) + "\n"
            if replacement != [unchanged]:  # moved: rewrite (a comment on the statement is not kept)
                edits.append((node.lineno - 1, node.end_lineno, replacement))
    lines = [line if i in handled and not isinstance(_node_at(tree, i), ast.Import)
             else _DOTTED.sub(lambda m: new_path(m.group(0)), line) for i, line in enumerate(lines)]
    for start, end, replacement in sorted(edits, reverse=True):
        lines[start:end] = replacement
    return "".join(lines)


def _node_at(tree: ast.AST, index: int) -> ast.AST | None:
    """The import statement covering line ``index`` (0-based), if any."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and node.lineno - 1 <= index < node.end_lineno:
            return node
    return None


def rewrite(paths: list[str | Path]) -> list[Path]:
    """Rewrite the given files in place; returns the ones that changed."""
    changed = []
    for p in map(Path, paths):
        text = p.read_text()
        new = rewrite_text(text)
        if new != text:
            p.write_text(new)
            changed.append(p)
    return changed


if __name__ == "__main__":
    for path in rewrite(sys.argv[1:]):
        print(path)
