"""``digitnet summary`` of every architecture in the zoo, the line recognizer's included."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from digitnet.cli import app
from digitnet.models.crnn import ALPHABET
from digitnet.models.registry import count_parameters, create_model
from digitnet.models.summary import summarize


def test_the_line_recognizers_summary_gives_its_sizes_in_terms_of_the_line_width():
    info = summarize("crnn-digits")
    assert info["task"] == "lines" and info["input_shape"] == [None, 1, 32, "W"]
    assert info["input_contract"]["normalization"]["name"] == "unit"
    assert info["total_params"] == count_parameters(create_model("crnn-digits"))
    assert sum(layer["params"] for layer in info["layers"]) == info["total_params"]
    assert info["layers"][0]["output_shape"] == [None, 16, 32, "W"]
    lstm = next(layer for layer in info["layers"] if "LSTM" in layer["name"])
    assert lstm["output_shape"] == [None, "W/4", 128]  # its output, not its (h, c)
    assert info["layers"][-1]["output_shape"] == [None, "W/4", len(ALPHABET) + 1]


def test_the_summary_command_shows_the_line_recognizer():
    result = CliRunner().invoke(app, ["summary", "crnn-digits"])
    assert result.exit_code == 0, result.output
    assert "(None, W/4, 15)" in result.stdout and "Input: (None, 1, 32, W) line" in result.stdout
    result = CliRunner().invoke(app, ["summary", "crnn-digits", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["input_shape"] == [None, 1, 32, "W"]


def test_a_digit_classifiers_summary_is_as_before():
    info = summarize("lenet5")
    assert info["task"] == "digits" and info["input_shape"] == [None, 1, 32, 32]
    result = CliRunner().invoke(app, ["summary", "lenet5"])
    assert result.exit_code == 0, result.output
    assert "(None, 6, 28, 28)" in result.stdout and "Input: (None, 1, 32, 32)" in result.stdout
