"""`digitnet train` with a bad option: one line naming it, exit 1, before any run folder or any work."""

from __future__ import annotations

import json
import sys

import pytest

from digitnet.cli import main

TINY = ["--arch", "mlp", "--epochs", "1", "--train-subset", "256", "--val-size", "256", "--no-plots", "--quiet"]


def _train(argv: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["digitnet", "train", *argv])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


@pytest.mark.parametrize(("argv", "option"), [
    (["--batch-size", "0"], "--batch-size"),
    (["--batch-size", "-4"], "--batch-size"),
    (["--lr", "-1"], "--lr"),
    (["--lr", "nan"], "--lr"),
    (["--lr", "inf"], "--lr"),
    (["--momentum", "-1"], "--momentum"),
    (["--width", "-3"], "--width"),
    (["--width", "0"], "--width"),  # was ignored: the architecture's default width trained
    (["--arch", "mlp", "--width", "8"], "--width"),
    (["--label-smoothing", "2"], "--label-smoothing"),
    (["--label-smoothing", "-1"], "--label-smoothing"),
    (["--threads", "-1"], "--threads"),
    (["--threads", "0"], "--threads"),
    (["--device", "bogus"], "--device bogus"),
    (["--device", "mps"], "--device mps"),
    (["--augment", "bogus"], "--augment"),
    (["--step-size", "0", "--schedule", "step"], "--step-size"),
    (["--train-subset", "-5"], "--train-subset"),
    (["--epochs", "0"], "--epochs"),
    (["--epochs", "-1"], "--epochs"),
    (["--warmup", "2"], "--warmup"),
    (["--warmup", "-1"], "--warmup"),
    (["--early-stopping", "0"], "--early-stopping"),
    (["--early-stopping", "-1"], "--early-stopping"),
    (["--plateau-patience", "-1"], "--plateau-patience"),
    (["--weight-decay", "-1"], "--weight-decay"),
    (["--l2", "nan"], "--l2"),
])
def test_a_bad_option_is_one_line_before_the_run_folder(argv, option, monkeypatch, capsys, tmp_path):
    out = tmp_path / "run"
    code, stdout, err = _train([*argv, "--out", str(out)], monkeypatch, capsys)
    assert code == 1 and stdout == ""
    assert err.startswith(f"error: {option}") and err.count("\n") == 1 and "Traceback" not in err, err
    assert not out.exists()


def test_a_diverged_run_saves_no_model_and_prints_no_nan(monkeypatch, capsys, tmp_path):
    out = tmp_path / "run"
    code, stdout, err = _train([*TINY, "--lr", "1e30", "--json", "--out", str(out)], monkeypatch, capsys)
    assert code == 1 and stdout == ""  # no {"test_loss": NaN, ...}
    assert err.startswith("error: the run diverged in epoch 1") and err.count("\n") == 1, err
    assert "lower --lr (this run's: 1e+30)" in err
    assert not (out / "model.json").exists() and not (out / "model.safetensors").exists()
    assert not (out / "last.pt").exists() and not (out / ".lock").exists()
    # Nothing of it stands in the way of the run again, with a sane --lr.
    code, stdout, err = _train([*TINY, "--json", "--out", str(out)], monkeypatch, capsys)
    assert code is None or code == 0, err
    assert json.loads(stdout)["epochs_run"] == 1
