"""The picture pipeline's steps as a server uses them: prepare, a classify callable of its own, answer."""

from __future__ import annotations

import numpy as np
from photo_helpers import digit_photo, number_ink, on_paper

from digitnet.vision.pipeline import (
    NO_INK,
    classify_prepared,
    digit_answer,
    number_answer,
    prepare_digit,
    prepare_number,
)


class RecordingClassifier:
    """A classify step that records what it is given: uint8 (N, 28, 28) → probabilities (N, 10)."""

    def __init__(self, classify):
        self.classify, self.calls = classify, []

    def __call__(self, images: np.ndarray) -> np.ndarray:
        self.calls.append(images.copy())
        return self.classify(images)


def test_an_mnist_digit_passes_through_bit_for_bit(mnist, recognizer):
    digits = mnist.test_images[:50]
    for image in digits:
        assert np.array_equal(prepare_digit(image, recognizer.classify).image, image)
    classify = RecordingClassifier(recognizer.classify)
    number = prepare_number(digits[0], classify)
    assert np.array_equal(number.images[0], digits[0]) and number.boxes == [[0, 0, 28, 28]]
    # The classify step always gets a batch (N, 28, 28), as the server's micro-batcher expects.
    assert [c.shape for c in classify.calls] == [(1, 28, 28)] and np.array_equal(classify.calls[0][0], digits[0])


def test_a_server_answers_with_its_own_classify_step(recognizer, clean_digits):
    classify = RecordingClassifier(recognizer.classify)
    pictures = [digit_photo(clean_digits[d], height=60) for d in (4, 9)] + [np.full((40, 40), 230, np.uint8)]
    prepared = [prepare_digit(p, classify) for p in pictures]
    answers = classify_prepared(prepared, classify)
    assert [a["digit"] for a in answers] == [4, 9, None] and answers[2]["note"] == NO_INK
    assert classify.calls[-1].shape == (2, 28, 28)  # one batch for the usable pictures
    one_by_one = [digit_answer(p, recognizer.classify(p.image[None])[0] if p.image is not None else None)
                  for p in prepared]
    assert one_by_one == answers
    assert answers == recognizer.predict_batch(pictures)


def test_a_number_shows_the_crops_it_classified(recognizer, clean_digits):
    picture = on_paper(number_ink([clean_digits[d] for d in (5, 1, 8)], height=60))
    number = recognizer.prepare_number(picture)  # read's own preparation (the line reader, by default)
    answer = number_answer(number)
    assert answer["text"] == "518" and answer == recognizer.read(picture)
    # The segmenter reads it the same, from the same crops (its probabilities are the classifier's alone).
    segmented = prepare_number(picture, recognizer.classify)
    assert number_answer(segmented)["text"] == "518"
    assert all(np.array_equal(a, b) for a, b in zip(segmented.images, number.images, strict=True))
    strip = number.strip()
    assert strip.shape == (28, 3 * 28) and strip.dtype == np.uint8
    assert all(np.array_equal(strip[:, 28 * i:28 * (i + 1)], image) for i, image in enumerate(number.images))
    # The debug view is what the model answered for: classifying the segmenter's crops again gives the same
    # probabilities; the line reader's are that vote with the line model's, the same digits.
    again = recognizer.classify(np.stack(number.images))
    np.testing.assert_allclose(again, np.stack(segmented.probabilities), atol=1e-5)
    assert list(again.argmax(1)) == list(np.stack(number.probabilities).argmax(1)) == [5, 1, 8]
    assert prepare_number(np.full((40, 40), 230, np.uint8), recognizer.classify).strip() is None


def test_both_readers_take_the_likelier_reading_of_as_many_characters():
    from types import SimpleNamespace

    from digitnet.vision.pipeline import _likelier

    def line(text: str, *confidences: float):
        return SimpleNamespace(items=[SimpleNamespace(char=c, confidence=p) for c, p in zip(text, confidences,
                                                                                             strict=True)])

    learned, segmented = line("12", 0.9, 0.6), line("17", 0.9, 0.95)
    assert _likelier([learned], [segmented]) == [segmented]  # as many characters: the jointly likelier
    # Fewer characters multiply fewer confidences: the line recognizer's count stands (two 9s written into each
    # other, which the segmenter takes for one confident 9).
    pair, one = line("99", 0.9, 0.9), line("9", 0.99)
    assert _likelier([pair], [one]) == [pair]
    same = line("7 1", 0.5, 1.0, 0.5)
    assert _likelier([same], [line("7 1", 0.99, 1.0, 0.99)]) == [same]  # the same text: the learned reading's boxes
    assert _likelier([pair], [one, pair]) == [pair]  # different lines found: the learned ones


def test_both_readers_ask_the_segmenter_only_where_the_line_reader_is_unsure(mnist, monkeypatch):
    import digitnet.vision.pipeline as pipeline
    from digitnet.recognizer import Recognizer

    calls = []
    segment = pipeline.read_lines
    monkeypatch.setattr(pipeline, "read_lines", lambda *a, **k: calls.append(1) or segment(*a, **k))
    recognizer = Recognizer.from_pretrained(reader="both")
    picture = on_paper(number_ink([mnist.test_images[k] for k in (3, 2, 1)], height=60, gaps=[12, 12]))  # "012"
    answer = recognizer.read(picture)
    assert answer["text"] == "".join(str(mnist.test_labels[k]) for k in (3, 2, 1))
    assert min(item["confidence"] for item in answer["digits"]) >= pipeline.BOTH_SURE and calls == []
    monkeypatch.setattr(pipeline, "BOTH_SURE", 1.01)  # nothing is that sure: the segmenter reads too
    assert recognizer.read(picture)["text"] == answer["text"] and calls == [1]
