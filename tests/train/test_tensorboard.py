"""``digitnet train --tensorboard``: what lands in RUN_DIR/tensorboard, read back as TensorBoard reads it."""

from __future__ import annotations

import pytest

pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from digitnet.evaluate.report import ReportLogger  # noqa: E402
from digitnet.train import TrainConfig, train  # noqa: E402
from digitnet.train.engine import make_loggers  # noqa: E402
from digitnet.train.tensorboard import TensorBoardLogger  # noqa: E402

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


def test_make_loggers_follows_the_config(tmp_path):
    from digitnet.models import create_model

    model = create_model("mlp")
    assert make_loggers(TrainConfig(plots=False), tmp_path, model, None) == []
    assert [type(x) for x in make_loggers(TrainConfig(), tmp_path, model, None)] == [ReportLogger]
    loggers = make_loggers(TrainConfig(tensorboard=True), tmp_path, model, None)
    assert [type(x) for x in loggers] == [TensorBoardLogger, ReportLogger]
    loggers[0].writer.close()
