import errno
import inspect
import json
import re
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import click
import pytest
import typer
import typer.main
from typer.testing import CliRunner

from digitnet.cli import app, main

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


def test_every_command_is_registered_by_the_concern_that_owns_it():
    from digitnet import cli

    owners = {}
    for module in cli.COMMAND_MODULES:
        one = typer.Typer()
        module.register(one)
        owners.update({name: module.__name__ for name in typer.main.get_group(one).commands})
    assert owners == {
        "train": "digitnet.cli.train", "evaluate": "digitnet.cli.evaluate",
        "ensemble": "digitnet.cli.evaluate", "report": "digitnet.cli.evaluate",
        "compare": "digitnet.cli.evaluate", "explain": "digitnet.cli.evaluate",
        "models": "digitnet.cli.models", "summary": "digitnet.cli.models",
        "predict": "digitnet.cli.pictures", "read": "digitnet.cli.pictures",
        "serve": "digitnet.cli.serve", "export": "digitnet.cli.serve", "bench": "digitnet.cli.bench",
    }
    assert list(typer.main.get_group(app).commands) == list(owners)  # cli.py adds nothing of its own


def all_params() -> list[tuple[str, click.Parameter]]:
    """Every (command name, parameter) of the `digitnet` app, read from the click objects Typer builds."""
    group = typer.main.get_command(app)
    return [(name, param) for name, command in group.commands.items() for param in command.params]


def long_names(param: click.Parameter) -> list[str]:
    return [opt for opt in (*param.opts, *param.secondary_opts) if opt.startswith("--")]


def test_every_option_of_every_command_has_help():
    params = all_params()
    assert len(params) > 100 and {name for name, _ in params} >= {"train", "evaluate", "serve", "bench", "ensemble"}
    undocumented = [f"digitnet {name} {param.name}" for name, param in params if not (param.help or "").strip()]
    assert undocumented == []


def test_the_documentation_check_catches_an_option_without_help(monkeypatch):
    # The check above reads the real click objects: an option added without help would show up there.
    def train(epochs: int = typer.Option(1), quiet: bool = typer.Option(False, help="No output.")) -> None:
        """A command with one undocumented option."""

    bare = typer.Typer()
    bare.command()(train)
    monkeypatch.setattr(typer.main, "get_command", lambda _app: typer.main.get_group(bare))
    assert [(n, p.name) for n, p in all_params() if not p.help] == [("train", "epochs")]


def test_readme_mentions_every_train_option():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    options = [names for name, param in all_params() if name == "train" for names in [long_names(param)] if names]
    assert len(options) >= 36
    missing = [names for names in options if not any(re.search(re.escape(o) + r"(?![\w-])", readme) for o in names)]
    assert missing == []


def test_option_defaults_are_the_api_defaults():
    # `digitnet train` and `digitnet bench` take their defaults from TrainConfig and BenchOptions; `compare` spells
    # compare_models' out (see evaluate/commands.py): all must agree with the Python API.
    from digitnet.bench.run import BenchOptions
    from digitnet.evaluate.compare import DEFAULT_ARCHS, compare_models
    from digitnet.train import TrainConfig

    def cli_defaults(command: str) -> dict:
        return {param.name: param.default for name, param in all_params() if name == command}

    train, bench, compare = cli_defaults("train"), cli_defaults("bench"), cli_defaults("compare")
    config, options = asdict(TrainConfig()), asdict(BenchOptions())
    renamed = {"compile_model": "compile"}
    shared = [(renamed.get(k, k), v) for k, v in train.items() if renamed.get(k, k) in config]
    assert len(shared) >= 30 and all(config[k] == (str(v) if k == "out" and v else v) for k, v in shared)
    shared = [(renamed.get(k, k), v) for k, v in bench.items() if renamed.get(k, k) in options and k != "archs"]
    assert len(shared) >= 18 and all(options[k] == v for k, v in shared)
    signature = inspect.signature(compare_models).parameters
    assert compare["archs"] == ",".join(DEFAULT_ARCHS)
    assert str(compare["runs_dir"]) == signature["runs_dir"].default
    assert all(compare[k] == signature[k].default for k in ("epochs", "reuse", "seed", "device"))


@pytest.mark.parametrize(("argv", "missing", "extra"), [
    (["serve"], "uvicorn", "serve"),
    (["serve"], "fastapi", "serve"),
    (["export", "--out", "model.onnx"], "onnx", "export"),
])
def test_a_missing_extra_is_one_line_naming_it(argv, missing, extra, monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, missing, None)  # makes `import <missing>` raise ImportError
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["digitnet", *argv])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"pip install 'digitnet[{extra}]'" in err and "Traceback" not in err, err


def test_errors_are_one_line_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "digitnet", "evaluate", "--model", str(tmp_path / "missing")],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert "no such model directory" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "digitnet", "train", "--arch", "lenet7", "--epochs", "1"],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "unknown architecture 'lenet7'" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(("error", "line"), [
    (OSError(errno.ENOSPC, "No space left on device", "out/bench.json"),
     "error: cannot write out/bench.json: no space left on the device\n"),
    (PermissionError(errno.EACCES, "Permission denied", "/models/x.onnx"),
     "error: cannot write /models/x.onnx: permission denied\n"),
    (IsADirectoryError(errno.EISDIR, "Is a directory", "runs/x"), "error: runs/x: Is a directory\n"),
])
def test_an_os_error_naming_a_file_is_one_line_in_every_command(error, line, monkeypatch, capsys):
    import digitnet.cli

    def command():
        raise error

    monkeypatch.setattr(digitnet.cli, "app", command)
    with pytest.raises(SystemExit) as exit_info:
        digitnet.cli.main()
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == line
