"""Reader samples: what ``digitnet read`` hands its two models, kept with the truth, to fine-tune them on.

``benchmarks/reader_samples.py`` photographs numbers written with the MNIST *training* digits (the first 55,000: never
the held-out digits that validation reads, never the test digits) as the reading benchmarks do, reads them, and keeps
each digit's 28×28 as the digit model classified it, with its true label, and each line's image as the line
recognizer read it, with its true text. Those are not MNIST's digits any more: ink finding thresholded them, the cut
gave them a neighbour's stroke or took one of theirs, the camera's blur thickened them. ``digitnet train
--extra-data FILE`` mixes them into every batch (:mod:`digitnet.train.setup`).

The file is an ``.npz`` of plain arrays (read without pickle): ``digits`` uint8 (N, 28, 28) and ``labels`` (N,);
``line_pixels`` uint8 (32, ΣW), the line images side by side, ``line_widths`` (M,) and ``texts`` (M,) str.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from digitnet.data.lines import LINE_HEIGHT as LINE_ROWS  # a line image's height (the line recognizer's input)
from digitnet.data.sources import read_npz
from digitnet.utils import DigitnetError

KEYS = ("digits", "labels", "line_pixels", "line_widths", "texts")


@dataclass
class ReaderSamples:
    """Digits as the reader cut them (uint8 (N, 28, 28), labels int64 (N,)) and lines as it saw them."""

    digits: torch.Tensor
    labels: torch.Tensor
    lines: list[torch.Tensor]  # uint8 (LINE_ROWS, W) each, ink bright
    texts: list[str]

    def to(self, device) -> ReaderSamples:
        return ReaderSamples(self.digits.to(device), self.labels.to(device), [line.to(device) for line in self.lines],
                             self.texts)


def save_reader_samples(path: str | os.PathLike, digits: np.ndarray | list[np.ndarray], labels: np.ndarray | list[int],
                        lines: list[np.ndarray], texts: list[str]) -> None:
    """Write reader samples (see the module docstring); ``digits``: uint8 (N, 28, 28), or a list of 28×28s (none:
    an empty list); ``lines``: uint8 (LINE_ROWS, W) each."""
    pixels = np.concatenate(lines, axis=1) if lines else np.zeros((LINE_ROWS, 0), np.uint8)
    np.savez_compressed(path, digits=np.asarray(digits, np.uint8).reshape(-1, 28, 28),
                        labels=np.asarray(labels, np.uint8), line_pixels=pixels.astype(np.uint8),
                        line_widths=np.array([line.shape[1] for line in lines], np.int64),
                        texts=np.array(texts, dtype=str))


def load_reader_samples(path: str | os.PathLike) -> ReaderSamples:
    """Read a reader-samples file; a :class:`DigitnetError` naming the file says what is wrong with one."""
    arrays = read_npz(path, KEYS, "a reader-samples file", " (make one with benchmarks/reader_samples.py)")
    digits, labels = arrays["digits"], arrays["labels"]
    pixels, widths, texts = arrays["line_pixels"], arrays["line_widths"], arrays["texts"]
    if digits.dtype != np.uint8 or digits.ndim != 3 or digits.shape[1:] != (28, 28) or labels.shape != digits.shape[:1]:
        raise DigitnetError(f"{path}: digits must be uint8 (N, 28, 28) with N labels")
    if not np.issubdtype(labels.dtype, np.integer) or len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise DigitnetError(f"{path}: a digit's label is not 0-9")
    if not np.issubdtype(widths.dtype, np.integer) or texts.dtype.kind != "U":
        raise DigitnetError(f"{path}: line widths must be integers and texts strings")
    if pixels.dtype != np.uint8 or pixels.ndim != 2 or pixels.shape[0] != LINE_ROWS or widths.shape != texts.shape \
            or widths.ndim != 1 or (widths < 1).any() or widths.sum() != pixels.shape[1]:
        raise DigitnetError(f"{path}: line images must be uint8 ({LINE_ROWS}, W) side by side with a width and a "
                            "text each")
    ends = np.cumsum(widths)
    lines = [torch.from_numpy(np.ascontiguousarray(pixels[:, end - width:end])) for end, width in zip(ends, widths,
                                                                                                     strict=True)]
    return ReaderSamples(torch.from_numpy(digits), torch.from_numpy(labels.astype(np.int64)), lines,
                         [str(text) for text in texts])
