"""Fit the calibration of separators' and signs' confidence (``digitnet.vision.marks.CALIBRATION``).

    python benchmarks/calibrate_marks.py [--n 600] [--seed 1] [--digits train] [--threads 1] [--json]

Numbers with decimal points, commas, minus signs, dates and digit groups are drawn and photographed exactly as
``read_lines.py`` draws them (its ``separator_text`` and ``line_alpha``, ``photo_digits.photograph``), from
MNIST **training** digits by default (the benchmark reads test digits, with its own seeds), and read. Every mark
read (".", ",", "-", " ") is right if it lines up with the same character of the truth (``difflib``'s
matching blocks), wrong otherwise: a dot read for a comma, a piece of a digit read as a minus, a space where
there is none. One logistic ``P(right) = sigmoid(slope · margin + offset)`` is fitted to all marks' margins
(Newton's method; a weak prior of one right and one wrong mark on the edge of the rules, margin 0, keeps it
finite), and a reliability table (confidence bins: mean confidence, fraction right) is printed, per kind too.
Paste the slope and offset into ``CALIBRATION`` in ``src/digitnet/vision/marks.py``.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from photo_digits import photograph, place  # noqa: E402
from read_lines import KINDS, NUMBER_HEIGHT, line_alpha, separator_text  # noqa: E402

from digitnet.data import load_mnist  # noqa: E402
from digitnet.recognizer import Recognizer  # noqa: E402
from digitnet.vision import marks  # noqa: E402
from digitnet.vision.pipeline import PreparedItem, prepare_number  # noqa: E402

MARKS = (".", ",", "-", " ")
PRIOR = 1.0  # weight of the prior: as if one right and one wrong mark sat on the edge of the rules (margin 0)


def number_pictures(n: int, seed: int, images: np.ndarray, labels: np.ndarray):
    """``n`` (truth, JPEG bytes) pairs, the kinds in turn, drawn as ``read_lines.py`` draws them."""
    rng = np.random.default_rng(seed)
    for k in range(n):
        pattern = separator_text(KINDS[k % len(KINDS)], rng)
        index = rng.choice(len(labels), size=pattern.count("d"), replace=False)
        fill = iter("".join(str(labels[i]) for i in index))
        truth = "".join(next(fill) if c == "d" else c for c in pattern)
        alpha = line_alpha(truth, [images[i] for i in index], rng, int(rng.integers(*NUMBER_HEIGHT)))
        yield truth, photograph(place(alpha, rng, margin=(0.05, 0.3)), rng)


def judged_marks(truth: str, items: list[PreparedItem]) -> list[tuple[str, float, bool]]:
    """(char, confidence, right) for every mark among a reading's items, matched against the truth."""
    read = "".join(item.char for item in items)
    matched = set()
    for block in difflib.SequenceMatcher(None, truth, read, autojunk=False).get_matching_blocks():
        matched.update(range(block.b, block.b + block.size))
    return [(item.char, item.confidence, j in matched) for j, item in enumerate(items) if item.char in MARKS]


def collect(recognizer: Recognizer, n: int, seed: int, images: np.ndarray, labels: np.ndarray,
            ) -> list[tuple[str, float, bool]]:
    """(char, confidence, right) of every mark read in ``n`` generated numbers, with the calibration in force."""
    found = []
    for truth, picture in number_pictures(n, seed, images, labels):
        found += judged_marks(truth, prepare_number(picture, recognizer.classify).items)
    return found


def fit_logistic(margins: np.ndarray, right: np.ndarray, steps: int = 50) -> tuple[float, float]:
    """(slope, offset) of ``P(right) = sigmoid(slope · margin + offset)`` by Newton's method, with a weak prior.

    The prior is ``PRIOR`` marks right and as many wrong at margin 0: without it, marks read right every time
    would get an infinite slope. The slope is at least 0: a wider margin never makes a mark less likely right.
    """
    x = np.concatenate([margins, np.zeros(2)])
    y = np.concatenate([right.astype(np.float64), [1.0, 0.0]])
    w = np.concatenate([np.ones(len(margins)), np.full(2, PRIOR)])
    design = np.stack([x, np.ones_like(x)], 1)
    theta = np.zeros(2)
    for _ in range(steps):
        p = 1 / (1 + np.exp(-design @ theta))
        gradient = design.T @ (w * (y - p))
        hessian = (design * (w * p * (1 - p))[:, None]).T @ design + 1e-9 * np.eye(2)
        theta += np.linalg.solve(hessian, gradient)
    if theta[0] < 0:  # no evidence that the margin matters: a flat fit at the fraction right
        rate = float(np.average(y, weights=w))
        return 0.0, float(np.log(rate / (1 - rate)))
    return float(theta[0]), float(theta[1])


def reliability(confidence: np.ndarray, right: np.ndarray,
                edges: tuple[float, ...] = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 1.0)) -> list[dict]:
    """Per confidence bin: how many marks, their mean confidence and the fraction of them right."""
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        inside = (confidence >= lo) & ((confidence < hi) if hi < 1 else (confidence <= hi))
        if inside.any():
            rows.append({"bin": [lo, hi], "n": int(inside.sum()), "confidence": float(confidence[inside].mean()),
                         "right": float(right[inside].mean())})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=600, help="numbers to draw and read")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--digits", choices=("train", "test"), default="train", help="MNIST split to draw from")
    parser.add_argument("--model", default=None, help="model directory (default: the bundled model)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    mnist = load_mnist()
    images, labels = ((mnist.train_images, mnist.train_labels) if args.digits == "train"
                      else (mnist.test_images, mnist.test_labels))
    # With slope 1 and offset 0, a mark's confidence is sigmoid(margin): its margin is read back as the logit.
    marks.CALIBRATION = (1.0, 0.0)
    found = collect(Recognizer.from_pretrained(args.model), args.n, args.seed, images, labels)
    kinds = np.array([k for k, _, _ in found])
    margins = np.array([float(np.log(c / (1 - c))) for _, c, _ in found])
    right = np.array([r for _, _, r in found])
    slope, offset = fit_logistic(margins, right)
    marks.CALIBRATION = (slope, offset)
    confidence = np.array([marks.calibrated(m) for m in margins])
    result = {"n": args.n, "seed": args.seed, "digits": args.digits, "marks": len(found), "right": float(right.mean()),
              "slope": round(slope, 3), "offset": round(offset, 3), "reliability": reliability(confidence, right),
              "by_kind": {char: {"marks": int((kinds == char).sum()), "right": float(right[kinds == char].mean()),
                                 "confidence": float(confidence[kinds == char].mean())}
                          for char in MARKS if (kinds == char).any()}}
    if not args.json:
        print(f"CALIBRATION = ({slope:.3f}, {offset:.3f})  # {len(found)} marks, {right.mean():.1%} right")
        for row in result["reliability"]:
            print(f"  confidence {row['bin'][0]:.2f}–{row['bin'][1]:.2f}: {row['n']:4d} marks, "
                  f"mean confidence {row['confidence']:.3f}, right {row['right']:.3f}")
        for char, row in result["by_kind"].items():
            print(f"  {char!r}: {row['marks']} marks, mean confidence {row['confidence']:.3f}, "
                  f"right {row['right']:.3f}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
