"""The ``real-world`` augmentation: each effect does what it claims, and the preset is a well-behaved augmentation."""

import pytest
import torch

from digitnet.data.augment import (
    PRESETS,
    augment_batch,
    box_lines,
    break_strokes,
    close_fours,
    compose_affine,
    fill_frame_theta,
    ink_box,
    pen_width,
    render_low_resolution,
    writer_strokes,
)
from digitnet.models.registry import get_spec, preprocess


@pytest.fixture(scope="module")
def digits(mnist) -> torch.Tensor:
    """64 MNIST digits as 0..1 ink (N, 1, 28, 28)."""
    return torch.from_numpy(mnist.test_images[:64]).float().div(255).unsqueeze(1)


def centre_of_mass(x: torch.Tensor) -> torch.Tensor:
    """(N, 2) row and column centre of mass of (N, 1, H, W) ink."""
    h, w = x.shape[-2:]
    mass = x[:, 0].sum((1, 2)).clamp_min(1e-6)
    rows = (x[:, 0].sum(2) * torch.arange(h)).sum(1) / mass
    cols = (x[:, 0].sum(1) * torch.arange(w)).sum(1) / mass
    return torch.stack([rows, cols], 1)


def test_real_world_is_a_preset():
    assert "real-world" in PRESETS


@pytest.mark.parametrize("levels", [2, 17])
def test_low_resolution_quantizes_each_cell_and_nearest_upscaling_keeps_the_levels(digits, levels):
    n = len(digits)
    scan = render_low_resolution(digits, 12, torch.full((n,), levels), torch.ones(n, dtype=torch.bool),
                                 torch.full((n,), 0.5))
    assert scan.shape == digits.shape
    allowed = torch.linspace(0, 1, levels)
    for image in scan:
        values = image.unique()
        assert len(values) <= levels
        # every value is one of the levels (k / (levels - 1))
        assert torch.isclose(values[:, None], allowed[None, :], atol=1e-6).any(1).all()
    if levels == 2:  # binary: exactly ink and paper in each image
        assert all(len(image.unique()) == 2 for image in scan)
    # nearest upscaling of a 12-px scan: blocks of equal pixels, so far fewer distinct rows than 28
    assert all(len(torch.unique(image[0], dim=0)) <= 12 for image in scan)


def test_low_resolution_bilinear_is_smooth_and_unquantized_keeps_the_ink(digits):
    n = len(digits)
    scan = render_low_resolution(digits, 8, torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.bool))
    assert len(scan[0].unique()) > 17  # bilinear upscaling interpolates between the cells
    ratio = scan.sum((1, 2, 3)) / digits.sum((1, 2, 3))
    assert ((ratio > 0.8) & (ratio < 1.2)).all()  # area averaging and upscaling keep the amount of ink
    assert (centre_of_mass(scan) - centre_of_mass(digits)).abs().max() < 1.0


def test_fill_frame_blows_the_ink_box_up_to_the_frame_and_keeps_the_centre(digits):
    n = len(digits)
    theta = fill_frame_theta(digits, torch.full((n,), 1.0))
    filled = torch.nn.functional.grid_sample(digits, torch.nn.functional.affine_grid(theta, [n, 1, 28, 28],
                                             align_corners=False), align_corners=False)
    box = ink_box(filled)
    longer = torch.maximum(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]) + 1
    assert (longer >= 25).all()  # MNIST's ~20-px digits now span (nearly) the whole 28-px frame
    original = ink_box(digits)
    assert ((original[:, 2] - original[:, 0]) <= 20).all()
    # the digit stays centred: its centre of mass stays within 2 px of where MNIST puts it, scaled
    assert (centre_of_mass(filled) - 13.5).abs().median() < 2.0


def test_compose_affine_applies_inner_then_outer():
    inner = torch.tensor([[[2.0, 0.0, 0.1], [0.0, 1.0, 0.0]]])
    outer = torch.tensor([[[1.0, 0.0, 0.5], [0.0, 3.0, -0.2]]])
    point = torch.tensor([0.3, -0.4, 1.0])
    after_inner = inner[0] @ point
    expected = outer[0] @ torch.cat([after_inner, torch.ones(1)])
    assert torch.allclose(compose_affine(outer, inner)[0] @ point, expected)


