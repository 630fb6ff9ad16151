"""Lines drawn by hand under the writing (a total underlined once or twice): find them and take them away.

An underline is not a digit, yet read as ink it joins the digits it touches (a 0 on a bar reads as a 2) and the
recognizers, trained on digits, read the bar itself as 1s and 2s. It is told from writing by its shape alone: the
*lowest* ink of a piece over a stretch of columns longer than ``MIN_LENGTH`` of the writing's digit height, thin
there (a pen stroke, not a digit's body), near level, straight or smoothly bowed, with writing above it. A minus sign
or a 7's bar is far shorter than that; the bottoms of touching digits (bowls, bars and tails one after another)
leave a line or wobble about it; and a line joined to the only writing above it, which stays one piece without it,
is that writing's own stroke (a wide 2's base), not a line under it.

Where a digit's stroke meets the line, the line's band is taken from it too (the digit keeps everything above the
band). Like :mod:`boxes`, numpy only; it looks only at the pieces wide enough to hold one.
"""

from __future__ import annotations

import numpy as np

from digitnet.vision.preprocess import connected_components

MIN_LENGTH = 1.5  # an underline is at least this many digit heights long (a minus sign: at most ~0.7) ...
MAX_THICKNESS = 0.35  # ... at most this many thick
MAX_SLOPE = 0.25  # rise over run (14°)
MIN_COVERAGE = 0.85  # of the columns along it, at least this share show it as their lowest, thin ink
MAX_WOBBLE = 0.15  # its middle strays at most this many of its thicknesses (RMS) from a parabola
ABOVE = 1.3  # writing within this many digit heights above it, in at least ...
MIN_ABOVE = 0.4  # ... this share of its columns
ALONE_THICKNESS = 1.25  # a column's lowest run at most this many times the line's thickness is the line alone
PART = 0.1  # a piece of the writing at least this share of the line's piece counts as writing, not a sliver
MAX_LINES = 3  # lines under one another looked for (a total is underlined twice)
SLOPES = np.linspace(-MAX_SLOPE, MAX_SLOPE, 41)


def underline_mask(labels: np.ndarray, stats: np.ndarray, pen: float) -> np.ndarray | None:
    """The pixels of a mask that are lines drawn under the writing (bool, the mask's shape); None when there are none.

    ``labels, stats``: the mask's connected components (as :func:`preprocess.connected_components` gives them);
    ``pen``: its stroke width. The digit height is the median height of the pieces taller than a few pens (the
    digits; marks and a lone underline are not).
    """
    heights, widths = stats[:, 3] - stats[:, 1], stats[:, 2] - stats[:, 0]
    tall = heights >= 2.5 * pen
    if not tall.any():
        return None
    height = float(np.median(heights[tall]))
    found = None
    for k in np.flatnonzero(widths >= MIN_LENGTH * height):
        x0, y0, x1, y1 = (int(v) for v in stats[k, :4])
        band = _underline_in(labels, k + 1, (x0, y0, x1, y1), height)
        if band is not None:
            found = np.zeros(labels.shape, bool) if found is None else found
            found[y0:y1, x0:x1] |= band
    return found


