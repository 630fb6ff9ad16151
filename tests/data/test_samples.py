"""Reader-samples files: what benchmarks/reader_samples.py writes and `digitnet train --extra-data` reads."""

from __future__ import annotations

import numpy as np
import pytest

from digitnet.data.samples import LINE_ROWS, load_reader_samples, save_reader_samples
from digitnet.utils import DigitnetError


def _lines() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (LINE_ROWS, width), dtype=np.uint8) for width in (28, 44, 12)]


def test_digits_and_lines_come_back_as_written(tmp_path):
    digits = np.random.default_rng(1).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    lines = _lines()
    path = tmp_path / "samples.npz"
    save_reader_samples(path, digits, [3, 1, 4, 1, 5], lines, ["12.5", "-3", "7 042"])
    samples = load_reader_samples(path)
    assert np.array_equal(samples.digits.numpy(), digits) and samples.labels.tolist() == [3, 1, 4, 1, 5]
    assert samples.texts == ["12.5", "-3", "7 042"]
    assert [line.shape[1] for line in samples.lines] == [28, 44, 12]
    for got, wrote in zip(samples.lines, lines, strict=True):
        assert np.array_equal(got.numpy(), wrote)


def test_a_bad_file_is_one_line_naming_it(tmp_path):
    missing = tmp_path / "none.npz"
    with pytest.raises(DigitnetError, match="none.npz: no such file"):
        load_reader_samples(missing)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(DigitnetError, match=r"junk.npz: not a reader-samples file \(not an .npz archive\)"):
        load_reader_samples(junk)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(DigitnetError, match=r"other.npz: not a reader-samples file \(no digits, labels, line_pixels"):
        load_reader_samples(other)
    pickled = tmp_path / "pickled.npz"  # an object array would need pickle to read: refused, not unpickled
    np.savez(pickled, digits=np.zeros((1, 28, 28), np.uint8), labels=np.zeros(1, np.uint8),
             line_pixels=np.zeros((LINE_ROWS, 4), np.uint8), line_widths=np.array([4]),
             texts=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DigitnetError, match="pickled.npz: not a reader-samples file"):
        load_reader_samples(pickled)
    widths = tmp_path / "widths.npz"
    save_reader_samples(widths, np.zeros((1, 28, 28), np.uint8), [1], _lines(), ["1", "2", "3"])
    with np.load(widths) as data:
        arrays = dict(data)
    arrays["line_widths"] = arrays["line_widths"] + 1  # no longer adds up to the pixels' width
    np.savez(widths, **arrays)
    with pytest.raises(DigitnetError, match="widths.npz: line images must be"):
        load_reader_samples(widths)
    labels = tmp_path / "labels.npz"
    save_reader_samples(labels, np.zeros((1, 28, 28), np.uint8), [12], [], [])
    with pytest.raises(DigitnetError, match="labels.npz: a digit's label is not 0-9"):
        load_reader_samples(labels)
    lone = tmp_path / "lone.npy"
    np.save(lone, np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(DigitnetError, match="lone.npy: not a reader-samples file \\(one array"):
        load_reader_samples(lone)
    save_reader_samples(labels, np.zeros((1, 28, 28), np.uint8), [1], [], [])
    with np.load(labels) as data:
        arrays = dict(data)
    np.savez(labels, **{**arrays, "labels": np.array([-1], np.int64)})
    with pytest.raises(DigitnetError, match="labels.npz: a digit's label is not 0-9"):
        load_reader_samples(labels)
    np.savez(widths, **{**arrays, "line_widths": np.array([], np.float64)})
    with pytest.raises(DigitnetError, match="widths.npz: line widths must be integers"):
        load_reader_samples(widths)
