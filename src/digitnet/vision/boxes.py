"""Printed form boxes around handwritten digits: find their lines and take them away, keeping the digits.

Form fields (postcodes, amounts) put each digit in a printed rectangle or in a comb of lines. Read as ink,
box lines become strokes (a 1 beside every digit, a bar under it). A box line is a *long, thin, straight*
run of ink: horizontal runs at least ``fraction`` of the ink's width (vertical ones: of its height), at most
``max_thickness`` thick. Where a digit's stroke touches or crosses a line, the line pixels under the stroke
are kept, so the digit stays whole.

Numpy only (run lengths through a cumulative sum), no per-pixel Python loops, on the ink's bounding box only.
(OpenCV's openings with a 1×n kernel find the same long runs, but were measured several times slower for the
long kernels a line needs.)
"""

from __future__ import annotations

import numpy as np

from digitnet.utils import DigitnetError

# The share of a long horizontal run that must be thin (a line's thickness across) for it to be a floor or roof
# where it runs from wall to wall, and a stroke lying along it makes the rest thick.
BETWEEN_WALLS = 0.25


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal runs of True in a 2-D bool array: (starts, ends) as flat indices into ``mask`` padded with
    a False column on both sides (shape (h, w + 2)); ends are exclusive."""
    h, w = mask.shape
    padded = np.zeros((h, w + 2), bool)
    padded[:, 1:-1] = mask
    step = np.diff(padded.ravel().astype(np.int8))
    return np.flatnonzero(step == 1) + 1, np.flatnonzero(step == -1) + 1


def _run_columns(starts: np.ndarray, ends: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The first and last column of each run (flat indices of :func:`_runs`' padded layout, ``width`` wide)."""
    return starts % (width + 2) - 1, ends % (width + 2) - 2


def _paint_runs(shape: tuple[int, int], starts: np.ndarray, ends: np.ndarray, values: np.ndarray) -> np.ndarray:
    """An (h, w) int array holding ``values`` on each run (flat indices of the padded layout of :func:`_runs`)."""
    h, w = shape
    marks = np.zeros(h * (w + 2) + 1, np.int64)
    # Runs are separated by paper (and rows by the pad), so no start is another run's end: plain assignment
    # does what np.add.at would, many times faster.
    marks[starts] = values
    marks[ends] = -values
    return np.cumsum(marks)[:-1].reshape(h, w + 2)[:, 1:-1]


def run_lengths(mask: np.ndarray) -> np.ndarray:
    """For each True pixel of a 2-D bool array, the length of the horizontal run it belongs to (0 elsewhere)."""
    starts, ends = _runs(mask)
    return _paint_runs(mask.shape, starts, ends, ends - starts)


def _bridged(mask: np.ndarray, gap: int) -> np.ndarray:
    """``mask`` (2-D bool) with its horizontal gaps of at most ``gap`` px between ink filled."""
    h, w = mask.shape
    starts, ends = _runs(~mask)  # paper runs; the padding is not paper, so no run starts in it
    first, last = _run_columns(starts, ends, w)
    inner = (first > 0) & (last < w - 1) & (ends - starts <= gap)
    return mask | (_paint_runs((h, w), starts[inner], ends[inner], np.ones(int(inner.sum()), np.int64)) > 0)


def _reaching_past(long: np.ndarray, other: np.ndarray, margin: int) -> np.ndarray:
    """The horizontal runs of ``long`` that reach at least ``margin`` px past ``other``'s ink on both sides."""
    h, w = long.shape
    cols = np.flatnonzero(other.any(0))
    starts, ends = _runs(long)
    if not len(starts):
        return long
    if len(cols):
        first, last = _run_columns(starts, ends, w)
        past = (first <= cols[0] - margin) & (last >= cols[-1] + margin)
    else:
        past = np.zeros(len(starts), bool)  # nothing else: a lone stroke (a 1), not a box
    return _paint_runs((h, w), starts[past], ends[past], np.ones(int(past.sum()), np.int64)) > 0


