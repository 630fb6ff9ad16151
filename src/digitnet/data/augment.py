"""Batched data augmentation that runs on the training device: one ``grid_sample`` for a whole batch.

Per-sample Python transforms (torchvision's PIL pipeline) cost more than the model on MNIST; here a
batch of B images gets B random affine matrices and, optionally, an elastic displacement field, all
applied in a single resampling call. Stroke-thickness and low-resolution effects use pooling and
interpolation on the whole batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

PRESETS = ("none", "light", "robust", "strong")


def random_affine_grid(
    n: int, size: int, device, generator: torch.Generator | None = None,
    degrees: float = 10.0, translate: float = 0.1, scale: tuple[float, float] = (0.9, 1.1), shear: float = 0.15,
) -> torch.Tensor:
    """A sampling grid (n, size, size, 2) for random rotation, scale, shear and translation."""

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return torch.rand(n, device=device, generator=generator) * (hi - lo) + lo

    angle = uniform(-degrees, degrees) * (math.pi / 180)
    s = uniform(*scale)
    sh = uniform(-shear, shear)
    tx, ty = uniform(-translate, translate) * 2, uniform(-translate, translate) * 2  # grid units span 2
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    theta = torch.stack([
        torch.stack([cos, -sin + sh * cos, tx], 1),
        torch.stack([sin, cos + sh * sin, ty], 1),
    ], 1)
    return F.affine_grid(theta, [n, 1, size, size], align_corners=False)


def elastic_displacement(
    n: int, size: int, device, generator: torch.Generator | None = None, alpha: float = 0.08, grid: int = 4,
) -> torch.Tensor:
    """A smooth random displacement field (n, size, size, 2): coarse noise upsampled bicubically."""
    coarse = (torch.rand(n, 2, grid, grid, device=device, generator=generator) * 2 - 1) * alpha
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False).permute(0, 2, 3, 1)


def augment_batch(x: torch.Tensor, preset: str = "light", generator: torch.Generator | None = None) -> torch.Tensor:
    """Augment a float batch (N, 1, H, W) whose background is its minimum value.

    ``light``: small affine. ``robust``: affine plus random stroke thickness and low resolution,
    for photos of digits. ``strong``: larger affine plus elastic distortion, for the accuracy recipe.
    """
    if preset == "none":
        return x
    if preset not in PRESETS:
        raise ValueError(f"unknown augmentation {preset!r}; choose one of {PRESETS}")
    n, _, h, w = x.shape
    device = x.device
    background = x.amin()
    x = x - background  # resample with a zero background, restored at the end

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
