"""Batched data augmentation that runs on the training device: one ``grid_sample`` for a whole batch.

Per-sample Python transforms (torchvision's PIL pipeline) cost more than the model on MNIST; here a
batch of B images gets B random affine matrices and, optionally, an elastic displacement field, all
applied in a single resampling call. Stroke-thickness and low-resolution effects use pooling and
interpolation on the whole batch.

``real-world`` prepares a model for other writers and other scanners than MNIST's: coarse scans
(rendered at 8–16 px, quantized to 17 or 2 gray levels, sometimes filling their frame, upscaled
bilinearly or nearest), pens of other widths, slant, cramped and stretched digits, broken strokes, and
the lines of printed form boxes around the digit. Each effect hits a random part of the batch, so that
clean MNIST digits stay common. ``every-hand`` adds the strokes that depend on the label
(:func:`writer_strokes`): flags and bases on 1s, bars across 7s, closed tops on 4s.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

PRESETS = ("none", "light", "robust", "strong", "real-world", "every-hand")


def random_affine_theta(
    n: int, device, generator: torch.Generator | None = None,
    degrees: float = 10.0, translate: float = 0.1, scale: tuple[float, float] = (0.9, 1.1), shear: float = 0.15,
    stretch: float = 0.0,
) -> torch.Tensor:
    """Random affine matrices (n, 2, 3) mapping output to input grid coordinates.

    ``stretch`` > 0 also squeezes or widens each digit: its width/height ratio changes by a factor
    drawn log-uniformly in [e^-stretch, e^stretch] (a digit cramped or stretched in its box).
    """

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return torch.rand(n, device=device, generator=generator) * (hi - lo) + lo

    angle = uniform(-degrees, degrees) * (math.pi / 180)
    s = uniform(*scale)
    sh = uniform(-shear, shear)
    tx, ty = uniform(-translate, translate) * 2, uniform(-translate, translate) * 2  # grid units span 2
    sx = sy = s
    if stretch > 0:  # drawn only then, so the other presets keep their random stream
        aspect = torch.exp(uniform(-stretch, stretch) / 2)
        sx, sy = s * aspect, s / aspect
    cos, sin = torch.cos(angle), torch.sin(angle)
    return torch.stack([
        torch.stack([cos / sx, (-sin + sh * cos) / sy, tx], 1),
        torch.stack([sin / sx, (cos + sh * sin) / sy, ty], 1),
    ], 1)


def random_affine_grid(
    n: int, size: int, device, generator: torch.Generator | None = None,
    degrees: float = 10.0, translate: float = 0.1, scale: tuple[float, float] = (0.9, 1.1), shear: float = 0.15,
) -> torch.Tensor:
    """A sampling grid (n, size, size, 2) for random rotation, scale, shear and translation."""
    theta = random_affine_theta(n, device, generator, degrees, translate, scale, shear)
    return F.affine_grid(theta, [n, 1, size, size], align_corners=False)


def elastic_displacement(
    n: int, size: int, device, generator: torch.Generator | None = None, alpha: float = 0.08, grid: int = 4,
) -> torch.Tensor:
    """A smooth random displacement field (n, size, size, 2): coarse noise upsampled bicubically."""
    coarse = (torch.rand(n, 2, grid, grid, device=device, generator=generator) * 2 - 1) * alpha
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False).permute(0, 2, 3, 1)


def augment_batch(x: torch.Tensor, preset: str = "light", generator: torch.Generator | None = None,
                  labels: torch.Tensor | None = None) -> torch.Tensor:
    """Augment a float batch (N, 1, H, W) whose background is its minimum value.

    ``light``: small affine. ``robust``: affine plus random stroke thickness and low resolution,
    for photos of digits. ``strong``: larger affine plus elastic distortion, for the accuracy recipe.
    ``real-world``: other writers and scanners (see the module docstring); with ``labels`` (N,) it also
    writes some 1s with a flag and some 7s crossed, as many writers outside the US do. ``every-hand``
    (``labels`` needed): real-world plus bases on flagged 1s and closed 4s (:func:`writer_strokes`).
    """
    if preset == "none":
        return x
    if preset not in PRESETS:
        raise ValueError(f"unknown augmentation {preset!r}; choose one of {PRESETS}")
    n, _, h, w = x.shape
    device = x.device
    background = x.amin()
    x = x - background  # resample with a zero background, restored at the end

    if preset == "real-world":
        return _real_world(x, generator, labels) + background
    if preset == "every-hand":
        if labels is None:
            raise ValueError("the every-hand augmentation needs the labels (its strokes depend on the digit)")
        return _real_world(x, generator, labels, every_hand=True) + background
    if preset == "robust":
        x = _random_thickness(x, generator)
    if preset == "strong":
        grid = random_affine_grid(n, h, device, generator, degrees=12, translate=0.1, scale=(0.85, 1.15), shear=0.2)
        grid = grid + elastic_displacement(n, h, device, generator)
    elif preset == "robust":
        grid = random_affine_grid(n, h, device, generator, degrees=12, translate=0.08, scale=(0.8, 1.1), shear=0.15)
    else:
        grid = random_affine_grid(n, h, device, generator, degrees=8, translate=0.08, scale=(0.9, 1.1), shear=0.1)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if preset == "robust":
        x = _random_low_resolution(x, generator)
    return x + background


def _random_thickness(x: torch.Tensor, generator: torch.Generator | None, p: float = 0.3) -> torch.Tensor:
    """Thicken (dilate) or thin (erode) the strokes of a random subset of the batch."""
    n = x.shape[0]
    choice = torch.rand(n, device=x.device, generator=generator)
    dilated = F.max_pool2d(x, 3, stride=1, padding=1)
    eroded = -F.max_pool2d(-x, 2, stride=1, padding=0)
    eroded = F.pad(eroded, (0, 1, 0, 1))  # a 2×2 erosion keeps thin digits legible
    thick = (choice < p).view(n, 1, 1, 1)
    thin = (choice > 1 - p / 2).view(n, 1, 1, 1)
    return torch.where(thick, dilated, torch.where(thin, torch.maximum(eroded, 0.5 * x), x))


def _random_low_resolution(x: torch.Tensor, generator: torch.Generator | None, p: float = 0.3) -> torch.Tensor:
    """Make a random subset look like a digit 8–16 px tall that was upscaled (blurry, blocky)."""
    n, _, h, w = x.shape
    pick = torch.rand(n, device=x.device, generator=generator) < p
    if not bool(pick.any()):
        return x
    low = int(torch.randint(10, 17, (1,), device="cpu").item()) if generator is None else \
        int(torch.randint(10, 17, (1,), generator=generator, device=generator.device).item())
    small = F.interpolate(x, size=(low, low), mode="area")
    blurry = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    return torch.where(pick.view(n, 1, 1, 1), blurry, x)


# ------------------------------------------------------------------------------------------- real-world

LOW_RESOLUTIONS = (8, 10, 12, 14, 16)  # digit cells of coarse scanners, faxes and thumbnails
SCAN_LEVELS = (0, 17, 2)  # 0: as many gray levels as the float holds; 17: a 4×4-block count; 2: binary


def _uniform(n: int, lo: float, hi: float, device, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(n, device=device, generator=generator) * (hi - lo) + lo


def _integers(n: int, lo: int, hi: int, device, generator: torch.Generator | None) -> torch.Tensor:
    """Uniform integers in [lo, hi], one per sample."""
    return torch.randint(lo, hi + 1, (n,), device=device, generator=generator)


def ink_box(x: torch.Tensor, threshold: float = 0.2) -> torch.Tensor:
    """Each image's ink bounding box (N, 4) as [row0, col0, row1, col1], inclusive; the whole frame if blank.

    ``x`` is (N, 1, H, W) with ink in 0..1 on a zero background.
    """
    n, _, h, w = x.shape
    ink = x[:, 0] > threshold
    rows, cols = ink.any(2), ink.any(1)
    r = torch.arange(h, device=x.device)
    c = torch.arange(w, device=x.device)
    big = torch.tensor(10**6, device=x.device)
    row0 = torch.where(rows, r, big).amin(1)
    row1 = torch.where(rows, r, -big).amax(1)
    col0 = torch.where(cols, c, big).amin(1)
    col1 = torch.where(cols, c, -big).amax(1)
    blank = ~rows.any(1)
    box = torch.stack([row0, col0, row1, col1], 1)
    frame = torch.tensor([0, 0, h - 1, w - 1], device=x.device)
    return torch.where(blank.view(n, 1), frame, box)


def fill_frame_theta(x: torch.Tensor, fill: torch.Tensor, keep_aspect: torch.Tensor | bool = True) -> torch.Tensor:
    """Affine matrices (N, 2, 3) that blow each digit's ink box up to ``fill`` (N,) of the frame, centred.

    Coarse scanners of form fields size-normalize the digit to its cell instead of MNIST's 20-px box in a
    28-px frame. With ``keep_aspect`` the longer side fills the frame; otherwise both do.
    """
    n, _, h, w = x.shape
    box = ink_box(x).to(x.dtype)
    # grid coordinates (align_corners=False): pixel i spans [2i/size - 1, 2(i+1)/size - 1]
    top, bottom = 2 * box[:, 0] / h - 1, 2 * (box[:, 2] + 1) / h - 1
    left, right = 2 * box[:, 1] / w - 1, 2 * (box[:, 3] + 1) / w - 1
    half_y, half_x = (bottom - top) / 2, (right - left) / 2
    longer = torch.maximum(half_x, half_y)
    keep = torch.as_tensor(keep_aspect, device=x.device).expand(n)
    half_x, half_y = torch.where(keep, longer, half_x), torch.where(keep, longer, half_y)
    zero = torch.zeros_like(top)
    return torch.stack([
        torch.stack([half_x / fill, zero, (left + right) / 2], 1),
        torch.stack([zero, half_y / fill, (top + bottom) / 2], 1),
    ], 1)


def compose_affine(outer: torch.Tensor, inner: torch.Tensor) -> torch.Tensor:
    """The (N, 2, 3) affine that applies ``inner`` to grid coordinates, then ``outer``."""
    return outer[:, :, :2] @ inner + torch.cat([torch.zeros_like(outer[:, :, :2]), outer[:, :, 2:]], 2)


def quantize(x: torch.Tensor, levels: torch.Tensor, threshold: torch.Tensor | None = None) -> torch.Tensor:
    """Round 0..1 ink to ``levels`` (N,) gray levels (0: keep as is).

    Two levels cut at ``threshold`` (N,) times each image's darkest cell, as a scanner's adaptive
    threshold does, so that a thin digit scanned coarsely keeps its ink instead of vanishing.
    """
    n = x.shape[0]
    levels = levels.view(n, 1, 1, 1).to(x.dtype)
    steps = (levels - 1).clamp_min(1)
    rounded = torch.round(x.clamp(0, 1) * steps) / steps
    if threshold is not None:
        cut = threshold.view(n, 1, 1, 1) * x.amax((1, 2, 3), keepdim=True)
        rounded = torch.where(levels == 2, ((x > cut) & (x > 0)).to(x.dtype), rounded)
    return torch.where(levels > 0, rounded, x)


def render_low_resolution(
    x: torch.Tensor, size: int, levels: torch.Tensor, nearest: torch.Tensor, threshold: torch.Tensor | None = None,
) -> torch.Tensor:
    """Scan 0..1 digits (N, 1, H, W) at ``size``×``size`` (area average: each cell's ink coverage), quantize
    to ``levels`` (N,), and upscale back to H×W, nearest where ``nearest`` (N,) is true, else bilinear."""
    n, _, h, w = x.shape
    small = quantize(F.interpolate(x, size=(size, size), mode="area"), levels, threshold)
    blocky = F.interpolate(small, size=(h, w), mode="nearest")
    smooth = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    return torch.where(nearest.view(n, 1, 1, 1), blocky, smooth)


def break_strokes(x: torch.Tensor, patches: int, generator: torch.Generator | None = None,
                  patch: int = 3) -> torch.Tensor:
    """Erase ``patches`` small squares (``patch`` px) centred on ink from each 0..1 digit: a pen that skips."""
    n, _, h, w = x.shape
    weights = x.reshape(n, h * w).clamp_min(0) + 1e-6
    centres = torch.multinomial(weights, patches, replacement=False, generator=generator)
    spots = torch.zeros(n, h * w, device=x.device, dtype=x.dtype).scatter_(1, centres, 1.0).view(n, 1, h, w)
    holes = F.max_pool2d(spots, patch, stride=1, padding=patch // 2)[:, :, :h, :w]
    return x * (1 - holes)


def box_lines(n: int, size: int, device, generator: torch.Generator | None = None) -> torch.Tensor:
    """Printed form-box lines (n, 1, size, size) in 0..1: a rectangle, a comb or some sides of a rectangle.

    Lines lie within 8 px of the border, so they touch a digit now and then; they are 1–2 px thick,
    straight and span the box. A comb (postcode and amount fields) is a baseline with short upward ticks.
    """
    def ints(lo: int, hi: int) -> torch.Tensor:
        return _integers(n, lo, hi, device, generator).view(n, 1, 1)

    kind = ints(0, 2)  # 0: rectangle, 1: comb, 2: some sides
    thick = ints(1, 2)
    top, left = ints(0, 7), ints(0, 7)
    bottom, right = size - 1 - ints(0, 7) - (thick - 1), size - 1 - ints(0, 7) - (thick - 1)
    sides = torch.rand(n, 4, 1, 1, device=device, generator=generator) < 0.6
    sides[:, 1] |= ~sides.any(1)  # some sides: at least the bottom one
    tick_top = bottom - ints(4, 10)  # a comb's ticks rise 4–10 px above its baseline
    strength = _uniform(n, 0.6, 1.0, device, generator).view(n, 1, 1)
    rows = torch.arange(size, device=device).view(1, size, 1)
    cols = torch.arange(size, device=device).view(1, 1, size)

    def band(coord: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
        return (coord >= start) & (coord < start + thick)

    span_x = (cols >= left) & (cols < right + thick)
    span_y = (rows >= top) & (rows < bottom + thick)
    rect, comb, some = kind == 0, kind == 1, kind == 2
    top_line = band(rows, top) & span_x & (rect | (some & sides[:, 0]))
    bottom_line = band(rows, bottom) & ((span_x & (rect | (some & sides[:, 1]))) | comb)
    left_line = band(cols, left) & ((span_y & (rect | (some & sides[:, 2]))) | (comb & (rows >= tick_top)
                                                                               & (rows < bottom)))
    right_line = band(cols, right) & ((span_y & (rect | (some & sides[:, 3]))) | (comb & (rows >= tick_top)
                                                                                 & (rows < bottom)))
    lines = top_line | bottom_line | left_line | right_line
    return (lines.float() * strength).unsqueeze(1)


def segment_ink(shape: tuple[int, int], start: torch.Tensor, end: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    """Anti-aliased straight strokes (N, 1, H, W) in 0..1 from ``start`` to ``end`` (N, 2) as (row, col) in
    pixels, ``width`` (N,) px wide."""
    h, w = shape
    n = start.shape[0]
    rows = torch.arange(h, device=start.device, dtype=start.dtype).view(1, h, 1) + 0.5
    cols = torch.arange(w, device=start.device, dtype=start.dtype).view(1, 1, w) + 0.5
    a, b = start.view(n, 2, 1, 1), end.view(n, 2, 1, 1)
    along = b - a
    length2 = (along ** 2).sum(1).clamp_min(1e-6)
    t = (((rows - a[:, 0]) * along[:, 0] + (cols - a[:, 1]) * along[:, 1]) / length2).clamp(0, 1)
    distance = torch.sqrt((rows - a[:, 0] - t * along[:, 0]) ** 2 + (cols - a[:, 1] - t * along[:, 1]) ** 2)
    return (width.view(n, 1, 1) / 2 + 0.5 - distance).clamp(0, 1).unsqueeze(1)


def _weighted_col(x: torch.Tensor, row: torch.Tensor) -> torch.Tensor:
    """Each image's ink-weighted mean column (N,) along pixel row ``row`` (N,)."""
    n, _, h, w = x.shape
    line = x[:, 0].gather(1, row.long().clamp(0, h - 1).view(n, 1, 1).expand(n, 1, w))[:, 0]
    cols = torch.arange(w, device=x.device, dtype=x.dtype) + 0.5
    return (line * cols).sum(1) / line.sum(1).clamp_min(1e-6)


def writer_strokes(x: torch.Tensor, labels: torch.Tensor, generator: torch.Generator | None = None,
                   p: float = 0.3, every_hand: bool = False) -> torch.Tensor:
    """Add the strokes other writers make to a random ``p`` of the 1s and 7s of 0..1 digits (N, 1, H, W):
    a flag from the top of a 1 down to the left, a bar across the stem of a 7.

    ``every_hand`` also gives some flagged 1s a base and closes the top of ``CLOSED_FOURS`` of the 4s
    (:func:`close_fours`), in the digit's own pen width; the strokes without it keep their random stream
    (the line recognizer's synthetic lines are drawn with them).
    """
    n, _, h, w = x.shape
    device, dtype = x.device, x.dtype

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return _uniform(n, lo, hi, device, generator)

    pick = torch.rand(n, device=device, generator=generator) < p
    width = uniform(1.6, 2.8)
    flag_length, flag_drop = uniform(0.2, 0.4), uniform(0.15, 0.4)
    bar_at, bar_half = uniform(0.4, 0.6), uniform(0.15, 0.3)
    box = ink_box(x).to(dtype)
    top, height = box[:, 0], box[:, 2] - box[:, 0] + 1
    # the 1's flag: from its topmost ink down and to the left
    top_col = _weighted_col(x, top)
    flag_start = torch.stack([top + 0.5, top_col], 1)
    flag_end = torch.stack([top + 0.5 + flag_drop * height, top_col - flag_length * height], 1)
    # the 7's bar: across the stem, part of the way down
    bar_row = top + bar_at * height
    stem = _weighted_col(x, bar_row)
    bar_start = torch.stack([bar_row + 0.5, stem - bar_half * height], 1)
    bar_end = torch.stack([bar_row + 0.5, stem + bar_half * height], 1)
    one, seven = (labels == 1).view(n, 1), (labels == 7).view(n, 1)
    start, end = torch.where(one, flag_start, bar_start), torch.where(one, flag_end, bar_end)
    stroke = segment_ink((h, w), start, end, width) * x.amax((1, 2, 3)).view(n, 1, 1, 1)
    chosen = (pick & (one | seven).view(n)).view(n, 1, 1, 1)
    out = torch.where(chosen, torch.maximum(x, stroke), x)
    if not every_hand:
        return out
    # A flagged 1 often stands on a base: a short bar under its foot, centred on it.
    pen = pen_width(x)
    based = chosen.view(n) & one.view(n) & (torch.rand(n, device=device, generator=generator) < 0.4)
    bottom = box[:, 2]
    foot = _weighted_col(x, bottom)
    half = uniform(0.15, 0.3) * height
    base = segment_ink((h, w), torch.stack([bottom + 0.5 - pen / 2, foot - half], 1),
                       torch.stack([bottom + 0.5 - pen / 2, foot + half], 1), pen)
    out = torch.where(based.view(n, 1, 1, 1), torch.maximum(out, base * x.amax((1, 2, 3)).view(n, 1, 1, 1)), out)
    # Many 4s closed (CLOSED_FOURS): MNIST's 4s are nearly all open, and a closed top must not read as a 9's loop.
    closing = (labels == 4) & (torch.rand(n, device=device, generator=generator) < CLOSED_FOURS)
    return torch.where(closing.view(n, 1, 1, 1), close_fours(out, generator), out)


CLOSED_FOURS = 0.5  # share of the 4s that every-hand closes


def pen_width(x: torch.Tensor, threshold: float = 0.4) -> torch.Tensor:
    """Each digit's stroke width in pixels (N,): its ink area over half its outline (1.2 to 4 px)."""
    ink = (x[:, 0] > threshold).to(x.dtype)
    edges = (ink[:, 1:] != ink[:, :-1]).sum((1, 2)) + (ink[:, :, 1:] != ink[:, :, :-1]).sum((1, 2))
    return (2 * ink.sum((1, 2)) / edges.clamp_min(1)).clamp(1.2, 4.0)


def close_fours(x: torch.Tensor, generator: torch.Generator | None = None, threshold: float = 0.4) -> torch.Tensor:
    """4s (N, 1, H, W, 0..1 ink) with their top closed: a stroke of the digit's own width from the top of the
    left arm to the stem, as writers who draw a closed 4 do.

    The stem is found where only it has ink, near the bottom; the left arm is the ink left of it. The roof
    ends at the top of the ink right of the arm (the stem's top, wherever it leans), or a little below it. A digit
    with no arm left of its stem is left as it is.
    """
    n, _, h, w = x.shape
    device, dtype = x.device, x.dtype
    ink = x[:, 0] > threshold
    box = ink_box(x, threshold).to(dtype)
    top, left, bottom, right = box[:, 0], box[:, 1], box[:, 2], box[:, 3]
    height, breadth = bottom - top + 1, right - left + 1
    stem = _weighted_col(x, top + 0.85 * height)  # the bottom of a 4 is its stem alone
    cols = torch.arange(w, device=device, dtype=dtype).view(1, 1, w) + 0.5
    rows = torch.arange(h, device=device).view(1, h)
    gap = (0.2 * breadth).clamp_min(2.5).view(n, 1, 1)
    arm = ink & (cols < stem.view(n, 1, 1) - gap)
    post = ink & (cols >= stem.view(n, 1, 1) - gap)  # the stem and what is right of it (a stem may lean)
    big = torch.tensor(h, device=device)

    def first_row(mask: torch.Tensor) -> torch.Tensor:
        return torch.where(mask.any(2), rows, big).amin(1)

    def mean_col(mask: torch.Tensor, row: torch.Tensor) -> torch.Tensor:
        line = mask.gather(1, row.clamp(0, h - 1).view(n, 1, 1).expand(n, 1, w))[:, 0].to(dtype)
        return (line * cols[:, 0]).sum(1) / line.sum(1).clamp_min(1)

    arm_top, post_top = first_row(arm), first_row(post)
    ok = (arm_top < top + 0.6 * height) & (post_top < top + 0.6 * height)
    drop = _uniform(n, 0.0, 0.12, device, generator) * height
    start = torch.stack([arm_top.to(dtype) + 0.5, mean_col(arm, arm_top)], 1)
    end = torch.stack([post_top.to(dtype) + 0.5 + drop, mean_col(post, post_top)], 1)
    roof = segment_ink((h, w), start, end, pen_width(x, threshold)) * x.amax((1, 2, 3)).view(n, 1, 1, 1)
    return torch.where(ok.view(n, 1, 1, 1), torch.maximum(x, roof), x)


def real_world_digits(x: torch.Tensor, generator: torch.Generator | None = None, labels: torch.Tensor | None = None,
                      boxes: bool = True, coarse: float = 0.35, every_hand: bool = False) -> torch.Tensor:
    """The ``real-world`` effects on digits (N, 1, H, W) in 0..1 on a zero background (see the module docstring);
    ``coarse``: the share of coarse scans; ``every_hand`` (with ``labels``): all of :func:`writer_strokes`."""
    return _real_world(x, generator, labels, boxes, coarse, every_hand)


def _real_world(x: torch.Tensor, generator: torch.Generator | None, labels: torch.Tensor | None = None,
                boxes: bool = True, coarse: float = 0.35, every_hand: bool = False) -> torch.Tensor:
    """The ``real-world`` preset on a zero-background batch (see the module docstring); ``boxes``: with the
    printed form boxes (digits drawn into lines of writing have none); ``every_hand``: all writer strokes."""
    n, _, h, w = x.shape
    device = x.device
    peak = x.amax().clamp_min(1e-6)  # full ink in the batch's (normalized) units; work in 0..1 ink
    x = x / peak

    def chance(p: float) -> torch.Tensor:
        return torch.rand(n, device=device, generator=generator) < p

    # Pens: thicker or thinner strokes; now and then a pen that skips.
    x = _random_thickness(x, generator, p=0.3)
    broken = chance(0.15)
    x = torch.where(broken.view(n, 1, 1, 1), break_strokes(x, 2, generator), x)
    if labels is not None:  # drawn only then, so that the stream without labels stays the same
        x = writer_strokes(x, labels, generator, every_hand=every_hand)

    # Writers: slant, rotation, cramped or stretched digits, a little wobble — one resampling for the batch.
    # Coarse scans often size-normalize the digit to its cell: fill the frame first (same grid_sample).
    low = chance(coarse)
    fill = (low & chance(0.5)) | chance(0.05)
    theta = random_affine_theta(n, device, generator, degrees=10, translate=0.06, scale=(0.85, 1.1), shear=0.3,
                                stretch=0.4)
    filled = compose_affine(fill_frame_theta(x, _uniform(n, 0.85, 1.0, device, generator)), theta)
    theta = torch.where(fill.view(n, 1, 1), filled, theta)
    grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)
    grid = grid + elastic_displacement(n, h, device, generator, alpha=0.05)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    # Printed boxes around the digit, scanned with it.
    if boxes:  # (skipped, not drawn and discarded: the stream with boxes stays as the bundled model saw it)
        boxed = chance(0.15)
        x = torch.where(boxed.view(n, 1, 1, 1), torch.maximum(x, box_lines(n, h, device, generator)), x)

    # Coarse scanners: each sample its own cell size, gray levels and upscaling.
    size = torch.tensor(LOW_RESOLUTIONS, device=device)[_integers(n, 0, len(LOW_RESOLUTIONS) - 1, device, generator)]
    levels = torch.tensor(SCAN_LEVELS, device=device)[_integers(n, 0, len(SCAN_LEVELS) - 1, device, generator)]
    nearest = chance(0.4)
    threshold = _uniform(n, 0.3, 0.6, device, generator)
    for cell in LOW_RESOLUTIONS:
        pick = low & (size == cell)
        if bool(pick.any()):
            scanned = render_low_resolution(x, cell, levels, nearest, threshold)
            x = torch.where(pick.view(n, 1, 1, 1), scanned, x)
    return x.clamp(0, 1) * peak
