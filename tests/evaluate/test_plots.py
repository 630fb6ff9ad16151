"""Plot functions on synthetic data: what they draw, and the corner cases of real runs."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from digitnet.evaluate.plots import WRONG, plot_compare, plot_confusion, plot_curves, plot_errors, plot_samples


def _history(epochs: int, val: bool = True, test: bool = False) -> list[dict]:
    rows = []
    for e in range(1, epochs + 1):
        row = {"epoch": e, "train_loss": 1 / e, "train_accuracy": 1 - 0.1 / e, "lr": 0.1 / e,
               "val_loss": 1.2 / e if val else None, "val_accuracy": 1 - 0.12 / e if val else None}
        if test:
            row["test_accuracy"] = 1 - 0.13 / e
        rows.append(row)
    return rows


def _png_size(plot) -> tuple[int, int]:
    with Image.open(io.BytesIO(plot.png())) as image:
        return image.size


def test_curves_without_validation_plot_train_only_and_test_when_tracked():
    plot = plot_curves(_history(3, val=False, test=True))
    ax_loss, ax_acc, _ = plot.figure.axes
    assert [line.get_label() for line in ax_loss.lines] == ["train"]
    assert [line.get_label() for line in ax_acc.lines] == ["train", "test"]
    assert set(plot.data) == {"train_loss", "train_accuracy", "test_accuracy", "lr"}
    assert all(len(epochs) == 3 for epochs, _ in plot.data.values())


def test_curves_of_a_single_epoch_still_show_a_point():
    plot = plot_curves(_history(1))
    for ax in plot.figure.axes:
        for line in ax.lines:
            assert len(line.get_xdata()) == 1 and line.get_marker() not in (None, "", "None")
    assert _png_size(plot)[0] > 800


def test_learning_rate_axis_goes_log_when_the_schedule_spans_decades():
    history = _history(3)
    history[-1]["lr"] = 1e-5
    assert plot_curves(history).figure.axes[2].get_yscale() == "log"
    assert plot_curves(_history(3)).figure.axes[2].get_yscale() == "linear"


def test_confusion_is_normalized_per_true_class_and_skips_empty_cells():
    counts = np.diag([50] * 10)
    counts[3, 5] = 7
    plot = plot_confusion(counts)
    np.testing.assert_allclose(plot.data["share"][3, 5], 7 / 57)
    texts = plot.figure.axes[0].texts
    assert len(texts) == 11 and sum(int(t.get_text()) for t in texts) == counts.sum()
    off_diagonal = [t for t in texts if t.get_text() == "7"]
    assert off_diagonal[0].get_position() == (5, 3)  # column = predicted, row = true


def test_errors_without_mistakes_say_so():
    labels = np.arange(10)
    probabilities = np.eye(10)
    plot = plot_errors(np.zeros((10, 28, 28), np.uint8), labels, probabilities)
    assert len(plot.data["indices"]) == 0
    assert "No mistakes" in plot.figure.axes[0].texts[0].get_text()
    plot.png()


def test_samples_mark_wrong_predictions_in_red():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (200, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 200)
    predicted = labels.copy()
    predicted[::7] = (predicted[::7] + 1) % 10
    plot = plot_samples(images, labels, predicted, count=40)
    texts = plot.figure.axes[0].texts
    assert len(texts) == 40 == len(plot.data["indices"])
    for text, wrong, true, pred in zip(texts, plot.data["wrong"], plot.data["true"], plot.data["predicted"],
                                       strict=True):
        assert text.get_text() == f"{true} → {pred}"
        assert (text.get_color() == WRONG) == bool(wrong) == (true != pred)
    assert plot.data["wrong"].any()
    # The montage shows exactly the sampled digits, white on black, in order.
    montage = np.ma.filled(plot.figure.axes[0].images[0].get_array().astype(float), np.nan)
    tiles = ~np.isnan(montage)
    top, left = np.flatnonzero(tiles.any(1))[0], np.flatnonzero(tiles.any(0))[0]
    assert np.array_equal(montage[top:top + 28, left:left + 28], images[plot.data["indices"][0]])
    assert tiles.sum() == 40 * 28 * 28


def test_compare_plot_has_bars_and_a_log_time_axis():
    rows = [{"arch": "mlp", "test_accuracy": 0.97, "train_seconds": 3.0, "epochs": 1},
            {"arch": "lenet5", "test_accuracy": 0.985, "train_seconds": 12.0, "epochs": 1}]
    plot = plot_compare(rows)
    ax_bar, ax_time = plot.figure.axes
    assert [p.get_height() for p in ax_bar.patches] == [97.0, 98.5]
    assert ax_time.get_xscale() == "log"
    assert ax_bar.get_ylabel() and ax_time.get_xlabel().startswith("training time")
