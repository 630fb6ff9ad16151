"""How well `digitnet read` reads several lines, separators and signs, from MNIST test digits as phone photos.

    python benchmarks/read_lines.py [--model DIR] [--reader line|ctc|segment|both] [--n 200] [--seeds 0,1,2]
                                    [--threads 1] [--digits test|val] [--json] [--save-failures DIR]

Rows, each from MNIST **test** digits (``--digits val``: the held-out training digits, for choosing settings
without looking at test) drawn and photographed as in ``photo_digits.py`` (its ``ink_alpha``, ``number_alpha``,
``place`` and ``photograph``):

* multi-line pictures: 2–5 lines of 1–8 digits, each line its own height (±25%), lines 0.25–0.9 digit heights
  apart, indented unevenly, the whole page sloped up to ±5°, defocused as much as a photo of one of its
  numbers (not of the whole page): % of pictures read exactly, % with the right number of lines;
* separators and signs: decimal points and commas ("12.50", "3,14"), leading minus signs ("-3", "-12.5"),
  dates with dots ("23.11.2026") and digit groups with spaces ("12 345"): % exact, per kind. Dots, commas and
  minus signs are drawn as a pen would: the pen's width measured on the line's digits, varying size and
  thickness, slant and jitter, then the same ink and photo degradation as the digits;
* single-line numbers: ``photo_digits.py``'s numbers (2–6 digits), same seed: % exact;
* touching pairs: two-digit numbers whose digits touch (overlapping by up to 5% of their height);
* touching and overlapping digits: 3–6 digits, every neighbour overlapping by up to 15% of the height;
* long strings: 8–12 digits on one line (5% of neighbours touch, as in ``photo_digits.py``);
* widely spaced digits: 2–6 digits whose centres stand evenly 1.1–1.7 digit heights apart, as in cells or MNIST
  tiles set side by side (a narrow 1 leaves a gap wider than a digit): one number, no spaces;
* MNIST tiles: 2–8 of the 28×28 images themselves set side by side, dark on white, scaled 1–4× and saved as a
  PNG (no photo): what a user who glues test digits together hands ``read``; and the same tiles set apart,
  4–12 pixels of white on each side of every tile (as in a form's cells). One number, no spaces;
* dusty: numbers with separators and signs as above, each with 1–4 specks of dust (0.3–1.2 pens across: a
  point is 1–2) above its digits' lower part or under its baseline, never where a point would sit: % exact;
* marks written loosely: numbers with separators and signs as above (the kinds in turn; groups have no marks), but
  each point and comma set off the baseline as writers set them (from 0.1 digit heights below where the row above
  puts it to 0.35 above it) and each minus sign a further quarter of the number's height at most above or below
  where the row above puts it: % exact;
* other writers: numbers of 2–6 digits, each by a writer of its own with the habits of another hand, drawn by
  ``real_world.py``'s styles: now and then a pen of their own (thick, thin, slanted, skipping, cramped or stretched
  digits), European 1s (some on a base), crossed 7s, closed 4s, open 9s and 6s and 2s with a loop, each habit kept
  through the whole number as a writer keeps it: % exact;
* fine pen: numbers of 2–6 digits written with a fineliner: each digit's skeleton drawn again 2.5–5% of its
  height wide (``real_world.py``'s fine pen; MNIST's pens are about 10%), then photographed as the others: %
  exact;
* on a desk: numbers of 2–6 digits on a sheet photographed where it lies, the desk (black, wood or a gray table,
  darker than the paper, with a grain of its own) showing beside it on most sides, the sheet turned up to 8°: %
  exact;
* squared paper: numbers of 2–6 digits written over an exercise book's squares, cells 0.4–0.75 of a digit's height,
  printed in the ink's colour at 15–35% of its strength: % exact;
* notebook: numbers of 2–6 digits written on a notebook's ruled paper, standing on a ruled line (lines 1.1–1.7 digit
  heights apart, 2–5% of it wide, printed at 10–25% of the ink's strength), and in three pictures of four the page's
  margin beside them, a vertical line from the picture's top to its bottom 0.1–1 digit heights left of the writing, at
  25–65% (pink to dark red): % exact;
* framed: numbers of 2–6 digits circled or boxed by hand, as a total or an answer is: one stroke of the digits' pen
  round them, 0.1–0.4 digit heights clear of the ink's box, an ellipse through that room's corners or four bowed
  and wobbling sides, its end stopping short of its start or running past it by up to a pen: % exact;
* underlined: numbers of 2–6 digits underlined by hand (a fifth of them twice, as a total is): a pen stroke of the
  digits' own pen, touching their lowest ink or up to a quarter of their height below it, reaching past the
  number's ends or stopping a little short, sloped and bowed a little: % exact;
* drawn in a paint app: numbers of 2–6 digits drawn with a mouse or a finger, as a screenshot of a drawing app
  shows them: each digit's skeleton (``real_world.skeleton``) drawn 1–4 px wide, pure black on a white canvas, digits
  60–300 px tall, saved as a PNG (no photo): % exact;
* turned: numbers of 3–6 digits photographed with the phone (or the sheet) turned 8–30° either way: % exact;
* slanted: numbers of 3–7 digits by a writer whose whole hand leans, every digit alike (the line sheared 0.25–0.7 px
  per row, 14–35°, on top of each MNIST digit's own slant; one writer in four leaning back): % exact.

With several ``--seeds`` each is measured and the table gives every seed and the median. The README reports the
median of seeds 0 and 1 and a third seed (2) that was never looked at while the reader was built.
A second table sorts the misread pictures of each row by where they went wrong (:func:`misread_kind`): a line
more or fewer, a character more or fewer, a digit the digit model reads right on its own, a mark, or only digits
it misreads on their own too.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))

from photo_digits import (  # noqa: E402
    MISREADS,
    TOUCHING,
    benchmark_digits,
    ink_alpha,
    misread_kind,
    notebook_paper,
    number_alpha,
    on_desk,
    photograph,
    place,
    plain_right,
    read_answer,
    save_failures,
    squared_paper,
)
from photo_digits import run as run_photo_digits  # noqa: E402
from real_world import PEN, skeleton, styled, widen  # noqa: E402

from digitnet.data import load_mnist  # noqa: E402
from digitnet.recognizer import Recognizer  # noqa: E402
from digitnet.vision.pipeline import DEFAULT_READER, READERS  # noqa: E402
from digitnet.vision.preprocess import stroke_width  # noqa: E402

LINE_HEIGHT = (36, 110)  # multi-line pictures: a page's typical digit height in pixels ...
LINE_HEIGHT_SPREAD = (0.8, 1.25)  # ... and each line's own height relative to it
LINE_GAP = (0.25, 0.9)  # space between lines, in digit heights
MAX_SLOPE = 5.0  # degrees
FOCUS = 2.5  # a page is defocused as much as a number of its digits' height (photo_digits: its short side)
NUMBER_HEIGHT = (40, 200)  # numbers with separators: digit height in pixels
MARK_GAP = (0.08, 0.3)  # space on each side of a dot or comma, in digit heights,
MINUS_GAP = (0.12, 0.4)  # and between a minus sign and its number
SPACE_GAP = (0.9, 1.5)  # a space between digit groups, in digit heights
KINDS = ("decimal point", "decimal comma", "minus", "date", "groups")
SUPER = 4  # marks are drawn this many times larger, then reduced: smooth edges like the digits'
# The dusty row: 1-4 specks a number (dust on the paper or the scanner's glass), 0.15-0.6 pens in radius (a
# point is 0.5-1), their centres above the digits' lower part (DUST_ABOVE of them) or under the baseline, in
# digit heights from it: a speck where a point sits is a point to any reader.
DUST = (1, 4)
DUST_SIZE = (0.3, 0.6)
DUST_ABOVE = 0.65
DUST_ROWS = ((-1.5, -0.45), (0.4, 0.8))
# The loose marks row: points and commas raised this much above where the separators row sets them (in digit
# heights; negative: lower), minus signs moved this much of their number's height up or down from its middle.
LOOSE_LIFT = (-0.1, 0.35)
LOOSE_MINUS = (-0.25, 0.25)
# The underlined row: a number underlined by hand, a pen stroke of the digits' own pen under their lowest ink (0:
# touching it), reaching past the number's ends or stopping short of them, a little sloped and bowed; now and then
# twice (a total).
UNDERLINE_DROP = (0.0, 0.25)  # in digit heights
UNDERLINE_REACH = (-0.1, 0.3)  # past each end of the number, in digit heights
UNDERLINE_SLOPE = 0.06
DOUBLE_UNDERLINE = 0.2  # the share of numbers underlined twice, the second line ...
DOUBLE_GAP = (0.12, 0.3)  # ... this far below the first, in digit heights
# The framed row: a number circled or boxed by hand, the frame this many digit heights clear of the ink's box on
# average, its end stopping short of its start by up to this many pens (negative: running past it).
FRAME_ROOM = (0.1, 0.4)
FRAME_GAP = (-1.0, 1.0)
# The other writers' row: the share of writers with a pen of their own, those pens, and each digit's habits: (style,
# share of writers who have it).
WRITER_PEN = 0.6
WRITER_PENS = ("thick pen", "thin pen", "slant", "broken strokes", "cramped", "stretched")
WRITER_HABITS = {1: (("European 1 (flag)", 0.5), ("1 with flag and base", 0.2)), 7: (("crossed 7", 0.5),),
                 4: (("closed 4", 0.5),), 9: (("open 9", 0.3),), 6: (("open 6", 0.3),), 2: (("2 with a loop", 0.3),)}


# ----------------------------------------------------------------------------------------- drawing


def _reduced(canvas: Image.Image) -> np.ndarray:
    """A mark drawn SUPER times too large, reduced to ink coverage 0..1 cropped to its ink."""
    w, h = canvas.size
    small = canvas.resize((max(1, w // SUPER), max(1, h // SUPER)), Image.Resampling.BOX)
    alpha = np.asarray(small, np.float32) / 255
    rows, cols = np.flatnonzero(alpha.max(1) > 0.05), np.flatnonzero(alpha.max(0) > 0.05)
    return alpha[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def dot_alpha(pen: float, rng: np.random.Generator) -> np.ndarray:
    """A pen dot: a blob one to two pen widths across, a little oval and turned any way."""
    rx = pen * rng.uniform(0.5, 1.0) * SUPER
    ry = rx * rng.uniform(0.75, 1.0)
    side = int(4 * max(rx, ry)) + 4
    canvas = Image.new("L", (side, side))
    c = side / 2
    ImageDraw.Draw(canvas).ellipse([c - rx, c - ry, c + rx, c + ry], fill=255)
    return _reduced(canvas.rotate(rng.uniform(0, 180), resample=Image.Resampling.BICUBIC))


def comma_alpha(pen: float, height: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A comma: a dot with a tail curving down and left below the baseline.

    Returns the ink and how far its tail reaches below the baseline (px), measured from the head's bottom.
    """
    s = SUPER
    head = pen * rng.uniform(0.5, 0.9) * s
    depth = height * rng.uniform(0.22, 0.4) * s
    lean = depth * rng.uniform(0.2, 0.7)
    bend = depth * rng.uniform(-0.1, 0.3)
    width = max(1, int(pen * rng.uniform(0.7, 1.1) * s))
    side = int(2 * (head + depth + lean)) + 8
    canvas = Image.new("L", (side, side))
    draw = ImageDraw.Draw(canvas)
    x, y = side / 2, side / 4
    draw.ellipse([x - head, y - head, x + head, y + head], fill=255)
    t = np.linspace(0, 1, 12)
    xs = x + head * 0.6 - lean * t**1.5 + bend * t * (1 - t)
    ys = y + depth * t + head * (1 - t) * 0.5
    draw.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=255, width=width, joint="curve")
    return _reduced(canvas), (depth - head) / s


