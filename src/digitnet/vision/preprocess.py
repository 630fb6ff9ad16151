"""Turn a picture of a digit into what MNIST looks like, the way MNIST was made.

MNIST digits are binary NIST scans whose ink bounding box was scaled (keeping its aspect) to fit 20×20
with anti-aliasing, then placed in a 28×28 field so that the centre of mass sits at the centre. A photo
first needs its paper and ink found, whatever their colours and the lighting:

1. gray levels at a working resolution (huge photos are reduced first; tiny scans, at most 32 px, are enlarged
   smoothly, and their edge is taken for paper: a digit may fill its cell); big writing is then read halved,
   where its strokes keep 8 px (every later step costs about its pixel count); a sheet
   photographed where it lies has the desk round it made paper,
2. polarity: is the ink darker or lighter than the paper around it? (A digit cut out close to its ink is looked at
   again with a margin of the paper at its edge round it.)
3. background: the paper's brightness at every pixel (uneven light, shadows) by a morphological
   opening at low resolution; ink = contrast against it, relative to how much contrast was possible,
4. threshold at half the ink's typical contrast (stroke edges are where blur has eaten half the ink),
   above the paper's noise; a fainter stroke that joins the writing (a fine pen blurred by the camera, a
   stroke pressed lightly) at half its own contrast, where it stands out narrow from what is around it;
   specks far smaller than the digit are dropped,
5. crop to the ink, scale the longest side to 20 px, centre by centre of mass in 28×28.

The pixel primitives (bilinear resizing, box and morphological filters, connected components) are OpenCV's,
imported on first use. Two stay: area reduction is torch's adaptive pooling (OpenCV's INTER_AREA weighs partly
covered pixels instead, which changed the 28×28 of more than half of a set of rendered digits and brought them
no closer to the originals, and was no faster), and the final 28×28 resampling is PIL's Lanczos, which
anti-aliases when it shrinks (OpenCV's does not).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from types import ModuleType

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from digitnet.vision.io import MIN_SIDE

WORK_SIDE = 1024  # longest side we process at: plenty for a digit, and keeps a 12 MP photo fast
# Strokes found at most this wide (px) in a picture that was reduced to WORK_SIDE were thinner than the reduction: ...
FINE_STROKE = 1.5
# ... they are looked for again unreduced in a picture of at most this many pixels (a screenshot up to 1920×1200; not a
# phone photo, decoded at half its 12 MP, whose every later step would then cost four times as much)
FINE_PIXELS = 2_500_000
TINY_SIDE = 32  # pictures no larger than this (a coarse scan, an icon) are enlarged before ink is looked for ...
TINY_WORK_SIDE = 112  # ... smoothly, to about this longest side, so a threshold finds strokes, not blocks
COARSEST = 2  # big writing is looked for first with the picture reduced this many times, ...
COARSE_SIDES = (256, 64)  # ... or fewer, so that its long and short sides keep this many pixels (a desk is told
# from the sheet at 128: SHEET_SIDE); ...
COARSE_STROKE = 8  # ... and read there if its strokes are this wide there (MNIST's: ~2.5 px)
MIN_CONTRAST = 0.15  # weaker ink (relative to the paper) is noise, a stain, or a blank page
DENSE_INK = 0.05  # a median contrast above this: ink (with its blurred edges) covers half the picture
MIN_INK_PIXELS = 8  # at working resolution: fewer is a speck, not a digit
SAMPLE_PIXELS = 1 << 14  # statistics of the paper (median, noise) come from a grid sample of about this many pixels
SPECK_FRACTION = 0.04  # components smaller than this fraction of the largest are dirt, not strokes
BOX = 20  # MNIST: the ink's bounding box is scaled to fit 20×20 ...
SIZE = 28  # ... inside a 28×28 field ...
CENTER = 14.0  # ... with its centre of mass at pixel (14, 14): what the MNIST test set measures (±0.5)
# Strokes fainter than the threshold are ink where they stand out narrow from their surroundings: down to this share
# of the ink's typical contrast, ...
FAINT_STROKE = 0.25
FAINT_REACH = 1.5  # ... narrower than this many of the writing's stroke widths (a shadow is wider), ...
FAINT_LENGTH = 1.5  # ... that join the writing and are no longer than this many of its pieces' heights
FINE_PEN = 0.12  # a pen whose strokes are thinner than this share of its digits' height (MNIST's: 0.15)
CLEAN_FRAME = 0.9  # a 28×28 field whose 2-px frame is at least this much exactly paper is clean (MNIST: ≥ 0.9375)
# Polarity: ink is thinner than this share of the picture's short side (a thick pen's stroke, even in a digit that
# fills the picture, is 10-15%); a desk round a photographed sheet is wider. Chosen on held-out training digits: at
# 0.15, 6 of 2,700 digit pictures (stretched digits, photos) were taken for light ink on dark paper; here none, and a
# sheet on a black desk reads as well.
THIN = 0.25
# A digit cut out close to its ink (see _ink_at): where the ink is this share of its height or nearer to three of the
# picture's edges, or (the edge paper round ink of one polarity) none is found or it is taken for the other, it is
# looked for again with a margin of the edge's paper round the picture, CLOSE_PAD-th of its longest side wide (a
# quarter reads bold crops as well as a wide margin does; an eighth not).
CLOSE_MARGIN = 0.1
CLOSE_PAD = 4
EDGE_PAPER = 0.25  # an edge whose median is within this share of the picture's range of its lightest is paper
# ... and one within it of the darkest, round light that holds nothing dark (see _edge_paper_round), is paper round
# light ink. (Light holding dark, the loops of a 0 or 8 as much as writing on a sheet on a desk, is not trusted: a
# light share of the picture under 40% read dark-mode numbers better but lost sheets in shadow on desks.)
# A sheet photographed where it lies (see without_desk), looked for at SHEET_SIDE px along the picture's longest side.
# The desk: the darker of Otsu's two classes (no desk where that class is more than SHEET_DARKER of the lighter one's
# level), below SHEET_CUT of the way from its mean to the lighter one's, where it reaches the picture's edge, along
# SHEET_BORDER of the edge or more; darker than the sheet's paper by SHEET_STEP or more, and at most SHEET_DARKER of
# it (a gray table: 0.35-0.75); nothing on it darker than what is round it by SHEET_EVEN of that and by SHEET_INK
# (ink on paper in shadow; a desk's grain is ±15%, a black desk's noise a few hundredths); and it meets the sheet at
# an edge whose steepest slope per pixel is SHEET_EDGE of the step from desk to paper or more (a shadow's is
# softer: 0.1 at a penumbra 2% of the picture wide). The sheet: the largest piece of the rest, at least SHEET_AREA of
# the picture, filling SHEET_RECTANGLE of the smallest rectangle round it, with at most SHEET_CORNERS corners, filling
# SHEET_SOLID of its own outline, and written on: things thin on it darker than its paper by SHEET_WRITING of the
# paper's level (a white digit on black is bright too, but its outline is rounded, the black reaches into its loops
# and notches, and nothing is written on a 1).
SHEET_SIDE = 128
SHEET_CUT = 0.4
SHEET_BORDER = 0.15
SHEET_STEP = 0.1
SHEET_DARKER = 0.8
SHEET_EVEN = 0.4
SHEET_INK = 0.15
SHEET_EDGE = 0.2
SHEET_AREA = 0.05
SHEET_RECTANGLE = 0.85
SHEET_CORNERS = 5
SHEET_SOLID = 0.95
SHEET_WRITING = 0.1
# Nothing written on the desk at the scale ink is looked for either (against the surroundings within SHEET_STROKE of the
# picture's longest side): no more than MIN_INK_PIXELS as much darker as SHEET_EVEN and SHEET_INK say (a fine pen in a
# hard shadow), and no more than SHEET_INKED of it, in 3×3 means, darker by SHEET_PENCIL of their level and
# SHEET_PENCIL_STEP (pencil: 70% of the paper's brightness; a desk's grain and noise stay within a fifth of its level).
SHEET_STROKE = 0.02
SHEET_PENCIL = 0.2
SHEET_PENCIL_STEP = 0.05
SHEET_INKED = 0.003


@dataclass
class Ink:
    """Where the ink is in a picture, at working resolution."""

    ink: np.ndarray  # float32 (h, w): 0 on paper, up to 1 for ink of full contrast
    mask: np.ndarray  # bool (h, w): pixels counted as ink
    level: float  # typical contrast of the ink strokes (0..1)
    scale: float  # original pixels per working pixel (for boxes in the original picture)
    dark_ink: bool  # whether the ink was darker than the paper
    threshold: float  # contrast above which a pixel is ink: half the level, and clear of the paper's noise
    in_boxes: bool = False  # printed box lines or a comb were taken away: the writing stood in form boxes
    # The faintest contrast clear of the paper's noise (below ``threshold``): where faint printed form lines are
    # looked for. None: not known (they are not looked for).
    faint: float | None = None
    # Per pixel, where faint narrow strokes were taken for ink below ``threshold`` (:func:`_faint_strokes`): the
    # threshold each pixel was held to. None: ``threshold`` everywhere.
    thresholds: np.ndarray | None = None
    # What several steps of reading ask of the same mask (line finding, both readers, marks), worked out once per
    # picture: "components" of ``mask``, "thresholded" components of :meth:`above`, "stroke" width, the digit
    # "blobs" that lines are found by (lines.digit_blobs). Not an
    # argument: a copy made with ``dataclasses.replace`` (another mask) starts with an empty one.
    cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def components(self) -> tuple[np.ndarray, np.ndarray]:
        """:func:`connected_components` of :attr:`mask` (read-only arrays: every reader shares them)."""
        if "components" not in self.cache:
            self.remember(components=connected_components(self.mask))
        return self.cache["components"]

    def thresholded_components(self) -> tuple[np.ndarray, np.ndarray]:
        """:func:`connected_components` of all ink above the threshold, specks included (read-only arrays)."""
        if "thresholded" not in self.cache:
            self.remember(thresholded=connected_components(self.above()))
        return self.cache["thresholded"]

    def above(self) -> np.ndarray:
        """All ink above its threshold, specks included (bool)."""
        return self.ink > (self.threshold if self.thresholds is None else self.thresholds)

    def remember(self, **components: tuple[np.ndarray, np.ndarray]) -> None:
        """Put components already worked out into the cache, made read-only so that no reader changes them under
        another."""
        for key, arrays in components.items():
            for array in arrays:
                array.flags.writeable = False
            self.cache[key] = arrays

    def cropped(self, x0: int, y0: int, height: int, width: int) -> Ink:
        """This ink in the ``height`` × ``width`` part of its picture whose top left corner is at (``x0``, ``y0``)."""
        part = (slice(y0, y0 + height), slice(x0, x0 + width))
        return replace(self, ink=self.ink[part], mask=self.mask[part],
                       thresholds=None if self.thresholds is None else self.thresholds[part])

    def stroke_width(self) -> float:
        """:func:`stroke_width` of :attr:`mask`."""
        if "stroke" not in self.cache:
            stats = self.components()[1]
            if len(stats):  # only the ink's box holds runs
                x0, y0 = stats[:, :2].min(0)
                x1, y1 = stats[:, 2:4].max(0)
                self.cache["stroke"] = stroke_width(self.mask[y0:y1, x0:x1])
            else:
                self.cache["stroke"] = stroke_width(self.mask)
        return self.cache["stroke"]


# --------------------------------------------------------------------------------------------- pixels


@functools.cache
def opencv() -> ModuleType:
    """OpenCV, imported on first use (importing it costs start-up time that `digitnet --help` need not pay).

    One thread: folders are read by parallel worker processes, and at working resolution (≤ 1024 px) OpenCV's
    threads did not find ink any faster (measured with 1, 2 and 4 threads on the photo benchmark's pictures).
    """
    import cv2

    cv2.setNumThreads(1)
    return cv2


def to_unit(pixels: np.ndarray) -> np.ndarray:
    """Pixels as float32 in 0..1, whatever their dtype."""
    if pixels.dtype == np.uint8:
        return pixels.astype(np.float32) / 255
    if pixels.dtype == np.uint16:
        return pixels.astype(np.float32) / 65535
    if pixels.dtype == bool:
        return pixels.astype(np.float32)
    values = np.nan_to_num(pixels.astype(np.float32))
    return np.clip(values / 255 if values.max(initial=0) > 1 else values, 0, 1)


def to_gray(pixels: np.ndarray) -> np.ndarray:
    """Luminance (ITU-R 601, as PIL's "L") in 0..1 for gray or RGB pixels."""
    if pixels.ndim == 3 and pixels.shape[2] in (3, 4) and pixels.size:
        # OpenCV's weighted sum (the same weights, in float), scaled to 0..1 after it: a fifth of the time of
        # numpy's product over the interleaved channels, which was a tenth of reading a number photo.
        color = np.ascontiguousarray(pixels[..., :3])
        if color.dtype == np.uint8:
            gray = opencv().cvtColor(color.astype(np.float32), opencv().COLOR_RGB2GRAY)
            gray /= np.float32(255)
            return gray
        return opencv().cvtColor(to_unit(color), opencv().COLOR_RGB2GRAY)
    unit = to_unit(pixels)
    if unit.ndim == 3:
        unit = unit[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.ascontiguousarray(unit, dtype=np.float32)


def mnist_like(pixels: np.ndarray) -> np.ndarray | None:
    """The picture itself as uint8 if it already is an MNIST digit (28×28, ink on a clean field), else None.

    White-on-black 28×28 digits pass through bit for bit: redoing MNIST's own normalization on an MNIST digit
    would only blur it. A dark-on-light one is inverted if its paper is exactly white (an inverted MNIST digit:
    its paper inverts to exactly 0); a 28×28 photo of a digit, whose paper is gray and noisy, is not MNIST-like
    and gets the full treatment, like a larger photo.
    """
    if pixels.shape[:2] != (SIZE, SIZE):
        return None
    if pixels.ndim == 3:
        if not (pixels == pixels[..., :1]).all():
            return None
        pixels = pixels[..., 0]  # an MNIST digit saved as RGB is still an MNIST digit
    unit = to_unit(pixels)
    frame = np.ones((SIZE, SIZE), bool)
    frame[2:-2, 2:-2] = False
    border = float(unit[frame].mean())
    image = pixels if pixels.dtype == np.uint8 else np.round(unit * 255).astype(np.uint8)
    if border < 0.1:
        return image.copy()
    if border > 0.9:
        inverted = 255 - image
        # Every MNIST digit leaves at least 93% of this frame exactly 0; gray paper leaves none of it.
        if np.count_nonzero(inverted[frame] == 0) >= CLEAN_FRAME * np.count_nonzero(frame):
            return inverted
    return None


def _resize_area(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """Reduce float32 ``x`` to (height, width), each pixel the mean of the pixels its area touches."""
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None, None]
    return F.adaptive_avg_pool2d(t, (height, width))[0, 0].numpy()


def _resize_linear(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """Enlarge float32 ``x`` to (height, width) bilinearly (pixel centres aligned, edges held)."""
    return opencv().resize(np.ascontiguousarray(x, dtype=np.float32), (width, height),
                           interpolation=opencv().INTER_LINEAR)


def working_gray(pixels: np.ndarray, side: int = WORK_SIDE) -> tuple[np.ndarray, float]:
    """Gray image reduced (by area, which also averages out noise) so its longest side is <= ``side``, or a tiny
    one (at most TINY_SIDE) enlarged bilinearly to about TINY_WORK_SIDE.

    Returns it and the scale: original pixels per working pixel (below 1 for an enlarged picture).
    """
    h, w = pixels.shape[:2]
    if max(h, w) <= TINY_SIDE:
        # Thresholded as it is, an 8×8 scan's gray cells become square blocks that merge into a blob; enlarged
        # smoothly, the gray levels turn into stroke edges where a threshold can find them.
        factor = TINY_WORK_SIDE // max(h, w)
        return _resize_linear(to_gray(pixels), h * factor, w * factor), 1 / factor
    factor = -(-max(h, w) // side)
    if factor > 1 and pixels.dtype == np.uint8:
        # Shrink a big photo in PIL (a box filter in C) before any float copy: 40 MP of RGB floats is 480 MB.
        pixels = np.asarray(Image.fromarray(pixels).reduce(factor))
    gray = to_gray(pixels)
    if max(gray.shape) > side:
        shrink = max(gray.shape) / side
        gray = _resize_area(gray, max(1, round(gray.shape[0] / shrink)), max(1, round(gray.shape[1] / shrink)))
    return gray, (h / gray.shape[0] + w / gray.shape[1]) / 2


# ------------------------------------------------------------------------------------ a sheet on a desk


def without_desk(gray: np.ndarray) -> np.ndarray | None:
    """``gray`` with the desk round a photographed sheet made paper, or None where there is no desk.

    Where a sheet lies on a desk, the desk is the widest, darkest thing in the picture: taken for the paper's
    level in shadow, its grain is read as strokes, and beside a dark desk the sheet passes for light ink. It is
    found at low resolution (:func:`_desk`), and each desk pixel then takes the paper level of the nearest part
    of the sheet, so the paper's light carries on past the sheet's edge. Polarity is not known yet: light ink on a
    dark ground (a white digit on black) is told apart by the sheet's shape and by what is written on it.
    """
    cv2 = opencv()
    h, w = gray.shape
    shrink = max(h, w) / SHEET_SIDE
    if shrink < 1:
        return None
    low = _resize_area(gray, max(3, round(h / shrink)), max(3, round(w / shrink)))
    found = _desk(low)
    if found is None:
        return None
    desk, closed = found
    on_desk = cv2.resize(desk, (w, h), interpolation=cv2.INTER_NEAREST).view(bool)
    if _written_on(gray, on_desk):
        return None
    # Each desk pixel: the level of the nearest sheet pixel (labelled by distanceTransform, one label each).
    _, nearest = cv2.distanceTransformWithLabels(desk, cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL)
    sheet = desk == 0
    levels = np.zeros(int(nearest.max()) + 1, np.float32)
    levels[nearest[sheet]] = closed[sheet]
    level = _resize_linear(levels[nearest], h, w)
    # And a band along each edge of the picture that the desk reaches, where a sliver of it may lie, narrower than a
    # low-resolution pixel (not where the sheet runs off the picture: writing may come close to that edge).
    band = max(1, round(2 * shrink))
    if desk[0].any():
        on_desk[:band] = True
    if desk[-1].any():
        on_desk[-band:] = True
    if desk[:, 0].any():
        on_desk[:, :band] = True
    if desk[:, -1].any():
        on_desk[:, -band:] = True
    return np.where(on_desk, level, gray).astype(np.float32, copy=False)


def _desk(low: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The desk round a sheet in ``low`` (a picture at low resolution, paper light) as uint8 0/1, and the picture
    with its writing closed away (the paper's level); None where there is no desk (see ``SHEET_*``)."""
    cv2 = opencv()
    side = max(3, round(0.05 * max(low.shape)) | 1)  # wider than a stroke of writing at this size
    wide = 2 * side + 1
    if min(low.shape) < wide:
        return None  # a strip: no room for a sheet and a desk round it
    closed = cv2.morphologyEx(low, cv2.MORPH_CLOSE, np.ones((side, side), np.uint8), borderType=cv2.BORDER_REPLICATE)
    levels = cv2.convertScaleAbs(closed, alpha=255)
    otsu, _ = cv2.threshold(levels, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    darker = levels <= otsu
    if darker.all() or not darker.any():
        return None
    dark, light = float(closed[darker].mean()), float(closed[~darker].mean())
    if dark > SHEET_DARKER * light:  # (most pictures without a desk end here, at a third of the cost)
        return None
    # Nearer the desk's level than Otsu's cut: the sheet's paper in shadow near its edge stays sheet.
    cut = (1 - SHEET_CUT) * dark + SHEET_CUT * light
    desk = touching_edge(closed <= cut)  # (writing does not reach the picture's edge)
    if not desk.any():
        return None
    # (4-connected, unlike connected_components: a desk's diagonal neighbour across the sheet's corner is not desk)
    _, pieces, stats, _ = cv2.connectedComponentsWithStats((~desk).view(np.uint8), connectivity=4)
    sheet = pieces == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    # Its shape from its core: a bright patch of the desk's grain may cling to it by a narrow neck.
    core = cv2.morphologyEx(sheet.view(np.uint8), cv2.MORPH_OPEN, np.ones((wide, wide), np.uint8))
    if not core.any():
        return None
    outline = cv2.convexHull(cv2.findNonZero(core))
    hull = cv2.fillConvexPoly(np.zeros_like(core), outline, 1).view(bool)
    (_, _), (rw, rh), _ = cv2.minAreaRect(outline)
    area = np.count_nonzero(hull)
    if area < SHEET_AREA * hull.size or area < SHEET_RECTANGLE * (rw + 1) * (rh + 1):
        return None
    # Straight-sided: its outline, simplified to within 2% of its length, has four corners (a fifth where the photo's
    # edge cuts one off); a blob's rounded outline has more.
    if len(cv2.approxPolyDP(outline, 0.02 * cv2.arcLength(outline, True), True)) > SHEET_CORNERS:
        return None
    # Solid: the sheet fills its outline (its writing, dark but not reaching the picture's edge, is part of it); a white
    # digit on black, the dark ground in its loops and notches reaching the edge, does not.
    if np.count_nonzero(sheet & hull) < SHEET_SOLID * area:
        return None
    # The sheet: the piece up to its outline (the opening rounded its corners); the rest is desk.
    sheet &= cv2.dilate(hull.view(np.uint8), np.ones((5, 5), np.uint8)).view(bool)
    # Written on: inside it, things thin and darker than the paper (which the closing took away).
    inside = cv2.erode(sheet.view(np.uint8), np.ones((3, 3), np.uint8)).view(bool)
    paper_top = float(closed[inside].max()) if inside.any() else 0.0
    if np.count_nonzero(inside & (closed - low >= SHEET_WRITING * paper_top)) < 3:  # (more than a speck)
        return None
    desk = ~sheet
    rim = _rim(desk)
    if np.count_nonzero(rim) < SHEET_BORDER * rim.size:
        return None
    lit = sheet & (closed > cut)
    if not lit.any():
        return None
    paper, desk_level = float(closed[lit].mean()), float(closed[desk].mean())
    if paper - desk_level < SHEET_STEP or desk_level > SHEET_DARKER * paper:
        return None
    # Nothing written on it: paper in a shadow that reaches the picture's edge can pass the tests above, but the ink
    # on it is far darker than the shadow round it (its brightest within a few strokes), even a thick stroke that
    # the closing kept; a desk's grain is not (a desk holding a pen stays as it is). Looked at away from the sheet,
    # into whose brightness the desk's edge is blurred.
    inner = cv2.erode(desk.view(np.uint8), np.ones((5, 5), np.uint8)).view(bool)
    around = cv2.dilate(np.where(inner, low, np.float32(0)), np.ones((3 * side,) * 2, np.uint8))
    written = inner & _darker(low, around, SHEET_EVEN, SHEET_INK)
    if np.count_nonzero(written) > 0.01 * np.count_nonzero(inner):
        return None
    # Sharp: the steepest slope beside the desk (Sobel's 3×3 sums 8 differences of one pixel).
    slope = np.hypot(cv2.Sobel(closed, cv2.CV_32F, 1, 0), cv2.Sobel(closed, cv2.CV_32F, 0, 1)) / 8
    edge = cv2.dilate(desk.view(np.uint8), np.ones((3, 3), np.uint8)).view(bool) & sheet
    edge[[0, -1]] = False
    edge[:, [0, -1]] = False
    steepest = cv2.dilate(slope, np.ones((3, 3), np.uint8))
    if not edge.any() or np.median(steepest[edge]) < SHEET_EDGE * (paper - desk_level):
        return None
    # Its slivers and wedges along the picture's edge, as thin as strokes, were closed away: they are desk too (within
    # a stroke's width of the picture's edge: a thick stroke running to the sheet's edge, dark as a black desk, stays).
    # And the desk reaches into the sheet as far as the sheet's edge is blurred (a low-resolution pixel or two).
    frame = np.ones_like(desk)
    frame[side:-side, side:-side] = False
    desk |= touching_edge((low <= cut) & frame)
    desk = cv2.dilate(desk.view(np.uint8), np.ones((5, 5), np.uint8))
    return (desk, closed) if not desk.all() else None


def _written_on(gray: np.ndarray, region: np.ndarray) -> bool:
    """Whether strokes of ink lie in ``region`` of ``gray`` (paper light): pixels far darker than their surroundings
    (a closing SHEET_STROKE of the picture wide), as ink is on paper in a hard shadow; a desk's grain and noise are
    not.

    At the scale ink is looked for (the working picture, or halved for :func:`find_ink`'s first look), since a
    fine pen's strokes in a small number vanish at the desk finder's; only where it found a desk (``region``), away
    from the sheet, whose brightness the closing would otherwise reach."""
    cv2 = opencv()
    side = max(3, round(SHEET_STROKE * max(gray.shape)) | 1)
    away = cv2.erode(region.view(np.uint8), np.ones((2 * side + 1,) * 2, np.uint8), borderType=cv2.BORDER_CONSTANT,
                     borderValue=0).view(bool)  # (and from the picture's edge, where the sheet may run on)
    if not away.any():
        return False
    rows, cols = np.flatnonzero(away.any(1)), np.flatnonzero(away.any(0))
    top, bottom = max(0, rows[0] - side), rows[-1] + side + 1
    left, right = max(0, cols[0] - side), cols[-1] + side + 1
    part = np.ascontiguousarray(gray[top:bottom, left:right], dtype=np.float32)
    square = np.ones((side, side), np.uint8)
    around = cv2.morphologyEx(part, cv2.MORPH_CLOSE, square, borderType=cv2.BORDER_REPLICATE)
    away = away[top:bottom, left:right]
    # Pen: a few pixels far darker than the paper round them.
    if np.count_nonzero(away & _darker(part, around, SHEET_EVEN, SHEET_INK)) > MIN_INK_PIXELS:
        return True
    # Pencil: many, fainter (3×3 means: a pixel's noise is not a stroke).
    part = cv2.blur(part, (3, 3))
    around = cv2.morphologyEx(part, cv2.MORPH_CLOSE, square, borderType=cv2.BORDER_REPLICATE)
    pencil = away & _darker(part, around, SHEET_PENCIL, SHEET_PENCIL_STEP)
    return np.count_nonzero(pencil) > SHEET_INKED * np.count_nonzero(away)


def _darker(x: np.ndarray, around: np.ndarray, share: float, step: float) -> np.ndarray:
    """Where ``x`` is darker than ``around`` (paper light) by ``share`` of it and by ``step`` too: ink, not grain."""
    return (x < (1 - share) * around) & (x < around - step)


def _rim(x: np.ndarray) -> np.ndarray:
    """The values on the edge of 2-D ``x``, each once."""
    return np.concatenate([x[0], x[-1], x[1:-1, 0], x[1:-1, -1]])


def touching_edge(mask: np.ndarray) -> np.ndarray:
    """The 4-connected parts of boolean ``mask`` that reach the picture's edge."""
    count, parts = opencv().connectedComponents(mask.view(np.uint8), connectivity=4)
    touching = np.zeros(count, bool)
    touching[_rim(parts)] = True
    touching[0] = False
    return touching[parts]

# ----------------------------------------------------------------------------------- paper and ink


def _low_res(x: np.ndarray, blocks: int = 48) -> tuple[np.ndarray, int]:
    """Area-reduce so the short side has about ``blocks`` pixels; returns it and a window of ~30% of that side."""
    h, w = x.shape
    factor = max(1.0, min(h, w) / blocks)
    lh, lw = max(1, round(h / factor)), max(1, round(w / factor))
    low = _resize_area(x, lh, lw) if (lh, lw) != (h, w) else np.ascontiguousarray(x, dtype=np.float32)
    window = max(3, int(0.3 * min(lh, lw)) | 1)  # odd, larger than any stroke, smaller than the light's changes
    return low, window


def _median_filter(low: np.ndarray, window: int) -> np.ndarray:
    """Median over window×window (odd) neighbourhoods of 0..1 values, the edge repeated outward, to 1/255.

    OpenCV's median filter takes windows this large only for 8-bit pixels; rounding is monotone, so the result is
    the exact median rounded to 1/255, plenty for a paper level (and 20× faster than partitioning every window).
    """
    levels = np.round(np.clip(low, 0, 1) * 255).astype(np.uint8)
    return opencv().medianBlur(levels, window).astype(np.float32) / 255


def _order_statistics(values: np.ndarray, ks: list[int]) -> np.ndarray:
    """The ``ks``-th smallest (0-based) of a flat array, exactly, sorting only the values near them.

    A sorted sample brackets them; only the values inside the bracket are sorted (numpy's partition slows down
    badly on the many equal values of a picture's contrast: slower than sorting it all). Should the bracket miss,
    everything is sorted.
    """
    n = values.size
    if n < 2048:
        return np.sort(values)[ks]
    sample = np.sort(values[::16])
    low_rank, high_rank = min(ks) * sample.size // n - 12, max(ks) * sample.size // n + 12
    low = sample[low_rank] if low_rank >= 0 else -np.inf
    high = sample[high_rank] if high_rank < sample.size else np.inf
    below = np.count_nonzero(values < low)
    inside = values[(values >= low) & (values <= high)]
    if below <= min(ks) and max(ks) < below + inside.size:
        return np.sort(inside)[[k - below for k in ks]]
    return np.sort(values)[ks]


def _median_of_nonnegative(values: np.ndarray) -> float:
    """``np.median`` of an array without negative values, faster where many are 0 (the paper, in ink contrast).

    Zeros come first in sorted order, so only the positive values need ordering.
    """
    values = values.ravel()
    positive = values[values > 0]
    zeros = values.size - positive.size
    middle = [(values.size - 1) // 2, values.size // 2]
    above = sorted({k - zeros for k in middle if k >= zeros})
    picked = dict(zip(above, _order_statistics(positive, above), strict=True)) if above else {}
    pair = np.array([picked[k - zeros] if k >= zeros else 0 for k in middle], dtype=values.dtype)
    return float(np.mean(pair))


def _percentile(values: np.ndarray, q: float) -> float:
    """``np.percentile(values, q)`` (linear interpolation, the same value bit for bit) of a flat, non-empty float
    array without NaNs, from the two order statistics around it (:func:`_order_statistics`: a third of the time on a
    picture's ink)."""
    index = (values.size - 1) * (q / 100)
    low = int(np.floor(index))
    below, above = _order_statistics(values, [low, min(low + 1, values.size - 1)])
    fraction = index - low  # a Python float, as numpy keeps it (each product is in the array's precision)
    step = above - below
    # numpy's interpolation: from the nearer of the two ends
    return float(above - step * (1 - fraction) if fraction >= 0.5 else below + step * fraction)


def _grid_sample(x: np.ndarray, size: int = SAMPLE_PIXELS) -> np.ndarray:
    """At most about ``size`` values of 2-D ``x`` on a regular grid spread over all of it (all of them if it is small).

    A grid, not every k-th value of the flat array: a stride that divides the width would sample a few columns.
    """
    step = max(1, int(np.ceil(np.sqrt(x.size / size))))
    return x[step // 2::step, step // 2::step].ravel()


def _kth_extremes(values: np.ndarray, k: int) -> tuple[float, float]:
    """The k-th smallest and k-th largest (0-based) of a flat array, without partitioning all of it.

    A sample's k-th smallest is no smaller than the whole array's, so only the values up to it need sorting.
    A small sample, sorted once, gives both bounds (partitioning a larger one twice cost more than the
    few hundred more values it lets through).
    """
    stride = next((s for s in (64, 16) if values.size >= s * (k + 1)), 1)
    sample = np.sort(values[::stride])
    low_bound, high_bound = sample[k], sample[sample.size - 1 - k]
    low = values[values <= low_bound]
    high = values[values >= high_bound]
    return float(np.partition(low, k)[k]), float(np.partition(high, high.size - 1 - k)[high.size - 1 - k])


def _mean_3x3(x: np.ndarray) -> np.ndarray:
    """3×3 mean of each pixel's neighbours that lie inside the picture (fewer at the edges)."""
    cv2 = opencv()
    total = cv2.boxFilter(x, -1, (3, 3), normalize=False, borderType=cv2.BORDER_CONSTANT)
    counts = []
    for n in x.shape:  # neighbours along each axis: 3 inside, 2 at either end, 1 for a single row or column
        count = np.full(n, 3, np.float32)
        count[0] -= 1
        count[-1] -= 1
        counts.append(count)
    # 9 neighbours inside; only the edge rows and columns need their own counts (no full-size array of counts).
    mean = total / np.float32(9)
    for edge in (0, -1):
        mean[edge] = total[edge] / (counts[0][edge] * counts[1])
        mean[:, edge] = total[:, edge] / (counts[0] * counts[1][edge])
    return mean


def ink_is_dark(gray: np.ndarray) -> bool:
    """Polarity: is the ink darker than the paper around it?

    The paper is what a wide local median sees (ink is a minority in any large window, and a median keeps
    the sharp edge of a shadow); the ink is on the side where pixels stray furthest from it. Local, so a
    shadow over most of the border cannot pass for the paper colour. And thin: a pixel strays only as far as it
    also strays from its side's :func:`background` (on the dark side, a closing), which keeps whatever is wider
    than a stroke. A sheet photographed on a dark desk is the brightest thing in the picture, and where the
    median's window is mostly desk the sheet strays from it as far as the ink does; but the sheet is wide.
    """
    h, w = gray.shape
    low, _ = _low_res(gray, blocks=24)
    median = _median_filter(low, max(3, int(0.6 * min(low.shape)) | 1))
    window = max(3, int(THIN * min(low.shape)) | 1)
    mean = _mean_3x3(gray)
    # Straying from both papers is straying from the one nearer the pixel (combined at low resolution; the dark
    # side's is a closing, the opening of the picture inverted).
    lighter = mean - _resize_linear(np.maximum(median, _opening(low, window)), h, w)
    darker = _resize_linear(np.minimum(median, 1 - _opening(1 - low, window)), h, w) - mean
    k = min(10, gray.size - 1)  # the k-th extreme: ignores a few hot pixels, sees even a small digit
    return bool(_kth_extremes(darker.ravel(), k)[1] >= _kth_extremes(lighter.ravel(), k)[1])


def _tiny_ink_is_dark(gray: np.ndarray) -> bool:
    """Polarity of an enlarged tiny picture (a scanned cell): its edge is mostly paper.

    A thick digit filling a small cell may cover more of it than the paper does, so the local median of
    :func:`ink_is_dark` would be ink; the cell's border, though only touched by the digit, is paper.
    """
    edge = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    return bool(np.median(edge) > (float(gray.min()) + float(gray.max())) / 2)


def _edge_paper_round(gray: np.ndarray) -> bool | None:
    """Whether most of the picture's edge is paper round ink that only touches it, as round a digit cut out close to
    it, and round which ink: True for dark ink (an edge as light as the picture gets, within EDGE_PAPER of its range),
    False for light ink (one as dark as it gets, round light that holds nothing dark: a sheet on a dark desk is written
    on; a light 1, 7 or bold 5 is not, nor the light strokes of a number without loops), None for neither."""
    sample = _grid_sample(gray)
    low, high = _kth_extremes(sample, min(10, sample.size - 1))
    edge = float(np.median(_rim(gray)))
    if edge >= high - EDGE_PAPER * (high - low):
        return True
    if edge > low + EDGE_PAPER * (high - low):
        return None
    # Dark inside the light: pieces wider than 2 px (a speck of noise in a light stroke is not writing).
    dim = gray <= (low + high) / 2
    inside = dim & ~touching_edge(dim)
    return None if opencv().erode(inside.view(np.uint8), np.ones((3, 3), np.uint8)).any() else False


def _extend(low: np.ndarray, pad: int) -> np.ndarray:
    """Pad by odd reflection (2·edge − mirror), which continues a gradient past the edge instead of flattening it."""
    if pad <= 0:
        return low
    return 2 * np.pad(low, pad, mode="edge") - np.pad(low, pad, mode="reflect")


def background(x: np.ndarray, edges: bool = True) -> np.ndarray:
    """Paper level of ``x`` (ink bright, paper dark) at every pixel: a grey opening at low resolution (see
    :func:`_opening` for ``edges``).

    The opening (min filter, then max filter) removes anything thinner than its window, which is every
    stroke, and keeps gradients and shadows, which are wider. The image is extended past its edges first,
    so windows there are whole and a gradient running into the edge is not cut short.
    """
    h, w = x.shape
    return _resize_linear(_opening(*_low_res(x), edges=edges), h, w)


def _opening(low: np.ndarray, window: int, edges: bool = True) -> np.ndarray:
    """:func:`background` at low resolution: the grey opening of ``low`` with a ``window``-wide square (``edges``:
    and the sharp edges of what it keeps held, see below)."""
    pad = min(window // 2, min(low.shape) // 2 - 1)  # reflection needs pad < size
    if pad <= 0:
        return low
    cv2 = opencv()
    kernel = np.ones((2 * pad + 1, 2 * pad + 1), np.uint8)
    # Only whole windows count (each pass trims `pad` from every side of the extended grid), so the border
    # rule of erode/dilate never matters.
    low = cv2.erode(_extend(low, 2 * pad), kernel)[pad:-pad, pad:-pad]
    low = cv2.dilate(low, kernel)[pad:-pad, pad:-pad]
    # What stays is wider than the window: paper in shadow, or no paper at all (a desk around the sheet). Its
    # sharp edge falls inside a low-resolution pixel, and interpolating across it would put the edge's far side
    # below its own level, where it reads as a line of ink (a frame round the sheet): each pixel takes the
    # highest of its neighbours first, so the level holds up to the edge.
    return cv2.dilate(low, np.ones((3, 3), np.uint8)) if edges else low


def find_ink(pixels: np.ndarray) -> Ink | None:
    """Locate the ink in a picture, or None if there is none (a blank page, a smooth gradient).

    Big writing is found at a coarser scale: a digit 200 px tall is read as well at 100 (it ends up 20 px tall,
    as MNIST's are), and every step after this one costs about its pixel count. The ink is first looked for with
    the picture reduced :data:`COARSEST` times (unless a cheap guess says its strokes are too thin for that), and
    kept if its strokes are ``COARSE_STROKE`` pixels wide there; else it is looked for again where they would be
    (the working picture itself for fine writing, or where the coarse look found nothing). Strokes a pixel wide in
    a picture reduced to :data:`WORK_SIDE` are looked for again in the picture as it is (up to :data:`FINE_PIXELS`).
    """
    gray, scale = working_gray(pixels)
    factor = COARSEST if scale >= 1 else 1
    while factor > 1 and (max(gray.shape) // factor < COARSE_SIDES[0] or min(gray.shape) // factor < COARSE_SIDES[1]):
        factor //= 2
    if factor > 1 and not _strokes_may_be_wide(gray, factor):
        factor = 1
    while factor > 1:
        found = _ink_at(*_reduced(gray, scale, factor))
        if found is None:
            break  # (faint or fine writing the reduction blurred away: looked for as it is)
        if found.stroke_width() >= COARSE_STROKE:
            return found
        # Strokes double with each halving of the reduction: on to the coarsest that gives them enough.
        finer = factor // 2
        while finer > 1 and found.stroke_width() * factor / finer < COARSE_STROKE:
            finer //= 2
        factor = finer
    found = _ink_at(gray, scale)
    if (found is not None and scale > 1 and found.stroke_width() <= FINE_STROKE
            and pixels.shape[0] * pixels.shape[1] <= FINE_PIXELS):
        # Strokes a pixel wide in the reduced picture were thinner than the reduction (a drawing app's pencil in a
        # screenshot, a fine pen): averaged with the paper they fade and break into dashes, each read as a piece.
        # They are looked for again in the picture as it is.
        return _ink_at(*working_gray(pixels, max(pixels.shape[:2]))) or found
    return found


def _strokes_may_be_wide(gray: np.ndarray, factor: int) -> bool:
    """A cheap first guess whether the writing's strokes could keep ``COARSE_STROKE`` pixels with ``gray`` reduced
    ``factor`` times: so that fine writing (a ballpoint, a page of small lines) does not pay for a reduced look that
    will not do. At a quarter of ``gray``'s resolution, the pixels that stray from the picture's median more than half
    as far as its strongest do, on the side that strays further (the ink's, mostly), have runs at least 3/4 as wide
    as the reduced look asks: a guess that errs wide (a shadow's runs are wide too, and are then looked at), seldom
    thin (strokes 12 px wide where 16 are asked)."""
    h, w = gray.shape
    quarter = _resize_area(gray, max(1, h // 4), max(1, w // 4))
    stray = quarter - np.float32(np.median(quarter))
    low, high = _kth_extremes(stray.ravel(), min(10, stray.size - 1))
    ink = -stray > -low / 2 if -low >= high else stray > high / 2
    return stroke_width(ink) * 4 >= 0.75 * COARSE_STROKE * factor


def _reduced(gray: np.ndarray, scale: float, factor: int) -> tuple[np.ndarray, float]:
    """``gray`` reduced ``factor`` times by area, and its scale (original pixels per pixel)."""
    h, w = gray.shape
    small = _resize_area(gray, h // factor, w // factor)
    return small, scale * (h / small.shape[0] + w / small.shape[1]) / 2


def _ink_at(gray: np.ndarray, scale: float) -> Ink | None:
    """:func:`find_ink` in the working picture ``gray`` at ``scale`` (original pixels per pixel)."""
    on_sheet = without_desk(gray) if scale >= 1 else None
    gray = gray if on_sheet is None else on_sheet
    if scale < 1:
        # A tiny picture is a scanned cell whose edge is paper: a digit filling it touches the edge, and the
        # background's opening would take ink running into the edge for paper, as it does a wide shadow. (Not
        # for photos: there the edge continues the light's gradients, which a flat margin would cut.)
        dark = _tiny_ink_is_dark(gray)
        x = 1 - gray if dark else gray
        h, w = x.shape
        pad = max(2, min(h, w) // 8)
        # What its opening keeps is a stroke as wide as its window, not paper: its edges are not held.
        paper = background(np.pad(x, pad, constant_values=float(np.median(x))), edges=False)[pad:pad + h, pad:pad + w]
        return _ink_over(x, paper, scale, dark)
    dark = ink_is_dark(gray)
    x = 1 - gray if dark else gray
    found = _ink_over(x, background(x), scale, dark)
    # A digit cut out close to its ink (a crop, a drawing filling its canvas): a bold one's strokes are as wide as
    # the paper left between them, so neither polarity nor the paper's level can be told from what is inside; with
    # a margin of the paper at its edge round it, they can, as for any digit on a page. Where the edge is paper round
    # ink of one polarity (see _edge_paper_round) and nothing was found or the ink was taken for the other, the
    # polarity is judged again with that margin (an edge halfway is a shadow or a gradient); where the ink was found
    # close to the edges, only the paper's level is.
    round_ink = _edge_paper_round(gray)
    doubt = round_ink is not None and (found is None or dark != round_ink)
    close = found is not None and _close_to_edges(found)
    if not (doubt or close) or min(gray.shape) < MIN_SIDE:
        return found  # (a strip thinner than a digit can be is no digit cut out, margin or not)
    pad = max(gray.shape) // CLOSE_PAD
    padded = np.pad(gray, pad, constant_values=float(np.median(_rim(gray))))
    if doubt:
        dark = ink_is_dark(padded)
    x = 1 - padded if dark else padded
    margined = _ink_over(x, background(x), scale, dark)
    if margined is None:
        return found
    h, w = gray.shape
    return margined.cropped(pad, pad, h, w)


def _close_to_edges(found: Ink) -> bool:
    """Whether ``found`` reaches within CLOSE_MARGIN of its height of three of its picture's edges or more: its pieces
    that run from one edge to the opposite one left out where others are not (a notebook's ruled lines and margin)."""
    stats = found.components()[1]
    if not len(stats):
        return True
    h, w = found.mask.shape
    across = (stats[:, 0] == 0) & (stats[:, 2] == w) | (stats[:, 1] == 0) & (stats[:, 3] == h)
    if across.any() and not across.all():
        stats = stats[~across]
    x0, y0 = stats[:, :2].min(0)
    x1, y1 = stats[:, 2:4].max(0)
    near = CLOSE_MARGIN * (y1 - y0)  # (the writing's height: a line's length says nothing of its margins)
    return sum(margin <= near for margin in (x0, y0, w - x1, h - y1)) >= 3


def _ink_over(x: np.ndarray, paper: np.ndarray, scale: float, dark: bool) -> Ink | None:
    """The ink in ``x`` (ink bright) over the ``paper`` level at every pixel, or None."""
    # Contrast relative to what was possible: dark ink in a shadow is as much ink as in full light.
    # (In place: the same float32 operations as the formula, without a new full-size array for each step.)
    ink = np.subtract(x, paper, dtype=np.float32)
    possible = np.subtract(1, paper, dtype=np.float32)
    ink /= np.maximum(possible, np.float32(0.25), out=possible)
    np.clip(ink, 0, 1, out=ink)
    # The paper's noise, measured on the paper: where ink covers much of the picture (a digit filling its frame)
    # the median pixel is a stroke's blurred edge, not paper, so the faintest quarter stands in for the paper.
    # Statistics of a spread-out sample: exact medians of every pixel cost more than the rest of find_ink.
    sample = _grid_sample(ink)
    paper_median = _median_of_nonnegative(sample)
    paper_side = sample
    if paper_median >= DENSE_INK:
        paper_side = sample[sample <= np.percentile(sample, 25)]
        paper_median = _median_of_nonnegative(paper_side)
    # The sample's median is taken once (it is the paper's unless ink is dense); where it is 0 so is the spread's.
    noise = 1.4826 * _median_of_nonnegative(np.abs(paper_side - np.float32(paper_median))) if paper_median else 0.0
    faint = max(0.08, 6 * noise)
    candidates = ink[ink > faint]
    if candidates.size < MIN_INK_PIXELS:
        return None
    level = _percentile(candidates, 90)
    if level < MIN_CONTRAST:
        return None
    threshold = max(0.5 * level, 4 * noise)
    above = ink > threshold
    thresholded = connected_components(above)
    mask, components = _without_specks(above, *thresholded)
    thresholds = None
    floor = max(FAINT_STROKE * level, faint)
    faint_strokes = _faint_strokes(ink, above, mask, components[1], floor) if floor < threshold else None
    if faint_strokes is not None:
        thresholds = np.where(faint_strokes, np.float32(floor), np.float32(threshold))
        above = above | faint_strokes  # (a new array: the writing's mask may be ``above`` itself)
        thresholded = connected_components(above)
        mask, components = _without_specks(above, *thresholded)
    # Nothing but specks, however many (salt noise, a blank form's scanner grain): no piece a digit could be.
    if np.count_nonzero(mask) < MIN_INK_PIXELS or components[1][:, 4].max() < MIN_INK_PIXELS:
        return None
    found = Ink(ink=ink, mask=mask, level=level, scale=scale, dark_ink=dark, threshold=threshold, faint=faint,
                thresholds=thresholds)
    found.remember(thresholded=thresholded, components=components)
    return found


def _faint_strokes(ink: np.ndarray, above: np.ndarray, writing: np.ndarray, pieces: np.ndarray, floor: float,
                   ) -> np.ndarray | None:
    """Pixels of the writing's strokes fainter than the threshold (bool), or None where there are none: a fine pen
    blurred by the camera, a stroke pressed lightly, ink in a shadow. ``above``: all ink above the threshold;
    ``writing``: the part of it that is not specks, whose pieces' boxes are ``pieces`` (stats, as
    :func:`connected_components` gives them).

    A stroke is measured against its own surroundings, not the page: its contrast above the paper within
    ``FAINT_REACH`` stroke widths (a top-hat), taken where it is at least half its own peak (its half-maximum width,
    as the threshold takes the writing's) and above ``floor``. Shadows and stains are wider than that and stay
    paper. Only strokes that join the writing count (a piece of ink found above the threshold, not a speck), and
    only those no longer than a digit (``FAINT_LENGTH`` of the writing's pieces' heights): ruled paper, a grid, a
    form's light lines are faint narrow strokes too, printed ones, and stay as they were.
    """
    cv2 = opencv()
    if not len(pieces):
        return None
    height = float(np.median(pieces[:, 3] - pieces[:, 1]))
    # Looked for around the writing only: within a digit's height of its pieces.
    margin = round(height)
    x0, y0 = np.maximum(pieces[:, :2].min(0) - margin, 0)
    x1, y1 = pieces[:, 2:4].max(0) + margin
    shape = ink.shape
    ink, above, writing = ink[y0:y1, x0:x1], above[y0:y1, x0:x1], writing[y0:y1, x0:x1]
    full_above = above
    width = stroke_width(above[::3])  # (every third row: the median run is the same, at a third of the cost)
    # (In 8 bits: OpenCV's morphology is twice as fast on them, and 1/255 of contrast is below the paper's noise.)
    levels = cv2.convertScaleAbs(ink, alpha=255)
    near = 2 * max(1, round(width)) + 1  # a stroke's peak is within a stroke width of its edge (and noise's gaps)
    # Most pictures have none, and are told apart cheaply: where the pen is broad for its digits (blur does not thin
    # its strokes away), nothing above the floor further than a stroke width from the writing's ink.
    if width >= FINE_PEN * height:
        halo = cv2.dilate(above.view(np.uint8), cv2.getStructuringElement(cv2.MORPH_RECT, (near, near)))
        if not np.any((levels > 255 * floor) > halo.view(bool)):
            return None
    full = levels.shape[::-1]
    # Worked out at half the size where the writing's strokes are 4 px or wider: each step costs a quarter.
    step = 2 if width >= 4 else 1
    if step > 1:
        small = (max(1, full[0] // 2), max(1, full[1] // 2))
        levels = cv2.resize(levels, small, interpolation=cv2.INTER_AREA)
        above = cv2.resize(above.view(np.uint8), small, interpolation=cv2.INTER_AREA) > 0
        writing = cv2.resize(writing.view(np.uint8), small, interpolation=cv2.INTER_NEAREST) > 0
        width, height = width / 2, height / 2
        near = 2 * max(1, round(width)) + 1
    reach = 2 * max(1, round(FAINT_REACH * width)) + 1
    narrow = cv2.morphologyEx(levels, cv2.MORPH_TOPHAT, cv2.getStructuringElement(cv2.MORPH_RECT, (reach, reach)))
    peak = cv2.dilate(narrow, cv2.getStructuringElement(cv2.MORPH_RECT, (near, near)))
    faint = (narrow > peak // 2) & (narrow > 255 * floor) & ~above
    if not faint.any():
        return None
    # A faint stroke is part of a digit: no longer than FAINT_LENGTH of the writing's pieces; longer ones are printed.
    # Measured across gaps of a stroke width, where the paper's noise breaks a faint line into dashes.
    reaching = cv2.dilate(faint.view(np.uint8), cv2.getStructuringElement(cv2.MORPH_RECT, (near, near))).view(bool)
    strokes, stroke_stats = connected_components(reaching)
    length = np.maximum(stroke_stats[:, 2] - stroke_stats[:, 0], stroke_stats[:, 3] - stroke_stats[:, 1])
    faint &= np.concatenate([[False], length <= FAINT_LENGTH * height])[strokes]
    # Only strokes that join a piece of the writing.
    joined, joined_stats = connected_components(above | faint)
    keep = np.zeros(len(joined_stats) + 1, bool)
    keep[np.unique(joined[writing])] = True
    keep[0] = False
    faint &= keep[joined]
    if not faint.any():
        return None
    if step > 1:  # back at full size: the faint pixels of the strokes found
        grown = cv2.dilate(faint.view(np.uint8), np.ones((2, 2), np.uint8))
        faint = cv2.resize(grown, full, interpolation=cv2.INTER_NEAREST).view(bool) & ~full_above
    found = np.zeros(shape, bool)
    found[y0:y1, x0:x1] = faint & (ink > floor)  # (above the floor exactly, not only in 8 bits: Ink.above agrees)
    return found


# --------------------------------------------------------------------------------- connected parts


def connected_components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """8-connected components of a boolean mask.

    Returns ``labels`` (int32, 0 = background, 1..n, numbered in the order their first pixel comes in a
    row-by-row scan) and ``stats`` (n, 5): x0, y0, x1, y1 (exclusive), area.
    """
    cv2 = opencv()
    mask = np.asarray(mask, dtype=bool)
    labels = np.zeros(mask.shape, np.int32)
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if not len(rows):
        return labels, np.zeros((0, 5), np.int64)
    # Only the ink's bounding box: OpenCV's statistics visit every pixel, paper included, and cost four times the
    # labelling on a whole photo of which the ink covers a sixth.
    y0, x0 = int(rows[0]), int(cols[0])
    crop = np.ascontiguousarray(mask[y0:rows[-1] + 1, x0:cols[-1] + 1]).view(np.uint8)
    # Wu's scan (SAUF) keeps the smallest provisional label, so components come in raster order of first pixels.
    count, crop_labels, boxes, _ = cv2.connectedComponentsWithStatsWithAlgorithm(crop, 8, cv2.CV_32S, cv2.CCL_WU)
    labels[y0:rows[-1] + 1, x0:cols[-1] + 1] = crop_labels
    boxes = boxes[1:].astype(np.int64)  # row 0 is the background
    stats = np.empty((count - 1, 5), np.int64)
    stats[:, :2] = boxes[:, :2] + (x0, y0)
    stats[:, 2:4] = stats[:, :2] + boxes[:, 2:4]
    stats[:, 4] = boxes[:, 4]
    return labels, stats


def without_specks(mask: np.ndarray, fraction: float = SPECK_FRACTION,
                   ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """``mask`` without the components much smaller than the largest (noise, dust and JPEG blotches, not
    strokes), and the connected components of what is kept."""
    return _without_specks(mask, *connected_components(mask), fraction)


def specks(stats: np.ndarray, fraction: float = SPECK_FRACTION) -> np.ndarray:
    """Which of the components ``stats`` (as :func:`connected_components` gives them) are specks (bool): much smaller
    than the largest, or a single pixel."""
    return stats[:, 4] < max(2, fraction * stats[:, 4].max())


def _without_specks(mask: np.ndarray, labels: np.ndarray, stats: np.ndarray, fraction: float = SPECK_FRACTION,
                    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """:func:`without_specks` of ``mask`` whose components are ``labels, stats`` already: the kept pieces are
    numbered again in the same (raster) order, without labelling the picture again."""
    if len(stats) <= 1:
        return mask, (labels, stats)
    keep = ~specks(stats, fraction)
    if keep.all():
        return mask, (labels, stats)
    renumber = np.concatenate([[0], np.where(keep, np.cumsum(keep), 0)]).astype(np.int32)  # label 0 is paper
    kept_labels = renumber[labels]
    return kept_labels > 0, (kept_labels, stats[keep])


def stroke_width(mask: np.ndarray) -> float:
    """Typical stroke thickness: the median length of the horizontal runs of ink."""
    # Each row padded with paper on both ends, so that in the flattened mask no run crosses a row's end and every
    # change is a run's start followed by its end.
    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), np.int8)
    padded[:, 1:-1] = np.asarray(mask, bool)  # 0 or 1, whatever the mask's type: changes come in pairs
    changes = np.flatnonzero(np.diff(padded.ravel()))
    lengths = changes[1::2] - changes[0::2]
    return float(np.median(lengths)) if lengths.size else 1.0


# ------------------------------------------------------------------------------------ to 28×28


def normalize_digit(values: np.ndarray) -> np.ndarray:
    """MNIST's normalization of one digit: crop to ink, longest side to 20 px, centre of mass at the centre.

    ``values`` is the digit's ink on any canvas: a boolean mask (like NIST's binary scans, from which MNIST
    was made) or intensities in 0..1. Returns uint8 (28, 28), white on black.
    """
    values = np.asarray(values)
    if values.dtype != bool:
        values = np.asarray(values, dtype=np.float32)
    # (A mask is cropped before it is made float: a digit's box in a line is mostly paper.)
    rows = np.flatnonzero(values.any(1) if values.dtype == bool else values.max(1) > 0)
    cols = np.flatnonzero(values.any(0) if values.dtype == bool else values.max(0) > 0)
    if rows.size == 0:
        return np.zeros((SIZE, SIZE), np.uint8)
    crop = np.ascontiguousarray(values[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1], dtype=np.float32)
    h, w = crop.shape
    if h >= w:
        nh, nw = BOX, max(1, round(BOX * w / h))
    else:
        nh, nw = max(1, round(BOX * h / w)), BOX
    # Lanczos on the float image: proper anti-aliasing when shrinking, sharp when enlarging a small crop.
    small = np.asarray(Image.fromarray(crop, "F").resize((nw, nh), Image.Resampling.LANCZOS))
    small = np.maximum(small, 0)
    peak = small.max()
    if peak <= 0:
        return np.zeros((SIZE, SIZE), np.uint8)
    small = np.minimum(small / peak, 1)  # MNIST strokes reach full white; thin strokes must too
    ys, xs = np.mgrid[:nh, :nw]
    total = small.sum()
    cy, cx = (small * ys).sum() / total, (small * xs).sum() / total
    # Integer shift, as MNIST did; keep the whole digit in the field even if its mass is lopsided.
    top = int(np.clip(round(CENTER - cy), 0, SIZE - nh))
    left = int(np.clip(round(CENTER - cx), 0, SIZE - nw))
    out = np.zeros((SIZE, SIZE), np.uint8)
    out[top:top + nh, left:left + nw] = np.round(small * 255)
    return out

