"""Decimal points, commas, minus signs and spaces on a line of digits, told apart by geometry.

Every measure is relative to the line: its digit height ``H``, where its top and baseline run at that
column (a sloped line has them sloped), and the pen's stroke width.

* a **dot** is small (at most ``DOT_SIZE`` H, or ``DOT_PENS`` strokes for a thick pen) and compact, sits on the
  baseline, and is at least about as wide as the pen (a speck of dust is thinner, or floats away from the
  baseline);
* a **comma** is as small (a thick pen's may be larger: its head and tail are strokes), starts in the lower half
  of the line (above the baseline) and reaches down to it at least; what tells it from a dot is its shape:
  taller than wide, narrower at the bottom (its tail), reaching below the baseline;
* a **minus** is a flat bar (``FLAT`` times wider than tall, no thicker than the pen) at mid-height;
* a **space** is a gap between two digits wider than ``SPACE`` H and much wider than the line's usual spacing
  (digits of one number stand closer; digits in equally spaced boxes have no spaces).

Only a piece of ink standing alone is a candidate: one stacked over or under other ink of the line (the
detached bar of a 5 or a 7, the top of a 4) is part of a digit and is left to :func:`segment.group_components`.

Confidence: each rule is a margin, in line heights (or in stroke widths for the pen rule), by which the piece
passes it; a piece failing any rule is no mark. A mark's ``margin`` is that of the rule it passes most narrowly,
and its ``confidence`` is a probability, like a digit's: ``sigmoid(slope · margin + offset)`` (``CALIBRATION``),
fitted by ``benchmarks/calibrate_marks.py`` on numbers drawn as ``benchmarks/read_lines.py`` draws them (from
MNIST *training* digits), so that of the marks read with confidence ``p``, about ``p`` are right. One fit for
every kind: each is right so often (about 98%) that no kind has the errors to fit its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DOT_SIZE = 0.4  # a dot's or comma's longest side is at most this many line heights ...
DOT_PENS = 2.5  # ... or this many stroke widths (a thick pen's dot)
COMMA_SIZE = 0.6  # a comma's longest side, at most this many line heights ...
COMMA_PENS = (0.35, 2.0)  # ... or this many line heights plus this many stroke widths (a thick pen's head and tail)
ON_BASELINE = 0.3  # a dot's centre is at most this far above the baseline, a dot's bottom at most ...
BELOW_BASELINE = 0.25  # ... this far below it
COMMA_FROM = -0.05  # a comma starts below the line's middle and above the baseline (give or take this) ...
COMMA_SHAPE = 0.6  # ... told from a dot by 2·(height/width - 1) + 2·(reach below baseline) + 3·(TAPER - taper) > this
TAPER = 0.9  # (a dot's bottom is as wide as its top; a comma's tail narrower: see ``taper``)
COMMA_BELOW = 0.03  # ... reaches at least this far below it (or, if it has a visible tail, down to it give or
COMMA_BELOW_TAILED = -0.05  # take this: the baseline is the digits' median, a thick pen's head sits on it) ...
TAIL_PENS = 2.0  # (visible: narrower at the bottom and this many strokes tall; a speck's taper is noise)
COMMA_DEPTH = 0.7  # ... and at most this far
MIN_PEN = 0.6  # a dot or comma is at least this many stroke widths across: thinner is dust
COMPACT = 0.4  # a dot fills at least this fraction of its box
FLAT = 1.5  # a minus is at least this many times wider than tall,
MINUS_WIDTH = (0.2, 1.2)  # this wide (line heights),
MINUS_THICKNESS = (0.35, 1.5)  # at most this thick (line heights), or this many stroke widths (a thick pen),
MID_HEIGHT = 0.2  # and its centre at most this far from the line's middle
STACKED = 0.2  # a piece sharing this fraction of its width with larger ink of the line, ...
STACK_BAND = 0.2  # ... and above or below the middle (1 - 2 × this) of that ink's height, is part of a digit
SPACE = 0.75  # a gap between digits wider than this (line heights) ...
SPACE_PITCH = 1.25  # ... whose centres are this many times further apart than usual on the line, is a space
# P(the mark is right) = sigmoid(slope · margin + offset), fitted by `benchmarks/calibrate_marks.py --n 900 --seed 1`
# (1217 marks on numbers of MNIST training digits, 98.9% right).
CALIBRATION = (54.76, 0.40)


@dataclass
class Mark:
    """A separator or sign: its character, ink box (working resolution) and how safely it passes its rules."""

    char: str  # ".", ",", "-" or " "
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive)
    margin: float  # by how much it passes the rule it passes most narrowly (> 0; line heights, mostly)

    @property
    def confidence(self) -> float:
        """The probability that it is right (calibrated: see ``CALIBRATION``)."""
        return calibrated(self.margin)


def calibrated(margin: float) -> float:
    """The probability that a mark passing its rules by ``margin`` is right."""
    slope, offset = CALIBRATION
    return float(1 / (1 + np.exp(-(slope * margin + offset))))


def is_stacked(box: np.ndarray, others: np.ndarray) -> bool:
    """Is a piece of ink above or below larger ink of its line, sharing some of its columns (part of a digit)?

    "Above or below": its centre is outside the middle of the other's height. A minus beside a 3 shares the
    3's height, so it is beside it even if a stroke of the 3 reaches into its columns; the detached flag of a 5
    sits on top of the 5's body. A flat bar needs to share no columns, only to reach them: the flag of a 5
    leans out to the right of its body, the detached foot of a 2 to the left of its loop.
    """
    if len(others) == 0:
        return False
    width = box[2] - box[0]
    share = 0.0 if width >= FLAT * (box[3] - box[1]) else STACKED
    overlap = np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0])
    heights = others[:, 3] - others[:, 1]
    centre = (box[1] + box[3]) / 2
    outside = (centre < others[:, 1] + STACK_BAND * heights) | (centre > others[:, 3] - STACK_BAND * heights)
    if share == 0.0:  # a bar: any stroke above or below it (taller than the bar is thick) makes it a digit's
        larger = heights >= box[3] - box[1]
        # ... and so does one it starts inside of, in that stroke's upper half: a 5's flag, drawn from the top of
        # its body rightwards (a minus stands before its number, its right end at most touching it).
        flag = (box[0] > others[:, 0]) & (overlap > 0) & (centre < (others[:, 1] + others[:, 3]) / 2)
        if (flag & larger).any():
            return True
    else:
        larger = np.maximum(others[:, 2] - others[:, 0], heights) >= max(width, box[3] - box[1])
    return bool(((overlap >= share * width) & outside & larger).any())


def taper(mask: np.ndarray) -> float:
    """How much narrower a piece of ink is at its bottom than at its top (widths of its lowest and highest 40%).

    About 1 for a dot; a comma's tail makes it well below 1.
    """
    widths = mask.sum(1)
    rows = max(1, int(0.4 * len(widths)))
    return float(widths[-rows:].mean() / max(widths[:rows].mean(), 1.0))


def classify_mark(box: np.ndarray, area: int, top: float, bottom: float, stroke: float,
                  mask: np.ndarray | None = None) -> Mark | None:
    """The separator or sign one piece of ink is, or None (a digit's piece, dust, anything else).

    ``box`` is the piece's x0, y0, x1, y1; ``top`` and ``bottom`` where the line's digits start and end at
    its column (``bottom`` is the baseline); ``stroke`` the pen's width; ``mask`` the piece's own ink in its
    box, if known (its shape tells a comma's tail from a dot). All at working resolution.
    """
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    w, h = x1 - x0, y1 - y0
    height = bottom - top
    if height <= 0:
        return None
    thickest = max(MINUS_THICKNESS[0], MINUS_THICKNESS[1] * stroke / height)  # a minus, at most (line heights)
    largest = max(COMMA_SIZE, COMMA_PENS[0] + COMMA_PENS[1] * stroke / height)  # a comma's longest side, at most
    size = max(w, h) / height
    centre = (y0 + y1) / 2
    middle = (top + bottom) / 2
    pen = (min(w, h) / max(stroke, 1.0) - MIN_PEN) * 0.25  # stroke widths, scaled to compare with line heights
    fill = area / max(w * h, 1.0)
    key = tuple(int(v) for v in box[:4])
    below = (y1 - bottom) / height  # how far it reaches under the baseline (negative: above)

    if w >= FLAT * h:  # a flat bar: a minus, if it is one's size and at mid-height (else maybe a flat dot)
        margins = [(w - FLAT * h) / height, w / height - MINUS_WIDTH[0], MINUS_WIDTH[1] - w / height,
                   thickest - h / height, MID_HEIGHT - abs(centre - middle) / height,
                   (min(w, h) / max(stroke, 1.0) - 0.4) * 0.25]
        if min(margins) > 0:
            return Mark("-", key, float(min(margins)))
    # A dot or a comma: small, at least a pen wide, on (or reaching below) the baseline.
    small = [pen]
    tail = TAPER - (taper(mask) if mask is not None else TAPER)  # > 0: narrower at the bottom, a comma's tail
    dot = [max(DOT_SIZE, DOT_PENS * stroke / height) - size, ON_BASELINE - (bottom - centre) / height,
           BELOW_BASELINE - below, fill - COMPACT]
    comma = [largest - size, (y0 - middle) / height, (bottom - y0) / height - COMMA_FROM,
             below - (COMMA_BELOW_TAILED if tail > 0 and h >= TAIL_PENS * stroke else COMMA_BELOW),
             COMMA_DEPTH - below]
    # Which of the two: a comma is taller than wide, reaches below the baseline and is larger than a dot.
    commaness = 2 * (h / max(w, 1.0) - 1) + 2 * below + 3 * tail - COMMA_SHAPE
    if commaness > 0 and min(small + comma) > 0:
        return Mark(",", key, float(min([*small, *comma, commaness / 4])))
    if commaness <= 0 and min(small + dot) > 0:
        return Mark(".", key, float(min([*small, *dot, -commaness / 4])))
    return None


def space_between(left: tuple[int, int, int, int], right: tuple[int, int, int, int], height: float,
                  top: int, bottom: int, usual_pitch: float | None) -> Mark | None:
    """The space between two neighbouring digits' boxes, if there is one.

    Their gap must be wider than ``SPACE`` line heights, and the distance between their centres ``SPACE_PITCH``
    times the line's usual one between neighbouring digits (``usual_pitch``; None where there are no other
    neighbours to compare with: no space). Digits written in equally spaced cells have wide gaps beside a
    narrow 1, but no space. The space's box is the gap, the line's full height (``top`` to ``bottom``).
    """
    if usual_pitch is None:
        return None
    gap = (right[0] - left[2]) / height
    pitch = ((right[0] + right[2]) - (left[0] + left[2])) / 2
    margins = [gap - SPACE, 0.25 * (pitch / usual_pitch - SPACE_PITCH)]
    if min(margins) <= 0:
        return None
    return Mark(" ", (left[2], top, right[0], bottom), float(min(margins)))