def pen_stroke(draw: ImageDraw.ImageDraw, xs: np.ndarray, ys: np.ndarray, width: int) -> None:
    """A pen's stroke through the points (``xs``, ``ys``), ``width`` px wide, with the round ends a pen leaves."""
    draw.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=255, width=width, joint="curve")
    for x, y in ((xs[0], ys[0]), (xs[-1], ys[-1])):
        draw.ellipse([x - width / 2, y - width / 2, x + width / 2, y + width / 2], fill=255)


def minus_alpha(pen: float, height: int, rng: np.random.Generator) -> np.ndarray:
    """A minus sign: a bar 0.3–0.65 digit heights long, about a pen wide, slanted and bowed a little."""
    s = SUPER
    length = height * rng.uniform(0.3, 0.65) * s
    angle = np.radians(rng.uniform(-8, 8))
    width = max(1, int(pen * rng.uniform(0.8, 1.3) * s))
    side = int(length + 4 * width) + 8
    canvas = Image.new("L", (side, side))
    t = np.linspace(-0.5, 0.5, 9)
    bow = length * rng.uniform(-0.06, 0.06) * (1 - 4 * t**2)
    xs = side / 2 + length * t * np.cos(angle) - bow * np.sin(angle)
    ys = side / 2 + length * t * np.sin(angle) + bow * np.cos(angle)
    pen_stroke(ImageDraw.Draw(canvas), xs, ys, width)
    return _reduced(canvas)


