"""``digitnet explain``: the input, the probabilities and a saliency map of one digit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from digitnet.evaluate.explain import METHODS, explain_array, explain_picture
from digitnet.recognizer import Recognizer
from digitnet.utils import DigitnetError


@pytest.fixture(scope="module")
def recognizer(tiny_run):
    return Recognizer.from_pretrained(tiny_run.run_dir)


@pytest.fixture(scope="module")
def digit(mnist):
    return mnist.test_images[0]  # a 7


@pytest.mark.parametrize("method", METHODS)
def test_saliency_has_the_input_shape_and_points_at_the_digit(recognizer, digit, method):
    explanation = explain_array(recognizer, digit, method)
    saliency = explanation.saliency
    assert saliency.shape == digit.shape == (28, 28)
    assert np.isfinite(saliency).all() and saliency.min() >= 0 and saliency.max() == pytest.approx(1.0)
    assert (saliency > 0).sum() > 20
    # The evidence is around the strokes, not in the far corners of the empty field.
    near_ink = np.zeros((28, 28), bool)
    ys, xs = np.nonzero(digit > 0)
    near_ink[max(ys.min() - 3, 0):ys.max() + 4, max(xs.min() - 3, 0):xs.max() + 4] = True
    assert saliency[near_ink].mean() > saliency[~near_ink].mean()
    np.testing.assert_allclose(explanation.probabilities, recognizer.classify(digit)[0], rtol=1e-5)
    assert explanation.predicted == int(explanation.probabilities.argmax())


def test_figure_shows_input_probabilities_and_saliency(recognizer, digit, tmp_path):
    explanation = explain_array(recognizer, digit, "gradient")
    ax_input, ax_probabilities, ax_saliency = explanation.plot.figure.axes[:3]
    assert np.array_equal(ax_input.images[0].get_array(), digit)
    heights = [bar.get_height() for bar in ax_probabilities.patches]
    np.testing.assert_allclose(heights, 100 * explanation.probabilities, rtol=1e-5)
    assert ax_probabilities.get_ylabel() == "probability (%)"
    np.testing.assert_allclose(ax_saliency.images[0].get_array(), explanation.saliency)
    path = explanation.save(tmp_path / "x.png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > 800


def test_gradient_saliency_works_inside_inference_mode(recognizer, digit):
    with torch.inference_mode():
        saliency = explain_array(recognizer, digit, "gradient").saliency
    assert saliency.max() > 0


def test_explain_array_rejects_what_is_not_a_digit(recognizer):
    with pytest.raises(DigitnetError, match="28×28"):
        explain_array(recognizer, np.zeros((32, 32), np.uint8))
    with pytest.raises(DigitnetError, match="unknown saliency method"):
        explain_array(recognizer, np.zeros((28, 28), np.uint8), "magic")


def test_explain_picture_prepares_pictures_like_predict(recognizer, digit, tmp_path):
    small = tmp_path / "seven.png"
    Image.fromarray(digit).save(small)
    assert np.array_equal(explain_picture(recognizer, small).image, digit)  # 28×28 MNIST-like: as it is
    # A large dark-on-light picture is normalized to a white-on-black 28×28 digit.
    big = tmp_path / "seven-big.png"
    Image.fromarray(255 - digit).resize((280, 280), Image.NEAREST).save(big)
    explanation = explain_picture(recognizer, big)
    assert explanation.image.shape == (28, 28) and explanation.image.dtype == np.uint8
    assert explanation.image[0].max() == 0 and explanation.image.max() > 200
    blank = tmp_path / "blank.png"
    Image.new("L", (64, 64), 255).save(blank)
    with pytest.raises(DigitnetError, match="blank.png"):
        explain_picture(recognizer, blank)


def test_explain_command_writes_one_png(tiny_run, digit, tmp_path):
    from digitnet.cli import app

    picture = tmp_path / "seven.png"
    Image.fromarray(digit).save(picture)
    out = tmp_path / "out" / "why.png"
    result = CliRunner().invoke(app, ["explain", str(picture), "--model", str(tiny_run.run_dir), "--out", str(out),
                                      "--method", "gradient"])
    assert result.exit_code == 0, result.output
    assert str(out) in result.output.replace("\n", "")
    with Image.open(out) as image:
        assert image.format == "PNG"


def _number_picture(mnist, digits: tuple[int, ...], path) -> None:
    """Digits from the MNIST test set side by side, enlarged, dark on light paper."""
    images = [mnist.test_images[int(np.flatnonzero(mnist.test_labels == d)[0])] for d in digits]
    row = np.concatenate([np.pad(image, ((0, 0), (4, 4))) for image in images], axis=1)
    Image.fromarray(255 - row).resize((row.shape[1] * 4, 28 * 4), Image.BICUBIC).save(path)


def test_explain_a_number_answers_with_predicts_note(mnist, tmp_path):
    """Regression: explain prepared a picture without predict's multi-digit check and explained one guess."""
    from digitnet.cli import app

    recognizer = Recognizer.from_pretrained()
    picture = tmp_path / "thirty-seven.png"
    _number_picture(mnist, (3, 7), picture)
    answer = recognizer.predict(picture)
    assert answer["digit"] is None and answer["note"] == "2 digits found: read numbers with `digitnet read`"
    with pytest.raises(DigitnetError) as info:
        explain_picture(recognizer, picture)
    assert str(info.value) == f"{picture}: {answer['note']}"
    result = CliRunner().invoke(app, ["explain", str(picture), "--out", str(tmp_path / "why.png")])
    # The command raises the one-line error that digitnet's main() prints; no figure is written.
    assert isinstance(result.exception, DigitnetError) and str(result.exception) == str(info.value)
    assert not (tmp_path / "why.png").exists()


def test_explain_refuses_an_out_that_is_a_folder(tmp_path):
    from digitnet.cli import app

    picture = tmp_path / "seven.png"
    Image.new("L", (28, 28)).save(picture)
    result = CliRunner().invoke(app, ["explain", str(picture), "--out", str(tmp_path)])
    assert isinstance(result.exception, DigitnetError) and f"--out {tmp_path} is a folder" in str(result.exception)