def test_box_lines_are_long_straight_runs_near_the_border():
    lines = box_lines(200, 28, "cpu", torch.Generator().manual_seed(0))
    assert lines.shape == (200, 1, 28, 28)
    ink = lines[:, 0] > 0
    assert ink.any((1, 2)).all()  # every sample got some lines
    for image in ink:
        rows = image.sum(1)
        cols = image.sum(0)
        # every line pixel lies on a long row (a box side or a comb's baseline) or on a column of at
        # least 4 px (a box side or a comb's tick)
        long_rows, long_cols = rows >= 12, cols >= 4
        assert max(rows.max(), cols.max()) >= 12  # at least one line spans most of the box
        # the lines stay near the border: nothing in the middle 10×10 of the frame
        assert not image[9:19, 9:19].any()
        # pixels off the long rows and columns: none (lines are straight, axis-parallel)
        covered = long_rows[:, None] | long_cols[None, :]
        assert not (image & ~covered).any()
    assert torch.equal(lines, box_lines(200, 28, "cpu", torch.Generator().manual_seed(0)))


def test_break_strokes_erases_small_patches_of_ink_only(digits):
    broken = break_strokes(digits, 2, torch.Generator().manual_seed(0))
    removed = digits - broken
    assert (removed >= 0).all()  # it only erases
    lost = (removed > 0).sum((1, 2, 3))
    assert (lost > 0).all() and (lost <= 2 * 9).all()  # two 3×3 patches at most
    assert (broken.sum((1, 2, 3)) > 0.7 * digits.sum((1, 2, 3))).all()  # the digit is still there


def test_real_world_preset_keeps_shape_dtype_range_and_is_deterministic(mnist):
    spec = get_spec("fastnet")
    x = preprocess(torch.from_numpy(mnist.test_images[:256]), spec)  # normalized, as training feeds it
    out = augment_batch(x, "real-world", torch.Generator().manual_seed(3))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert out.min() >= x.min() - 1e-5 and out.max() <= x.max() + 1e-5
    assert torch.equal(out, augment_batch(x, "real-world", torch.Generator().manual_seed(3)))
    assert not torch.equal(out, augment_batch(x, "real-world", torch.Generator().manual_seed(4)))
    # each effect hits only part of the batch: many digits keep most of their gray levels (not scanned coarsely)
    ink = (out - x.min()) / (x.max() - x.min())
    levels = torch.tensor([len(image.unique()) for image in ink])
    assert ((levels > 17).float().mean() > 0.4) and ((levels <= 17).float().mean() > 0.05)
    # digits stay where MNIST puts them: centre of mass near the centre of the frame
    assert (centre_of_mass(ink) - 13.5).abs().median() < 2.0


def test_writer_strokes_flag_the_1s_cross_the_7s_and_leave_other_digits_alone(mnist):
    labels = torch.from_numpy(mnist.test_labels[:300].astype("int64"))
    x = torch.from_numpy(mnist.test_images[:300]).float().div(255).unsqueeze(1)
    out = writer_strokes(x, labels, torch.Generator().manual_seed(0), p=1.0)
    added = (out - x).clamp_min(0)[:, 0]
    others = (labels != 1) & (labels != 7)
    assert torch.equal(out[others], x[others])
    assert (out >= x).all()  # strokes are added, nothing erased
    box = ink_box(x)
    for i in torch.nonzero(labels == 1)[:20, 0].tolist():
        ys, xs = torch.nonzero(added[i] > 0.5, as_tuple=True)
        assert len(ys) >= 4  # a flag was drawn ...
        top = int(box[i, 0])
        assert ys.float().mean() < top + 0.5 * (box[i, 2] - top)  # ... in the upper part of the 1 ...
        top_col = float((x[i, 0, top] * torch.arange(28.0)).sum() / x[i, 0, top].sum())
        assert xs.float().mean() < top_col  # ... going left from the top of the 1
    crossed = 0
    for i in torch.nonzero(labels == 7)[:20, 0].tolist():
        ys, xs = torch.nonzero(added[i] > 0.5, as_tuple=True)
        if len(ys) >= 4:  # (a bar drawn over a 7 that was already crossed adds little)
            assert int(ys.max() - ys.min()) <= 4  # a bar: horizontal
            crossed += int(xs.max() - xs.min()) >= 5
    assert crossed >= 16


def test_labels_change_the_preset_only_through_the_writer_strokes(mnist):
    spec = get_spec("fastnet")
    x = preprocess(torch.from_numpy(mnist.test_images[:128]), spec)
    labels = torch.from_numpy(mnist.test_labels[:128].astype("int64"))
    plain = augment_batch(x, "real-world", torch.Generator().manual_seed(5))
    labelled = augment_batch(x, "real-world", torch.Generator().manual_seed(5), labels=labels)
    assert torch.equal(labelled, augment_batch(x, "real-world", torch.Generator().manual_seed(5), labels=labels))
    assert not torch.equal(plain, labelled)


