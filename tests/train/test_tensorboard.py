"""``digitnet train --tensorboard``: what lands in RUN_DIR/tensorboard, read back as TensorBoard reads it."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from digitnet import train  # noqa: E402
from digitnet.evaluate.report import ReportCallback, config_callbacks  # noqa: E402
from digitnet.train import TrainConfig, build_run  # noqa: E402
from digitnet.train.engine import default_callbacks  # noqa: E402
from digitnet.train.tensorboard import TensorBoardCallback  # noqa: E402

EPOCHS = 2


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("tb") / "mlp"
    cfg = TrainConfig(arch="mlp", epochs=EPOCHS, train_subset=2000, val_size=1000, test_subset=500, threads=1,
                      tensorboard=True, plots=False, out=str(run_dir))
    result = train(cfg, quiet=True)
    events = EventAccumulator(str(run_dir / "tensorboard"),
                              size_guidance={"scalars": 0, "histograms": 0, "images": 0, "tensors": 0})
    events.Reload()
    return result, events


def test_scalars_per_epoch(run):
    result, events = run
    tags = events.Tags()["scalars"]
    for tag in ("loss/train", "loss/val", "accuracy/train", "accuracy/val", "learning_rate"):
        assert tag in tags
        assert [s.step for s in events.Scalars(tag)] == list(range(1, EPOCHS + 1))
    train_loss = [s.value for s in events.Scalars("loss/train")]
    assert train_loss == pytest.approx([row["train_loss"] for row in result.history], rel=1e-5)
    assert events.Scalars("final/test_accuracy")[0].value == pytest.approx(result.metrics["test_accuracy"])


def test_weight_and_gradient_histograms_every_epoch(run):
    result, events = run
    histograms = events.Tags()["histograms"]
    for name, _ in result.model.named_parameters():
        for kind in ("weights", "gradients"):
            tag = f"{kind}/{name}"
            assert tag in histograms
            assert [h.step for h in events.Histograms(tag)] == list(range(1, EPOCHS + 1))
    # Real gradients of the last step, not zeros: their spread is positive.
    first = next(iter(dict(result.model.named_parameters())))
    assert events.Histograms(f"gradients/{first}")[-1].histogram_value.max > 0


def test_graph_and_misclassified_images(run):
    result, events = run
    assert events.Tags()["graph"]
    images = events.Tags()["images"]
    assert "misclassified/test" in images and "misclassified/most_confident" in images
    grid = events.Images("misclassified/test")[0]
    assert grid.width > 28 and grid.height > 28
    assert not (result.run_dir / "report.html").exists()  # plots=False writes no report


def test_callbacks_follow_the_config(mnist):
    assert config_callbacks(TrainConfig(plots=False)) == []
    assert [type(x) for x in config_callbacks(TrainConfig())] == [ReportCallback]
    with_tb = config_callbacks(TrainConfig(tensorboard=True))
    assert [type(x) for x in with_tb] == [TensorBoardCallback, ReportCallback]
    assert with_tb[0].error_gallery is not None  # the labelled gallery comes from the evaluate layer

    run = build_run(TrainConfig(arch="mlp", tensorboard=True, train_subset=64, test_subset=64), mnist,
                    torch.device("cpu"))
    names = [type(x).__name__ for x in default_callbacks(run)]
    # Early stopping first (it sets the best epoch), the checkpoint last (it saves every other callback's state).
    assert names == ["EarlyStopping", "HistoryCSV", "ConsoleLog", "TensorBoardCallback", "Checkpoints"]
    # A TensorBoard callback brought by the caller replaces ours, placed among the extra callbacks.
    names = [type(x).__name__ for x in default_callbacks(run, with_tb)]
    assert names == ["EarlyStopping", "HistoryCSV", "ConsoleLog", "TensorBoardCallback", "ReportCallback",
                     "Checkpoints"]