def underlined(alpha: np.ndarray, height: int, rng: np.random.Generator) -> np.ndarray:
    """A number's ink ``alpha`` (digits ``height`` px tall) underlined by hand, once or (``DOUBLE_UNDERLINE``) twice:
    strokes of the digits' own pen (see ``UNDERLINE_*``), drawn SUPER times larger and reduced as marks are."""
    pen = pen_of(alpha) * rng.uniform(0.8, 1.1)
    h, w = alpha.shape
    below = int(height * (UNDERLINE_DROP[1] + DOUBLE_GAP[1] + 0.1) + 3 * pen) + 2
    left_reach, right_reach = (height * rng.uniform(*UNDERLINE_REACH) for _ in range(2))
    pad = int(max(left_reach, right_reach, 0)) + int(pen) + 2
    canvas = Image.new("L", ((w + 2 * pad) * SUPER, (h + below) * SUPER))
    draw = ImageDraw.Draw(canvas)
    y = h - 1 + height * rng.uniform(*UNDERLINE_DROP) + pen / 2
    for line in range(2 if rng.random() < DOUBLE_UNDERLINE else 1):
        if line:
            y += height * rng.uniform(*DOUBLE_GAP)
        x0, x1 = pad - left_reach + rng.uniform(-0.05, 0.05) * height, pad + w + right_reach
        slope, bow = rng.uniform(-UNDERLINE_SLOPE, UNDERLINE_SLOPE), (x1 - x0) * rng.uniform(-0.02, 0.02)
        t = np.linspace(0, 1, 17)
        xs = (x0 + (x1 - x0) * t) * SUPER
        ys = (y + slope * (x1 - x0) * (t - 0.5) + bow * 4 * t * (1 - t)) * SUPER
        pen_stroke(draw, xs, ys, max(1, int(pen * SUPER)))
    strokes = np.asarray(canvas.resize((w + 2 * pad, h + below), Image.Resampling.BOX), np.float32) / 255
    strokes[:h, pad:pad + w] = np.maximum(strokes[:h, pad:pad + w], alpha)
    rows, cols = np.flatnonzero(strokes.max(1) > 0), np.flatnonzero(strokes.max(0) > 0)
    return strokes[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def framed(alpha: np.ndarray, height: int, rng: np.random.Generator) -> np.ndarray:
    """A number's ink ``alpha`` (digits ``height`` px tall) circled or boxed by hand (half each), as a total or an
    answer is: one stroke of the digits' own pen round it, ``FRAME_ROOM`` digit heights clear of the ink's box on
    average (it wanders), a circle an ellipse through the corners of that room, a box four sides that bow and wobble;
    its end stopping short of its start or running past it by up to a pen (``FRAME_GAP``). Drawn SUPER times larger
    and reduced as marks are."""
    pen = pen_of(alpha) * rng.uniform(0.8, 1.1)
    h, w = alpha.shape
    room = height * rng.uniform(*FRAME_ROOM)
    x0, y0, x1, y1 = -room, -room, w + room, h + room  # round the ink, in its pixels
    gap = rng.uniform(*FRAME_GAP) * pen
    if rng.random() < 0.5:  # a circle: an ellipse through the corners of the room round the number
        cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2 * np.sqrt(2), (y1 - y0) / 2 * np.sqrt(2)
        t = rng.uniform(0, 2 * np.pi) + np.linspace(0, 2 * np.pi - gap / ((rx + ry) / 2), 90)
        wobble = 1 + 0.03 * np.sin(3 * t + rng.uniform(0, 2 * np.pi))
        xs, ys = cx + rx * wobble * np.cos(t), cy + ry * wobble * np.sin(t)
    else:  # a box: four sides, each bowed and wobbling, from the top left corner round and up its left side
        corners = np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]) + rng.normal(0, 0.03 * height, (5, 2))
        corners[-1] = corners[0] + (0, gap)
        xs, ys = [], []
        for (ax, ay), (bx, by) in zip(corners[:-1], corners[1:], strict=True):
            t = np.linspace(0, 1, 12, endpoint=False)
            normal = np.array([ay - by, bx - ax]) / max(np.hypot(bx - ax, by - ay), 1e-6)
            off = rng.normal(0, 0.03 * height) * np.sin(np.pi * t) + rng.normal(0, 0.006 * height, len(t))
            xs.extend(ax + (bx - ax) * t + off * normal[0])
            ys.extend(ay + (by - ay) * t + off * normal[1])
        xs, ys = np.array([*xs, corners[-1][0]]), np.array([*ys, corners[-1][1]])
    # The canvas holds the stroke wherever it wandered, and the ink.
    left, top = int(np.floor(min(xs.min(), 0) - pen)) - 2, int(np.floor(min(ys.min(), 0) - pen)) - 2
    right, bottom = int(np.ceil(max(xs.max(), w) + pen)) + 2, int(np.ceil(max(ys.max(), h) + pen)) + 2
    canvas = Image.new("L", ((right - left) * SUPER, (bottom - top) * SUPER))
    pen_stroke(ImageDraw.Draw(canvas), (xs - left) * SUPER, (ys - top) * SUPER, max(1, int(pen * SUPER)))
    strokes = np.asarray(canvas.resize((right - left, bottom - top), Image.Resampling.BOX), np.float32) / 255
    strokes[-top:-top + h, -left:-left + w] = np.maximum(strokes[-top:-top + h, -left:-left + w], alpha)
    rows, cols = np.flatnonzero(strokes.max(1) > 0), np.flatnonzero(strokes.max(0) > 0)
    return strokes[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def writer_styles(rng: np.random.Generator) -> dict[int, str | None]:
    """One writer's way with each digit: a ``real_world.styled`` style (the digit's habit, else the writer's pen)
    or None (as MNIST's writer wrote it)."""
    pen = WRITER_PENS[int(rng.integers(len(WRITER_PENS)))] if rng.random() < WRITER_PEN else None
    ways: dict[int, str | None] = {}
    for digit in range(10):
        habits = WRITER_HABITS.get(digit, ())
        pick = rng.choice(len(habits) + 1, p=[*(share for _, share in habits), 1 - sum(s for _, s in habits)])
        ways[digit] = habits[pick][0] if pick < len(habits) else pen
    return ways


def styled_ink(digit: np.ndarray, style: str | None, height: int, angle: float,
               rng: np.random.Generator) -> np.ndarray:
    """A digit as ``ink_alpha`` draws it, ``style``d by ``real_world.styled`` first (as it is where the style cannot be
    drawn on it, a 2 whose pen is too broad for a loop): float 0..1 cropped to ink."""
    pen = styled(digit, style, rng) if style is not None else None
    if pen is None:
        return ink_alpha(digit, height, angle)
    pen = Image.fromarray(pen.astype(np.uint8) * 255)
    scale = height / (PEN * 20 / 28)  # the bitmap holds MNIST's 28-px frame PEN px tall; its 20-px box is the height
    pen = pen.resize((max(2, round(pen.width * scale)), max(2, round(pen.height * scale))), Image.Resampling.BOX)
    pen = pen.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
    alpha = np.clip((np.asarray(pen, np.float32) / 255 - 0.3) / 0.4, 0, 1)  # a crisp edge, as ink_alpha's
    rows, cols = np.flatnonzero(alpha.max(1) > 0), np.flatnonzero(alpha.max(0) > 0)
    return alpha[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def drawn_ink(digit: np.ndarray, height: int, angle: float, brush: int) -> np.ndarray:
    """A digit as a drawing app draws it: its centre line (of ``ink_alpha``'s stroke) ``brush`` px wide with a square
    brush, aliased, as a pencil tool draws: float 0..1 (0 or 1) cropped to ink."""
    line = skeleton(ink_alpha(digit, height, angle) > 0.5)
    rows = np.flatnonzero(line.any(1))
    if len(rows) and rows[-1] + 1 - rows[0] < 0.95 * height:  # the centre line stops half a pen short of each end
        line = skeleton(ink_alpha(digit, round(height * height / (rows[-1] + 1 - rows[0])), angle) > 0.5)
    if brush > 1:
        line = widen(line, brush) > 0
    rows, cols = np.flatnonzero(line.any(1)), np.flatnonzero(line.any(0))
    return line[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].astype(np.float32)


def _png(pixels: np.ndarray) -> bytes:
    """uint8 pixels as PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def pen_of(alpha: np.ndarray) -> float:
    """The pen width of drawn digits: the typical horizontal run of their ink."""
    return stroke_width(alpha > 0.5)


def line_alpha(text: str, digits: list[np.ndarray], rng: np.random.Generator, height: int,
               dust: int = 0, loose: bool = False) -> np.ndarray:
    """One line of writing: ``text`` (digits, ".", ",", "-", " "), its digits being these MNIST images in order.

    Runs of digits are drawn by ``number_alpha`` (uneven gaps, now and then touching) and set on a common
    baseline; marks and spaces are placed between them. ``dust``: so many specks (see ``DUST``) besides;
    ``loose``: marks set off their usual height (``LOOSE_LIFT``, ``LOOSE_MINUS``).
    """
    runs: list[tuple[str, np.ndarray | None]] = []
    taken = 0
    for piece in _pieces(text):
        if piece[0].isdigit():
            ink, _ = number_alpha(digits[taken:taken + len(piece)], rng, height, TOUCHING)
            taken += len(piece)
            runs.append(("digits", ink))
        else:
            runs.append((piece, None))
    # Where loose marks go comes from a generator of their own (spawning does not advance ``rng``): the same line
    # drawn loosely has its digits and marks in the same places, only the marks' heights differ.
    loose_rng = rng.spawn(1)[0] if loose else None
    pens = [pen_of(ink) for kind, ink in runs if kind == "digits"]
    pen = float(np.median(pens)) * rng.uniform(0.85, 1.2)
    baseline = 2 * height  # on a canvas 3 heights tall: room for anything above and below
    placed: list[tuple[np.ndarray, int, int]] = []  # ink, top, left
    x = 0.0
    for index, (kind, ink) in enumerate(runs):
        if kind == "digits":  # marks and spaces bring their own gaps
            top = baseline - ink.shape[0] + int(rng.uniform(-0.03, 0.03) * height)
        elif kind == " ":
            x += height * rng.uniform(*SPACE_GAP)
            continue
        else:
            gap = MINUS_GAP if kind == "-" else MARK_GAP
            x += height * rng.uniform(*gap)
            if kind == ".":
                ink = dot_alpha(pen, rng)
                top = baseline - ink.shape[0] + int(rng.uniform(-0.04, 0.04) * height)
            elif kind == ",":
                ink, depth = comma_alpha(pen, height, rng)
                top = baseline + int(depth) - ink.shape[0] + int(rng.uniform(-0.03, 0.05) * height)
            else:
                ink = minus_alpha(pen, height, rng)
                # At mid-height of the number it signs (a wide, short MNIST digit is lower than ``height``).
                number = next((a.shape[0] for k, a in runs[index + 1:] if k == "digits"), height)
                top = baseline - number // 2 - ink.shape[0] // 2 + int(rng.uniform(-0.1, 0.1) * number)
            if loose_rng is not None:
                top -= int(loose_rng.uniform(*LOOSE_MINUS) * number if kind == "-"
                           else loose_rng.uniform(*LOOSE_LIFT) * height)
        placed.append((ink, top, int(round(x))))
        x += ink.shape[1]
        if kind != "digits":
            x += height * rng.uniform(*gap)
    for _ in range(dust):  # anywhere along the line, but not where a point would sit: that is a point
        ink = dot_alpha(pen * rng.uniform(*DUST_SIZE), rng)
        above = rng.random() < DUST_ABOVE
        middle = baseline + height * (rng.uniform(*DUST_ROWS[0]) if above else rng.uniform(*DUST_ROWS[1]))
        placed.append((ink, int(middle - ink.shape[0] / 2), int(rng.uniform(0, max(x - ink.shape[1], 0)))))
    canvas = np.zeros((4 * height, int(x) + 2), np.float32)
    for ink, top, left in placed:
        region = canvas[top:top + ink.shape[0], left:left + ink.shape[1]]
        np.maximum(region, ink, out=region)
    rows = np.flatnonzero(canvas.max(1) > 0)
    return canvas[rows[0]:rows[-1] + 1]


def _pieces(text: str) -> list[str]:
    """"-12.50" → ["-", "12", ".", "50"]: runs of digits and single other characters."""
    pieces: list[str] = []
    for char in text:
        if char.isdigit() and pieces and pieces[-1][-1].isdigit():
            pieces[-1] += char
        else:
            pieces.append(char)
    return pieces


def page_alpha(lines: list[np.ndarray], heights: list[int], rng: np.random.Generator) -> np.ndarray:
    """Lines one under another, unevenly spaced and indented, the page turned by up to ±MAX_SLOPE degrees."""
    typical = float(np.mean(heights))
    gaps = [int(typical * rng.uniform(*LINE_GAP)) for _ in lines[1:]]
    indents = [int(typical * rng.uniform(0, 0.8)) for _ in lines]
    width = max(indent + line.shape[1] for indent, line in zip(indents, lines, strict=True))
    page = np.zeros((sum(line.shape[0] for line in lines) + sum(gaps), width), np.float32)
    y = 0
    for k, (line, indent) in enumerate(zip(lines, indents, strict=True)):
        page[y:y + line.shape[0], indent:indent + line.shape[1]] = np.maximum(
            page[y:y + line.shape[0], indent:indent + line.shape[1]], line)
        y += line.shape[0] + (gaps[k] if k < len(gaps) else 0)
    turned = Image.fromarray(page, "F").rotate(rng.uniform(-MAX_SLOPE, MAX_SLOPE), Image.Resampling.BICUBIC,
                                               expand=True)
    return np.clip(np.asarray(turned, np.float32), 0, 1)


def separator_text(kind: str, rng: np.random.Generator) -> str:
    """A random number of ``kind`` (its digits are placeholders: the benchmark puts MNIST digits in)."""
    def digits(lo: int, hi: int) -> str:
        return "d" * int(rng.integers(lo, hi + 1))

    if kind == "decimal point":
        return f"{digits(1, 4)}.{digits(1, 3)}"
    if kind == "decimal comma":
        return f"{digits(1, 4)},{digits(1, 3)}"
    if kind == "minus":
        return "-" + (digits(1, 4) if rng.random() < 0.7 else f"{digits(1, 3)}.{digits(1, 2)}")
    if kind == "date":
        return f"{digits(2, 2)}.{digits(2, 2)}.{digits(4, 4) if rng.random() < 0.7 else digits(2, 2)}"
    return " ".join(digits(3, 3) if k else digits(1, 3) for k in range(int(rng.integers(2, 4))))


# ------------------------------------------------------------------------------------- measuring


def _draw_digits(count: int, rng: np.random.Generator, labels: np.ndarray) -> tuple[np.ndarray, str]:
    index = rng.choice(len(labels), size=count, replace=False)
    return index, "".join(str(labels[i]) for i in index)


MEASURES = [  # (row, key, label, target) as the table prints them
    ("multi_line", "exact", "multi-line pages (2–5 lines of 1–8 digits), exact", "≥ 93%"),
    ("multi_line", "line_count_right", "  line count right", "≥ 99%"),
    ("separators", "exact", "separators and signs, exact", "≥ 95%"),
    *[("separators", f"by_kind.{kind}", f"  {kind}", "≥ 90%" if kind == "decimal comma" else "") for kind in KINDS],
    ("single_line", "exact", "one-line numbers (2–6 digits), exact", "≥ 97%"),
    ("touching_pairs", "exact", "touching pairs, exact", "≥ 95%"),
    ("overlapping", "exact", "touching and overlapping (3–6 digits), exact", ""),
    ("long", "exact", "long strings (8–12 digits), exact", ""),
    ("spaced", "exact", "widely spaced digits (2–6, as in cells), exact", ""),
    ("tiles", "exact", "MNIST tiles side by side (2–8), exact", ""),
    ("tiles_apart", "exact", "  the same, set 8–24 px apart, exact", ""),
    ("dusty", "exact", "separators and signs with dust specks, exact", ""),
    ("loose_marks", "exact", "separators and signs written loosely, exact", ""),
    ("underlined", "exact", "one-line numbers (2–6 digits) underlined by hand, exact", ""),
    ("writers", "exact", "one-line numbers (2–6 digits) in other writers' habits, exact", ""),
    ("fine_pen", "exact", "one-line numbers (2–6 digits) written with a fineliner, exact", ""),
    ("on_desk", "exact", "one-line numbers (2–6 digits), the sheet on a desk, exact", ""),
    ("squared", "exact", "one-line numbers (2–6 digits) on squared paper, exact", ""),
    ("notebook", "exact", "one-line numbers (2–6 digits) on ruled paper with a margin, exact", ""),
    ("framed", "exact", "one-line numbers (2–6 digits) circled or boxed by hand, exact", ""),
    ("drawn", "exact", "one-line numbers (2–6 digits) drawn 1–4 px wide in a paint app, exact", ""),
    ("turned", "exact", "one-line numbers (3–6 digits) photographed turned 8–30°, exact", ""),
    ("slanted", "exact", "one-line numbers (3–7 digits) by a hand leaning 14–35°, exact", ""),
]


def _value(result: dict, row: str, key: str) -> float | None:
    value = result.get(row)
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def print_seeds_table(results: list[dict]) -> None:
    """Every measure for every seed, and the median over the seeds."""
    from rich.console import Console
    from rich.table import Table

    first = results[0]
    title = (f"read lines — reader {first['reader']}, {first['arch']} + {first.get('line_model')}, "
             f"{first['digits']} digits")
    table = Table("measure", *[f"seed {r['seed']}" for r in results], "median", "target", title=title)
    for row, key, label, target in MEASURES:
        values = [_value(r, row, key) for r in results]
        if all(v is None for v in values):
            continue
        known = [v for v in values if v is not None]
        table.add_row(label, *["—" if v is None else f"{v:.1%}" for v in values], f"{float(np.median(known)):.1%}",
                      target)
    times = [r[row]["ms_per_picture"] for r in results for row in ROWS if row in r]
    table.add_row("time", *[""] * len(results), f"{float(np.median(times)):.0f} ms/picture", "")
    Console().print(table)
    # Where the misread pictures went wrong (misread_kind), every seed together: what a change would have to mend.
    seeds = ", ".join(str(r["seed"]) for r in results)
    kinds = Table("row", "misread", *MISREADS, title=f"misread pictures by where they went wrong (seeds {seeds})")
    for row in ROWS:
        sorted_rows = [r[row] for r in results if "misread" in r.get(row, {})]
        if sorted_rows:
            totals = [sum(measured["misread"][kind] for measured in sorted_rows) for kind in MISREADS]
            of = sum(measured["n"] for measured in sorted_rows)
            kinds.add_row(row, f"{sum(totals)} of {of}", *[str(t) for t in totals])
    Console().print(kinds)


ROWS = ("multi_line", "separators", "single_line", "touching_pairs", "overlapping", "long", "spaced", "tiles",
        "tiles_apart", "dusty", "loose_marks", "underlined", "writers", "fine_pen", "on_desk", "squared", "notebook",
        "framed", "drawn", "turned", "slanted")
SPACED_PITCH = (1.1, 1.7)  # the spaced row: digits' centres this many heights apart
DRAWN_HEIGHT = (60, 300)  # the drawn row: digits this many px tall ...
TURN = (8.0, 30.0)  # the turned row: the photo turned this many degrees either way
SLANT = (0.25, 0.7)  # the slanted row: the writer's lean, px sideways per row (tan of 14-35 degrees) ...
BACKWARD = 0.25  # ... leaning back (top to the left) this share of the time
DRAWN_BRUSH = 4  # ... drawn with a brush 1 to this many px wide
# Rows that draw from one random stream, in this order (each other row has a generator of its own): a run that leaves
# out one of them draws other pictures for those after it in its stream than a full run does.
SHARED_STREAMS = (("multi_line", "separators", "single_line"), ("touching_pairs", "overlapping", "long"))


def shared_stream_note(rows: tuple[str, ...]) -> str | None:
    """A note for a run of ``rows`` whose rows draw other pictures than in a full run (see ``SHARED_STREAMS``), or
    None: such rows compare only with runs of the same ``--rows``."""
    moved = [row for stream in SHARED_STREAMS for k, row in enumerate(stream)
             if row in rows and any(earlier not in rows for earlier in stream[:k])]
    if not moved:
        return None
    verb, them, their = ("draws", "it", "its") if len(moved) == 1 else ("draw", "them", "their")
    return (f"note: {', '.join(moved)} {verb} other pictures than in a full run (a row before {them} in {their} "
            f"random stream is left out); compare {them} only with runs of the same --rows")


def _numbers_row(recognizer: Recognizer, images: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                 n: int, lengths: tuple[int, int], touching: float, overlap: float, name: str,
                 failures: list[tuple[str, bytes]], pitch: tuple[float, float] | None = None,
                 underline: bool = False, writers: bool = False, pen: str | None = None,
                 paper: str | None = None, frame: bool = False, drawn: tuple[int, int] | None = None,
                 turn: tuple[float, float] | None = None, slant: tuple[float, float] | None = None) -> dict:
    """``n`` one-line numbers of ``lengths`` digits as photos (see photo_digits.number_picture), ``underline``d by
    hand or not, ``frame``d by hand (:func:`framed`) or not, each by one of the other ``writers``
    (:func:`writer_styles`), every digit in one ``pen`` (a ``real_world.styled`` style) or as MNIST's wrote them, on
    plain paper or ``paper`` "squared", "notebook" (ruled, with a margin: photo_digits.notebook_paper) or "desk": the
    sheet photographed on a desk (photo_digits.on_desk); or ``drawn`` in a paint app, digits of that range of heights
    (:func:`drawn_ink`, a PNG screenshot, no photo); photographed ``turn``ed by that range of degrees either way; by
    a writer whose hand leans by that range of ``slant`` (:func:`slanted`): % exact."""
    exact = plain = 0
    misread = dict.fromkeys(MISREADS, 0)
    started = time.perf_counter()
    for k in range(n):
        index, truth = _draw_digits(int(rng.integers(lengths[0], lengths[1] + 1)), rng, labels)
        height = int(rng.integers(40, 201) if drawn is None else rng.integers(drawn[0], drawn[1] + 1))
        draw = None
        if drawn is not None:
            brush = int(rng.integers(1, DRAWN_BRUSH + 1))

            def draw(digit: np.ndarray, size: int, angle: float, brush=brush) -> np.ndarray:
                return drawn_ink(digit, size, angle, brush)
        elif writers or pen:
            ways = writer_styles(rng) if writers else dict.fromkeys(range(10), pen)
            styles = iter([ways[int(labels[i])] for i in index])

            def draw(digit: np.ndarray, size: int, angle: float, styles=styles) -> np.ndarray:
                return styled_ink(digit, next(styles), size, angle, rng)
        alpha, _ = number_alpha([images[i] for i in index], rng, height, touching, overlap, pitch, draw)
        if slant is not None:
            alpha = slanted(alpha, float(rng.uniform(*slant)) * (-1 if rng.random() < BACKWARD else 1))
        if underline:
            alpha = underlined(alpha, height, rng)
        if frame:
            alpha = framed(alpha, height, rng)
        alpha, desk = place(alpha, rng, margin=(0.05, 0.3)), None
        if turn is not None:  # the sheet turned under the camera (more paper round it, as the turn needs)
            angle = float(rng.uniform(*turn)) * (1 if rng.random() < 0.5 else -1)
            alpha = np.asarray(Image.fromarray(alpha.astype(np.float32), "F").rotate(
                angle, Image.Resampling.BICUBIC, expand=True)).clip(0, 1)
        if drawn is not None:  # a screenshot: the canvas as the app shows it
            picture = _png(255 - np.round(alpha * 255).astype(np.uint8))
        elif paper == "squared":
            alpha = squared_paper(alpha, height, rng)
        elif paper == "notebook":
            alpha = notebook_paper(alpha, height, rng)
        elif paper == "desk":
            alpha, desk = on_desk(alpha, rng)
        if drawn is None:
            picture = photograph(alpha, rng, desk=desk)
        text = read_answer(recognizer, picture, truth)["text"]
        exact += text == truth
        alone = plain_right(recognizer, images, labels, index)
        plain += bool(alone.all())
        if text != truth:
            misread[misread_kind(truth, text, alone)] += 1
            failures.append((f"{name}-{k}-{truth}-as-{text.replace(chr(10), '_') or 'none'}", picture))
    return {"n": n, "exact": exact / n, "plain_mnist_exact": plain / n, "misread": misread,
            "ms_per_picture": 1000 * (time.perf_counter() - started) / n}


def slanted(alpha: np.ndarray, shear: float) -> np.ndarray:
    """Ink (float 0..1) as a writer whose hand leans writes it: each row moved right by ``shear`` px for every row it
    stands above the middle (a forward slant for ``shear`` > 0, back for < 0), cropped to ink."""
    height = alpha.shape[0]
    pad = int(np.ceil(abs(shear) * height / 2)) + 1
    image = Image.fromarray(np.pad(alpha, ((0, 0), (pad, pad))).astype(np.float32), "F")
    # (PIL's affine maps each output pixel to the input pixel it shows: x_in = x_out + shear * (y - height / 2).)
    image = image.transform(image.size, Image.Transform.AFFINE, (1, shear, -shear * height / 2, 0, 1, 0),
                            Image.Resampling.BILINEAR)
    sheared = np.asarray(image).clip(0, 1)
    cols = np.flatnonzero(sheared.max(0) > 0)
    return sheared[:, cols[0]:cols[-1] + 1]


def _separators_row(recognizer: Recognizer, images: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                    n: int, failures: list[tuple[str, bytes]], dusty: bool = False, loose: bool = False) -> dict:
    """``n`` numbers with separators and signs, the kinds in turn (``dusty``: with specks of dust; ``loose``: marks
    set off their usual height): % exact."""
    by_kind = {kind: [0, 0] for kind in KINDS}
    plain = 0
    misread = dict.fromkeys(MISREADS, 0)
    started = time.perf_counter()
    for k in range(n):
        kind = KINDS[k % len(KINDS)]
        pattern = separator_text(kind, rng)
        index, digits = _draw_digits(pattern.count("d"), rng, labels)
        fill = iter(digits)
        truth = "".join(next(fill) if c == "d" else c for c in pattern)
        height = int(rng.integers(*NUMBER_HEIGHT))
        dust = int(rng.integers(DUST[0], DUST[1] + 1)) if dusty else 0
        alpha = line_alpha(truth, [images[i] for i in index], rng, height, dust, loose)
        picture = photograph(place(alpha, rng, margin=(0.05, 0.3)), rng)
        text = read_answer(recognizer, picture, truth)["text"]
        by_kind[kind][0] += text == truth
        by_kind[kind][1] += 1
        alone = plain_right(recognizer, images, labels, index)
        plain += bool(alone.all())
        if text != truth:
            misread[misread_kind(truth, text, alone)] += 1
            name = "dusty" if dusty else "loose" if loose else "sep"
            failures.append((f"{name}-{k}-{truth}-as-{text.replace(chr(10), '_') or 'none'}",
                             picture))
    right = sum(r for r, _ in by_kind.values())
    return {"n": n, "exact": right / n, "plain_mnist_exact": plain / n,
            "by_kind": {kind: r / max(t, 1) for kind, (r, t) in by_kind.items()}, "misread": misread,
            "ms_per_picture": 1000 * (time.perf_counter() - started) / n}


def run(model: str | None, n: int, seed: int, single: int | None = None, save: str | None = None,
        reader: str = DEFAULT_READER, line_model: str | None = "line", split: str = "test",
        rows: tuple[str, ...] = ROWS, recognizer: Recognizer | None = None) -> dict:
    """Measure ``rows`` (``n`` pictures each; ``single`` single-line numbers, default ``n``) with ``recognizer``, or
    ``model`` and ``line_model`` loaded with ``reader``."""
    rng = np.random.default_rng(seed)
    images, labels = benchmark_digits(split)
    if recognizer is None:
        recognizer = Recognizer.from_pretrained(model, line_model=line_model, reader=reader)
    result = {"model": str(recognizer.loaded.path), "arch": recognizer.spec.name, "seed": seed,
              "reader": recognizer.reader, "digits": split,
              "line_model": str(recognizer.line.path) if recognizer.line is not None else None}
    failures: list[tuple[str, bytes]] = []

    if n and "multi_line" in rows:
        exact = count_right = plain = 0
        misread = dict.fromkeys(MISREADS, 0)
        started = time.perf_counter()
        for k in range(n):
            base = int(rng.integers(*LINE_HEIGHT))
            lengths = [int(rng.integers(1, 9)) for _ in range(int(rng.integers(2, 6)))]
            heights = [int(base * rng.uniform(*LINE_HEIGHT_SPREAD)) for _ in lengths]
            index, _ = _draw_digits(sum(lengths), rng, labels)
            texts, drawn, at = [], [], 0
            for length, height in zip(lengths, heights, strict=True):
                part = index[at:at + length]
                at += length
                texts.append("".join(str(labels[i]) for i in part))
                drawn.append(number_alpha([images[i] for i in part], rng, height, TOUCHING)[0])
            picture = photograph(place(page_alpha(drawn, heights, rng), rng, margin=(0.05, 0.3)), rng,
                                 focus_size=FOCUS * base)
            truth = "\n".join(texts)
            answer = read_answer(recognizer, picture, truth)
            exact += answer["text"] == truth
            count_right += len(answer["lines"]) == len(lengths)
            alone = plain_right(recognizer, images, labels, index)
            plain += bool(alone.all())
            if answer["text"] != truth:
                misread[misread_kind(truth, answer["text"], alone)] += 1
                failures.append((f"lines-{k}-{truth.replace(chr(10), '_')}-as-"
                                 f"{answer['text'].replace(chr(10), '_') or 'none'}", picture))
        result["multi_line"] = {"n": n, "exact": exact / n, "line_count_right": count_right / n,
                                "plain_mnist_exact": plain / n, "misread": misread,
                                "ms_per_picture": 1000 * (time.perf_counter() - started) / n}

    if n and "separators" in rows:
        result["separators"] = _separators_row(recognizer, images, labels, rng, n, failures)
    single = n if single is None else single
    if single and "single_line" in rows:
        numbers = run_photo_digits(model, 0, single, seed, reader=reader, line_model=line_model, split=split,
                                   recognizer=recognizer)["numbers"]
        result["single_line"] = {"n": single, "exact": numbers["exact_match"],
                                 "plain_mnist_exact": numbers["plain_mnist_exact_match"],
                                 "misread": numbers["misread"],
                                 "ms_per_picture": numbers["ms_per_picture"]}
    # The rows below draw from a generator of their own, so adding them left the rows above as they were.
    rng = np.random.default_rng([seed, 1])
    if n and "touching_pairs" in rows:
        result["touching_pairs"] = _numbers_row(recognizer, images, labels, rng, n, (2, 2), 1.0, 0.05,
                                                "touching", failures)
    if n and "overlapping" in rows:
        result["overlapping"] = _numbers_row(recognizer, images, labels, rng, n, (3, 6), 1.0, 0.15,
                                             "overlapping", failures)
    if n and "long" in rows:
        result["long"] = _numbers_row(recognizer, images, labels, rng, n, (8, 12), TOUCHING, 0.05, "long", failures)
    if n and "spaced" in rows:  # its own generator too
        result["spaced"] = _numbers_row(recognizer, images, labels, np.random.default_rng([seed, 2]), n, (2, 6),
                                        0.0, 0.0, "spaced", failures, pitch=SPACED_PITCH)
    if n and "dusty" in rows:  # its own generator too
        result["dusty"] = _separators_row(recognizer, images, labels, np.random.default_rng([seed, 5]), n, failures,
                                          dusty=True)
    if n and "loose_marks" in rows:  # its own generator too
        result["loose_marks"] = _separators_row(recognizer, images, labels, np.random.default_rng([seed, 13]), n,
                                                failures, loose=True)
    if n and "underlined" in rows:  # its own generator too
        result["underlined"] = _numbers_row(recognizer, images, labels, np.random.default_rng([seed, 6]), n, (2, 6),
                                            TOUCHING, 0.05, "underlined", failures, underline=True)
    if n and "writers" in rows:  # its own generator too
        result["writers"] = _numbers_row(recognizer, images, labels, np.random.default_rng([seed, 7]), n, (2, 6),
                                         TOUCHING, 0.05, "writers", failures, writers=True)
    if n and "fine_pen" in rows:  # its own generator too
        result["fine_pen"] = _numbers_row(recognizer, images, labels, np.random.default_rng([seed, 8]), n, (2, 6),
                                          TOUCHING, 0.05, "fine-pen", failures, pen="fine pen")
    if n and "on_desk" in rows:  # its own generator too
        result["on_desk"] = _numbers_row(recognizer, images, labels, np.random.default_rng([seed, 9]), n, (2, 6),
                                         TOUCHING, 0.05, "desk", failures, paper="desk")
    if n and "squared" in rows:  # its own generator too
        result["squared"] = _numbers_row(recognizer, images, labels, np.random.default_rng([seed, 10]), n, (2, 6),
                                         TOUCHING, 0.05, "squared", failures, paper="squared")
    if n and "notebook" in rows:  # its own generator too
        result["notebook"] = _numbers_row(recognizer, images, labels, np.random.default_rng([seed, 11]), n, (2, 6),
                                          TOUCHING, 0.05, "notebook", failures, paper="notebook")
    if n and "framed" in rows:  # its own generator too
        result["framed"] = _numbers_row(recognizer, images, labels, np.random.default_rng([seed, 12]), n, (2, 6),
                                        TOUCHING, 0.05, "framed", failures, frame=True)
    if n and "drawn" in rows:  # its own generator too
        result["drawn"] = _numbers_row(recognizer, images, labels, np.random.default_rng([seed, 14]), n, (2, 6),
                                       TOUCHING, 0.05, "drawn", failures, drawn=DRAWN_HEIGHT)
    if n and "turned" in rows:  # its own generator too
        result["turned"] = _numbers_row(recognizer, images, labels, np.random.default_rng([seed, 15]), n, (3, 6),
                                        TOUCHING, 0.05, "turned", failures, turn=TURN)
    if n and "slanted" in rows:  # its own generator too
        result["slanted"] = _numbers_row(recognizer, images, labels, np.random.default_rng([seed, 16]), n, (3, 7),
                                         TOUCHING, 0.05, "slanted", failures, slant=SLANT)
    if n and "tiles" in rows:  # its own generator too
        result["tiles"] = _tiles_row(recognizer, images, labels, np.random.default_rng([seed, 3]), n, failures)
    if n and "tiles_apart" in rows:
        result["tiles_apart"] = _tiles_row(recognizer, images, labels, np.random.default_rng([seed, 4]), n, failures,
                                           TILE_PADDING)
    if save:
        save_failures(save, failures)
    return result


TILE_PADDING = (4, 12)  # tiles set apart: this many white columns on each side of every tile


def tile_strip(tiles: list[np.ndarray], pad: int, scale: float) -> bytes:
    """MNIST tiles side by side with ``pad`` white columns on each side of each, dark on white, scaled (bilinear)
    by ``scale``: a PNG."""
    strip = Image.fromarray(255 - np.hstack([np.pad(t, ((0, 0), (pad, pad))) for t in tiles]))
    return _png(np.asarray(strip.resize((round(strip.width * scale), round(strip.height * scale)), Image.BILINEAR)))


def _tiles_row(recognizer: Recognizer, images: np.ndarray, labels: np.ndarray, rng: np.random.Generator, n: int,
               failures: list[tuple[str, bytes]], padding: tuple[int, int] = (0, 0)) -> dict:
    """``n`` strips of 2–8 MNIST images side by side (``padding`` columns on each side of every one, the same
    throughout a strip), inverted, scaled 1–4× (bilinear), as PNG: % exact."""
    exact = plain = 0
    misread = dict.fromkeys(MISREADS, 0)
    started = time.perf_counter()
    for k in range(n):
        index, truth = _draw_digits(int(rng.integers(2, 9)), rng, labels)
        pad = int(rng.integers(padding[0], padding[1] + 1))
        picture = tile_strip([images[i] for i in index], pad, float(rng.uniform(1, 4)))
        text = read_answer(recognizer, picture, truth)["text"]
        exact += text == truth
        alone = plain_right(recognizer, images, labels, index)
        plain += bool(alone.all())
        if text != truth:
            misread[misread_kind(truth, text, alone)] += 1
            failures.append((f"tiles{pad}-{k}-{truth}-as-{text.replace(chr(10), '_') or 'none'}", picture))
    return {"n": n, "exact": exact / n, "plain_mnist_exact": plain / n, "misread": misread,
            "ms_per_picture": 1000 * (time.perf_counter() - started) / n}


def write_examples(directory: str, seed: int) -> list[Path]:
    """A few sample pictures (PNG): a column of readings and numbers with separators."""
    rng = np.random.default_rng(seed)
    mnist = load_mnist()
    first = {d: int(np.flatnonzero(mnist.test_labels == d)[0]) for d in range(10)}
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (("amounts", "12.50\n-3"), ("date", "23.11.2026"), ("groups", "12 345")):
        lines = text.split("\n")
        drawn = [line_alpha(line, [mnist.test_images[first[int(c)]] for c in line if c.isdigit()], rng, 64)
                 for line in lines]
        alpha = page_alpha(drawn, [64] * len(drawn), rng) if len(drawn) > 1 else drawn[0]
        path = out / f"read-{name}.png"
        Image.open(io.BytesIO(photograph(place(alpha, rng, margin=(0.1, 0.2)), rng))).save(path, optimize=True)
        written.append(path)
    return written


def print_table(result: dict) -> None:
    """One seed's table: the same measures as ``print_seeds_table``."""
    print_seeds_table([result])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="model directory (default: the bundled model)")
    parser.add_argument("--n", type=int, default=200, help="pictures per row")
    parser.add_argument("--single", type=int, default=None, help="single-line numbers (default: --n)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", default=None, help="several seeds, e.g. 0,1,2: each measured, then the median")
    parser.add_argument("--reader", default=DEFAULT_READER, help=f"how read reads a line: {', '.join(READERS)}")
    parser.add_argument("--line-model", default="line", help="line recognizer directory (default: the bundled one)")
    parser.add_argument("--digits", default="test", choices=("test", "val"),
                        help="draw MNIST test digits (report) or the held-out training digits (tune)")
    parser.add_argument("--rows", default=",".join(ROWS),
                        help=f"rows to measure (default: all of {','.join(ROWS)}); leaving out a row can change the "
                             "pictures of rows after it that share its random stream (a note says which)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 is steadier on a busy machine)")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    parser.add_argument("--save-failures", metavar="DIR", help="write the misread pictures here")
    parser.add_argument("--examples", metavar="DIR", help="write sample pictures here and exit")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.examples:
        for path in write_examples(args.examples, args.seed):
            print(path)
        return 0
    rows = tuple(r for r in args.rows.split(",") if r)
    unknown = set(rows) - set(ROWS)
    if unknown:
        parser.error(f"unknown rows {', '.join(sorted(unknown))}; choose from {', '.join(ROWS)}")
    note = shared_stream_note(rows)
    if note:
        print(note, file=sys.stderr)
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else [args.seed]
    results = []
    for seed in seeds:
        save = f"{args.save_failures}/seed{seed}" if args.save_failures and len(seeds) > 1 else args.save_failures
        results.append(run(args.model, args.n, seed, args.single, save, args.reader, args.line_model, args.digits,
                           rows))
        if not args.json and len(seeds) == 1:
            print_table(results[-1])
    if not args.json and len(seeds) > 1:
        print_seeds_table(results)
    print(json.dumps(results if len(seeds) > 1 else results[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
