"""Synthetic lines of handwriting from MNIST digits, drawn on the training device, for the line recognizer.

A line is a string of 1–12 characters — digits, decimal points, commas (with and without a tail), minus
signs, dotted dates, groups of digits with spaces — drawn the way ``digitnet read`` sees a line once it has
found it: the line's ink (a binary mask) reduced to ``LINE_HEIGHT`` rows with its digits about
``DIGIT_HEIGHT`` rows tall and its centre on row ``CENTRE_ROW``.

Digits are MNIST images (any split: the caller passes the training digits for training, held-out training
digits for validation, test digits for measuring), each first given the ``every-hand`` augmentation (pens,
slant, wobble, coarse scans; no form boxes) with the strokes other writers add: flagged 1s, some on a base,
crossed 7s, closed 4s. Each
is then scaled to the line's height (±8%), set on a baseline that may drift (a sloped line) with jitter, and
spaced unevenly: now and then neighbours touch or overlap (negative gaps); some lines stand their digits on a
fixed pitch instead, as in cells, so that a wide gap beside a narrow 1 is not a space. Marks are pen strokes as
wide as the line's own pen (measured on its digits), half of them where print has them, the others set loosely,
as writers set them (a point raised toward mid-height, a comma raised, a minus sign high or low). Everything is drawn at
twice the final resolution, thresholded as ink finding does, and area-reduced, so edges look like a reduced mask's.

All randomness comes from one ``torch.Generator`` (texts too, through a seed drawn from it), so a run that
saves the generator's state resumes the same stream of lines.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from digitnet.data.augment import ink_box, real_world_digits, segment_ink

LINE_HEIGHT = 32  # rows of a line image (the recognizer's input height)
DIGIT_HEIGHT = 18  # a digit's usual height in it, in rows ...
CENTRE_ROW = 15  # ... centred on this row: room below for a comma's tail
MAX_CHARS = 12  # the longest string drawn; also the digit slots one line takes from a batch of digits
SCALE = 2  # lines are drawn this many times larger, then reduced
TILE = LINE_HEIGHT * SCALE  # each digit and mark is first drawn in a TILE×TILE square

# How often each kind of string is drawn (weights).
KINDS = {"digits": 45, "decimal point": 10, "decimal comma": 10, "minus": 10, "date": 8, "groups": 12,
         "hyphenated": 5}
GRID = 0.25  # the chance that a line's digits stand on a fixed pitch (cells, or MNIST tiles set side by side) ...
# ... this many digit heights apart, centre to centre: a narrow 1 leaves a wide gap. Up to 2.6: MNIST's 28-px tiles
# (20-px digits) set apart by a form's cell walls, or a wide comb, are 1.8-2.6 heights apart.
GRID_PITCH = (1.0, 2.6)
# Writers set marks loosely: of the points, commas and minus signs, this share is drawn off its usual place —
LOOSE_MARKS = 0.5
POINT_LIFT = (-0.1, 0.4)  # ... a point raised this much above the baseline (in digit heights; negative: lower) ...
COMMA_LIFT = (0.0, 0.3)  # ... a comma's head raised this much ...
MINUS_SHIFT = 0.3  # ... a minus sign up to this much above or below the digits' middle.


@dataclass
class LineBatch:
    """Line images (B, 1, LINE_HEIGHT, W) in 0..1 (ink bright), each line's width in pixels and its text."""

    images: torch.Tensor
    widths: torch.Tensor  # int64 (B,): the rest of each row is padding
    texts: list[str]
    # per line, each character's horizontal centre in pixels (spaces: the middle of their gap); where CTC should
    # place it, for measuring how a recognizer's alignment sits
    centres: list[list[float]] | None = None


# ------------------------------------------------------------------------------------------- texts


def random_text(rng: random.Random, max_digits: int = MAX_CHARS) -> str:
    """A random string of one of ``KINDS`` with at most ``max_digits`` digits and ``MAX_CHARS`` characters."""
    def digits(lo: int, hi: int) -> str:
        return "".join(rng.choice("0123456789") for _ in range(rng.randint(lo, hi)))

    kind = rng.choices(list(KINDS), weights=list(KINDS.values()))[0]
    if kind == "digits":
        # short strings are the most common in forms and receipts, long ones still appear
        text = digits(1, rng.choice((3, 6, 8, 12)))
    elif kind == "decimal point":
        text = f"{digits(1, 4)}.{digits(1, 3)}"
    elif kind == "decimal comma":
        text = f"{digits(1, 4)},{digits(1, 3)}"
    elif kind == "minus":
        sep = rng.choice(".,")
        text = "-" + (digits(1, 5) if rng.random() < 0.6 else f"{digits(1, 3)}{sep}{digits(1, 2)}")
    elif kind == "date":
        text = f"{digits(1, 2)}.{digits(1, 2)}.{digits(4, 4) if rng.random() < 0.6 else digits(2, 2)}"
    elif kind == "groups":
        text = " ".join([digits(1, 3)] + [digits(3, 3) for _ in range(rng.randint(1, 2))])
    else:  # hyphenated
        text = f"{digits(2, 4)}-{digits(2, 4)}"
    text = text[:MAX_CHARS].rstrip(" .,-")
    while sum(c.isdigit() for c in text) > max_digits:
        text = text[:-1].rstrip(" .,-")
    return text or digits(1, 1)


