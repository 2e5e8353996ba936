"""The command line's one-line errors print their message as text: rich markup in it is not interpreted."""

from __future__ import annotations

import pytest
import typer

from tradetrail.cli.common import _fail


def test_brackets_in_an_error_message_are_printed_as_written(capsys):
    with pytest.raises(typer.Exit) as ended:
        _fail("prices[bold].yaml: no such file; see [red]this[/red]")
    assert ended.value.exit_code == 2
    err = capsys.readouterr().err
    assert "prices[bold].yaml: no such file; see [red]this[/red]" in err  # was "prices.yaml: ... see this"
    assert err.count("\n") == 1
