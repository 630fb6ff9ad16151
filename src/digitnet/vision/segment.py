"""Split the ink of a written number into digits, left to right.

1. Connected components, grouped: pieces of one digit sit above one another (the detached bar of a 5, a
   stroke broken by a faint spot), while digits stand side by side. Dots and dirt are dropped.
2. A group the model reads confidently as one digit stays whole. One it doubts (touching digits read as
   an unsure 8), or one too wide for any digit, is cut into pieces along top-to-bottom paths through the
   least ink, which bend around interleaved strokes where a straight cut would not.
3. Which consecutive pieces make each digit is decided by the model (segmentation by recognition): every
   plausible run of pieces is classified, and dynamic programming picks the split of the line whose digits
   are most convincing: the model's confidence, less costs for cutting through strokes, for blank paper
   inside one digit, and for shapes no digit has (far wider than that digit usually is, or much shorter than
   the line).
Without a model, groups are cut where their widths say (``split_wide``).

The constants were tuned on ``benchmarks/photo_digits.py`` (seed 0) and checked on other seeds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from digitnet.vision.preprocess import Ink, normalize_digit, stroke_width

MERGE_OVERLAP = 0.5  # components are one digit when their x-overlap covers half of the narrower one,
STACKED = 0.35  # or when they share at most this fraction of the shorter one's height (one above the other)
NEAR = 0.15  # and are at most this fraction of the taller one's height apart sideways
TALL_ENOUGH = 0.5  # groups at least this fraction of the tallest set the line height
MIN_SIZE = 0.3  # groups shorter and narrower than this (in line heights) are dots and dirt, not digits
SPLIT_WIDTH = 1.25  # without a model: a group wider than this many line heights holds several digits,
DIGIT_WIDTH = 0.7  # each about this many line heights wide
CUT_FROM = 0.7  # with a model: groups wider than this (line heights) may be touching digits ...
TRUST = 0.99  # ... and are cut if the model doubts they are one digit,
ALWAYS_CUT = 1.6  # or if they are too wide for any digit
MIN_PIECE = 0.12  # pieces of a cut group are at least this wide
SEAM_STEP = 0.1  # cost of a cutting path's step sideways, in pixels of ink: prefer straight, bend for ink
MAX_RUN = 4  # a digit is made of at most this many pieces
MAX_GAP = 0.3  # pieces further apart than this (line heights) are never one digit
MAX_WIDTH = 1.6  # nor is a run of pieces wider than this
CUT_COST = 0.3  # log-score cost of each stroke a cut crosses
GAP_COST = 5.0  # log-score cost per line height of blank paper inside one digit: pieces apart are rarely one
ASPECT_SLACK = 1.0  # digits up to this many standard deviations wider than usual for their class cost nothing ...
ASPECT_WEIGHT = 1.0  # ... beyond it, this times the excess squared
SHORT = 0.75  # digits shorter than this fraction of the line are fragments ...
SHORT_WEIGHT = 6.0  # ... at this cost per line height missing
# log(width / height) of each digit's ink box (strokes at half level) in MNIST's 60,000 training digits:
# mean and standard deviation. A 1 is narrow, a 0 or a 2 nearly square.
ASPECT = [(-0.119, 0.218), (-1.007, 0.489), (-0.083, 0.242), (-0.262, 0.226), (-0.270, 0.229),
          (-0.086, 0.286), (-0.360, 0.229), (-0.294, 0.230), (-0.311, 0.237), (-0.433, 0.215)]

Classifier = Callable[[np.ndarray], np.ndarray]  # uint8 (N, 28, 28) -> probabilities (N, 10)


@dataclass
class Segment:
    """Ink of one digit (or a candidate): a crop of the working-resolution mask and where it is."""

    box: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive), working resolution
    mask: np.ndarray  # bool, the crop of ``box``: this segment's ink only
    probabilities: np.ndarray | None = None  # the model's answer, when segmentation asked it
    crossings: float = 0.0  # strokes cut at its left edge, when it was cut from a wider group
    image: np.ndarray | None = None  # its 28×28 (normalize_digit), once made

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]


def _tight(mask: np.ndarray, x0: int, y0: int) -> Segment | None:
    """The segment of ``mask`` (placed at x0, y0) cropped to its ink, or None if it has none."""
    rows = np.flatnonzero(mask.any(1))
    cols = np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return None
    crop = mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    return Segment((x0 + int(cols[0]), y0 + int(rows[0]), x0 + int(cols[-1]) + 1, y0 + int(rows[-1]) + 1), crop)


def join(segments: list[Segment]) -> Segment:
    """One segment holding the ink of several."""
    x0, y0 = min(s.box[0] for s in segments), min(s.box[1] for s in segments)
    x1, y1 = max(s.box[2] for s in segments), max(s.box[3] for s in segments)
    mask = np.zeros((y1 - y0, x1 - x0), bool)
    for s in segments:
        mask[s.box[1] - y0:s.box[3] - y0, s.box[0] - x0:s.box[2] - x0] |= s.mask
    return Segment((x0, y0, x1, y1), mask)


def _belong_together(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Are two ink boxes (x0, y0, x1, y1) parts of one digit? Boxes in rows: ``a`` and ``b`` (..., 4) broadcast.

    Digits on a line stand side by side at the same height. Pieces of one digit instead sit above one
    another: either in the same columns (the detached top of a 4), or stacked at an angle with little
    height in common (the flag of a 5 at the top right of its body, a 1 broken in the middle).
    """
    x_overlap = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])  # negative: a gap between them
    y_overlap = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])
    narrower = np.minimum(a[..., 2] - a[..., 0], b[..., 2] - b[..., 0])
    shorter = np.minimum(a[..., 3] - a[..., 1], b[..., 3] - b[..., 1])
    taller = np.maximum(a[..., 3] - a[..., 1], b[..., 3] - b[..., 1])
    return (x_overlap >= MERGE_OVERLAP * narrower) | ((y_overlap <= STACKED * shorter) & (x_overlap >= -NEAR * taller))