def _mostly(long: np.ndarray, thin: np.ndarray, share: float = 0.5) -> np.ndarray:
    """The horizontal runs of ``long`` of which at least ``share`` of the pixels are ``thin``."""
    h, w = long.shape
    starts, ends = _runs(long)
    padded = np.zeros((h, w + 2), np.int64)
    padded[:, 1:-1] = thin & long
    before = np.concatenate([[0], np.cumsum(padded.ravel())])
    mostly = (before[ends] - before[starts]) >= share * (ends - starts)
    return _paint_runs((h, w), starts[mostly], ends[mostly], np.ones(int(mostly.sum()), np.int64)) > 0


def _ending_on(long: np.ndarray, lines: np.ndarray, reach: int, both: bool = True) -> np.ndarray:
    """The horizontal runs of ``long`` that have ``lines`` pixels within ``reach`` px of both ends (``both``)
    or of at least one end, counting the pixel just past each end."""
    h, w = long.shape
    starts, ends = _runs(long)
    padded = np.zeros((h, w + 2), np.int64)
    padded[:, 1:-1] = lines
    before = np.concatenate([[0], np.cumsum(padded.ravel())])
    first = before[np.minimum(starts + reach, ends)] - before[starts - 1] > 0
    last = before[ends + 1] - before[np.maximum(ends - reach, starts)] > 0
    ok = (first & last) if both else (first | last)
    return _paint_runs((h, w), starts[ok], ends[ok], np.ones(int(ok.sum()), np.int64)) > 0


def _free_ended_ticks(ink: np.ndarray, thin: np.ndarray, lines: np.ndarray, min_length: int) -> np.ndarray:
    """Vertical runs of ``thin`` ink at least ``min_length`` long that stand on ``lines`` at one end and stop
    in paper at the other: the teeth of a comb (a stroke that goes on into thicker ink is writing)."""
    h, w = thin.shape
    starts, ends = _runs(thin.T)  # along columns, padded layout (w, h + 2)
    long = ends - starts >= min_length
    on_line, in_ink = np.zeros((w, h + 2), bool), np.zeros((w, h + 2), bool)
    on_line[:, 1:-1], in_ink[:, 1:-1] = lines.T, ink.T
    on_line, in_ink = on_line.ravel(), in_ink.ravel()
    standing = on_line[ends] & ~in_ink[starts - 1]  # on a line below, paper above
    hanging = on_line[starts - 1] & ~in_ink[ends]  # on a line above, paper below
    ok = long & (standing | hanging)
    return _paint_runs((w, h), starts[ok], ends[ok], np.ones(int(ok.sum()), np.int64)).T > 0


def box_line_mask(ink: np.ndarray, fraction: float = 0.7, max_thickness: int | None = None) -> np.ndarray:
    """The pixels of ``ink`` (2-D bool) that are box lines (see :func:`box_lines`)."""
    return box_lines(ink, fraction, max_thickness)[0]


