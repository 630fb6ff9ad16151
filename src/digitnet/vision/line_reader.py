"""Reading a found line with the learned line recognizer (CTC), instead of cutting it into digits by rules.

Line finding (:func:`lines.find_lines`) stays: it counts lines right and says where each runs (its slope, top
and baseline). Each line's own ink — its components, plus every speck that ink finding dropped as dust within
the line's image (a thin pen's point, blurred and thresholded, is often thinner than the pen: the recognizer,
not a size rule, says whether a speck is a point) — is made into the recognizer's input (:func:`line_image`):
levelled along the line's slope, scaled so that its digits are ``DIGIT_HEIGHT`` rows tall and centred on
``CENTRE_ROW``, reduced by area averaging, exactly the kind of image :mod:`digitnet.data.lines` trains on. The
recognizer reads the line in one pass (``recognize``: images → :class:`digitnet.models.crnn.Decoded`).

Each character CTC emitted has the output columns it was read in. The line is parted between neighbouring
characters halfway between their columns; a connected piece of ink that falls mostly on one side goes whole
to that character (a 7's bar reaching over its neighbour), otherwise it is cut there (touching digits); a speck
goes only to a mark (else it stays dust, as ink finding judged it). A character's box is its ink's box; a
space's box is the gap between its neighbours. With ``classify``, each digit's ink is also classified as a
28×28 (the digit model) and the two opinions are multiplied (:func:`vote`): the line model says where the
digits are, both say which.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from digitnet.models.crnn import REDUCTION, Decoded
from digitnet.vision.lines import (
    Item,
    Line,
    TextLine,
    digit_blobs,
    dropped_specks,
    find_lines,
    line_spans,
    nearest_line,
)
from digitnet.vision.preprocess import Ink, connected_components, normalize_digit, opencv
from digitnet.vision.segment import Classifier, Segment

LINE_HEIGHT = 32  # the recognizer's input rows (data.lines.LINE_HEIGHT) ...
DIGIT_HEIGHT = 18  # ... a line's digits this tall ...
CENTRE_ROW = 15  # ... centred on this row
MARGIN = 0.35  # paper kept on each side of a line, in digit heights (training lines have 0.1–0.6)
WHOLE = 0.8  # a piece of ink with this share of its pixels on one character's side goes whole to it
MARKS = ".,-"  # the characters a speck's ink may belong to
FAINT_LINE = 0.5  # a line's image whose brightest pixel is fainter than this is brightened to full ink

LineRecognizer = Callable[[list[np.ndarray]], list[Decoded]]  # line images (32, W) float 0..1 → readings


@dataclass
class LineImage:
    """A line as the recognizer sees it, and how its columns map back to the picture (working resolution)."""

    image: np.ndarray  # float32 (LINE_HEIGHT, W), W a multiple of REDUCTION; ink bright
    mask: np.ndarray  # bool: this line's ink, cropped to its box ...
    offset: tuple[int, int]  # ... whose top left corner is at this (x, y) of the picture (working resolution)
    x_origin: float  # working x of the image's column 0
    scale: float  # image pixels per working pixel
    # The connected components (labels, stats as connected_components gives them, in the crop's coordinates) of
    # ``mask``, where the caller knew them; else they are labelled when needed (and none is known to be a speck).
    components: tuple[np.ndarray, np.ndarray] | None = None
    specks_from: int | None = None  # pieces labelled this or higher are dropped specks: a mark's ink, never a digit's

    def to_x(self, column: float) -> float:
        """The working x of an image column."""
        return self.x_origin + column / self.scale


def _view(line: Line) -> tuple[float, float, float]:
    """What of the picture the recognizer's image of ``line`` holds, in working pixels: the margin of paper beside
    the line's ink, the rows above and below its centre line."""
    scale = DIGIT_HEIGHT / max(line.height, 1.0)
    return MARGIN * line.height, CENTRE_ROW / scale, (LINE_HEIGHT - CENTRE_ROW) / scale


