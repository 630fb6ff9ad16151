"""Lines of writing: the ink's pieces grouped into lines, each line read into digits, separators and spaces.

1. Connected components are found once. The tall ones (digits, or most of one) are *anchors*: walking them
   left to right, each joins the line whose centre, extended to its column, it sits closest to (within
   ``SAME_LINE`` line heights), or starts a new line. A line's centre follows its anchors (a least-squares
   fit, so a slightly sloped line is followed along its slope), and lines of different heights keep their own.
2. Every other piece (a dot, a comma, a minus, the detached bar of a 5, dust) goes to the line it is
   vertically closest to; so does each anchor, which stays with its own line on a tie. A line that keeps none
   of its own anchors was a stray piece of another and goes, so every line holds ink.
3. Per line, pieces that stand alone and have the shape of a separator or sign are read as such
   (:mod:`marks`); the rest is the line's ink, split into digits by :func:`segment.find_digits` exactly as a
   picture of one line always was. Gaps wider than a space between digits become spaces.

Reading order: lines top to bottom, items left to right.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from digitnet.vision.marks import Mark, classify_mark, is_stacked, space_between
from digitnet.vision.preprocess import Ink, opencv
from digitnet.vision.segment import Classifier, Segment, find_digits, merge_boxes

TALL = 0.3  # components at least this fraction of the tallest measure the typical digit height ...
ANCHOR = 0.55  # ... and those at least this fraction of that height set the lines
PIECE_GAP = 0.1  # anchors one above the other at most this far apart (typical heights) are one broken digit ...
PIECE_UNION = 1.5  # ... if together they are at most this tall: lines stand further apart;
BREAK = 0.05  # so are pieces parted by at most this fraction of their joint height, whatever the digits' size
SAME_LINE = 0.5  # an anchor joins a line whose centre at its column is at most this many line heights away
MAX_SLOPE = 0.15  # a line's fitted slope is clamped to this (about 8.5 degrees)
MARK_SIZE = 0.65  # only pieces shorter than this (line heights) can be separators or signs
MIN_SPECK = 4  # dropped specks of fewer pixels are not even looked at as marks
FIT_COUNT = 3  # a slope is fitted once a line has this many anchors (two digits' jitter is no slope) ...
FIT_SPAN = 1.0  # ... spanning this many line heights sideways
# A line steeper than MAX_SLOPE is found whole (one_line_slope) where each digit steps from the last along it within
# this many digit heights (a digit's own jitter; a level line's step where the fit slopes 18° is 0.3), ...
STEP = 0.3
MAX_LINE_DIGITS = 64  # ... and it has no more digits than this (a page of dust is no line)
# How far MNIST's writers lean (see writing_slant): a digit -0.11 on average (a little forward), spread (standard
# deviation) 0.27, so that a line of k digits spreads 0.27 / sqrt(k) (tests/vision/test_lines.py measures both again on
# the training digits). A line leaning further than SLANT_SPREADS spreads from the average (the 1st or 99th percentile
# of lines of as many MNIST digits) is sheared back to that bound before it is read: the models learned MNIST's lean
# (with a little more from their augmentation, so the bound is a cautious one), and cut into upright columns a steeply
# slanted digit's top stands over its neighbour's foot.
MNIST_SLANT = (-0.11, 0.27)
SLANT_SPREADS = 2.33


@dataclass
class Line:
    """A line of writing: its components and where its digits' tops and baseline run (working resolution)."""

    components: list[int] = field(default_factory=list)  # indices into the components' stats
    blobs: list[tuple[float, float, float, float]] = field(default_factory=list)  # anchors' boxes, broken digits whole
    slope: float = 0.0  # dy/dx of the line's top and baseline
    top0: float = 0.0  # top(x) = top0 + slope·x
    bottom0: float = 0.0  # bottom(x) = bottom0 + slope·x: the baseline
    height: float = 1.0  # typical digit height

    def top(self, x: float) -> float:
        return self.top0 + self.slope * x

    def bottom(self, x: float) -> float:
        return self.bottom0 + self.slope * x

    def centre(self, x: float) -> float:
        return (self.top(x) + self.bottom(x)) / 2


