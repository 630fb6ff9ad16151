"""Each picture is classified once: what ``prepare_digit`` learned from the model while counting digits is kept.

A picture of one digit in several pieces is segmented to count its digits, which classifies the whole digit;
``Recognizer.predict`` / ``predict_batch`` answer with those probabilities instead of classifying it again.
"""

from __future__ import annotations

import numpy as np
import pytest

from digitnet.recognizer import Recognizer
from digitnet.vision.pipeline import classify_prepared, prepare_digit


def split_ring() -> np.ndarray:
    """A 0 drawn as two tall arcs, "(" and ")", a small gap apart: two pieces that make one digit."""
    yy, xx = np.mgrid[:240, :200].astype(float)
    r = np.sqrt(((xx - 100) / 50) ** 2 + ((yy - 120) / 80) ** 2)
    ink = (np.abs(r - 1) < 0.12) & (np.abs(xx - 100) >= 6)
    return np.where(ink, 30, 235).astype(np.uint8)


def bar() -> np.ndarray:
    """A 1: one stroke, one piece (no segmentation needed)."""
    page = np.full((200, 160), 235, np.uint8)
    page[30:170, 74:86] = 30
    return page


class CountingClassifier:
    """A model stub that records every 28×28 it is given: wide ink reads as a sure 0, narrow as an unsure 1."""

    def __init__(self):
        self.calls: list[np.ndarray] = []

    def __call__(self, images: np.ndarray) -> np.ndarray:
        self.calls.append(images.copy())
        out = np.empty((len(images), 10))
        for row, image in zip(out, images, strict=True):
            cols = np.flatnonzero(image.max(0) > 0)
            if cols.size and cols[-1] - cols[0] + 1 >= 9:  # the whole ring
                row[:], row[0] = 0.01 / 9, 0.99
            else:  # an arc, or the bar
                row[:], row[1] = 0.5 / 9, 0.5
        return out

    def times_classified(self, image: np.ndarray) -> int:
        return sum(int(np.array_equal(seen, image)) for call in self.calls for seen in call)


@pytest.fixture
def recognizer() -> Recognizer:
    recognizer = Recognizer.from_pretrained()
    recognizer.classify = CountingClassifier()  # the instance's model step: prepare and answer both use it
    return recognizer


def answered_image(picture: np.ndarray) -> np.ndarray:
    return prepare_digit(picture, CountingClassifier()).image


def test_a_digit_in_pieces_is_classified_once_by_predict(recognizer):
    answer = recognizer.predict(split_ring())
    assert answer["digit"] == 0 and answer["note"] is None  # two pieces, one digit: segmentation joined them
    image = answered_image(split_ring())
    assert recognizer.classify.times_classified(image) == 1
    assert answer["probabilities"] == pytest.approx(CountingClassifier()(image[None])[0].tolist(), abs=1e-6)


def test_predict_batch_classifies_only_what_preparing_did_not(recognizer):
    answers = recognizer.predict_batch([split_ring(), bar(), np.full((80, 80), 235, np.uint8)])
    assert [a["digit"] for a in answers] == [0, 1, None]
    calls = recognizer.classify.calls
    assert recognizer.classify.times_classified(answered_image(split_ring())) == 1
    # The one forward pass after preparing holds the pictures still to classify: the bar alone.
    assert calls[-1].shape == (1, 28, 28) and np.array_equal(calls[-1][0], answered_image(bar()))
    assert recognizer.classify.times_classified(answered_image(bar())) == 1


def test_classify_prepared_uses_the_probabilities_it_is_given():
    classify = CountingClassifier()
    prepared = [prepare_digit(split_ring(), classify), prepare_digit(bar(), classify)]
    assert prepared[0].probabilities is not None and prepared[1].probabilities is None
    before = len(classify.calls)
    answers = classify_prepared(prepared, classify)
    assert len(classify.calls) == before + 1 and classify.calls[-1].shape == (1, 28, 28)
    assert answers[0]["probabilities"] == pytest.approx(prepared[0].probabilities.tolist(), abs=1e-6)
