"""The run report written after training and rebuilt by ``digitnet report``."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from digitnet.evaluate.plots import plot_confusion, plot_curves, plot_errors
from digitnet.evaluate.report import PLOT_FILES, REPORT_FILE, read_history
from digitnet.train.metrics import predict_logits
from digitnet.utils import DigitnetError

IMG_PATTERN = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def test_training_writes_every_plot_and_the_report(tiny_run):
    for name in [*PLOT_FILES.values(), REPORT_FILE]:
        assert (tiny_run.run_dir / name).is_file(), name
    for name in PLOT_FILES.values():
        with Image.open(tiny_run.run_dir / name) as image:
            image.verify()
            assert image.format == "PNG" and min(image.size) > 200, name


def test_report_html_embeds_each_plot(tiny_run):
    page = (tiny_run.run_dir / REPORT_FILE).read_text(encoding="utf-8")
    embedded = [base64.b64decode(match) for match in IMG_PATTERN.findall(page)]
    # Self-contained: every image is inline, byte for byte the PNG next to the page; nothing is linked.
    assert sorted(embedded) == sorted((tiny_run.run_dir / name).read_bytes() for name in PLOT_FILES.values())
    for blob in embedded:
        with Image.open(io.BytesIO(blob)) as image:
            image.load()
    assert 'src="http' not in page and "<link" not in page
    assert "lenet5" in page and "Per class" in page and "Learning curves" in page
    assert f"{tiny_run.metrics['test_accuracy']:.2%}" in page
    assert page.count("<tr><td>") >= 10  # the per-class table: one row per digit
    assert '<th class="l">train_subset</th><td class="l">2000</td>' in page  # the configuration


def test_curves_have_one_point_per_epoch(tiny_run):
    history = read_history(tiny_run.run_dir)
    assert [row["epoch"] for row in history] == [1, 2]
    plot = plot_curves(history)
    ax_loss, ax_acc, ax_lr = plot.figure.axes
    assert [line.get_label() for line in ax_loss.lines] == ["train", "val"]
    assert [line.get_label() for line in ax_acc.lines] == ["train", "val"]
    for ax in (ax_loss, ax_acc, ax_lr):
        assert ax.get_xlabel() == "epoch" and ax.get_ylabel() and ax.get_title()
        for line in ax.lines:
            assert list(line.get_xdata()) == [1, 2]
    np.testing.assert_allclose(ax_loss.lines[0].get_ydata(), [row["train_loss"] for row in history])
    np.testing.assert_allclose(ax_acc.lines[1].get_ydata(), [100 * row["val_accuracy"] for row in history])
    np.testing.assert_allclose(ax_lr.lines[0].get_ydata(), [row["lr"] for row in history])


@pytest.fixture(scope="module")
def predictions(tiny_run, mnist):
    """The tiny model's test images, labels and probabilities."""
    n = tiny_run.metrics["test_samples"]
    images, labels = mnist.test_images[:n], mnist.test_labels[:n].astype(np.int64)
    logits = predict_logits(tiny_run.model, torch.from_numpy(images), tiny_run.model.spec)
    return images, labels, torch.softmax(logits, 1).numpy()


def test_confusion_counts_sum_to_the_test_size(tiny_run):
    size = tiny_run.metrics["test_samples"]
    assert size == 1000
    confusion = json.loads((tiny_run.run_dir / "metrics.json").read_text())["confusion"]
    plot = plot_confusion(confusion)
    assert plot.data["counts"].sum() == size
    # The numbers drawn in the cells are the counts: they too add up to the test set.
    drawn = [int(t.get_text()) for t in plot.figure.axes[0].texts]
    assert sum(drawn) == size
    np.testing.assert_allclose(plot.data["share"].sum(1)[plot.data["counts"].sum(1) > 0], 1.0)
    assert "1,000 test digits" in plot.figure.axes[0].get_title()


def test_errors_gallery_shows_only_wrong_predictions(predictions):
    images, labels, probabilities = predictions
    plot = plot_errors(images, labels, probabilities, limit=20)
    wrong = int((probabilities.argmax(1) != labels).sum())
    assert wrong > 0, "a 2-epoch LeNet on 2,000 images makes mistakes on 1,000 test digits"
    assert plot.data["errors"] == wrong and len(plot.data["indices"]) == min(20, wrong)
    assert (plot.data["true"] != plot.data["predicted"]).all()
    assert (labels[plot.data["indices"]] != probabilities[plot.data["indices"]].argmax(1)).all()
    assert (np.diff(plot.data["confidence"]) <= 0).all()  # most confident first
    # What is drawn: one "true → predicted" label per shown digit, each naming two different digits.
    labels_drawn = [t.get_text() for t in plot.figure.axes[0].texts]
    assert len(labels_drawn) == len(plot.data["indices"])
    for text in labels_drawn:
        true, predicted = text.split("\n")[0].split(" → ")
        assert true != predicted


def test_report_command_rebuilds_from_the_run_directory(tiny_run, tmp_path):
    from digitnet.cli import app

    run_dir = tmp_path / "copy"
    shutil.copytree(tiny_run.run_dir, run_dir)
    for name in [*PLOT_FILES.values(), REPORT_FILE]:
        (run_dir / name).unlink()
    result = CliRunner().invoke(app, ["report", str(run_dir)])
    assert result.exit_code == 0, result.output
    for name in [*PLOT_FILES.values(), REPORT_FILE]:
        assert (run_dir / name).is_file(), name
    page = (run_dir / REPORT_FILE).read_text(encoding="utf-8")
    assert len(IMG_PATTERN.findall(page)) == 4
    # Rebuilt on the same test subset as the run: the same error count as training reported.
    assert f"{tiny_run.metrics['test_errors']:,} / {tiny_run.metrics['test_samples']:,}" in page


def test_report_of_a_missing_run_is_one_clear_error(tmp_path):
    from digitnet.evaluate.report import report_run_dir

    with pytest.raises(DigitnetError, match="no such run directory"):
        report_run_dir(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DigitnetError, match="not a digitnet model"):
        report_run_dir(tmp_path / "empty")
