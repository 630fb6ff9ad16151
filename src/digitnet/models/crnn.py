"""``crnn-digits``: a line recognizer that reads a whole line of digits at once, without cutting it up.

A CRNN (Shi, Bai & Yao 2015) as digit-string readers use it (e.g. Hochuli et al. 2018): convolutions turn a
line image ``LINE_HEIGHT`` rows tall into one feature column per 4 pixels of width, a bidirectional LSTM reads
the columns in both directions, and a linear layer gives each column a distribution over the alphabet plus
the CTC *blank*. Trained with CTC (``torch.nn.CTCLoss``), the network learns where characters are by itself:
touching and overlapping digits, separators and spaces need no segmentation rules.

Decoding (:func:`greedy_decode`) takes the most likely class of each column, merges repeats and drops
blanks; each character keeps the columns it came from (its place in the line, for its box) and its
posterior (its confidence).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from digitnet.models.registry import register_model

ALPHABET = "0123456789.,- "  # class k + 1 is ALPHABET[k]; class 0 is the CTC blank
BLANK = 0
LINE_HEIGHT = 32  # rows of the input line image
REDUCTION = 4  # input pixels of width per output column


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class CRNN(nn.Module):
    """Line image (B, 1, 32, W), ink bright → logits (B, W/4, len(ALPHABET) + 1)."""

    def __init__(self, width: int = 16, hidden: int = 64, dropout: float = 0.1):
        super().__init__()
        c = [width, 2 * width, 3 * width, 4 * width]
        self.features = nn.Sequential(
            _conv(1, c[0]), nn.MaxPool2d(2),  # 16 × W/2
            _conv(c[0], c[1]), nn.MaxPool2d(2),  # 8 × W/4
            _conv(c[1], c[2]), nn.MaxPool2d((2, 1)),  # 4 × W/4: width is kept from here on
            _conv(c[2], c[2]), _conv(c[2], c[3]), nn.MaxPool2d((2, 1)),  # 2 × W/4
        )
        self.dropout = nn.Dropout(dropout)
        self.rnn = nn.LSTM(2 * c[3], hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden, len(ALPHABET) + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)  # (B, C, 2, T)
        b, c, h, t = f.shape
        f = f.permute(0, 3, 1, 2).reshape(b, t, c * h)
        f, _ = self.rnn(self.dropout(f))
        return self.head(self.dropout(f))


@register_model("crnn-digits", "ours: CNN + BiLSTM + CTC line recognizer, reads whole lines of digits and separators",
                input_size=LINE_HEIGHT, normalization="unit", channels_last=False, task="lines",
                source="Shi et al. 2015 (CRNN); digit strings as Hochuli et al. 2018",
                defaults={"epochs": 40, "batch_size": 16, "lr": 3e-3, "optimizer": "adamw", "weight_decay": 1e-4,
                          "schedule": "onecycle", "augment": "real-world"})
def crnn_digits(width: int = 16, hidden: int = 64) -> nn.Module:
    return CRNN(width=width, hidden=hidden)


def output_lengths(widths: torch.Tensor) -> torch.Tensor:
    """Columns of output for input lines ``widths`` pixels wide."""
    return torch.div(widths, REDUCTION, rounding_mode="floor").clamp_min(1)


def encode(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """CTC targets: the texts' classes concatenated (int64) and each text's length."""
    index = {c: k + 1 for k, c in enumerate(ALPHABET)}
    try:
        flat = [index[c] for text in texts for c in text]
    except KeyError as exc:
        raise ValueError(f"character {exc.args[0]!r} is not in the alphabet {ALPHABET!r}") from None
    return torch.tensor(flat, dtype=torch.long), torch.tensor([len(t) for t in texts], dtype=torch.long)


@dataclass
class Decoded:
    """A line read by greedy CTC decoding."""

    text: str
    spans: list[tuple[int, int]]  # per character: first and last output column it was read in (inclusive)
    confidences: list[float]  # per character: its highest posterior over those columns
    digit_probabilities: list[np.ndarray | None]  # per digit character: (10,) posteriors over digits at its peak
    # Input pixels by which this recognizer's columns sit right of the characters' ink centres (model.json's
    # ``ctc_offset``, measured on validation lines): CTC fixes the order of characters, not where in its receptive
    # field a column fires, and a larger BiLSTM fires a character consistently early.
    offset: float = 0.0

    def centres(self) -> list[float]:
        """Each character's horizontal centre in input pixels: its columns' middle, less :attr:`offset`."""
        return [(t0 + t1 + 1) / 2 * REDUCTION - self.offset for t0, t1 in self.spans]


def greedy_decode(probabilities: np.ndarray, offset: float = 0.0) -> Decoded:
    """Best path decoding of one line's posteriors (T, classes): argmax per column, repeats merged, blanks dropped;
    ``offset``: the recognizer's ``ctc_offset`` (see :attr:`Decoded.offset`)."""
    best = probabilities.argmax(1)
    chars, spans, confidences, digits = [], [], [], []
    t = 0
    while t < len(best):
        k = int(best[t])
        end = t
        while end + 1 < len(best) and best[end + 1] == k:
            end += 1
        if k != BLANK:
            peak = t + int(probabilities[t:end + 1, k].argmax())
            chars.append(ALPHABET[k - 1])
            spans.append((t, end))
            confidences.append(float(probabilities[peak, k]))
            if ALPHABET[k - 1].isdigit():
                p = probabilities[peak, 1:11]
                digits.append(p / max(float(p.sum()), 1e-12))
            else:
                digits.append(None)
        t = end + 1
    return Decoded("".join(chars), spans, confidences, digits, offset)
