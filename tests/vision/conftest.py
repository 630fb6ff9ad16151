"""Fixtures for the picture pipeline: the bundled recognizer and MNIST digits it reads with confidence."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

# The tests import their picture helpers (photo_helpers.py) as a plain module, whatever pytest's import mode.
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def recognizer():
    from digitnet.recognizer import Recognizer

    return Recognizer.from_pretrained()


@pytest.fixture(scope="session")
def clean_digits(mnist, recognizer) -> dict[int, np.ndarray]:
    """For each class, an MNIST test digit the model reads with confidence, so tests test the pipeline."""
    images, labels = mnist.test_images[:500], mnist.test_labels[:500]
    probs = recognizer.classify(images)
    chosen = {}
    for digit in range(10):
        sure = np.flatnonzero((labels == digit) & (probs.argmax(1) == digit) & (probs.max(1) > 0.99))
        chosen[digit] = images[sure[0]]
    return chosen
