"""benchmarks/reader_samples.py keeps what the reader hands its models, each with the truth at its place."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import photo_digits  # noqa: E402
import reader_samples  # noqa: E402

from digitnet.data.samples import load_reader_samples  # noqa: E402
from digitnet.recognizer import Recognizer  # noqa: E402
from digitnet.vision.pipeline import PreparedItem, PreparedLine, PreparedNumber  # noqa: E402


def test_samples_are_drawn_from_training_digits_only(mnist):
    images, labels = photo_digits.benchmark_digits("train")
    assert len(images) == 55_000 and np.array_equal(images, mnist.train_images[:55_000])
    val, _ = photo_digits.benchmark_digits("val")  # the held-out digits stay out
    assert np.array_equal(val, mnist.train_images[55_000:])


def test_each_digit_and_line_is_kept_with_the_truth_at_its_place(tmp_path):
    assert reader_samples.main(["--seeds", "3", "--n", "2", "--out", str(tmp_path / "s.npz")]) == 0
    samples = load_reader_samples(tmp_path / "s.npz")
    assert len(samples.labels) > 100 and len(samples.texts) > 30
    # Labelled at the wrong place, about one in ten would agree with what the digit model reads in them.
    with Recognizer.from_pretrained(line_model=None) as recognizer:
        read = recognizer.classify(samples.digits.numpy()).argmax(1)
    assert (read == samples.labels.numpy()).mean() > 0.95
    # Every line image is the recognizer's 32 rows and holds ink; its text is one line of the truth.
    for line, text in zip(samples.lines, samples.texts, strict=True):
        assert line.shape[0] == 32 and line.max() > 128 and text and "\n" not in text


def test_a_model_folder_that_is_none_is_one_line(tmp_path, capsys):
    assert reader_samples.main(["--seeds", "3", "--n", "1", "--model", str(tmp_path / "none"),
                                "--out", str(tmp_path / "s.npz")]) == 1
    assert capsys.readouterr().err.strip().endswith("none: no such model directory")
    assert not (tmp_path / "s.npz").exists()


def _number(*lines: str) -> PreparedNumber:
    digit = np.zeros((28, 28), np.uint8)
    return PreparedNumber(None, [PreparedLine([PreparedItem(c, [0, 0, 1, 1], 1.0, digit + k if c.isdigit() else None)
                                               for k, c in enumerate(text)], [0, 0, 1, 1]) for text in lines])


def test_a_reading_of_another_layout_keeps_its_lines_but_no_digits():
    recorder = reader_samples.SampleRecorder.__new__(reader_samples.SampleRecorder)
    recorder.digits, recorder.labels, recorder.lines, recorder.texts = [], [], [], []
    line = np.zeros((32, 40), np.uint8)
    recorder._number, recorder._line_images = _number("12", "7"), [line, line]
    recorder.record_truth("123\n7")  # a digit dropped: which crop is which digit is unknown
    assert recorder.labels == [] and recorder.texts == ["123", "7"]
    recorder._number, recorder._line_images = _number("1.5", "72"), [line]  # one line image: the lines were not found
    recorder.record_truth("1,8\n74")  # as many characters: each digit read at a digit's place keeps the truth's
    assert recorder.labels == [1, 8, 7, 4] and recorder.texts == ["123", "7"]
    assert [int(d[0, 0]) for d in recorder.digits] == [0, 2, 0, 1]  # the crops in reading order
