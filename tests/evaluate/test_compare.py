"""``digitnet compare``: several architectures, one budget, one table."""

from __future__ import annotations

import csv

import pytest
from PIL import Image
from typer.testing import CliRunner

from digitnet.evaluate.compare import FIELDS, parse_archs
from digitnet.models import count_parameters, create_model
from digitnet.utils import DigitnetError


def test_parse_archs_checks_names_before_training():
    assert parse_archs(" mlp, lenet5 ,mlp,") == ["mlp", "lenet5"]
    with pytest.raises(DigitnetError, match="unknown architecture 'lenet6'"):
        parse_archs("mlp,lenet6")
    with pytest.raises(DigitnetError, match="empty"):
        parse_archs(" , ")
    with pytest.raises(DigitnetError, match="'ensemble' is made from trained models"):
        parse_archs("fastnet,ensemble")  # compare and bench train what they list: refused before any training


def test_compare_trains_measures_and_reuses(tmp_path):
    from digitnet.cli import app

    runs, out = tmp_path / "runs", tmp_path / "out"
    args = ["compare", "--archs", "mlp,lenet5", "--epochs", "1", "--train-subset", "2000", "--runs-dir", str(runs),
            "--out", str(out), "--threads", "1", "--quiet"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output

    with open(out / "compare.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["arch"] for r in rows] == ["mlp", "lenet5"]
    assert list(rows[0]) == FIELDS
    for row in rows:
        assert int(row["parameters"]) == count_parameters(create_model(row["arch"]))
        assert int(row["epochs"]) == 1
        assert 0 < float(row["train_seconds"]) < 120
        assert 0.5 < float(row["test_accuracy"]) <= 1.0  # far above chance (0.1) after 2,000 images
        assert 0 < float(row["test_loss"]) < 2.3  # below the loss of a uniform guess, ln 10
        assert float(row["images_per_second"]) > 100
    markdown = (out / "compare.md").read_text()
    assert "| arch | parameters |" in markdown and "| mlp | 235,146 | 1 |" in markdown
    assert "10,000 test images" in markdown and "batch 1024" in markdown
    with Image.open(out / "compare.png") as image:
        assert image.format == "PNG" and image.size[0] > 800
    assert "digitnet compare" in result.output and "lenet5" in result.output  # the Rich table

    # Same settings again: the finished runs are reused, not retrained.
    weights = runs / "mlp" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert weights.stat().st_mtime_ns == stamp
    with open(out / "compare.csv", newline="") as handle:
        reused = list(csv.DictReader(handle))
    assert [r["test_accuracy"] for r in reused] == [r["test_accuracy"] for r in rows]
    assert [r["train_seconds"] for r in reused] == [r["train_seconds"] for r in rows]


def _compare(mnist, runs, epochs: int, **kwargs) -> tuple[list[dict], str]:
    import io

    from rich.console import Console

    from digitnet.evaluate.compare import compare_models

    buffer = io.StringIO()
    rows = compare_models(["mlp"], epochs=epochs, train_subset=512, test_subset=256, runs_dir=runs, threads=1,
                          mnist=mnist, console=Console(file=buffer, width=300), **kwargs)
    return rows, buffer.getvalue()


def test_compare_replaces_a_run_with_other_settings_saying_so(mnist, tmp_path):
    runs = tmp_path / "runs"
    _compare(mnist, runs, epochs=1)
    rows, said = _compare(mnist, runs, epochs=2)
    assert "mlp: replacing a finished run (mlp, 1/1 epochs, test accuracy" in said and "(other settings)" in said
    assert rows[0]["epochs"] == 2
    _, said = _compare(mnist, runs, epochs=2, reuse=False)
    assert "mlp: replacing a finished run (mlp, 2/2 epochs" in said and "(--no-reuse)" in said


def test_compare_continues_an_interrupted_run_with_the_same_settings(mnist, tmp_path):
    from digitnet.train import Callback, TrainConfig, train
    from digitnet.train.checkpoint import load_checkpoint

    class Killed(BaseException):
        pass

    class KillInEpoch2(Callback):
        def on_epoch_start(self, fit):
            if fit.epoch == 2:
                raise Killed

    runs = tmp_path / "runs"
    cfg = TrainConfig(arch="mlp", epochs=2, train_subset=512, test_subset=256, threads=1, out=str(runs / "mlp"),
                      plots=False)
    with pytest.raises(Killed):
        train(cfg, mnist=mnist, quiet=True, callbacks=[KillInEpoch2()])
    first_epoch = load_checkpoint(runs / "mlp" / "last.pt")["history"][0]
    rows, said = _compare(mnist, runs, epochs=2)
    assert "mlp: continuing an interrupted run (mlp, 1/2 epochs)" in said
    assert rows[0]["epochs"] == 2
    assert load_checkpoint(runs / "mlp" / "last.pt")["history"][0] == first_epoch  # kept, not retrained
