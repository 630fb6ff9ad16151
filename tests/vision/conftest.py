"""Fixtures for the picture pipeline: the bundled recognizer and MNIST test digits to draw pictures from."""

from __future__ import annotations

import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

# The tests import their picture helpers (photo_helpers.py) as a plain module, whatever pytest's import mode.
sys.path.insert(0, str(Path(__file__).resolve().parent))

GLYPHS_PER_CLASS = 6  # the pool: this many MNIST test digits per class ...
POOL_SEED = 19  # ... drawn at random (a fixed seed), not the first ones of the test set


@pytest.fixture(scope="session")
def recognizer():
    from digitnet.recognizer import Recognizer

    return Recognizer.from_pretrained()


@pytest.fixture(scope="session")
def glyph_pool(mnist, recognizer) -> dict[int, list[np.ndarray]]:
    """Per class, ``GLYPHS_PER_CLASS`` MNIST test digits drawn with a fixed seed.

    Only digits the model reads right, with confidence above 0.99, as plain 28×28 MNIST: a test that draws a
    picture from one tests the pipeline, and should fail for what the pipeline does to the digit, not for a
    digit the model misreads anyway.
    """
    order = np.random.default_rng(POOL_SEED).permutation(len(mnist.test_labels))[:2000]
    images, labels = mnist.test_images[order], mnist.test_labels[order]
    probs = recognizer.classify(images)
    sure = (probs.argmax(1) == labels) & (probs.max(1) > 0.99)
    return {digit: list(images[sure & (labels == digit)][:GLYPHS_PER_CLASS]) for digit in range(10)}


@pytest.fixture(scope="module")
def clean_digits(glyph_pool, request) -> dict[int, np.ndarray]:
    """One digit per class from the pool, a different choice for each test file (fixed by the file's name).

    Module-scoped because module fixtures (folders, CLI pictures) draw from it too. The files between them use
    most of the pool (50 of its 60 glyphs), so the tests do not all rest on the same ten images.
    """
    rng = np.random.default_rng(zlib.crc32(request.path.name.encode()))
    return {digit: glyphs[int(rng.integers(len(glyphs)))] for digit, glyphs in glyph_pool.items()}