@dataclass
class Item:
    """One character of a line: a digit (with its segment and probabilities) or a separator, sign or space."""

    char: str  # "0"-"9", ".", ",", "-" or " "
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive), working resolution
    confidence: float
    segment: Segment | None = None  # digits only: its ink and the model's probabilities


@dataclass
class TextLine:
    """A line read: its items left to right."""

    items: list[Item]

    @property
    def box(self) -> tuple[int, int, int, int]:
        boxes = np.array([item.box for item in self.items])
        return int(boxes[:, 0].min()), int(boxes[:, 1].min()), int(boxes[:, 2].max()), int(boxes[:, 3].max())


def _fit(line: Line, level: bool = False) -> None:
    """Set a line's slope, top, baseline and height from its anchors (a broken digit counts once, whole);
    ``level``: no slope."""
    boxes = np.array(line.blobs, np.float64)
    centres_x = (boxes[:, 0] + boxes[:, 2]) / 2
    heights = boxes[:, 3] - boxes[:, 1]
    # statistics.median: the same value as np.median, which costs ten times more on a handful of boxes.
    line.height = float(statistics.median(heights.tolist()))
    slope = 0.0
    if not level and len(boxes) >= FIT_COUNT and np.ptp(centres_x) >= FIT_SPAN * line.height:
        slope = float(np.clip(_slope(centres_x, (boxes[:, 1] + boxes[:, 3]) / 2), -MAX_SLOPE, MAX_SLOPE))
    line.slope = slope
    line.top0 = float(statistics.median((boxes[:, 1] - slope * centres_x).tolist()))
    line.bottom0 = float(statistics.median((boxes[:, 3] - slope * centres_x).tolist()))


def _slope(xs: np.ndarray, ys: np.ndarray) -> float:
    """The least-squares slope of points (xs, ys), in closed form (np.polyfit's, a tenth of its time on a handful of
    points); 0 where they stand in one column."""
    dx = xs - xs.mean()
    spread = float(dx @ dx)
    return float(dx @ (ys - ys.mean()) / spread) if spread > 0 else 0.0


def _anchors(stats: np.ndarray) -> np.ndarray:
    """The components (stats rows) tall enough to set lines: digits, or most of one."""
    heights = stats[:, 3] - stats[:, 1]
    typical = float(np.median(heights[heights >= TALL * heights.max()]))
    return np.flatnonzero(heights >= ANCHOR * typical)


def _digit_blobs(stats: np.ndarray) -> list[list[int]]:
    """The anchors of components (stats rows), broken digits whole (:func:`_broken_digits`), left to right."""
    heights = stats[:, 3] - stats[:, 1]
    return _broken_digits(stats, _anchors(stats), float(np.median(heights[heights >= 0.5 * heights.max()])))


def digit_blobs(ink: Ink) -> list[list[int]]:
    """:func:`_digit_blobs` of ``ink``'s components, worked out once per picture: the slope check, the line reader
    and the segmenter all find lines in the same ink (kept in ``ink.cache``; read, never changed)."""
    if "blobs" not in ink.cache:
        ink.cache["blobs"] = _digit_blobs(ink.components()[1]) if len(ink.components()[1]) else []
    return ink.cache["blobs"]


