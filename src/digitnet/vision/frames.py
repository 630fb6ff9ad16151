"""Frames drawn by hand round the writing (a circled total, an answer boxed on a worksheet): find them and take them
away.

Read as ink, a circle round a number is read as 0s and brackets, a box's sides as 1s, and the recognizers, trained on
digits, make the rest of the line fit them. A frame is told from writing by what it holds, not by its shape (a
hand-drawn box is no printed line: its sides wander and slope, and :mod:`boxes` does not find them): one piece of
ink that holds all the other writing in what it encloses, standing a third of its height or more (not a speck in a
0), itself a ring of pen strokes (not a blot) at least nearly as wide as tall (a 0 with its slash drawn apart inside
it is taller than wide). Its ends may miss each other (a circle drawn in one sweep rarely closes exactly): what it
encloses is looked for with the ring's gaps of up to ``GAP`` pens or a tenth of its size closed. Where the frame
runs into a digit they are one piece: the frame is then the part of it next to the outside, as deep as its own
strokes are thick and a little more.

Like :mod:`underlines`, it looks only at the piece whose box holds every other piece's.
"""

from __future__ import annotations

import numpy as np

from digitnet.vision.preprocess import opencv, touching_edge

GAP = 3.0  # a ring's ends may miss each other by this many pens, or this share of its smaller side
GAP_SIZE = 0.1
RING = 1.5  # the frame is the piece's ink within this many of its own pens of what lies outside it ...
INSIDE = 0.97  # ... and at least this share of the rest of the writing's ink lies within it,
MIN_HELD = 0.3  # standing at least this share of the frame's height (a digit, not a speck in a 0);
MAX_FILL = 0.5  # the frame's ink is at most this share of what it encloses: a ring of strokes, not a blot,
MIN_WIDE = 0.8  # and it is at least this many times as wide as tall (a 0 is narrower: its slash is no digit)


def frame_mask(labels: np.ndarray, stats: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The pixels of a mask that are a frame drawn round the rest of its writing, and what the frame encloses (both
    bool, the mask's shape; its gaps closed); None when there is none. ``labels, stats``: the mask's connected
    components (as :func:`preprocess.connected_components` gives them).

    The frame may touch a digit it holds (a tight circle): then they are one piece, and the frame is the part of it
    next to the outside, a stroke or so deep, as the ring's own strokes are thick.
    """
    if len(stats) < 2:
        return None
    k = int(np.argmax((stats[:, 2] - stats[:, 0]) * (stats[:, 3] - stats[:, 1])))  # the largest box
    others = np.delete(stats, k, axis=0)
    x0, y0, x1, y1 = (int(v) for v in stats[k, :4])
    if x1 - x0 < MIN_WIDE * (y1 - y0):
        return None
    if not (others[:, 0].min() > x0 and others[:, 1].min() > y0 and others[:, 2].max() < x1
            and others[:, 3].max() < y1):
        return None  # some writing outside its box
    crop = labels[y0:y1, x0:x1]
    found = _ring(crop == k + 1)
    if found is None:
        return None
    ring, enclosed = found
    held = (crop > 0) & ~ring
    rows, frame_rows = np.flatnonzero((held & enclosed).any(1)), np.flatnonzero(enclosed.any(1))
    if (np.count_nonzero(held & enclosed) >= INSIDE * np.count_nonzero(held) and len(rows)
            and rows[-1] - rows[0] + 1 >= MIN_HELD * (frame_rows[-1] - frame_rows[0] + 1)
            and np.count_nonzero(ring) <= MAX_FILL * np.count_nonzero(enclosed)):
        frame, inside = np.zeros(labels.shape, bool), np.zeros(labels.shape, bool)
        frame[y0:y1, x0:x1] = ring
        inside[y0:y1, x0:x1] = enclosed
        return frame, inside
    return None


def _ring(piece: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The ring of ``piece`` (bool, cropped to its box): its ink within ``RING`` of its pens of the outside, and
    what the ring encloses, itself included (both bool); None where it encloses nothing. Gaps of up to ``GAP`` pens
    (or ``GAP_SIZE`` of its smaller side) in it are closed first."""
    cv2 = opencv()
    # The ring's pen: twice the depth its ink lies at, near the deepest (a median run misleads on a ring: across its
    # flat top a row's run is long, along a ragged edge runs are short).
    depth = cv2.distanceTransform(np.pad(piece, 1).astype(np.uint8), cv2.DIST_L2, 3)
    pen = 2 * float(np.percentile(depth[depth > 0], 90))
    reach = max(1, round(max(GAP * pen, GAP_SIZE * min(piece.shape)) / 2))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))
    # Padded so that the closing does not stick to the crop's edges, and the outside is one piece round it.
    padded = np.pad(piece, reach + 1).astype(np.uint8)
    closed = cv2.morphologyEx(padded, cv2.MORPH_CLOSE, kernel)
    outside = touching_edge(closed == 0)  # everything reachable from the edge without crossing the ring
    if np.count_nonzero(~outside) <= np.count_nonzero(closed):
        return None  # no hole
    near = cv2.distanceTransform((~outside).astype(np.uint8), cv2.DIST_L2, 3) <= RING * pen + 1
    inner = (slice(reach + 1, -reach - 1), slice(reach + 1, -reach - 1))
    return piece & near[inner], ~outside[inner]