def _holes(image: torch.Tensor) -> int:
    """Background regions of a 0..1 digit (H, W) that do not reach the border: the loops it closes."""
    import cv2

    count, background = cv2.connectedComponents((image.numpy() < 0.4).astype("uint8"), connectivity=4)
    border = set(background[0]) | set(background[-1]) | set(background[:, 0]) | set(background[:, -1])
    return count - 1 - len(border - {0})  # label 0 is the ink


def test_every_hand_closes_4s_and_bases_1s_and_changes_no_other_digit(mnist):
    labels = torch.from_numpy(mnist.test_labels[:600].astype("int64"))
    x = torch.from_numpy(mnist.test_images[:600]).float().div(255).unsqueeze(1)
    out = writer_strokes(x, labels, torch.Generator().manual_seed(0), p=1.0, every_hand=True)
    untouched = (labels != 1) & (labels != 7) & (labels != 4)
    assert torch.equal(out[untouched], x[untouched]) and (out >= x).all()
    # without every_hand the strokes (and their random stream) are what the line recognizer was trained with
    assert torch.equal(writer_strokes(x, labels, torch.Generator().manual_seed(0), p=1.0),
                       writer_strokes(x, labels, torch.Generator().manual_seed(0), p=1.0, every_hand=False))
    # a closed 4 gains a loop at its top: open 4s (no hole before) mostly have one after
    open_fours = [i for i in torch.nonzero(labels == 4)[:, 0].tolist() if _holes(x[i, 0]) == 0]
    assert len(open_fours) >= 30
    shut = close_fours(x)
    closed = [i for i in open_fours if _holes(shut[i, 0]) >= 1]
    assert len(closed) >= 0.7 * len(open_fours)  # (not those whose arm leans over the stem: 77% on these)
    # every_hand closes about half of them (CLOSED_FOURS), the others keep their open top
    assert 0.3 * len(open_fours) <= sum(_holes(out[i, 0]) >= 1 for i in open_fours) <= 0.7 * len(open_fours)
    for i in closed:  # ... in its upper half
        added = torch.nonzero((shut[i, 0] - x[i, 0]) > 0.5)[:, 0].float()
        top, bottom = ink_box(x[i:i + 1])[0, [0, 2]].tolist()
        assert added.mean() < (top + bottom) / 2
    # some flagged 1s stand on a base: ink added on both sides of the foot, on the bottom rows
    based = 0
    for i in torch.nonzero(labels == 1)[:, 0].tolist():
        bottom = int(ink_box(x[i:i + 1])[0, 2])
        foot = float((x[i, 0, bottom] * torch.arange(28.0)).sum() / x[i, 0, bottom].sum())
        added = (out[i, 0] - x[i, 0]) > 0.5
        low = added[bottom - 2:bottom + 1]
        cols = torch.nonzero(low.any(0))[:, 0].float()
        based += bool(len(cols)) and cols.min() < foot - 2 and cols.max() > foot + 2
    assert 0.2 * int((labels == 1).sum()) <= based <= 0.6 * int((labels == 1).sum())


def test_close_fours_draws_in_the_digits_own_pen_width(mnist):
    fours = torch.from_numpy(mnist.test_images[mnist.test_labels == 4][:40]).float().div(255).unsqueeze(1)
    thick = torch.nn.functional.max_pool2d(fours, 3, 1, 1)  # the same 4s written with a broader pen
    assert (pen_width(thick) >= pen_width(fours)).all()  # (4 px at most)
    assert pen_width(thick).mean() > pen_width(fours).mean() + 1
    roof = (close_fours(fours) - fours).clamp_min(0).sum()
    thick_roof = (close_fours(thick) - thick).clamp_min(0).sum()
    assert thick_roof > 1.3 * roof


def test_every_hand_needs_the_labels(mnist):
    x = preprocess(torch.from_numpy(mnist.test_images[:8]), get_spec("fastnet"))
    with pytest.raises(ValueError, match="labels"):
        augment_batch(x, "every-hand", torch.Generator().manual_seed(0))
    labels = torch.from_numpy(mnist.test_labels[:8].astype("int64"))
    out = augment_batch(x, "every-hand", torch.Generator().manual_seed(0), labels=labels)
    assert out.shape == x.shape and torch.isfinite(out).all()
