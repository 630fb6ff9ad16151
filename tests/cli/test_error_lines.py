"""An error printed where stderr is not a terminal (a pipe, a file, a test's capture) is one line per message,
however long: Rich would wrap it at 80 columns, and a script that greps it would find half."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from digitnet.cli import app, main

LONG_OPTION = "--" + "no-such-option-" * 6  # over 80 characters with Click's message around it


@pytest.fixture(autouse=True)
def eighty_columns(monkeypatch):
    """Rich's width off a terminal, whatever the shell running the tests says."""
    monkeypatch.setenv("COLUMNS", "80")


def line_with(text: str, output: str) -> str:
    """The one line of ``output`` that holds all of ``text``."""
    lines = [line for line in output.splitlines() if text in line]
    assert len(lines) == 1, output
    return lines[0]


@pytest.mark.parametrize(("args", "message"), [
    # Click's own message (an option it does not know), and ours raised as a usage error by a command.
    (["predict", LONG_OPTION, "x.png"], f"No such option: {LONG_OPTION}"),
    (["ensemble", "--models", "a,b", "--out", "x", "--tta"],
     "a saved ensemble reads each image once, on the whole test set: leave out --tta and --subset"),
])
def test_a_usage_error_is_one_line(args, message):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert len(message) > 80
    assert line_with(message, result.output).startswith("Error: ")
    assert "╭" not in result.output and "│" not in result.output  # no box around it
    assert "Usage: digitnet" in result.output  # the usage line is still shown


def test_a_usage_error_is_one_line_through_a_pipe():
    # The installed entry point, stderr a pipe: the case a script sees.
    proc = subprocess.run([sys.executable, "-m", "digitnet", "predict", LONG_OPTION, "x.png"],
                          capture_output=True, text=True)  # COLUMNS=80 from the fixture
    assert proc.returncode == 2 and proc.stdout == ""
    assert line_with(f"No such option: {LONG_OPTION}", proc.stderr).startswith("Error: ")


def test_our_own_errors_are_one_line(monkeypatch, capsys, tmp_path):
    reader = "r" * 90
    monkeypatch.setattr(sys, "argv", ["digitnet", "read", "--reader", reader, "x.png"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --reader ") and reader in err, err

    missing = tmp_path / ("m" * 90)
    monkeypatch.setattr(sys, "argv", ["digitnet", "evaluate", "--model", str(missing)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and err.count("\n") == 1 and str(missing) in err, err


def test_exit_codes_are_click_s_off_a_terminal():
    runner = CliRunner()
    bare = runner.invoke(app, [])
    assert bare.exit_code == 2 and "Usage: digitnet" in bare.output and "Error" not in bare.output
    assert runner.invoke(app, ["read", "--reader", "bogus", "x.png"]).exit_code == 1  # typer.Exit(1)
    assert runner.invoke(app, ["models", "--json"]).exit_code == 0
