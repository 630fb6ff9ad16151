"""The picture pipeline, one copy for every caller: load → MNIST-like → find writing → segment → classify → answer.

Each step is a function. Classification is a parameter (``classify``: uint8 (N, 28, 28) white-on-black
images → probabilities (N, 10)), so :class:`digitnet.recognizer.Recognizer` plugs in its model, the server
its micro-batcher, ``digitnet explain`` and the photo benchmark the recognizer, and tests a stub — and all of
them prepare pictures and format answers the same way:

* one digit: ``prepare_digit(source, classify)`` → :class:`Prepared` (the 28×28, or an error or note, and its
  probabilities when preparing it classified it already), then ``digit_answer(prepared, probabilities)``, or
  ``classify_prepared(prepared_list, classify)`` for a batch;
* written numbers: ``prepare_number(source, classify)`` → :class:`PreparedNumber` (its lines, each of digits
  with their 28×28, box and probabilities, and separators and signs; ``strip()`` shows the digits' crops),
  then ``number_answer(number)``.

A 28×28 MNIST-like picture (white on black, uint8) goes through unchanged, bit for bit. Any other picture has
its ink found (:func:`find_writing`: tiny scans enlarged first, printed box lines and combs taken away, and for
numbers lines drawn under them); a number's picture is turned level where its line runs at a slope
(:func:`_levelled`) and sheared upright where its writing leans further than MNIST's (:func:`_upright`) before its
lines are read, its boxes mapped back into the picture's own pixels.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from digitnet.vision import line_reader, preprocess
from digitnet.vision.boxes import box_lines
from digitnet.vision.frames import frame_mask
from digitnet.vision.io import ImageError, ImageSource, Picture, PictureTooLarge, load_picture
from digitnet.vision.line_reader import LineRecognizer
from digitnet.vision.lines import (
    MAX_SLOPE,
    digit_blobs,
    learned_slant,
    one_line_slope,
    read_lines,
    writing_slant,
)
from digitnet.vision.preprocess import (
    MIN_INK_PIXELS,
    Ink,
    connected_components,
    find_ink,
    mnist_like,
    normalize_digit,
    without_specks,
)
from digitnet.vision.segment import Classifier, Segment, find_digits, find_groups, line_height
from digitnet.vision.underlines import MAX_LINES, underline_mask

NO_INK = "no ink found"
# How `read` reads a line: "line" — the learned line recognizer places the characters, and the line model and the
# digit model both say which digit each is; "ctc" — the line recognizer alone; "segment" — the rule-based
# segmenter cuts the line into digits for the digit model; "both" — "line" and "segment", and where they disagree
# the reading whose characters are jointly likelier. Writing in form boxes is always cut by its boxes.
READERS = ("line", "ctc", "segment", "both")
# The default: on held-out training digits (benchmarks/read_lines.py --digits val, seeds 0 and 1) "both" read pages,
# separators and one-line numbers better than "line" on both seeds and touching pairs as well, and lost only on
# lines where every neighbour overlaps; see benchmarks/README.md.
DEFAULT_READER = "both"
# "both" skips the segmenter where every character the line reader read is at least this sure (chosen on held-out
# training digits, see benchmarks/README.md): it changes few of those readings and costs as much again as reading.
BOTH_SURE = 0.99
# A line of writing at a slope steeper than line finding follows (lines.MAX_SLOPE, about 8.5°) and at most LEVEL_MAX
# degrees — a number photographed with the phone turned — is turned level before its lines are found, ...
LEVEL_FROM = math.degrees(math.atan(MAX_SLOPE))
LEVEL_MAX = 40.0
LEVEL_PIXELS = 4 * preprocess.WORK_SIDE ** 2  # ... a larger picture reduced to about this many pixels first
# A frame round the writing that is this share box lines or more is a printed box (whose lines box_lines finds whole,
# but where a stroke crosses them), not one drawn by hand (whose wavering sides it finds in stretches, if at all).
PRINTED = 0.9
# Box lines standing across the writing inside a frame over this share of its height are a form's walls between cells.
WALLS = 0.25


def find_writing(pixels: np.ndarray, underlines: bool = True) -> Ink | None:
    """The handwriting in a picture: its ink (:func:`find_ink`) less printed box lines and combs (:mod:`boxes`), a
    frame drawn round it by hand (:mod:`frames`) and, with ``underlines``, lines drawn under it (:mod:`underlines`).

    None when there is no ink, or nothing but lines. The lines go before segmentation, else a box's walls
    read as 1s and its floor joins the digits into one.
    """
    ink = find_ink(pixels)
    if ink is None:
        return None
    lines, across = _box_lines(ink)
    framed = _without_frame(ink, lines, across)
    if framed is not ink:  # the lines of a box drawn round the writing went with it
        ink, lines, across = framed, lines & framed.mask, across & framed.mask
    if underlines and lines.any() and not across.any():
        # One straight line under the writing and no wall or tooth to part it into cells: a form's baseline or an
        # underline drawn with a ruler. The underline search takes it as it takes one drawn by hand (only its band
        # where digits stand on it), and the writing is read as writing, not as boxes.
        underlined = _without_underlines(ink)
        if underlined is not ink:
            return underlined
    if lines.any():
        ink = _without_box_lines(ink, lines, across)
    return _without_underlines(ink) if ink is not None and underlines else ink


def _without_frame(ink: Ink, lines: np.ndarray, across: np.ndarray) -> Ink:
    """``ink`` less a frame drawn round its writing by hand (:mod:`frames`), gone from the picture's ink too.

    Not a printed box round it, whose ink is mostly box ``lines``, nor a form's row of boxes, whose outline is a frame
    too, round walls standing ``across`` the writing (where digits touch the outline, the frame holds some of their
    ink and is less of it lines): they go as a form's boxes do. Printed lines outside the frame (a notebook's margin
    beside a circled number) are pieces it does not hold: it is looked for once more without them."""
    labels, stats = ink.components()
    found = frame_mask(labels, stats)
    if found is None and lines.any():
        found = frame_mask(*connected_components(ink.mask & ~lines))
    if found is None or _printed(found[0], lines):
        return ink
    frame, inside = found
    # A form's walls are one piece with its outline and stand well inside it: not a 1 standing apart in a box drawn by
    # hand, nor the side of one where a digit runs into it (a side and a stroke side by side are thicker than a ring).
    if across.any():
        rows, cols = np.flatnonzero(frame.any(1)), np.flatnonzero(frame.any(0))
        outline = np.isin(labels, np.unique(labels[frame & (labels > 0)]))
        walls = (across & outline & ~_within_strokes(frame, ink, 2))[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        if np.count_nonzero(walls.any(1)) >= WALLS * len(walls):
            return ink  # walls inside it: a form's row of boxes (digits touching its outline, which took some of them)
    mask, components, stray = _writing_without(ink, frame, inside)
    writing = replace(ink, mask=mask, ink=np.where(frame | stray, np.float32(0), ink.ink))
    writing.remember(components=components)
    return writing


def _writing_without(ink: Ink, taken: np.ndarray, inside: np.ndarray | None = None,
                     ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], np.ndarray]:
    """The mask of ``ink`` less ``taken`` (bool: a frame, box lines, underlines), without specks; its connected
    components; and the pieces of dust that belong with ``taken`` (bool), for the caller to take from the ink too.

    Ink finding judged dust against the largest piece, which ``taken`` was: a small digit inside a big frame or a
    comb (a thin 1) went with the dust. So that dust is judged again against the writing left — only pieces clear
    of ``taken`` by a stroke and, with ``inside`` (bool), within it (a frame holds all the writing). The others (bits
    of ``taken`` broken off at a pen's skip, specks outside a frame) go with it, or a later step would find them
    among the dust again.
    """
    labels, stats = ink.thresholded_components()
    dust = np.zeros(len(stats) + 1, bool)
    if len(stats):  # find_ink's rule for dust, on the same pieces
        dust[1:] = preprocess.specks(stats)
    dust[labels[ink.mask]] = False  # pieces of the mask are judged as pieces of it
    stray = np.zeros_like(dust)
    stray[labels[_within_strokes(taken, ink, 1)]] = True
    if inside is not None:
        stray[labels[~inside]] = True
    stray &= dust
    mask, components = without_specks((ink.mask & ~taken) | (dust & ~stray)[labels])
    return mask, components, stray[labels]


def _within_strokes(mask: np.ndarray, ink: Ink, strokes: int) -> np.ndarray:
    """The pixels within ``strokes`` of the writing's stroke widths of ``mask`` (bool), a square's reach."""
    reach = 2 * max(1, round(strokes * ink.stroke_width())) + 1
    return preprocess.opencv().dilate(mask.view(np.uint8), np.ones((reach, reach), np.uint8)) > 0


def _printed(frame: np.ndarray, lines: np.ndarray) -> bool:
    """Whether ``frame`` is a printed box: ``PRINTED`` of its outer edge or more box ``lines`` (inside it, the frame
    holds what of a digit touching it lies next to the outside, where box lines leave it to the digit)."""
    cv2 = preprocess.opencv()
    outside = preprocess.touching_edge(~frame)
    edge = frame & (cv2.dilate(outside.view(np.uint8), cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))) > 0)
    return np.count_nonzero(edge & lines) >= PRINTED * np.count_nonzero(edge)


def _box_lines(ink: Ink) -> tuple[np.ndarray, np.ndarray]:
    """The printed box lines and combs in ``ink`` (:func:`boxes.box_lines`), and those that stand across the writing."""
    lines, across = box_lines(ink.mask)
    if not lines.any() and ink.faint is not None and ink.faint < ink.threshold:
        # Forms are often printed in a light ("dropout") colour, fainter than half the writing's contrast: not ink,
        # yet lines that part the digits like any box (read as plain writing, a wide cell reads as a space). They
        # are looked for among everything clear of the paper's noise, and count only where a wall or tooth stands
        # between writing on both sides: faint lines along the writing (ruled paper) or beside it (a margin, a box
        # round one digit) part nothing and stay paper, as they were.
        faint, faint_across = box_lines(ink.ink > ink.faint)
        if _parts(faint_across, ink.mask & ~faint):
            writing, (_, pieces) = without_specks(ink.mask & ~faint)
            if not _cuts_through(faint_across, writing, pieces):
                lines, across = faint, faint_across
        elif (faint_across & ink.mask).any():
            # A faint wall beside the writing (a notebook's red margin) whose darker stretches pass for ink: read as
            # ink they are 1s. They go, and the writing is read as on plain paper (a wall that parts nothing makes no
            # cells). Faint lines along the writing stay (a digit's stroke lying on one would go with it), and so do
            # walls that do not reach past the writing's top and bottom: a 1 standing between two ruled lines.
            lines = across = _walls_beyond(faint_across, ink.mask & ~faint_across) & ink.mask
    return lines, across


def _walls_beyond(walls: np.ndarray, writing: np.ndarray) -> np.ndarray:
    """The walls (bool; vertical lines) that reach above and below every row of ``writing`` (bool): each wall's
    columns taken together, so that one broken where a ruled line crossed it is still one wall."""
    rows = np.flatnonzero(writing.any(1))
    edges = np.flatnonzero(np.diff(np.concatenate([[0], walls.any(0).astype(np.int8), [0]])))
    keep = np.zeros(walls.shape[1], bool)
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        held = np.flatnonzero(walls[:, start:end].any(1))
        keep[start:end] = len(rows) > 0 and held[0] < rows[0] and held[-1] > rows[-1]
    return walls & keep


def _without_box_lines(ink: Ink, lines: np.ndarray, across: np.ndarray) -> Ink | None:
    """``ink`` less printed box ``lines`` (of which ``across`` stand across the writing)."""
    # What was left of the lines where a stroke crossed them (a corner's stub) is dirt beside the digit.
    mask, components, stray = _writing_without(ink, lines)
    if mask.sum() < MIN_INK_PIXELS:
        return None
    # Squared paper's lines are taken away as a form's are, but its cells, smaller than the digits written across
    # them, hold no digit each: the writing is read as on plain paper. So is writing by upright lines alone (a
    # notebook's margin beside or through it, a table's rules): a form's cells have floors.
    cells = bool((lines & ~across).any())
    strays = bool(stray.any())
    writing = replace(ink, mask=mask, ink=np.where(stray, np.float32(0), ink.ink) if strays else ink.ink,
                      in_boxes=cells and not _cuts_through(across, mask, components[1]))
    writing.remember(components=components)  # (found on the way)
    if not strays:  # the same ink above the same threshold
        writing.remember(thresholded=ink.thresholded_components())
    return writing


def _without_underlines(ink: Ink) -> Ink:
    """``ink`` less the lines drawn under its writing (:mod:`underlines`), gone from the picture's ink too: what is
    left of them is neither writing nor a speck that could be a point."""
    mask, (labels, stats) = ink.mask, ink.components()
    lines = np.zeros(mask.shape, bool)
    stray = lines
    for _ in range(MAX_LINES):  # a second line under a total is found once the first is gone
        under = underline_mask(labels, stats, ink.stroke_width())
        if under is None:
            break
        kept, components, bits = _writing_without(ink, lines | under)
        if kept.sum() < MIN_INK_PIXELS:  # nothing but a line: that is the writing (a minus sign, a 1 lying down)
            break
        lines, stray = lines | under, bits
        mask, (labels, stats) = kept, components
    if mask is ink.mask:  # no line taken away
        return ink
    writing = replace(ink, mask=mask, ink=np.where(ink.mask & ~mask | lines | stray, np.float32(0), ink.ink))
    writing.remember(components=(labels, stats))
    return writing


def _cuts_through(across: np.ndarray, writing: np.ndarray, pieces: np.ndarray) -> bool:
    """Whether the lines standing across the writing (``across``, bool; ``writing``: its mask without specks, and
    ``pieces`` that mask's component stats) cut through its pieces, as squared paper's
    do under digits written over several of its cells, rather than stand between them as a form's walls and a
    comb's teeth do: through a third of the pieces or more, each farther inside it than a stroke and a fifth of its
    width (a digit that runs into its wall pokes past it by about a stroke). Read as plain writing, a form taken for
    squared paper loses only its cells' spacing; squared paper taken for a form is cut into its cells."""
    if not across.any() or not len(pieces):
        return False
    inside = np.pad(across, ((1, 0), (1, 0))).cumsum(0).cumsum(1)  # inside[y, x]: lines above and left of (y, x)
    x0, y0, x1, y1 = pieces[:, 0], pieces[:, 1], pieces[:, 2], pieces[:, 3]
    margin = np.maximum(preprocess.stroke_width(writing), 0.2 * (x1 - x0))
    # A piece narrower than twice its margin has no inside (left = right: no line counted); one narrower than a
    # stroke at the picture's right edge would otherwise put left past the edge.
    left = np.minimum(np.ceil(x0 + margin), x1).astype(np.int64)
    right = np.maximum(left, np.floor(x1 - margin).astype(np.int64))
    lines = inside[y1, right] - inside[y0, right] - inside[y1, left] + inside[y0, left]
    return 3 * int(np.count_nonzero(lines)) >= len(pieces)


def _parts(across: np.ndarray, writing: np.ndarray) -> bool:
    """Whether a line standing across the writing (``across``, bool) has writing left and right of it."""
    lines, ink = np.flatnonzero(across.any(0)), np.flatnonzero(writing.any(0))
    return bool(len(lines) and len(ink) and ((lines > ink[0]) & (lines < ink[-1])).any())


def _load(source: ImageSource, max_pixels: int | None) -> Picture:
    """A picture as the pipeline reads it: a big JPEG decoded at reduced scale, where find_writing would shrink it
    to the same size anyway, and a colour one to its luminance: find_writing looks at nothing else."""
    return load_picture(source, reduce_to=preprocess.WORK_SIDE, max_pixels=max_pixels, gray=True)


@dataclass
class Prepared:
    """A picture made ready for the model: the 28×28 it will see, or why there is none."""

    path: str | None  # the file it came from, if any
    image: np.ndarray | None  # uint8 (28, 28), white on black: what the model sees
    error: str | None = None  # the picture could not be used (unreadable, too large, ...)
    # The picture was fine but holds no single digit to answer for; or, beside an answer, that only the first page
    # of a multi-page file was read.
    note: str | None = None
    # (10,): the model's answer for ``image`` when preparing it asked the model already (a picture of several
    # pieces is segmented to count its digits); None when it is still to be classified.
    probabilities: np.ndarray | None = None
    too_large: bool = False  # the error is a size limit (:class:`~digitnet.vision.io.PictureTooLarge`)
    fault: bool = False  # the error is a fault of digitnet's (:func:`_fault`), not of the picture's


def prepare_digit(source: ImageSource, classify: Classifier | None = None, max_pixels: int | None = None) -> Prepared:
    """Load a picture of one digit and normalize it like MNIST; never raises for a bad picture.

    With ``classify``, a picture that holds several digits is recognized as such (see :mod:`segment`)
    and answered with a note instead of a guess at one of them; every caller that answers for a digit
    (predict, explain, the server) passes it. When counting them classified the very 28×28 answered for,
    its probabilities come with it (``Prepared.probabilities``), so that it is not classified twice.
    ``max_pixels``: the size limit of :func:`~digitnet.vision.io.load_picture`.
    """
    path = os.fspath(source) if isinstance(source, (str, os.PathLike)) else None
    try:
        picture = _load(source, max_pixels)
    except ImageError as exc:
        return Prepared(path, None, error=str(exc), too_large=isinstance(exc, PictureTooLarge))
    try:
        prepared = _prepared_digit(picture, path, classify)
    except Exception as exc:  # a fault of ours on one picture: an error for it, not a traceback ending the run
        return Prepared(path, None, error=_fault(picture.name, exc), fault=True)
    prepared.note = prepared.note or _pages_note(picture)
    return prepared


def _pages_note(picture: Picture) -> str | None:
    """The note of an answer read from the first page of several (a multi-page TIFF, an animated GIF): the rest
    were not read, and nothing else would say so."""
    if picture.pages == 1:
        return None
    return f"only page 1 of {picture.pages} was read: save each page as a picture of its own to read it"


def _fault(name: str, exc: Exception) -> str:
    """The one-line error a picture (called ``name``, as :class:`~digitnet.vision.io.Picture` is) gets where reading
    it failed on a fault of digitnet's, not of the picture's."""
    what = " ".join(f"{type(exc).__name__}: {exc}".split())
    # (The traceback for whoever looks into it, at debug level: a command line prints none.)
    logging.getLogger(__name__).debug("reading %s failed", name, exc_info=exc)
    return f"{name}: could not be read: {what} (a fault in digitnet; please report it with the picture)"


def _prepared_digit(picture: Picture, path: str | None, classify: Classifier | None) -> Prepared:
    """:func:`prepare_digit` of a loaded picture."""
    passthrough = mnist_like(picture.pixels)
    if passthrough is not None:
        return Prepared(path, passthrough) if passthrough.any() else Prepared(path, None, note=NO_INK)
    # A line under one digit is shorter than an underline must be, and what would pass for one is more likely the
    # digit's own base broken off by a skipping pen: one digit keeps all its ink.
    ink = find_writing(picture.pixels, underlines=False)
    if ink is None:
        return Prepared(path, None, note=NO_INK)
    groups = find_groups(ink)
    tall = [g for g in groups if g.height >= 0.6 * line_height(groups)] if groups else []
    if len(tall) > 1 and classify is not None:  # a short piece beside a digit is a broken stroke, not a digit
        digits = find_digits(ink, classify)
        if len(digits) > 1:
            return Prepared(path, None, note=f"{len(digits)} digits found: read numbers with `digitnet read`")
        image = normalize_digit(ink.mask)
        # One digit, which segmentation classified: its answer is the picture's when it saw the same 28×28 (it
        # does unless segmentation dropped dirt beside the digit, which the answered 28×28 keeps).
        if digits and np.array_equal(normalize_digit(digits[0].mask), image):
            return Prepared(path, image, probabilities=digits[0].probabilities)
        return Prepared(path, image)
    return Prepared(path, normalize_digit(ink.mask))


@dataclass
class PreparedItem:
    """One character of a read line: a digit (its 28×28 and probabilities) or a separator, sign or space."""

    char: str  # "0"-"9", ".", ",", "-" or " "
    box: list[int]  # [x0, y0, x1, y1] in the picture's pixels (x1, y1 exclusive)
    confidence: float  # a digit: its probability; a mark: how safely its geometry passes (see :mod:`marks`)
    image: np.ndarray | None = None  # digits: uint8 (28, 28), what the model classified
    probabilities: np.ndarray | None = None  # digits: (10,)

    @property
    def digit(self) -> int | None:
        return int(self.probabilities.argmax()) if self.probabilities is not None else None


@dataclass
class PreparedLine:
    """A line of a read picture: its items left to right and its box (the picture's pixels)."""

    items: list[PreparedItem]
    box: list[int]

    @property
    def text(self) -> str:
        return "".join(item.char for item in self.items)


@dataclass
class PreparedNumber:
    """A picture of written numbers, read: its lines (top to bottom) of digits, separators and signs.

    ``images``, ``boxes`` and ``probabilities`` list the digits alone, in reading order.
    """

    path: str | None
    lines: list[PreparedLine] = field(default_factory=list)
    error: str | None = None  # the picture could not be used
    note: str | None = None  # the picture was fine but holds no digit; or, beside a reading, as Prepared.note
    too_large: bool = False  # the error is a size limit (:class:`~digitnet.vision.io.PictureTooLarge`)
    fault: bool = False  # the error is a fault of digitnet's (:func:`_fault`), not of the picture's

    @property
    def items(self) -> list[PreparedItem]:
        """Every item of every line, in reading order."""
        return [item for line in self.lines for item in line.items]

    @property
    def digits(self) -> list[PreparedItem]:
        return [item for item in self.items if item.image is not None]

    @property
    def images(self) -> list[np.ndarray]:
        """uint8 (28, 28) per digit, in reading order: as classified."""
        return [item.image for item in self.digits]

    @property
    def boxes(self) -> list[list[int]]:
        """[x0, y0, x1, y1] per digit in the picture's pixels."""
        return [item.box for item in self.digits]

    @property
    def probabilities(self) -> list[np.ndarray]:
        """(10,) per digit."""
        return [item.probabilities for item in self.digits]

    def strip(self) -> np.ndarray | None:
        """A debug view: the 28×28 crops the model classified, side by side (uint8 (28, 28·n)); None if none."""
        return np.concatenate(self.images, axis=1) if self.images else None


def prepare_number(source: ImageSource, classify: Classifier, recognize: LineRecognizer | None = None,
                   reader: str = DEFAULT_READER, max_pixels: int | None = None) -> PreparedNumber:
    """Load a picture of written numbers and read its lines; never raises for a bad picture.

    ``reader`` (see ``READERS``) says how a line is read; with a line reader, ``recognize`` reads line images
    (:mod:`line_reader`), without one the segmenter cuts lines (:mod:`lines`; ``classify`` judges its candidate
    cuts). Either way the result holds each digit's probabilities: :func:`number_answer` needs no further call.
    ``max_pixels``: the largest picture accepted (see :func:`~digitnet.vision.io.load_picture`).
    """
    if reader not in READERS:
        raise ValueError(f"unknown reader {reader!r}; choose one of {', '.join(READERS)}")
    path = os.fspath(source) if isinstance(source, (str, os.PathLike)) else None
    try:
        picture = _load(source, max_pixels)
    except ImageError as exc:
        return PreparedNumber(path, error=str(exc), too_large=isinstance(exc, PictureTooLarge))
    try:
        number = _read_number(picture, path, classify, recognize, reader)
    except Exception as exc:  # a fault of ours on one picture: an error for it, not a traceback ending the run
        return PreparedNumber(path, error=_fault(picture.name, exc), fault=True)
    number.note = number.note or _pages_note(picture)
    return number


def _read_number(picture: Picture, path: str | None, classify: Classifier, recognize: LineRecognizer | None,
                 reader: str) -> PreparedNumber:
    """:func:`prepare_number` of a loaded picture."""
    passthrough = mnist_like(picture.pixels)
    if passthrough is not None:  # an MNIST digit is a one-digit number
        if not passthrough.any():
            return PreparedNumber(path, note=NO_INK)
        probabilities = classify(passthrough[None])[0]
        item = PreparedItem(str(int(probabilities.argmax())), [0, 0, 28, 28], float(probabilities.max()),
                            passthrough, probabilities)
        return PreparedNumber(path, [PreparedLine([item], [0, 0, 28, 28])])
    ink = find_writing(picture.pixels)
    pixels, back = picture.pixels, None  # where the writing is read turned or sheared: the map from its pixels back
    for change in (_levelled, _upright):
        changed = change(pixels, ink)
        if changed is not None:
            found = find_writing(changed[0])
            if found is not None:
                ink, pixels = found, changed[0]
                back = changed[1] if back is None else _after(back, changed[1])
    if ink is None:
        text_lines = []
    elif reader == "segment" or recognize is None or ink.in_boxes:  # form boxes part the digits themselves
        text_lines = read_lines(ink, classify)
    elif reader == "both":
        learned = line_reader.read_lines(ink, recognize, classify)
        # The segmenter is asked only where the line reader is unsure of a character: a sure reading stands.
        text_lines = learned if _sure(learned) else _likelier(learned, read_lines(ink, classify))
    else:
        text_lines = line_reader.read_lines(ink, recognize, classify if reader == "line" else None)
    if not text_lines:
        return PreparedNumber(path, note=NO_INK)
    # Boxes are in the whole picture's pixels, also where fewer were decoded (and where the writing was turned level or
    # sheared upright, the box round its corners mapped back).
    width, height = picture.full_size
    decoded = max(width, height) / max(picture.pixels.shape[:2])

    def scaled(box: tuple[int, int, int, int]) -> list[int]:
        if back is None:
            return _scale_box(box, ink.scale * decoded, width, height)
        x0, y0, x1, y1 = (v * ink.scale for v in box)
        corners = np.array([[x0, y0, 1], [x1, y0, 1], [x0, y1, 1], [x1, y1, 1]]) @ back.T
        (left, top), (right, bottom) = corners.min(0), corners.max(0)
        return _scale_box((left, top, right, bottom), decoded, width, height)

    lines = []
    for text_line in text_lines:
        items = [PreparedItem(item.char, scaled(item.box), item.confidence,
                              _digit_image(item.segment) if item.segment is not None else None,
                              item.segment.probabilities if item.segment is not None else None)
                 for item in text_line.items]
        lines.append(PreparedLine(items, scaled(text_line.box)))
    return PreparedNumber(path, lines)


def _levelled(pixels: np.ndarray, ink: preprocess.Ink | None) -> tuple[np.ndarray, np.ndarray] | None:
    """``pixels`` turned so that a line of writing running at a slope (see LEVEL_FROM) runs level, and the affine map
    (2×3) from the turned picture's pixels back to ``pixels``; None where the writing runs level enough, or is not one
    line (:func:`~digitnet.vision.lines.one_line_slope`)."""
    slope = one_line_slope(ink.components()[1], digit_blobs(ink)) if ink is not None else None
    if slope is None:
        return None
    angle = math.degrees(math.atan(slope))
    if not LEVEL_FROM < abs(angle) <= LEVEL_MAX:
        return None

    def turn(w: int, h: int) -> tuple[np.ndarray, tuple[int, int]]:
        matrix = preprocess.opencv().getRotationMatrix2D((w / 2, h / 2), angle, 1.0)  # counter-clockwise (y down)
        cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
        size = (math.ceil(w * cos + h * sin), math.ceil(w * sin + h * cos))
        matrix[:, 2] += (size[0] - w) / 2, (size[1] - h) / 2
        return matrix, size

    return _warped(pixels, turn)


def _upright(pixels: np.ndarray, ink: preprocess.Ink | None) -> tuple[np.ndarray, np.ndarray] | None:
    """``pixels`` sheared so that writing that leans further than the models learned (``lines.learned_slant`` of its
    digits, see :func:`~digitnet.vision.lines.writing_slant`) leans only that far, and the affine map (2×3) from the
    sheared picture's pixels back to ``pixels``; None where the writing leans as the models learned, or is in form
    boxes (which part its digits, upright)."""
    if ink is None or ink.in_boxes:
        return None
    slant = writing_slant(ink)
    if slant is None:
        return None
    low, high = learned_slant(len(digit_blobs(ink)))
    shear = slant - min(max(slant, low), high)
    if not shear:
        return None

    def unshear(w: int, h: int) -> tuple[np.ndarray, tuple[int, int]]:
        # x' = x - shear * y, moved right by as much as the bottom row moves left, on a canvas widened to hold it all.
        return np.array([[1.0, -shear, max(shear, 0.0) * h], [0.0, 1.0, 0.0]]), (w + math.ceil(abs(shear) * h), h)

    return _warped(pixels, unshear)


def _warped(pixels: np.ndarray, change: Callable[[int, int], tuple[np.ndarray, tuple[int, int]]],
            ) -> tuple[np.ndarray, np.ndarray]:
    """``pixels`` changed by the affine map (2×3) and output size that ``change`` gives for a picture of (width,
    height), and the map from the changed picture's pixels back to ``pixels``. A large picture is reduced to about
    LEVEL_PIXELS first: reading would reduce it as much again, and turned at full size a 40-MP picture would take
    gigabytes."""
    cv2 = preprocess.opencv()
    h, w = pixels.shape[:2]
    factor = max(1, math.ceil(math.sqrt(h * w / LEVEL_PIXELS)))  # (turned, a picture needs up to twice the pixels)
    if factor > 1:
        pixels = cv2.resize(np.ascontiguousarray(pixels), (w // factor, h // factor), interpolation=cv2.INTER_AREA)
    small_h, small_w = pixels.shape[:2]
    forward, size = change(small_w, small_h)
    # The corners the change uncovers: the picture's edge carried on, so that the paper's light runs on as it was.
    # (Paper of the picture's median level instead made a seam where a photo's corners are darker, read as strokes: the
    # turned row of read_lines.py, validation seed 0, 97 -> 79%. Writing that runs into the edge is carried on as
    # streaks, though: a number cropped to its ink reads worse turned than framed by paper.)
    changed = cv2.warpAffine(np.ascontiguousarray(pixels), forward, size, flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE)
    back = cv2.invertAffineTransform(forward)
    back[0] *= w / small_w  # ... and back to the pixels before they were reduced
    back[1] *= h / small_h
    return changed, back


def _after(first: np.ndarray, then: np.ndarray) -> np.ndarray:
    """The affine map (2×3) that applies ``then``, then ``first``: maps back through two changes of a picture."""
    return first[:, :2] @ then + np.array([[0.0, 0.0, first[0, 2]], [0.0, 0.0, first[1, 2]]])


def _sure(lines: list, least: float | None = None) -> bool:
    """Whether every character of ``lines`` was read with a confidence of at least ``least`` (BOTH_SURE)."""
    least = BOTH_SURE if least is None else least
    return bool(lines) and all(item.confidence >= least for line in lines for item in line.items)


def _likelier(learned: list, segmented: list) -> list:
    """Per line, the reading whose characters (spaces aside) are jointly likelier where both readings have as
    many; the learned one where they count different characters (counting is what the line recognizer learned,
    and a product of more confidences is smaller for that alone) or found different lines."""
    if len(learned) != len(segmented):
        return learned

    def chars(line) -> list:
        return [item for item in line.items if item.char != " "]

    def likelihood(line) -> float:
        return float(np.prod([item.confidence for item in chars(line)]))

    def text(line) -> str:
        return "".join(item.char for item in line.items)

    return [a if text(a) == text(b) or len(chars(a)) != len(chars(b)) or likelihood(a) >= likelihood(b) else b
            for a, b in zip(learned, segmented, strict=True)]


def _digit_image(segment: Segment) -> np.ndarray:
    """A digit's 28×28: made once (a reader that classified it already has it)."""
    return segment.image if segment.image is not None else normalize_digit(segment.mask)


def _item_answer(item: PreparedItem) -> dict:
    return {"char": item.char, "digit": item.digit, "confidence": round(item.confidence, 6), "box": item.box}


def number_answer(number: PreparedNumber) -> dict:
    """The fields of ``digitnet read --json``: the text, its lines (top to bottom) and every item in reading order.

    ``text`` joins the lines' texts with newlines; each line's text is its items' characters joined.
    """
    lines = [{"text": line.text, "box": line.box, "digits": [_item_answer(item) for item in line.items]}
             for line in number.lines]
    return {"path": number.path, "text": "\n".join(line["text"] for line in lines), "lines": lines,
            "digits": [item for line in lines for item in line["digits"]], "error": number.error,
            "note": number.note}


def digit_answer(prepared: Prepared, probabilities: np.ndarray | None = None, top_k: int | None = None,
                 min_confidence: float | None = None) -> dict:
    """The fields of ``digitnet predict --json`` for a prepared picture and its probabilities.

    ``probabilities`` None: the ones preparing it found (``prepared.probabilities``), or none (no image).
    """
    if probabilities is None:
        probabilities = prepared.probabilities
    result = {"path": prepared.path, "digit": None, "confidence": None, "probabilities": None,
              "error": prepared.error, "note": prepared.note}
    if probabilities is not None:
        probs = np.asarray(probabilities)
        digit = int(probs.argmax())
        result.update(digit=digit, confidence=round(float(probs[digit]), 6),
                      probabilities=[round(float(v), 6) for v in probs])
        if min_confidence is not None and probs[digit] < min_confidence:
            result.update(digit=None, note=f"not sure: confidence {probs[digit]:.2f} < {min_confidence:g}")
        if top_k:
            order = np.argsort(-probs, kind="stable")[:top_k]
            result["top_k"] = [{"digit": int(d), "probability": round(float(probs[d]), 6)} for d in order]
    elif top_k:
        result["top_k"] = []
    return result


def classify_prepared(prepared: list[Prepared], classify: Classifier, top_k: int | None = None,
                      min_confidence: float | None = None) -> list[dict]:
    """Answer for each of ``prepared``, in order, classifying in one call those not classified yet."""
    pending = [p for p in prepared if p.image is not None and p.probabilities is None]
    fresh = iter(classify(np.stack([p.image for p in pending])) if pending else [])
    return [digit_answer(p, next(fresh) if p.image is not None and p.probabilities is None else None,
                         top_k, min_confidence)
            for p in prepared]


def _scale_box(box: tuple[int, int, int, int], scale: float, width: int, height: int) -> list[int]:
    """A working-resolution box in the original picture's pixels."""
    x0, y0, x1, y1 = box
    # (Both ends within the picture: a box mapped back from a picture read turned or sheared can reach past its edge.)
    return [min(width, max(0, int(x0 * scale))), min(height, max(0, int(y0 * scale))),
            max(0, min(width, int(np.ceil(x1 * scale)))), max(0, min(height, int(np.ceil(y1 * scale))))]