# ------------------------------------------------------------------------------------------ drawing


def _uniform(n: int, lo: float, hi: float, generator: torch.Generator | None, device) -> torch.Tensor:
    return torch.rand(n, generator=generator, device=device) * (hi - lo) + lo


def _digit_tiles(images: torch.Tensor, heights: torch.Tensor, stretch: torch.Tensor, tops: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Digits 0..1 (N, 1, 28, 28) scaled into TILE×TILE tiles: ink box ``heights`` (N,) tall, its width
    scaled alike (times ``stretch``), its top at row ``tops``, its left at column 0. Returns the tiles and
    each digit's width in tile pixels."""
    n = images.shape[0]
    box = ink_box(images, 0.3).to(images.dtype)  # rows r0..r1, cols c0..c1, inclusive
    ink_h, ink_w = box[:, 2] - box[:, 0] + 1, box[:, 3] - box[:, 1] + 1
    widths = (ink_w * heights / ink_h * stretch).clamp(2, TILE - 2)
    sx, sy = ink_w / widths, ink_h / heights  # input pixels per tile pixel
    theta = torch.zeros(n, 2, 3, dtype=images.dtype, device=images.device)
    # continuous coordinates: x_in = c0 + x_out·sx; normalized (align_corners=False): n = 2p/size - 1
    theta[:, 0, 0] = TILE / 28 * sx
    theta[:, 0, 2] = 2 / 28 * (box[:, 1] + TILE / 2 * sx) - 1
    theta[:, 1, 1] = TILE / 28 * sy
    theta[:, 1, 2] = 2 / 28 * (box[:, 0] + (TILE / 2 - tops) * sy) - 1
    grid = F.affine_grid(theta, [n, 1, TILE, TILE], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False), widths


def pen_width(tile: torch.Tensor) -> float:
    """The pen width of ink (H, W) in 0..1: the typical horizontal run of its pixels above half level."""
    ink = tile > 0.5
    starts = ink[:, 1:] & ~ink[:, :-1]
    runs = int(starts.sum()) + int(ink[:, 0].sum())
    return float(ink.sum()) / max(runs, 1)


def _mark_tile(char: str, pen: float, height: float, baseline: float, middle: float,
               generator: torch.Generator | None, device) -> tuple[torch.Tensor, int]:
    """A dot, comma or minus drawn as pen strokes in a TILE×TILE tile (its ink from column ~1) and its width."""
    def u(lo: float, hi: float) -> float:
        return float(_uniform(1, lo, hi, generator, device))

    strokes: list[tuple[tuple[float, float], tuple[float, float], float]] = []  # (row, col) start, end, width
    if char == ".":
        r = pen * u(0.5, 1.0)
        # Loose where the draw is at least 1 - LOOSE_MARKS (so the bundled model's lines); rows grow downward, so a
        # negative offset raises the point.
        loose = u(0, 1) >= 1 - LOOSE_MARKS
        offset = u(-POINT_LIFT[1], -POINT_LIFT[0]) if loose else u(-0.05, 0.03)
        c = (baseline - r + offset * height, r + 1.5)
        strokes.append((c, c, 2 * r))
    elif char == ",":
        depth = height * u(0.15, 0.4)
        lean = depth * u(0.2, 0.8)
        top = baseline + u(-0.12, 0.02) * height - (u(*COMMA_LIFT) * height if u(0, 1) < LOOSE_MARKS else 0.0)
        width = pen * u(0.8, 1.2)
        if u(0, 1) < 0.65:  # a head with a tail curving down and left
            r = pen * u(0.55, 0.9)
            head = (top - r / 2, lean + r + 1.5)
            strokes.append((head, head, 2 * r))
            mid = (top + depth * 0.5, lean * 0.75 + r + 1.5)
            end = (top + depth, r + 1.5)
            strokes += [(head, mid, width), (mid, end, width * 0.8)]
        else:  # no head: a short slanted stroke, thickest at its top
            start, end = (top - 0.1 * height, lean + 1.5 + pen), (top + depth, 1.5 + pen / 2)
            strokes.append((start, end, width))
    else:  # "-"
        length = height * u(0.3, 0.65)
        shift = MINUS_SHIFT if u(0, 1) >= 1 - LOOSE_MARKS else 0.12
        row = middle + u(-shift, shift) * height
        tilt = length * math.tan(math.radians(u(-8, 8)))
        width = pen * u(0.8, 1.3)
        strokes.append(((row - tilt / 2, width / 2 + 1), (row + tilt / 2, length + width / 2 + 1), width))
    start = torch.tensor([s for s, _, _ in strokes], dtype=torch.float32, device=device)
    end = torch.tensor([e for _, e, _ in strokes], dtype=torch.float32, device=device)
    width = torch.tensor([w for _, _, w in strokes], dtype=torch.float32, device=device).clamp_min(1.0)
    tile = segment_ink((TILE, TILE), start, end, width).amax(0)[0]
    cols = torch.nonzero(tile.amax(0) > 0.05).flatten()
    return tile, int(cols.max()) + 2 if len(cols) else 2


def _gap_centre(extents: list[tuple[float, float] | None], j: int, end: float) -> float:
    """The middle of the gap that the space ``j`` stands for, between the nearest characters' edges on each side
    (the line's start or ``end`` where there is none)."""
    left = next((e[1] for e in reversed(extents[:j]) if e is not None), 0.0)
    right = next((e[0] for e in extents[j + 1:] if e is not None), end)
    return (left + right) / 2


TOUCHING = 0.18  # the chance that two neighbouring digits touch or overlap


def draw_lines(images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator | None = None,
               count: int | None = None, augment: bool = True, texts: list[str] | None = None,
               touching: float = TOUCHING, grid: float = GRID) -> LineBatch:
    """Draw ``count`` lines (default: one per ``MAX_CHARS`` digits given) from uint8 digits (N, 28, 28).

    Line k takes its digits from slots ``k·MAX_CHARS ...`` of ``images``, in order, as many as its text has.
    ``texts``: the strings to draw (digits are placeholders: each becomes its slot's digit), else random ones.
    ``touching``: the chance that two neighbours touch or overlap; ``grid``: that a line's digits stand on a
    fixed pitch, as in cells, however wide each digit is (a space there is wider than the pitch).
    """
    device = images.device
    count = count or (len(texts) if texts is not None else images.shape[0] // MAX_CHARS)
    if count * MAX_CHARS > images.shape[0]:
        raise ValueError(f"{count} lines need {count * MAX_CHARS} digit slots, got {images.shape[0]}")
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=device))
    rng = random.Random(seed)
    label_text = [str(int(v)) for v in labels[:count * MAX_CHARS].tolist()]
    patterns = list(texts) if texts is not None else [random_text(rng) for _ in range(count)]
    texts, slots = [], []
    for k, pattern in enumerate(patterns):
        taken = iter(range(k * MAX_CHARS, (k + 1) * MAX_CHARS))
        chars, used = [], []
        for char in pattern:
            if char.isdigit():
                slot = next(taken)
                used.append(slot)
                chars.append(label_text[slot])
            else:
                chars.append(char)
        texts.append("".join(chars))
        slots.append(used)
    flat = torch.tensor([s for used in slots for s in used], dtype=torch.long, device=device)
    digits = images[flat].unsqueeze(1).float() / 255
    if augment and len(flat):
        digits = real_world_digits(digits, generator, labels[flat], boxes=False, coarse=0.15, every_hand=True)
        # Ink finding thresholds relative to the ink's own contrast: a faint (coarse, thin) digit stays.
        digits = digits / digits.amax((1, 2, 3), keepdim=True).clamp_min(1e-3)

    # Per line: digit height, slope, spacing habit, threshold; per digit: size, stretch and baseline jitter.
    line_height = _uniform(count, 0.83, 1.17, generator, device) * DIGIT_HEIGHT * SCALE
    slope = _uniform(count, -0.015, 0.015, generator, device)  # what is left after read levels a line
    habit = _uniform(count, 0.05, 0.35, generator, device)  # usual gap, in digit heights
    # A gap is a space only where it is wider than the line's usual spacing: writers who space their digits
    # widely, or write them in cells, still write one number (a space there is wider still).
    on_grid = torch.rand(count, generator=generator, device=device) < grid
    pitch = _uniform(count, *GRID_PITCH, generator, device)
    threshold = _uniform(count, 0.35, 0.6, generator, device)
    centre = CENTRE_ROW * SCALE + _uniform(count, -0.08, 0.08, generator, device) * line_height
    owner = torch.tensor([k for k, used in enumerate(slots) for _ in used], dtype=torch.long, device=device)
    n = len(flat)
    heights = line_height[owner] * _uniform(n, 0.92, 1.08, generator, device)
    stretch = torch.exp(_uniform(n, -0.2, 0.2, generator, device))
    jitter = _uniform(n, -0.04, 0.04, generator, device) * heights
    tops = centre[owner] - heights / 2 + jitter
    gap_draw = torch.rand(n, generator=generator, device=device)
    gap_size = _uniform(n, 0, 1, generator, device)
    tiles, widths = _digit_tiles(digits, heights, stretch, tops) if n else (None, None)

    rows, centres = [], []
    digit_at = 0
    for k, text in enumerate(texts):
        h = float(line_height[k])
        placed: list[tuple[torch.Tensor, int, int]] = []  # tile, left, width
        x = float(_uniform(1, 0.1, 0.6, generator, device)) * h
        pen = None
        previous = None
        centre_x = end_x = 0.0  # the last digit's centre and right edge
        extents: list[tuple[float, float] | None] = []  # each character's columns (a space: None, its gap)
        for char in text:
            if char == " ":
                extents.append(None)
                space = float(_uniform(1, 0.85, 1.5, generator, device))
                if on_grid[k]:  # an empty cell at least (most of one): on a wide grid a space is wider still
                    space = max(space, float(pitch[k]) * float(_uniform(1, 0.7, 1.0, generator, device)))
                x += h * space
                previous = " "
                continue
            if char.isdigit():
                i = digit_at
                digit_at += 1
                if on_grid[k] and previous is not None and (previous.isdigit() or previous == " "):
                    # The next cell (a space: that much further), the digit centred in it, whatever its width.
                    pitch_x = float(pitch[k]) * h * (0.95 + 0.1 * float(gap_size[i])) + (x - end_x)
                    x = max(centre_x + pitch_x - float(widths[i]) / 2, end_x - 0.05 * h)
                elif previous is not None and previous.isdigit():
                    # A writer's usual gap, and now and then touching or overlapping neighbours.
                    if gap_draw[i] < touching:
                        x -= float(gap_size[i]) * 0.25 * h + 1
                    else:
                        x += float(habit[k] * (0.5 + gap_size[i])) * h
                centre_x, end_x = x + float(widths[i]) / 2, x + float(widths[i])
                tile = tiles[i, 0]
                shift = int(round(float(slope[k]) * x))
                tile = torch.roll(tile, shift, 0) if shift else tile
                width = int(math.ceil(float(widths[i])))
                placed.append((tile, int(round(x)), width))
                extents.append((x, x + float(widths[i])))
                x += float(widths[i])
            else:
                if pen is None:
                    digit_tiles = [t for t, _, _ in placed] or [tiles[digit_at, 0]] if n else []
                    pen = pen_width(torch.cat(digit_tiles, 1)) if digit_tiles else SCALE * 2.0
                gap = (0.12, 0.4) if char == "-" else (0.06, 0.3)
                x += h * float(_uniform(1, *gap, generator, device))
                base = float(centre[k]) + h / 2 + float(slope[k]) * x
                tile, width = _mark_tile(char, pen, h, base, base - h / 2, generator, device)
                placed.append((tile, int(round(x)), width))
                extents.append((x, x + width))
                x += width + h * float(_uniform(1, *gap, generator, device))
            previous = char
        x += float(_uniform(1, 0.1, 0.6, generator, device)) * h
        centres.append([((e[0] + e[1]) / 2 if e else _gap_centre(extents, j, x)) / SCALE
                        for j, e in enumerate(extents)])
        canvas = torch.zeros(TILE, max(int(math.ceil(x)), 2 * SCALE) + 2 * SCALE, device=device)
        for tile, left, width in placed:
            left = max(left, 0)
            span = min(width + 2, TILE, canvas.shape[1] - left)
            region = canvas[:, left:left + span]
            torch.maximum(region, tile[:, :span], out=region)
        rows.append((canvas > threshold[k]).float())

    width = max(r.shape[1] for r in rows)
    width += (-width) % (2 * SCALE * 2)  # whole frames after the recognizer's 4× reduction
    batch = torch.zeros(count, 1, TILE, width, device=device)
    for k, r in enumerate(rows):
        batch[k, 0, :, :r.shape[1]] = r
    # Reduce as ink finding's mask is reduced: area averaging; now and then a softer edge (a coarser mask).
    batch = F.avg_pool2d(batch, SCALE)
    soft = torch.rand(count, generator=generator, device=device) < 0.3
    blurred = F.avg_pool2d(F.pad(batch, (1, 1, 1, 1)), 3, stride=1)
    batch = torch.where(soft.view(count, 1, 1, 1), torch.maximum(batch, blurred), batch)
    line_widths = torch.tensor([math.ceil(r.shape[1] / SCALE) for r in rows], dtype=torch.long, device=device)
    return LineBatch(batch, line_widths, texts, centres)