def _broken_digits(stats: np.ndarray, anchors: np.ndarray, typical: float) -> list[list[int]]:
    """Anchors grouped so that the pieces of one broken digit (an 8 in three parts) stay together, left to right.

    Pieces of a digit share columns and (nearly) touch, and together are about a digit tall; digits of
    neighbouring lines stand further apart.
    """
    def one_digit(p: np.ndarray, q: np.ndarray) -> np.ndarray:  # boxes in rows, broadcast (see merge_boxes)
        overlap = np.minimum(p[..., 2], q[..., 2]) - np.maximum(p[..., 0], q[..., 0])
        gap = np.maximum(p[..., 1], q[..., 1]) - np.minimum(p[..., 3], q[..., 3])
        union = np.maximum(p[..., 3], q[..., 3]) - np.minimum(p[..., 1], q[..., 1])
        close = ((gap <= PIECE_GAP * typical) & (union <= PIECE_UNION * typical)) | (gap <= BREAK * union)
        return (overlap >= 0.5 * np.minimum(p[..., 2] - p[..., 0], q[..., 2] - q[..., 0])) & close

    blobs = merge_boxes(anchors, stats, one_digit)
    order = np.argsort([(stats[b, 0].min() + stats[b, 2].max()) / 2 for b in blobs], kind="stable")
    return [blobs[i] for i in order]


def find_lines(stats: np.ndarray, level: bool = False, blobs: list[list[int]] | None = None) -> list[Line]:
    """Components (stats rows: x0, y0, x1, y1, area) grouped into lines, top to bottom (``level``: no slope;
    ``blobs``: their :func:`digit_blobs`, where known)."""
    if len(stats) == 0:
        return []
    blobs = _digit_blobs(stats) if blobs is None else blobs
    lines: list[Line] = []
    owner: dict[int, Line] = {}  # anchor → the line it joined
    for blob in blobs:
        x0, y0 = stats[blob, 0].min(), stats[blob, 1].min()
        x1, y1 = stats[blob, 2].max(), stats[blob, 3].max()
        cx, cy, h = (x0 + x1) / 2, (y0 + y1) / 2, y1 - y0
        distances = [abs(cy - line.centre(cx)) / max(line.height, h) for line in lines]
        best = int(np.argmin(distances)) if distances else -1
        if best < 0 or distances[best] > SAME_LINE:
            lines.append(Line())
            best = len(lines) - 1
        owner.update((int(index), lines[best]) for index in blob)
        lines[best].blobs.append((x0, y0, x1, y1))
        _fit(lines[best], level)
    lines = [line for line in lines if not _inside_taller_line(line, lines)]
    # Every piece goes to the line it is closest to. A line that keeps none of its own anchors (a later anchor
    # moved its fit onto another line's) goes, one at a time, and the pieces are placed again: the last line
    # left keeps its own, so every line that stays holds ink.
    while True:
        spans = line_spans(lines)
        homes = [_home(lines, stats[index], owner.get(index), spans) for index in range(len(stats))]
        orphan = next((k for k, line in enumerate(lines)
                       if not any(homes[i] == k and owner.get(i) is line for i in range(len(stats)))), None)
        if orphan is None:
            break
        del lines[orphan]
    for index, home in enumerate(homes):
        lines[home].components.append(index)
    return sorted(lines, key=lambda line: line.centre(float(stats[:, 0].min() + stats[:, 2].max()) / 2))


def one_line_slope(stats: np.ndarray, blobs: list[list[int]] | None = None) -> float | None:
    """The slope (dy/dx) of writing that is a single line of three digits or more, however steep; None for anything
    else (fewer digits, several lines).

    :func:`find_lines` follows a line's slope up to ``MAX_SLOPE``: past it, each digit falls further below the line
    than ``SAME_LINE`` allows and starts a line of its own. Here the digits (broken ones whole) are fitted by least
    squares all at once. They are one line where every centre lies within ``SAME_LINE`` digit heights of the fit (lines
    of a page stand further apart) and every step from a digit to the next follows it within ``STEP`` heights: two
    short level lines, one indented under the other, fit a slope as well, but step level within each line.
    ``blobs``: the components' :func:`digit_blobs`, where known.
    """
    if len(stats) < FIT_COUNT or len(_anchors(stats)) > MAX_LINE_DIGITS:
        return None
    blobs = _digit_blobs(stats) if blobs is None else blobs
    if len(blobs) < FIT_COUNT:
        return None
    boxes = np.array([(stats[b, 0].min(), stats[b, 1].min(), stats[b, 2].max(), stats[b, 3].max()) for b in blobs],
                     np.float64)
    xs, ys = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2  # left to right
    slope = _slope(xs, ys)
    height = float(np.median(boxes[:, 3] - boxes[:, 1]))
    across = np.abs(ys - ys.mean() - slope * (xs - xs.mean())) / np.hypot(1.0, slope)  # each centre from the fit
    steps = np.abs(np.diff(ys) - slope * np.diff(xs))
    return slope if across.max() <= SAME_LINE * height and steps.max() <= STEP * height else None


