"""The Recognizer API: classify, predict, predict_batch and read on every kind of input."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from digitnet.recognizer import Recognizer
from digitnet.vision.pipeline import NO_INK

PREDICT_FIELDS = {"path", "digit", "confidence", "probabilities", "error", "note"}
READ_FIELDS = {"path", "text", "lines", "digits", "error", "note"}


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    return Recognizer.from_pretrained()


def as_photo(digit: np.ndarray, scale: int = 4) -> np.ndarray:
    """An MNIST digit enlarged and printed dark on light paper, with a margin."""
    big = np.asarray(Image.fromarray(digit).resize((28 * scale, 28 * scale), Image.Resampling.BICUBIC))
    return np.pad(255 - big // 4 * 3, 20, constant_values=255)


def test_classify_is_calibrated_probabilities(recognizer, mnist):
    probs = recognizer.classify(mnist.test_images[:200])
    assert probs.shape == (200, 10) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert (probs.argmax(1) == mnist.test_labels[:200]).mean() > 0.97
    raw = recognizer.classify(mnist.test_images[:200], calibrated=False)
    assert not np.allclose(raw, probs)  # the temperature changes the confidence, not the answer
    assert (raw.argmax(1) == probs.argmax(1)).all()
    single = recognizer.classify(mnist.test_images[0])
    assert single.shape == (1, 10) and np.allclose(single, probs[:1], atol=1e-5)


def test_predict_fields_and_mnist_input(recognizer, mnist):
    answer = recognizer.predict(mnist.test_images[0])
    assert set(answer) == PREDICT_FIELDS
    assert answer["digit"] == mnist.test_labels[0] and answer["error"] is None and answer["note"] is None
    # A 28×28 MNIST digit is used as it is: the same probabilities as classify.
    assert np.allclose(answer["probabilities"], recognizer.classify(mnist.test_images[0])[0], atol=1e-5)


def test_predict_accepts_every_kind_of_source(recognizer, mnist, tmp_path):
    photo = as_photo(mnist.test_images[1])
    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, "PNG")
    sources = [path, str(path), buffer.getvalue(), Image.open(path), photo, np.stack([photo] * 3, -1)]
    answers = [recognizer.predict(s) for s in sources]
    assert {a["digit"] for a in answers} == {int(mnist.test_labels[1])}
    assert [a["path"] for a in answers] == [str(path), str(path), None, None, None, None]
    assert all(abs(a["confidence"] - answers[0]["confidence"]) < 1e-4 for a in answers)


def test_predict_batch_matches_predict(recognizer, mnist):
    images = [as_photo(d) for d in mnist.test_images[:6]] + [mnist.test_images[6]]
    batch = recognizer.predict_batch(images, top_k=2)
    one_by_one = [recognizer.predict(image, top_k=2) for image in images]
    assert [a["digit"] for a in batch] == [a["digit"] for a in one_by_one] == list(mnist.test_labels[:7])
    for a, b in zip(batch, one_by_one, strict=True):
        assert np.allclose(a["probabilities"], b["probabilities"], atol=1e-5)
        assert a["top_k"][0]["digit"] == a["digit"] and len(a["top_k"]) == 2


def test_predict_batch_is_one_forward_pass(recognizer, mnist, monkeypatch):
    calls = []
    original = recognizer.classify
    monkeypatch.setattr(recognizer, "classify", lambda x, **kw: calls.append(len(x)) or original(x, **kw))
    recognizer.predict_batch([as_photo(d) for d in mnist.test_images[:5]])
    assert calls == [5]


def test_no_ink_and_errors_are_answers_not_exceptions(recognizer):
    blank = recognizer.predict(np.full((64, 64), 250, np.uint8))
    assert blank["digit"] is None and blank["note"] == NO_INK and blank["error"] is None
    broken = recognizer.predict(b"\x89PNG\r\n\x1a\n broken")
    assert broken["digit"] is None and broken["error"] and broken["confidence"] is None
    assert set(recognizer.read(b"").keys()) == READ_FIELDS and recognizer.read(b"")["error"]


def test_min_confidence_turns_doubt_into_null(recognizer, mnist):
    answer = recognizer.predict(mnist.test_images[0], min_confidence=0.999999)
    assert answer["digit"] is None and answer["note"].startswith("not sure")
    assert answer["probabilities"] is not None  # the evidence is still there


def test_read_fields(recognizer, mnist):
    labels, images = mnist.test_labels, mnist.test_images
    # MNIST frames side by side, as a number is written (each digit with its own 20 px of paper is spaced a digit
    # height apart: as wide as a space between digit groups)
    frames = np.concatenate([as_photo(images[i], scale=3)[:, 20:-20] for i in range(3)], axis=1)
    line = np.pad(frames, ((0, 0), (20, 20)), constant_values=255)
    answer = recognizer.read(line)
    assert set(answer) == READ_FIELDS
    assert answer["text"] == "".join(str(labels[i]) for i in range(3))
    assert [set(d) for d in answer["digits"]] == [{"char", "digit", "confidence", "box"}] * 3
    xs = [d["box"][0] for d in answer["digits"]]
    assert xs == sorted(xs) and all(0 <= d["box"][0] < d["box"][2] <= line.shape[1] for d in answer["digits"])


def test_metadata_and_repr(recognizer):
    assert recognizer.metadata["arch"] == recognizer.spec.name
    assert "Recognizer(arch=" in repr(recognizer)
