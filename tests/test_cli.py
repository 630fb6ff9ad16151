import json
import subprocess
import sys

from typer.testing import CliRunner

from digitnet.cli import app

runner = CliRunner()


def test_train_then_evaluate_json(tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", "--arch", "mlp", "--epochs", "1", "--train-subset", "3000", "--val-size",
                                 "1000", "--out", str(out), "--quiet", "--json", "--no-plots"])
    assert result.exit_code == 0, result.output
    trained = json.loads(result.stdout.strip().splitlines()[-1])
    assert trained["run_dir"] == str(out) and 0.5 < trained["test_accuracy"] <= 1

    result = runner.invoke(app, ["evaluate", "--model", str(out), "--json", "--subset", "2000"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert {"accuracy", "loss", "per_class", "confusion"} <= set(metrics)
    assert 0 <= metrics["accuracy"] <= 1 and metrics["loss"] > 0
    assert sum(map(sum, metrics["confusion"])) == 2000
    assert sum(row["support"] for row in metrics["per_class"]) == 2000
    assert metrics["accuracy"] == sum(metrics["confusion"][d][d] for d in range(10)) / 2000

    result = runner.invoke(app, ["evaluate", "--model", str(out), "--subset", "500"])
    assert "Confusion matrix" in result.stdout and "precision" in result.stdout


def test_evaluate_defaults_to_the_bundled_model():
    result = runner.invoke(app, ["evaluate", "--json", "--subset", "1000"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["accuracy"] > 0.98


def test_models_and_summary():
    result = runner.invoke(app, ["models", "--json"])
    names = [m["name"] for m in json.loads(result.stdout)]
    assert names[:6] == ["mlp", "lenet5", "lenet5-bn", "lenet-500", "cnn-bn", "fastnet"]
    result = runner.invoke(app, ["summary", "cnn-bn"])
    assert result.exit_code == 0 and "Total params: 1,886,394" in result.stdout


def test_every_train_option_is_documented():
    result = runner.invoke(app, ["train", "--help"], terminal_width=200)
    for option in ["--arch", "--epochs", "--batch-size", "--lr", "--optimizer", "--schedule", "--val-size", "--seed",
                   "--out", "--resume", "--early-stopping", "--label-smoothing", "--device", "--augment"]:
        assert option in result.stdout


def test_errors_are_one_line_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "digitnet", "evaluate", "--model", str(tmp_path / "missing")],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert "no such model directory" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "digitnet", "train", "--arch", "lenet7", "--epochs", "1"],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "unknown architecture 'lenet7'" in proc.stderr
    assert "Traceback" not in proc.stderr