def _underline_in(labels: np.ndarray, label: int, box: tuple[int, int, int, int], height: float) -> np.ndarray | None:
    """The pixels of the piece ``label`` of ``labels`` (in its ``box``) that are an underline, if it holds one (see
    the module docstring)."""
    x0, y0, x1, y1 = box
    piece = labels[y0:y1, x0:x1] == label
    h, w = piece.shape
    rows = np.arange(h)[:, None]
    has = piece.any(0)
    bottom = h - 1 - piece[::-1].argmax(0)  # each column's lowest ink ...
    # ... and the top of the vertical run of ink it ends: one past the last paper above it
    top = np.where(~piece & (rows < bottom), rows, -1).max(0) + 1
    thickness = bottom - top + 1
    middles = (top + bottom) / 2
    thin = has & (thickness <= MAX_THICKNESS * height)
    xs = np.flatnonzero(thin)
    if len(xs) < MIN_COVERAGE * MIN_LENGTH * height:
        return None
    ys = middles[xs]
    # Tolerances in the stroke's own thickness (a photo's blur widens strokes, a coarse one thins them).
    tolerance = max(2.0, float(np.median(thickness[xs])) / 2)
    # The straight line through most thin bottoms: a vote over slopes and intercepts (bins of the tolerance).
    intercepts = ys[None, :] - SLOPES[:, None] * xs[None, :]
    bins = np.floor((intercepts - intercepts.min()) / tolerance).astype(np.int64)
    counts = np.zeros((len(SLOPES), int(bins.max()) + 3), np.int64)
    np.add.at(counts, (np.arange(len(SLOPES))[:, None].repeat(len(xs), 1), bins + 1), 1)
    near = counts[:, :-2] + counts[:, 1:-1] + counts[:, 2:]  # a bin and its neighbours: a line a little bowed
    best, start = np.unravel_index(int(near.argmax()), near.shape)
    lo = intercepts.min() + (start - 1) * tolerance
    on = np.abs(intercepts[best] - (lo + 1.5 * tolerance)) <= 1.5 * tolerance
    if on.sum() < 2:
        return None
    slope, intercept = np.polyfit(xs[on], ys[on], 1)  # refit on the columns it passes through
    on = np.abs(ys - (slope * xs + intercept)) <= tolerance
    stretch = _longest_run(xs[on], max_gap=0.5 * height)
    if stretch is None:
        return None
    first, last = stretch
    length = last - first + 1
    inside = on & (xs >= first) & (xs <= last)
    if length < MIN_LENGTH * height or np.count_nonzero(inside) < MIN_COVERAGE * length or abs(slope) > MAX_SLOPE:
        return None
    half = float(np.median(thickness[xs[inside]])) / 2
    as_thick = thickness <= ALONE_THICKNESS * 2 * half + 1  # columns whose run is no thicker than the line's
    # A pen's line runs smooth, bowed at most: measured where it is alone (as thick as it is), its middle keeps to a
    # parabola.
    level = inside & as_thick[xs]
    if np.count_nonzero(level) < 3:
        return None
    bow = np.polyfit(xs[level], ys[level], 2)
    # (Drawn in whole pixels, a sloped line's middle strays from its own by up to half a pixel: a rounding error's
    # variance, 1/12 px², is allowed besides the wobble; a line one or two pixels thick is all rounding.)
    if np.mean((ys[level] - np.polyval(bow, xs[level])) ** 2) > (MAX_WOBBLE * 2 * half) ** 2 + 1 / 12:
        return None
    centre = slope * np.arange(w) + intercept
    # Writing above it: in the whole picture, within ABOVE digit heights of the line.
    span = slice(first, last + 1)
    window_top = int(max(0, np.floor(y0 + centre[span].min() - half - ABOVE * height)))
    window = labels[window_top:y0 + int(np.ceil(centre[span].max())) + 1, x0 + first:x0 + last + 1]
    window_rows = np.arange(window.shape[0])[:, None] + window_top - y0
    above = (window > 0) & (window_rows < centre[None, span] - half - tolerance)
    if np.count_nonzero(above.any(0)) < MIN_ABOVE * length:
        return None
    others_above = bool((above & (window != label)).any())
    # Along its length, and beyond where the piece's lowest ink still follows it (the pen's round ends, a hook):
    alone = thin & (np.abs(middles - centre) <= 2 * tolerance)  # columns whose lowest ink is the line
    while first > 0 and alone[first - 1]:
        first -= 1
    while last < w - 1 and alone[last + 1]:
        last += 1
    # The line's band goes: centred where the line runs, however it bows (where it is alone, as thick as it is), and
    # where a digit's stroke meets it, where it runs on either side of the stroke; the stroke keeps the rest.
    columns = np.arange(first, last + 1)
    measured = np.flatnonzero(alone & as_thick)  # (holds the level columns above: never empty)
    middle = np.interp(columns, measured, middles[measured])
    line = np.zeros_like(piece)
    line[:, columns] = piece[:, columns] & (np.abs(rows - middle[None, :]) <= half + 1)
    # A line joined to the only writing above it, which stays one piece without it, is that writing's own stroke
    # (a wide 2's base, a stretched 1's foot), not a line under it: an underline is under several things.
    rest = piece & ~line
    if not others_above and rest.sum() > PART * piece.sum():
        parts = connected_components(rest)[1]
        if np.count_nonzero(parts[:, 4] > PART * piece.sum()) < 2:
            return None
    return line


def _longest_run(xs: np.ndarray, max_gap: float) -> tuple[int, int] | None:
    """The first and last of the longest stretch of sorted columns ``xs`` with no gap wider than ``max_gap``."""
    if not len(xs):
        return None
    breaks = np.flatnonzero(np.diff(xs) > max_gap)
    starts, ends = np.concatenate([[0], breaks + 1]), np.concatenate([breaks, [len(xs) - 1]])
    k = int(np.argmax(xs[ends] - xs[starts]))
    return int(xs[starts[k]]), int(xs[ends[k]])