def line_image(mask: np.ndarray, line: Line, offset: tuple[int, int] = (0, 0),
               components: tuple[np.ndarray, np.ndarray] | None = None,
               specks_from: int | None = None) -> LineImage | None:
    """The recognizer's input for the line whose ink is ``mask`` (bool, its top left corner at ``offset`` of the
    picture, working resolution); None without ink. ``components``: the mask's connected components, if known
    (labels and stats in the mask's coordinates), kept for parting the line's ink later; ``specks_from``: the
    first of their labels that is a dropped speck (see :class:`LineImage`)."""
    cv2 = opencv()
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if not len(rows):
        return None
    ox, oy = offset
    mask = mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    if components is not None:  # the same pieces, in the cropped mask's coordinates
        labels, stats = components
        stats = stats - np.array([cols[0], rows[0], cols[0], rows[0], 0])
        components = labels[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1], stats
    ox, oy = ox + int(cols[0]), oy + int(rows[0])
    scale = DIGIT_HEIGHT / max(line.height, 1.0)
    margin, above, below = _view(line)
    x0, x1 = ox - margin, ox + mask.shape[1] + margin
    centres = [line.centre(x0), line.centre(x1)]
    y0 = min(centres) - above - 1
    y1 = max(centres) + below + 1
    ix0, iy0, ix1, iy1 = int(np.floor(x0)), int(np.floor(y0)), int(np.ceil(x1)), int(np.ceil(y1))
    crop = np.zeros((iy1 - iy0, ix1 - ix0), np.float32)  # paper around the ink (and beyond the picture's edge)
    sy0, sx0 = max(iy0, oy), max(ix0, ox)
    sy1, sx1 = min(iy1, oy + mask.shape[0]), min(ix1, ox + mask.shape[1])
    crop[sy0 - iy0:sy1 - iy0, sx0 - ix0:sx1 - ix0] = mask[sy0 - oy:sy1 - oy, sx0 - ox:sx1 - ox]
    width = max(1, round(crop.shape[1] * scale))
    height = max(1, round(crop.shape[0] * scale))
    # Area averaging, as the training lines were reduced; enlarging (a tiny line) is bilinear.
    small = cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    # Level the line: row v of the output is CENTRE_ROW + (y - centre(x)) in image pixels.
    sx, sy = width / crop.shape[1], height / crop.shape[0]
    shift = CENTRE_ROW - (line.centre(ix0) - iy0) * sy
    slope = line.slope * sy / sx
    out_width = width + (-width) % REDUCTION
    matrix = np.array([[1.0, 0.0, 0.0], [-slope, 1.0, shift]], np.float32)
    image = cv2.warpAffine(small, matrix, (out_width, LINE_HEIGHT), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    peak = float(image.max())
    # Strokes thinner than the image's pixels, averaged with the paper, reach full ink all the same, as
    # normalize_digit's do: the recognizer learned lines whose strokes do.
    if 0 < peak < FAINT_LINE:
        image = image / peak
    return LineImage(np.clip(image, 0, 1), mask, (ox, oy), float(ix0), sx, components, specks_from)


def _regions(decoded: Decoded, line: LineImage) -> list[tuple[float, float]]:
    """Working-x ranges of the characters: parted halfway between their centres (the columns each was read in,
    less the recognizer's offset)."""
    if not decoded.spans:
        return []
    centres = decoded.centres()
    cuts = [line.to_x((a + b) / 2) for a, b in zip(centres, centres[1:], strict=False)]
    return list(zip([-np.inf, *cuts], [*cuts, np.inf], strict=True))


def _character_masks(line: LineImage, regions: list[tuple[float, float]], text: str) -> list[np.ndarray]:
    """Each character's ink (bool, the line's crop): pieces mostly on one side of a cut go whole; a speck only to
    a mark (``text``: the characters read)."""
    if not regions:
        return []
    labels, stats = line.components if line.components is not None else connected_components(line.mask)
    # (pieces labelled afresh are numbered otherwise: none of them is known to be a speck)
    first_speck = line.specks_from if line.components is not None and line.specks_from else len(stats) + 1
    xs = np.arange(line.mask.shape[1]) + 0.5 + line.offset[0]
    owner = np.full(line.mask.shape[1], -1)
    for k, (a, b) in enumerate(regions):
        owner[(xs >= a) & (xs < b)] = k
    masks = [np.zeros(line.mask.shape, bool) for _ in regions]
    for index, (x0, y0, x1, y1, _) in enumerate(stats):
        piece = labels[y0:y1, x0:x1] == index + 1
        columns = owner[x0:x1]
        counts = np.bincount(columns[np.nonzero(piece)[1]], minlength=len(regions))
        best = int(counts.argmax())
        if index + 1 >= first_speck:
            if text[best] in MARKS:
                masks[best][y0:y1, x0:x1] |= piece
        elif counts[best] >= WHOLE * counts.sum():
            masks[best][y0:y1, x0:x1] |= piece
        else:
            for k in np.flatnonzero(counts):
                masks[k][y0:y1, x0:x1] |= piece & (columns == k)[None, :]
    return masks


def _box(mask: np.ndarray, offset: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """The box (x0, y0, x1, y1) of the ink of ``mask`` placed at ``offset``; None without ink."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if not len(rows):
        return None
    ox, oy = offset
    return ox + int(cols[0]), oy + int(rows[0]), ox + int(cols[-1] + 1), oy + int(rows[-1] + 1)


def vote(ctc: np.ndarray, classifier: np.ndarray) -> np.ndarray:
    """Both opinions of a digit (10,), multiplied and renormalized: the line model's and the digit model's."""
    joint = np.asarray(ctc, np.float64) * np.asarray(classifier, np.float64)
    total = joint.sum()
    return (joint / total).astype(np.float32) if total > 0 else np.asarray(classifier, np.float32)


def items_of(decoded: Decoded, line: LineImage) -> list[Item]:
    """The characters of a read line as items with boxes and (digits) their ink and CTC probabilities."""
    regions = _regions(decoded, line)
    masks = _character_masks(line, regions, decoded.text)
    items: list[Item | None] = []
    for char, confidence, probabilities, mask in zip(decoded.text, decoded.confidences,
                                                     decoded.digit_probabilities, masks, strict=True):
        box = _box(mask, line.offset)
        if char == " ":
            items.append(Item(" ", (0, 0, 0, 0), confidence))  # its box is set from its neighbours below
        elif box is None:  # read where no ink of the line is (it saw the paper): nothing to answer for
            items.append(None)
        else:
            x0, y0, x1, y1 = box
            ox, oy = line.offset
            segment = Segment(box, mask[y0 - oy:y1 - oy, x0 - ox:x1 - ox], probabilities) if char.isdigit() else None
            items.append(Item(char, box, confidence, segment))
    kept = [item for item in items if item is not None]
    result: list[Item] = []
    for k, item in enumerate(kept):
        if item.char != " ":
            result.append(item)
            continue
        left = next((i for i in reversed(kept[:k]) if i.char != " "), None)
        right = next((i for i in kept[k + 1:] if i.char != " "), None)
        if left is None or right is None or result and result[-1].char == " ":
            continue  # a space at a line's end, or twice, says nothing
        top, bottom = min(left.box[1], right.box[1]), max(left.box[3], right.box[3])
        result.append(Item(" ", (left.box[2], top, max(right.box[0], left.box[2] + 1), bottom), item.confidence))
    return result


def _in_view(box: np.ndarray, line: Line, x0: int, x1: int) -> bool:
    """Whether a speck's centre lies in the image the recognizer gets of ``line`` (whose ink runs from ``x0`` to
    ``x1``): the margin beside it, the rows above and below its digits."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    margin, above, below = _view(line)
    return x0 - margin <= cx <= x1 + margin and -above <= cy - line.centre(cx) <= below


def read_lines(ink: Ink, recognize: LineRecognizer, classify: Classifier | None = None) -> list[TextLine]:
    """The lines of writing in ``ink`` read by the line recognizer, in reading order (see the module docstring)."""
    labels, stats = ink.components()
    lines = find_lines(stats, level=ink.in_boxes, blobs=digit_blobs(ink))
    if not lines:
        return []
    specks, speck_masks = dropped_specks(ink)
    spans = line_spans(lines)
    speck_lines = [nearest_line(lines, box, spans) for box in specks]
    images = []
    for number, line in enumerate(lines):
        members = np.asarray(line.components, np.int64)
        x0, y0 = stats[members, :2].min(0)
        x1, y1 = stats[members, 2:4].max(0)
        points = [k for k, (box, home) in enumerate(zip(specks, speck_lines, strict=True))
                  if home == number and _in_view(box, line, x0, x1)]
        if points:
            x0, y0 = np.minimum([x0, y0], specks[points, :2].min(0))
            x1, y1 = np.maximum([x1, y1], specks[points, 2:4].max(0))
        # The line's own ink, in its box, labelled 1.. by its pieces: the picture's components are the line's
        # (a piece of ink is whole in one line), so the line need not be labelled again.
        renumber = np.zeros(len(stats) + 1, np.int32)
        renumber[members + 1] = np.arange(1, len(members) + 1)
        line_labels = renumber[labels[y0:y1, x0:x1]]
        line_stats = [stats[members]]  # row k: the piece labelled k + 1
        for label, k in enumerate(points, start=len(members) + 1):
            # A speck is a piece of the thresholded ink apart from every other: it stays a piece of its own.
            box = specks[k]
            line_labels[box[1] - y0:box[3] - y0, box[0] - x0:box[2] - x0][speck_masks[k]] = label
            line_stats.append(box[None])
        piece_stats = np.concatenate(line_stats) - np.array([x0, y0, x0, y0, 0])
        images.append(line_image(line_labels > 0, line, (int(x0), int(y0)), (line_labels, piece_stats),
                                 specks_from=len(members) + 1))
    ready = [image for image in images if image is not None]
    readings = iter(recognize([image.image for image in ready]) if ready else [])
    result = []
    for image in images:
        if image is None:
            continue
        items = items_of(next(readings), image)
        digits = [item for item in items if item.segment is not None]
        if classify is not None and digits:
            for item in digits:
                item.segment.image = normalize_digit(item.segment.mask)
            for item, opinion in zip(digits, classify(np.stack([item.segment.image for item in digits])),
                                     strict=True):
                item.segment.probabilities = vote(item.segment.probabilities, opinion)
                best = int(item.segment.probabilities.argmax())
                item.char, item.confidence = str(best), float(item.segment.probabilities[best])
        if items:
            result.append(TextLine(items))
    return result