def merge_boxes(indices: Sequence[int], stats: np.ndarray,
                together: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> list[list[int]]:
    """Components (``stats`` rows) merged into groups while two groups' boxes belong ``together``.

    Every group starts as one component; when two merge, their box is the union, which may now take in another
    piece. The pair merged next is always the first, in the order of the groups, that belongs together — as if
    the search started over after every merge — but only pairs with the grown box are looked at again (no
    other pair changed), so a picture of many pieces takes seconds, not hours. ``together(p, q)`` compares
    float boxes (x0, y0, x1, y1) row by row (numpy broadcasting: one box against many).
    """
    groups = [[int(i)] for i in indices]
    boxes = np.asarray(stats, np.float64)[list(indices), :4].reshape(-1, 4)
    a = 0
    while a < len(groups):
        partners = np.flatnonzero(together(boxes[a][None], boxes[a + 1:]))
        if not len(partners):
            a += 1  # every pair up to here is apart
            continue
        b = a + 1 + int(partners[0])
        boxes[a] = np.concatenate([np.minimum(boxes[a, :2], boxes[b, :2]), np.maximum(boxes[a, 2:], boxes[b, 2:])])
        groups[a] += groups.pop(b)
        boxes = np.delete(boxes, b, 0)
        # The grown box may now belong with an earlier group: that pair comes first.
        while a and len(earlier := np.flatnonzero(together(boxes[:a], boxes[a][None]))):
            k = int(earlier[0])
            boxes[k] = np.concatenate([np.minimum(boxes[k, :2], boxes[a, :2]), np.maximum(boxes[k, 2:], boxes[a, 2:])])
            groups[k] += groups.pop(a)
            boxes = np.delete(boxes, a, 0)
            a = k
    return groups


def group_components(stats: np.ndarray) -> list[list[int]]:
    """Indices of components that make one digit together (a broken stroke), left to right."""
    groups = merge_boxes(range(len(stats)), stats, _belong_together)
    return sorted(groups, key=lambda g: stats[g, 0].min())


def line_height(segments: list[Segment]) -> float:
    """Height of a digit on this line: the median of the tall groups (a '1' is as tall as an '8')."""
    tallest = max(s.height for s in segments)
    return float(np.median([s.height for s in segments if s.height >= TALL_ENOUGH * tallest]))


def find_groups(ink: Ink) -> list[Segment]:
    """Ink grouped into digit candidates (broken strokes merged), left to right, dots and dirt dropped."""
    labels, stats = ink.components()
    segments = []
    for group in group_components(stats):
        x0, y0 = stats[group, 0].min(), stats[group, 1].min()
        x1, y1 = stats[group, 2].max(), stats[group, 3].max()
        crop = np.isin(labels[y0:y1, x0:x1], np.asarray(group) + 1)
        segments.append(Segment((int(x0), int(y0), int(x1), int(y1)), crop))
    if not segments:
        return []
    height = line_height(segments)
    return [s for s in segments if max(s.height, s.width) >= MIN_SIZE * height]


# ------------------------------------------------------------------------------- cutting


def _cut_columns(mask: np.ndarray, parts: int) -> list[int]:
    """Columns to cut ``mask`` into ``parts`` digits: the least ink near each evenly spaced position."""
    profile = mask.sum(0).astype(np.float64)
    width = mask.shape[1]
    step = width / parts
    cuts = []
    for j in range(1, parts):
        expected = j * step
        lo, hi = int(max(1, expected - 0.35 * step)), int(min(width - 1, expected + 0.35 * step))
        if hi <= lo:
            continue
        window = np.arange(lo, hi + 1)
        # The thinnest crossing wins; a small pull toward the expected spot breaks ties between blank columns.
        cost = profile[window] + 0.1 * np.abs(window - expected) / step * max(profile.max(), 1)
        cuts.append(int(window[np.argmin(cost)]))
    return sorted(set(cuts))


def _cut(segment: Segment, cuts: list[int]) -> list[Segment]:
    """Pieces of ``segment`` between straight cuts at these columns."""
    edges = [0, *cuts, segment.width]
    pieces = (_tight(segment.mask[:, a:b], segment.box[0] + a, segment.box[1]) for a, b in pairwise(edges))
    return [p for p in pieces if p is not None]


def split_wide(segment: Segment, height: float, depth: int = 0) -> list[Segment]:
    """Cut a segment too wide for one digit into digits by width alone (no model to ask), recursively."""
    if segment.width <= SPLIT_WIDTH * height or depth > 3:
        return [segment]
    parts = max(2, round(segment.width / (DIGIT_WIDTH * height)))
    pieces = _cut(segment, _cut_columns(segment.mask, parts))
    return [p for piece in pieces for p in split_wide(piece, height, depth + 1)]


def seams(segment: Segment, height: float) -> list[np.ndarray]:
    """Where touching digits may be parted: top-to-bottom paths through the least ink (as in seam carving).

    Neighbours written close together interleave, so a straight cut would slice off a piece of one and
    give it to the other; a path may bend around strokes (one pixel sideways per row, at a small cost) and
    crosses ink only where the digits really touch. Returns each path's x per row, left to right.
    """
    if segment.width <= CUT_FROM * height:
        return []
    mask = segment.mask
    h, w = mask.shape
    ink = mask.astype(np.float32)
    cost = ink[0].copy()
    moves = np.zeros((h, w), np.int8)
    columns = np.arange(w)
    options = np.empty((3, w), np.float32)  # a path's cost arriving from the left, from straight above, from the right
    options[0, 0] = options[2, -1] = np.inf
    for y in range(1, h):
        np.add(cost[:-1], SEAM_STEP, out=options[0, 1:])
        options[1] = cost
        np.add(cost[1:], SEAM_STEP, out=options[2, :-1])
        choice = options.argmin(0)
        cost = options[choice, columns] + ink[y]
        moves[y] = choice - 1  # where the path came from in the row above: -1 left, 0 straight, +1 right
    # Every column's path back to the top at once, row by row.
    ends = np.empty((h, w), np.int64)
    x = columns.copy()
    for y in range(h - 1, -1, -1):
        ends[y] = x
        x += moves[y, x]
    margin = max(1, int(MIN_PIECE * height))
    limit = int(segment.width / (0.3 * height))  # no more pieces than the narrowest digits could fill
    paths: list[np.ndarray] = []
    for end in np.argsort(cost, kind="stable"):
        if len(paths) >= limit:
            break
        path = ends[:, end].copy()
        # Both sides keep a narrow digit's worth of ink, and the path is not (nearly) one already found.
        if path.min() < margin or path.max() > w - margin:
            continue
        if all(np.abs(path - p).mean() >= margin for p in paths):
            paths.append(path)
    return sorted(paths, key=lambda p: p.mean())


def cut_along(segment: Segment, paths: list[np.ndarray]) -> list[Segment]:
    """Pieces of ``segment`` between the paths; each knows how many strokes its left path crossed."""
    columns = np.arange(segment.width)[None, :]
    width = stroke_width(segment.mask)
    bounds = [np.zeros(segment.height, np.int64), *paths, np.full(segment.height, segment.width)]
    pieces = []
    for index, (left, right) in enumerate(pairwise(bounds)):
        inside = (columns >= left[:, None]) & (columns < right[:, None])
        piece = _tight(segment.mask & inside, segment.box[0], segment.box[1])
        if piece is None:
            continue
        if index > 0:  # ink on the path, in strokes: 0 where the digits did not touch, ~1 for one stroke
            piece.crossings = float(segment.mask[np.arange(segment.height), left].sum()) / width
        pieces.append(piece)
    return pieces


# ------------------------------------------------------------------------ choosing digits


def aspect_z(segment: Segment, digit: int) -> float:
    """How unusual this segment's width/height is for ``digit``, in standard deviations (+ wider, − narrower)."""
    mean, std = ASPECT[digit]
    return (np.log(max(segment.width, 1) / max(segment.height, 1)) - mean) / std


def score(segment: Segment, probabilities: np.ndarray, height: float) -> float:
    """How convincing a digit this is: the model's log-confidence, less penalties for an odd shape.

    The shape terms catch what the model alone misses: two touching digits read as one wide 8, or the
    short fragment of a broken stroke read as a confident 1.
    """
    digit = int(probabilities.argmax())
    # Only too wide is suspicious: a thin 1 or a narrow 0 is still a digit, and fragments are caught by height.
    odd = max(0.0, aspect_z(segment, digit) - ASPECT_SLACK)
    short = max(0.0, SHORT - segment.height / height)
    return float(np.log(max(probabilities[digit], 1e-9))) - ASPECT_WEIGHT * odd**2 - SHORT_WEIGHT * short


def recognize(pieces: list[Segment], height: float, classify: Classifier,
              gap_cost: float = GAP_COST) -> list[Segment]:
    """The runs of consecutive pieces that make the most convincing digits (dynamic programming).

    A split between two pieces cut from one connected group costs ``CUT_COST`` per stroke it crosses:
    touching digits meet at one thin link, while cutting a 0 in half crosses two strokes.
    """
    runs: list[tuple[int, int]] = []
    gaps: dict[tuple[int, int], float] = {}  # the widest blank gap inside a run of several pieces, line heights
    for start in range(len(pieces)):
        for end in range(start + 1, min(len(pieces), start + MAX_RUN) + 1):
            run = pieces[start:end]
            if end - start > 1:
                gap = max(b.box[0] - max(p.box[2] for p in run[:i + 1]) for i, b in enumerate(run[1:]))
                if gap > MAX_GAP * height or run[-1].box[2] - run[0].box[0] > MAX_WIDTH * height:
                    break
                gaps[(start, end)] = max(0.0, gap / height)
            runs.append((start, end))
    candidates = [join(pieces[a:b]) if b - a > 1 else pieces[a] for a, b in runs]
    # One forward pass for every candidate the model has not seen yet (whole groups were read already).
    unseen = [i for i, c in enumerate(candidates) if c.probabilities is None]
    probabilities = [c.probabilities for c in candidates]
    if unseen:
        fresh = classify(np.stack([normalize_digit(candidates[i].mask) for i in unseen]))
        for i, probs in zip(unseen, fresh, strict=True):
            probabilities[i] = probs
    scores = {}
    for run, candidate, probs in zip(runs, candidates, probabilities, strict=True):
        scores[run] = (score(candidate, probs, height) - CUT_COST * pieces[run[0]].crossings
                       - gap_cost * gaps.get(run, 0.0))
    chosen = {run: (c, p) for run, c, p in zip(runs, candidates, probabilities, strict=True)}
    # best[i]: the best total score for pieces[:i] and the run that ends there.
    best: list[tuple[float, tuple[int, int] | None]] = [(0.0, None)] + [(-np.inf, None)] * len(pieces)
    for start, end in runs:  # runs are ordered by start, so best[start] is final when used
        total = best[start][0] + scores[(start, end)]
        if total > best[end][0]:
            best[end] = (total, (start, end))
    digits = []
    end = len(pieces)
    while end > 0:
        run = best[end][1]
        if run is None:  # unreachable: every piece can stand alone
            raise RuntimeError("segmentation found no path")
        segment, probs = chosen[run]
        digits.append(Segment(segment.box, segment.mask, probs))
        end = run[0]
    return digits[::-1]


def find_digits(ink: Ink, classify: Classifier | None = None) -> list[Segment]:
    """One segment per digit, left to right; with ``classify``, each carries the model's probabilities."""
    groups = find_groups(ink)
    if not groups:
        return []
    height = line_height(groups)
    if classify is None:
        digits = [piece for g in groups for piece in split_wide(g, height)]
        return sorted(digits, key=lambda s: (s.box[0] + s.box[2]) / 2)
    # A group the model reads confidently as one digit is one digit: asked about the halves of a 0, a model
    # will happily see a 1 and a 2, so pieces are offered only where it doubts (or no digit is that wide).
    whole = classify(np.stack([normalize_digit(g.mask) for g in groups]))
    pieces = []
    for group, probs in zip(groups, whole, strict=True):
        group.probabilities = probs
        doubtful = probs.max() < TRUST or group.width > ALWAYS_CUT * height
        pieces.extend(cut_along(group, seams(group, height)) if doubtful else [group])
    pieces.sort(key=lambda s: (s.box[0] + s.box[2]) / 2)
    # Where printed box lines were taken away, strokes that crossed them were cut with them: blank paper inside
    # a digit is expected there, not a sign of two digits.
    return recognize(pieces, height, classify, 0.0 if ink.in_boxes else GAP_COST)
