"""Reading numbers: digits found left to right, broken strokes joined, touching digits split."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from photo_helpers import ink_of, number_ink, on_paper

from digitnet.vision.preprocess import connected_components, find_ink
from digitnet.vision.segment import find_digits, find_groups


def number_photo(clean_digits, text: str, gaps: list[int] | None = None, height: int = 70, **kwargs) -> np.ndarray:
    ink = number_ink([clean_digits[int(c)] for c in text], height=height, gaps=gaps)
    return on_paper(ink, shape=(ink.shape[0] + 60, ink.shape[1] + 80), at=(30, 40), **kwargs)


def test_reads_a_four_digit_number(recognizer, clean_digits):
    photo = number_photo(clean_digits, "2026", noise=0.02)
    answer = recognizer.read(photo)
    assert answer["error"] is None and answer["text"] == "2026"
    boxes = [d["box"] for d in answer["digits"]]
    assert [b[0] for b in boxes] == sorted(b[0] for b in boxes)  # left to right
    for (x0, y0, x1, y1) in boxes:  # each box holds a digit, inside the line of ink
        assert 40 <= x0 < x1 <= photo.shape[1] - 40 and 30 <= y0 < y1 <= photo.shape[0] - 30
        assert 0.5 * 70 < y1 - y0 <= 71
    assert all(0 <= d["confidence"] <= 1 for d in answer["digits"])


@pytest.mark.parametrize("text", ["0123456789", "31", "7", "90210"])
def test_reads_numbers(recognizer, clean_digits, text):
    assert recognizer.read(number_photo(clean_digits, text, height=50))["text"] == text


def test_touching_digits_are_split(recognizer, clean_digits):
    # Overlapping boxes: the strokes of neighbours run into each other.
    photo = number_photo(clean_digits, "4083", gaps=[-6, -6, -6], height=80)
    found = find_ink(photo)
    assert len(find_groups(found)) < 4  # some digits really are one connected blob
    assert recognizer.read(photo)["text"] == "4083"


def test_touching_digits_are_split_without_a_model(clean_digits):
    # The geometric fallback: a blob twice as wide as a digit is cut where the least ink crosses. The two 0s
    # overlap just enough to touch (the boxes of round digits can overlap with their strokes still apart).
    for gap in range(-4, -30, -2):
        found = find_ink(number_photo(clean_digits, "00", gaps=[gap], height=80))
        if len(connected_components(found.mask)[1]) == 1:
            break
    else:
        pytest.fail("the two 0s never touch")
    assert len(find_digits(found)) == 2


def test_broken_stroke_is_one_digit(recognizer, clean_digits):
    ink = ink_of(clean_digits[7], 90)
    rows = np.flatnonzero(ink.max(1) > 0.5)
    broken = ink.copy()
    broken[rows[0] + len(rows) // 2: rows[0] + len(rows) // 2 + 4] = 0  # a gap across the stem
    photo = on_paper(broken)
    assert len(connected_components(find_ink(photo).mask)[1]) >= 2
    answer = recognizer.read(photo)
    assert answer["text"] == "7" and len(answer["digits"]) == 1
    assert recognizer.predict(photo)["digit"] == 7


def test_dots_and_dirt_are_not_digits(recognizer, clean_digits):
    photo = number_photo(clean_digits, "35", gaps=[40], height=70).astype(np.int32)
    dot_y, dot_x = 30 + 62, 40 + 70 // 2 + 45  # a decimal point on the baseline, between the digits
    photo[dot_y:dot_y + 5, dot_x:dot_x + 5] = 30
    assert recognizer.read(photo.astype(np.uint8))["text"] == "35"


def test_blank_page_reads_nothing(recognizer):
    answer = recognizer.read(np.full((200, 300), 230, np.uint8))
    assert answer["text"] == "" and answer["digits"] == [] and answer["note"] == "no ink found"


def test_predict_declines_a_number(recognizer, clean_digits):
    answer = recognizer.predict(number_photo(clean_digits, "2026"))
    assert answer["digit"] is None and "4 digits" in answer["note"] and "digitnet read" in answer["note"]


def test_mnist_digit_reads_as_itself(recognizer, clean_digits):
    answer = recognizer.read(clean_digits[5])
    assert answer["text"] == "5" and answer["digits"][0]["box"] == [0, 0, 28, 28]


def _merge_by_restarting(indices, stats, together):
    """merge_boxes as it first was: after every merge, the search for a pair starts over (cubic in pieces)."""
    groups = [[int(i)] for i in indices]
    boxes = [stats[i, :4].astype(np.float64) for i in indices]
    merged = True
    while merged:
        merged = False
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                if together(boxes[a], boxes[b]):
                    boxes[a] = np.concatenate([np.minimum(boxes[a][:2], boxes[b][:2]),
                                               np.maximum(boxes[a][2:], boxes[b][2:])])
                    groups[a] += groups.pop(b)
                    boxes.pop(b)
                    merged = True
                    break
            if merged:
                break
    return groups


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 120), st.integers(0, 60), st.integers(1, 30), st.integers(1, 40)),
                max_size=25))
def test_merging_pieces_pairs_them_as_a_search_that_starts_over_would(pieces):
    """The first pair that belongs together merges first, whatever earlier merges grew (both rules in use)."""
    from digitnet.vision import lines
    from digitnet.vision.segment import _belong_together, merge_boxes

    stats = np.array([[x, y, x + w, y + h, w * h] for x, y, w, h in pieces], np.int64).reshape(-1, 5)
    assert merge_boxes(range(len(stats)), stats, _belong_together) == \
        _merge_by_restarting(range(len(stats)), stats, _belong_together)
    if len(stats):  # the line finder's rule, through the line finder (it sorts the groups left to right)
        anchors = np.arange(len(stats))[::2]
        seen = []
        original = lines.merge_boxes
        lines.merge_boxes = lambda *args: seen.append(args) or original(*args)
        try:
            lines._broken_digits(stats, anchors, 30.0)
        finally:
            lines.merge_boxes = original
        (indices, _, one_digit), = seen
        assert original(indices, stats, one_digit) == _merge_by_restarting(indices, stats, one_digit)


def test_a_picture_of_many_pieces_is_grouped_in_linear_passes():
    """Thousands of specks (a page of dust, a photo of noise) once took hours: every merge restarted the search."""
    from digitnet.vision.segment import _belong_together, merge_boxes

    rng = np.random.default_rng(0)
    xy = rng.integers(0, 3000, (4000, 2))
    stats = np.concatenate([xy, xy + rng.integers(1, 4, (4000, 2)), np.ones((4000, 1), np.int64)], 1)
    calls = []

    def counted(p, q):
        calls.append(len(q))
        return _belong_together(p, q)

    groups = merge_boxes(range(len(stats)), stats, counted)
    assert sorted(i for g in groups for i in g) == list(range(4000))
    assert len(calls) < 3 * 4000  # one look per group, and one more per merge (the cubic search: millions)
