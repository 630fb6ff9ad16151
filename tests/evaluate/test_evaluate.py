"""``digitnet.evaluate.evaluate`` and ``evaluate_model_dirs``: the public functions behind `digitnet evaluate` and
`digitnet ensemble`, which only print what these return."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from digitnet.cli import app
from digitnet.evaluate import evaluate
from digitnet.evaluate.ensemble import evaluate_model_dirs
from digitnet.saved_model import load_model
from digitnet.utils import DigitnetError

runner = CliRunner()


def test_evaluate_scores_a_model_dir_on_a_test_subset():
    metrics = evaluate(subset=300)
    assert metrics["model"] == str(load_model().path) and metrics["arch"] == "fastnet"
    assert metrics["num_samples"] == 300 and sum(map(sum, metrics["confusion"])) == 300
    assert metrics["accuracy"] > 0.97
    calibrated = evaluate("default", subset=300, calibrated=True)
    assert calibrated["accuracy"] == metrics["accuracy"] and calibrated["loss"] != metrics["loss"]


def test_the_evaluate_command_prints_what_evaluate_returns():
    result = runner.invoke(app, ["evaluate", "--json", "--subset", "300"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json.loads(json.dumps(evaluate(subset=300)))


def test_evaluate_model_dirs_and_the_ensemble_command_agree():
    report = evaluate_model_dirs(["default"], subset=200)
    assert [m["model"] for m in report["members"]] == [str(load_model().path)]
    assert report["num_samples"] == 200 and report["accuracy"] == report["members"][0]["accuracy"]
    result = runner.invoke(app, ["ensemble", "--models", "default", "--subset", "200", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["accuracy"] == report["accuracy"]
    with pytest.raises(DigitnetError, match="at least one model"):
        evaluate_model_dirs([])