def box_lines(ink: np.ndarray, fraction: float = 0.7,
              max_thickness: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The pixels of ``ink`` (2-D bool) that are box lines, and those of them that stand across the writing (a
    box's walls, a comb's teeth: lines that may part it into cells, where a baseline or ruled paper does not).

    A line is a straight run at least ``fraction`` of the ink's width (vertical runs: height), mostly at most
    ``max_thickness`` px thick across (default: 1/12 of the ink's smaller side, at least 3), which reaches past
    the rest of the ink on both ends (a box surrounds the digit; a 7's bar or a 1's stem does not), ends on
    lines of the other direction at both ends (the walls between boxes), or, horizontal, spans ink at least
    twice as wide as tall (the baseline of a comb under a number). A comb's teeth — thin vertical runs
    standing on a line and ending in paper — are lines too. Where a stroke touches or crosses a line the ink
    is thick across it, so those pixels stay with the digit.
    """
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    lines, across = np.zeros_like(ink), np.zeros_like(ink)
    if not len(rows):
        return lines, across
    height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    # Every run lies inside the ink's bounding box, and paper around it reads as paper: work on that box alone.
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    crop = np.ascontiguousarray(ink[box])
    if max_thickness is None:
        max_thickness = max(3, min(height, width) // 12)
    # The common case (a digit without a box) made cheap: every line the search finds hangs on a long run that is
    # mostly thin (see _may_hold_lines), and most digits have none — a 7's bar and a 1's stem are long, not thin.
    if not _may_hold_lines(crop, max(fraction * width, 8), max_thickness):
        # Without a horizontal line there is no wall ending on one and no comb: a vertical line is one only by
        # reaching past all other ink at both ends, so the ink's top row lies on one, and only columns with ink there
        # can hold it (the strokes of a written number, whose bridged columns run long, are not looked at).
        columns = bridged_columns(crop, fraction, max_thickness, near=np.flatnonzero(crop[0]))
        if not _may_hold_lines(columns & columns[:, :1], max(fraction * height, 8), max_thickness, crop.T):
            return lines, across
    columns = bridged_columns(crop, fraction, max_thickness)
    lines[box], across[box] = _lines_in(crop, columns.T, fraction, max_thickness, height, width)
    return lines, across


def bridged_columns(ink: np.ndarray, fraction: float, max_thickness: int, near: np.ndarray | None = None
                    ) -> np.ndarray:
    """The columns of ``ink`` (cropped to its bounding box) as rows (``ink.T``), where a vertical line may stand
    broken: there with gaps of at most ``max_thickness`` px filled. ``near``: only these columns (indices).

    A vertical line is often broken where a line of the other direction crosses it (a notebook's margin through its
    ruled lines: the camera's blur and the crossing lighten both) or where the scan skipped: its runs are measured
    across gaps no longer than a line is thick. Only columns that hold enough ink for a line are looked at."""
    columns = ink.T
    tall = np.count_nonzero(ink, axis=0) >= max(fraction * ink.shape[0], 8) - max_thickness
    if near is not None:
        wanted = np.zeros(len(columns), bool)
        wanted[near] = True
        tall &= wanted
    tall = np.flatnonzero(tall)
    if not len(tall):
        return columns
    columns = columns.copy()
    columns[tall] = _bridged(columns[tall], max_thickness)
    return columns


def _may_hold_lines(ink: np.ndarray, min_length: float, max_thickness: int, solid: np.ndarray | None = None) -> bool:
    """Whether ``ink`` (cropped to its bounding box) has a horizontal run at least ``min_length`` long of which at
    least half the pixels lie in vertical runs at most ``max_thickness`` long: a "line row" of :func:`_lines_in`.

    Without one (nor one along the columns, asked by passing ``ink.T``), :func:`_lines_in` finds nothing: its
    horizontal and vertical lines and its comb teeth all hang on line rows or columns (a run that is not one is
    writing, and writing cannot reach past itself). Exact, not a guess, on the few rows that could hold one:
    those with enough ink in all, and the ``max_thickness`` rows either side that a thin pixel's run lies within.
    ``solid``: the ink whose thickness counts, where ``ink`` is its columns bridged (:func:`bridged_columns`).
    """
    candidates = np.flatnonzero(np.count_nonzero(ink, axis=1) >= min_length)
    if not len(candidates):
        return False
    along_rows = run_lengths(ink[candidates])
    long = along_rows >= min_length
    if not long.any():
        return False
    candidates = candidates[long.any(1)]
    long = long[long.any(1)]
    # A vertical run of at most max_thickness through row r lies within rows r ± max_thickness, and a longer one
    # is still longer than max_thickness there: that band tells thin from thick exactly.
    top = max(0, int(candidates[0]) - max_thickness)
    bottom = min(ink.shape[0], int(candidates[-1]) + max_thickness + 1)
    solid = ink if solid is None else solid
    along_cols = run_lengths(np.ascontiguousarray(solid[top:bottom].T)).T[candidates - top]
    thin = long & (along_cols <= max_thickness)
    h, w = long.shape
    starts, ends = _runs(long)
    padded = np.zeros((h, w + 2), np.int64)
    padded[:, 1:-1] = thin
    before = np.concatenate([[0], np.cumsum(padded.ravel())])
    return bool(((before[ends] - before[starts]) >= 0.5 * (ends - starts)).any())


def _lines_in(ink: np.ndarray, bridged: np.ndarray, fraction: float, max_thickness: int, height: int,
              width: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`box_lines` of ink cropped to its bounding box (``height`` × ``width``); ``bridged``: the ink with short
    vertical gaps filled (:func:`bridged_columns`), where vertical lines are measured."""
    along_rows, along_cols = run_lengths(ink), run_lengths(ink.T).T
    long_rows = along_rows >= max(fraction * width, 8)
    long_cols = run_lengths(np.ascontiguousarray(bridged.T)).T >= max(fraction * height, 8)
    across_h, across_v = long_rows & (along_cols <= max_thickness), long_cols & (along_rows <= max_thickness)
    # Runs that are mostly thin are lines, whole (with the strokes that touch or cross them, and the corners
    # and junctions where lines meet); the rest is writing. Where a line crosses a line of the other direction it
    # is thick across for that line, not for a stroke: a box's floor under a wide digit sitting on it is thin
    # only between the digit and the walls, so the walls count as thin too (asked once more, with the lines of
    # the other direction found the first time).
    line_rows = _mostly(long_rows, across_h)
    line_cols = _mostly(long_cols.T, across_v.T).T
    line_rows, line_cols = (_mostly(long_rows, across_h | (line_cols & long_rows)),
                            _mostly(long_cols.T, (across_v | (line_rows & long_cols)).T).T)
    # A box's floor or roof along which a digit's stroke lies for most of the box's width (a 3's foot resting on
    # it) is thin only near the walls it runs between: ending on walls at both ends, less of it need be thin.
    line_rows |= _ending_on(long_rows, line_cols, max_thickness) & _mostly(
        long_rows, across_h | (line_cols & long_rows), BETWEEN_WALLS)
    junction = line_rows & line_cols
    other = ink & ~(line_rows | line_cols)
    margin = max(2, max_thickness // 2)
    # Judge whole runs (a stroke crossing a line leaves it one run, thick there); take away only the thin part.
    # A baseline under a whole written number spans the ink, which is far wider than tall.
    spanning = along_rows >= max(0.95 * width, 2 * height)
    baselines = (_reaching_past(long_rows, other, margin) | _ending_on(line_rows, line_cols, max_thickness)
                 | (spanning & line_rows)) & long_rows
    horizontal = baselines & (across_h | junction)
    vertical = (_reaching_past(long_cols.T, other.T, margin).T
                | _ending_on(line_cols.T, line_rows.T, max_thickness).T) & (across_v | junction)
    ticks = _free_ended_ticks(ink, ink & (along_rows <= max_thickness), baselines, 3 * max_thickness)
    for _ in range(max_thickness):  # and the tooth's root, where it crosses its baseline
        grown = ticks.copy()
        grown[1:] |= ticks[:-1]
        grown[:-1] |= ticks[1:]
        ticks = ticks | (grown & baselines)
    vertical &= ink  # not the gaps it was measured across
    return horizontal | vertical | ticks, vertical | ticks


def remove_box_lines(gray_or_mask: np.ndarray, fraction: float = 0.7, max_thickness: int | None = None) -> np.ndarray:
    """A picture without its printed box lines.

    A bool mask (True = ink) comes back as a mask without the line pixels. A grayscale picture (2-D, dark
    ink on light paper) comes back as a copy with the line pixels painted the paper's shade. Strokes of a
    digit that touch or cross a line keep their pixels (see :func:`box_line_mask`).
    """
    picture = np.asarray(gray_or_mask)
    if picture.ndim != 2:
        raise DigitnetError(f"remove_box_lines needs a 2-D picture or mask, not shape {picture.shape}")
    if picture.dtype == bool:
        return picture & ~box_line_mask(picture, fraction, max_thickness)
    dark, light = np.percentile(picture, [1, 99])
    ink = picture < (float(dark) + float(light)) / 2
    out = picture.copy()
    out[box_line_mask(ink, fraction, max_thickness)] = np.asarray(light).astype(picture.dtype)
    return out
