"""benchmarks/read_lines.py draws what its table says it measures, and runs end to end at tiny sizes."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import read_lines  # noqa: E402

from digitnet.vision.preprocess import connected_components  # noqa: E402


@pytest.fixture(scope="module")
def digits(mnist) -> list[np.ndarray]:
    return list(mnist.test_images[:12])


def test_marks_are_drawn_as_a_pen_would():
    rng = np.random.default_rng(0)
    for _ in range(20):
        pen = rng.uniform(4, 12)
        dot = read_lines.dot_alpha(pen, rng)
        assert pen * 0.8 <= max(dot.shape) <= pen * 2.6 and max(dot.shape) <= 1.6 * min(dot.shape)
        comma, depth = read_lines.comma_alpha(pen, 80, rng)
        assert comma.shape[0] > comma.shape[1] and depth > 0.1 * 80  # taller than wide, reaching down
        minus = read_lines.minus_alpha(pen, 80, rng)
        assert minus.shape[1] >= 0.3 * 80 and minus.shape[1] > 1.5 * minus.shape[0]  # a flat bar


def test_a_line_with_separators_has_its_marks_where_they_belong(digits):
    rng = np.random.default_rng(1)
    line = read_lines.line_alpha("-12.5,3", digits[:4], rng, 60)
    _, stats = connected_components(line > 0.5)
    order = np.argsort(stats[:, 0])
    heights = stats[:, 3] - stats[:, 1]
    # minus, two digits, point, digit, comma, digit (MNIST digits are one stroke at this size, mostly)
    assert len(stats) >= 7
    minus, point = stats[order[0]], stats[order[3]]
    assert minus[2] - minus[0] > 2 * (minus[3] - minus[1])  # flat
    baseline = np.median(stats[heights >= 0.6 * heights.max(), 3])  # where the digits end
    assert heights[order[3]] < 0.4 * heights.max() and abs(point[3] - baseline) <= 0.1 * 60  # small, on the baseline
    comma = stats[order[5]]
    assert comma[3] > baseline + 0.1 * 60  # reaching below it


@pytest.mark.parametrize("kind", read_lines.KINDS)
def test_every_kind_of_number_is_what_it_says(kind):
    rng = np.random.default_rng(2)
    for _ in range(10):
        text = read_lines.separator_text(kind, rng)
        marks = {"decimal point": ".", "decimal comma": ",", "minus": "-", "date": ".", "groups": " "}
        assert marks[kind] in text and set(text) <= {"d", ".", ",", "-", " "}
        if kind == "date":
            assert [len(p) for p in text.split(".")][:2] == [2, 2]


def test_the_benchmark_runs_end_to_end():
    result = read_lines.run(None, n=3, seed=0, single=2)
    assert result["multi_line"]["n"] == 3 and 0 <= result["multi_line"]["exact"] <= 1
    assert 0 <= result["multi_line"]["line_count_right"] <= 1
    assert set(result["separators"]["by_kind"]) == set(read_lines.KINDS)
    assert result["single_line"]["n"] == 2