def learned_slant(digits: int) -> tuple[float, float]:
    """The least and most lean (see :func:`writing_slant`) of all but 1% either way of lines of ``digits`` MNIST
    digits, as a normal spread gives it (measured for lines of three digits and more; one digit's lean has longer
    tails, so for it the bounds are a little narrower than MNIST's own): how far the models learned writing of that
    many digits to lean."""
    average, spread = MNIST_SLANT
    reach = SLANT_SPREADS * spread / math.sqrt(max(digits, 1))
    return average - reach, average + reach


def writing_slant(ink: Ink) -> float | None:
    """How far the writing leans: the shear (x moved per row, x right, y down, so a forward slant is negative) that
    best explains its digits' ink, as MNIST's deskewing measures a digit (the covariance of x and y over the
    variance of y), pooled over the digits (the anchors of :func:`digit_blobs`: marks and dust say nothing of a hand's
    slant). None where there are no digits.

    A piece twice as wide as tall or wider is digits run together (a single digit leaning up to 45° is narrower): it
    is measured in upright strips as wide as it is tall or a little wider, each on its own, else digits standing higher
    or lower than their neighbours would read as a lean.
    """
    labels, stats = ink.components()
    cv2 = opencv()
    covariance = spread = 0.0
    for index in sorted(anchor for blob in digit_blobs(ink) for anchor in blob):  # (found once a picture, then kept)
        x0, y0, x1, y1 = (int(v) for v in stats[index, :4])
        piece = (labels[y0:y1, x0:x1] == index + 1).view(np.uint8)  # (labels count from 1; 0 is paper)
        width = x1 - x0
        strips = max(width // (y1 - y0), 1)
        for k in range(strips):  # central moments, in OpenCV: x's covariance with y, y's variance (times the area)
            moments = cv2.moments(piece[:, k * width // strips:(k + 1) * width // strips], binaryImage=True)
            covariance += moments["mu11"]
            spread += moments["mu02"]
    return covariance / spread if spread > 0 else None


def _home(lines: list[Line], box: np.ndarray, own: Line | None, spans: list[np.ndarray]) -> int:
    """The line a piece goes to: the nearest; an anchor tied between its own line and others stays with its own."""
    keys = _placement(lines, box, spans)
    best = min(range(len(lines)), key=keys.__getitem__)
    mine = next((k for k, line in enumerate(lines) if line is own), None)
    return mine if mine is not None and keys[mine][0] <= keys[best][0] else best


def _inside_taller_line(line: Line, lines: list[Line]) -> bool:
    """Is a "line" only pieces within another line's band (top to baseline) and too short to be its digits?

    A big comma, or a tall minus's neighbour, can be tall enough to anchor a line of its own; lines of writing
    stand apart, so ink reaching into a much taller line's band belongs to that line (as a mark or a piece).
    """
    for other in lines:
        if other is line or line.height >= MARK_SIZE * other.height:
            continue
        if all(y0 < other.bottom((x0 + x1) / 2) and y1 > other.top((x0 + x1) / 2) for x0, y0, x1, y1 in line.blobs):
            return True
    return False


def line_spans(lines: list[Line]) -> list[np.ndarray]:
    """Each line's digits' columns, (blobs, 2) float: x0 and x1 of every blob (what placing a piece compares with:
    worked out once for the many pieces of a picture, not once a piece)."""
    return [np.array([(b[0], b[2]) for b in line.blobs], np.float64).reshape(-1, 2) for line in lines]


def _placement(lines: list[Line], box: np.ndarray,
               spans: list[np.ndarray] | None = None) -> list[tuple[float, float, float, float]]:
    """Per line, how far a piece (box x0, y0, x1, y1) is from it, to be compared as tuples (smaller: nearer).

    First its distance outside the line's band (top to baseline) plus a tenth of its distance beyond the line's
    ends, in line heights (rounded, so that equal geometry ties exactly); on a tie the line whose span covers
    the piece, then the one with a digit nearer in x, then the one whose centre is nearer. ``spans``: the
    lines' :func:`line_spans`, if known.
    """
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    keys = []
    for line, span in zip(lines, spans if spans is not None else line_spans(lines), strict=True):
        outside = max(line.top(cx) - cy, cy - line.bottom(cx), 0.0) / line.height
        left, right = span[:, 0].min(), span[:, 1].max()  # numpy scalars, as the blobs' ints were: same rounding
        beyond = max(left - cx, cx - right, 0.0) / line.height
        near = float(np.maximum(np.maximum(span[:, 0] - x1, x0 - span[:, 1]), 0.0).min()) / line.height
        keys.append((round(outside + 0.1 * beyond, 9), beyond, near, abs(cy - line.centre(cx)) / line.height))
    return keys


def nearest_line(lines: list[Line], box: np.ndarray, spans: list[np.ndarray] | None = None) -> int:
    """The line a piece of ink (box x0, y0, x1, y1) is vertically closest to, relative to the line's height.

    Sideways distance beyond a line's ends counts a tenth as much; ties go to the line whose span covers the
    piece, then to the one with a digit nearer in x (see :func:`_placement`). ``spans``: :func:`line_spans`,
    for many pieces placed among the same lines.
    """
    keys = _placement(lines, box, spans)
    return min(range(len(lines)), key=keys.__getitem__)


def dropped_specks(ink: Ink) -> tuple[np.ndarray, list[np.ndarray]]:
    """Stats (x0, y0, x1, y1, area) and masks of the pieces of ink that :func:`find_ink` dropped as specks.

    A thin pen's decimal point is far smaller than a digit and goes with the dust; it gets a second chance as
    a mark (only as one: it never joins a digit's ink). Only ink above find_ink's threshold counts: fainter
    pieces are the paper's noise, not a pen's.
    """
    labels, stats = ink.thresholded_components()
    kept = np.zeros(len(stats) + 1, bool)
    kept[labels[ink.mask]] = True
    dropped = np.flatnonzero(~kept[1:] & (stats[:, 4] >= MIN_SPECK))
    return stats[dropped], [labels[stats[i, 1]:stats[i, 3], stats[i, 0]:stats[i, 2]] == i + 1 for i in dropped]


def read_lines(ink: Ink, classify: Classifier) -> list[TextLine]:
    """The lines of writing in ``ink``, each read into digits, separators, signs and spaces, in reading order.

    A picture holding one line and no separators is read exactly as :func:`segment.find_digits` reads it.
    """
    labels, stats = ink.components()
    # Writing in form boxes: the printed lines were found level, so the rows of writing are level too (a digit
    # sitting low in its box must not tilt the line), and specks are what is left of the lines, not points.
    lines = find_lines(stats, level=ink.in_boxes, blobs=digit_blobs(ink))
    stroke = ink.stroke_width()
    result = []
    no_specks = (np.zeros((0, 5), np.int64), [])
    specks, speck_masks = dropped_specks(ink) if lines and not ink.in_boxes else no_specks
    spans = line_spans(lines)
    speck_lines = np.array([nearest_line(lines, box, spans) for box in specks], np.int64)
    for number, line in enumerate(lines):
        members = np.asarray(line.components, np.int64)  # as indices even if empty
        near = _column_neighbours(stats[members])
        marks: dict[int, Mark] = {}
        for index in members:
            box = stats[index]
            if box[3] - box[1] >= MARK_SIZE * line.height:
                continue
            others = members[near(box)]
            if is_stacked(box, stats[others[others != index]]):
                continue
            cx = (box[0] + box[2]) / 2
            own = labels[box[1]:box[3], box[0]:box[2]] == index + 1
            mark = classify_mark(box, int(box[4]), line.top(cx), line.bottom(cx), stroke, own)
            if mark is not None:
                marks[int(index)] = mark
        extra = []  # marks among the dropped specks: not part of the line's ink
        for box, own, home in zip(specks, speck_masks, speck_lines, strict=True):
            if home != number:
                continue
            cx = (box[0] + box[2]) / 2
            mark = classify_mark(box, int(box[4]), line.top(cx), line.bottom(cx), stroke, own)
            if mark is not None and mark.char in ".," and not is_stacked(box, stats[members[near(box)]]):
                extra.append(mark)
        if len(lines) == 1 and not marks:
            line_ink = ink  # one line, nothing else: exactly what was read before lines existed
        else:
            keep = np.zeros(len(stats) + 1, bool)
            keep[[i + 1 for i in members if i not in marks]] = True
            line_ink = replace(ink, mask=keep[labels])
        digits = find_digits(line_ink, classify) if line_ink.mask.any() else []
        items = [Item(str(int(s.probabilities.argmax())), s.box, float(s.probabilities.max()), s) for s in digits]
        items += [Item(m.char, m.box, m.confidence) for m in [*marks.values(), *extra]]
        items.sort(key=lambda item: (item.box[0] + item.box[2]) / 2)
        if not items:
            continue
        # Digits written in form boxes are spaced by the boxes, not by the writer: a narrow 1 in its box leaves
        # a gap as wide as a space, so a boxed line has none.
        result.append(TextLine(items if ink.in_boxes else _with_spaces(items, line)))
    return result


def _column_neighbours(boxes: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """For boxes (N, ≥4: x0, y0, x1, y1), a function giving the rows of those that share or touch a box's columns
    (in no particular order): all that :func:`marks.is_stacked` can find a piece stacked on. Sorted by left edge
    once, so that a line of thousands of pieces (a photo of noise) is not compared all with all."""
    order = np.argsort(boxes[:, 0], kind="stable")
    lefts = boxes[order, 0]
    widest = int((boxes[:, 2] - boxes[:, 0]).max()) if len(boxes) else 0

    def near(box: np.ndarray) -> np.ndarray:
        rows = order[np.searchsorted(lefts, box[0] - widest):np.searchsorted(lefts, box[2], side="right")]
        return rows[boxes[rows, 2] >= box[0]]

    return near


def _with_spaces(items: list[Item], line: Line) -> list[Item]:
    """Items with a space wherever two neighbouring digits stand much wider apart than the line's others."""
    top = min(item.box[1] for item in items)
    bottom = max(item.box[3] for item in items)
    pairs = [k for k in range(len(items) - 1) if items[k].segment is not None and items[k + 1].segment is not None]
    pitches = {k: ((items[k + 1].box[0] + items[k + 1].box[2]) - (items[k].box[0] + items[k].box[2])) / 2
               for k in pairs}
    out = [items[0]]
    for k in range(len(items) - 1):
        if k in pitches:
            others = [p for j, p in pitches.items() if j != k]
            usual = float(np.median(others)) if others else None
            space = space_between(items[k].box, items[k + 1].box, line.height, top, bottom, usual)
            if space is not None:
                out.append(Item(space.char, space.box, space.confidence))
        out.append(items[k + 1])
    return out
