"""The OpenCV primitives of vision/ do what the numpy/torch code before them did.

The references below are the replaced code, kept here only (not in src/): torch's pooling and interpolation,
full partitions and medians, and a raster-order flood fill. OpenCV sums floats in another order, so some
primitives agree to rounding only; the 28×28 the model sees must still be the same, bit for bit.
"""

from __future__ import annotations

from collections import deque
from contextlib import contextmanager

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from photo_helpers import ink_of, model_sees, on_paper

from digitnet.vision import preprocess
from digitnet.vision.pipeline import prepare_digit, prepare_number
from digitnet.vision.preprocess import (
    _grid_sample,
    _kth_extremes,
    _mean_3x3,
    _median_filter,
    _median_of_nonnegative,
    _percentile,
    _resize_linear,
    background,
    connected_components,
    find_ink,
)

# --------------------------------------------------------------------------------- references


def components_in_raster_order(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """8-connected components by flood fill, numbered by their first pixel in a row-by-row scan."""
    labels = np.zeros(mask.shape, np.int32)
    stats = []
    for y, x in zip(*np.nonzero(mask), strict=True):  # np.nonzero walks in raster order
        if labels[y, x]:
            continue
        label = len(stats) + 1
        labels[y, x] = label
        queue, pixels = deque([(y, x)]), []
        while queue:
            cy, cx = queue.popleft()
            pixels.append((cy, cx))
            for ny in range(max(cy - 1, 0), min(cy + 2, mask.shape[0])):
                for nx in range(max(cx - 1, 0), min(cx + 2, mask.shape[1])):
                    if mask[ny, nx] and not labels[ny, nx]:
                        labels[ny, nx] = label
                        queue.append((ny, nx))
        ys, xs = np.array(pixels).T
        stats.append((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1, len(pixels)))
    return labels, np.array(stats, np.int64).reshape(-1, 5)


def torch_grid(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None, None]


def torch_area(x: np.ndarray, height: int, width: int) -> np.ndarray:
    return F.adaptive_avg_pool2d(torch_grid(x), (height, width))[0, 0].numpy()


def torch_linear(x: np.ndarray, height: int, width: int) -> np.ndarray:
    return F.interpolate(torch_grid(x), size=(height, width), mode="bilinear", align_corners=False)[0, 0].numpy()


def torch_mean_3x3(x: np.ndarray) -> np.ndarray:
    return F.avg_pool2d(torch_grid(x), 3, 1, 1, count_include_pad=False)[0, 0].numpy()


def torch_median_filter(low: np.ndarray, window: int) -> np.ndarray:
    padded = F.pad(torch_grid(low), (window // 2,) * 4, mode="replicate")
    return F.unfold(padded, window).median(1).values.reshape(low.shape).numpy()


def torch_background(x: np.ndarray, edges: bool = True) -> np.ndarray:
    """The replaced background estimate (grey opening at low resolution, in torch), for pictures with pad > 0."""
    h, w = x.shape
    low, window = preprocess._low_res(x)
    low = torch_grid(low)
    pad = min(window // 2, min(low.shape[-2:]) // 2 - 1)
    window = 2 * pad + 1
    extended = 2 * F.pad(low, (2 * pad,) * 4, mode="replicate") - F.pad(low, (2 * pad,) * 4, mode="reflect")
    opened = F.max_pool2d(-F.max_pool2d(-extended, window, 1), window, 1)
    if edges:  # each pixel the highest of its neighbours: edges hold
        opened = F.max_pool2d(opened, 3, 1, padding=1)
    return F.interpolate(opened, size=(h, w), mode="bilinear", align_corners=False)[0, 0].numpy()


def full_partition_extremes(values: np.ndarray, k: int) -> tuple[float, float]:
    return float(np.partition(values, k)[k]), float(np.partition(values, values.size - 1 - k)[values.size - 1 - k])


@contextmanager
def replaced_primitives():
    """The picture pipeline with the numpy/torch primitives that OpenCV (and faster numpy) replaced."""
    with pytest.MonkeyPatch.context() as patch:
        for name, old in [("_resize_area", torch_area), ("_resize_linear", torch_linear), ("_mean_3x3", torch_mean_3x3),
                          ("_median_filter", torch_median_filter), ("background", torch_background),
                          ("_kth_extremes", full_partition_extremes),
                          ("_median_of_nonnegative", lambda v: float(np.median(v))),
                          ("_percentile", lambda v, q: float(np.percentile(v, q))),
                          ("connected_components", components_in_raster_order)]:
            patch.setattr(preprocess, name, old)
        yield


# --------------------------------------------------------------------------------- primitives


@pytest.mark.parametrize("seed", range(8))
def test_connected_components_are_numbered_and_measured_as_before(seed):
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(1, 70, 2))
    mask = rng.random((h, w)) < rng.uniform(0.1, 0.6)
    labels, stats = connected_components(mask)
    expected_labels, expected_stats = components_in_raster_order(mask)
    assert labels.dtype == np.int32 and stats.dtype == np.int64
    assert np.array_equal(labels, expected_labels)
    assert np.array_equal(stats, expected_stats)


@pytest.mark.parametrize("seed", range(4))
def test_connected_components_of_ink_away_from_the_edges(seed):
    # Components are found on the ink's bounding box only: labels and boxes must still be in the whole mask's frame.
    rng = np.random.default_rng(seed)
    mask = np.zeros((90, 120), bool)
    y, x = (int(v) for v in rng.integers(5, 40, 2))
    mask[y:y + 30, x:x + 50] = rng.random((30, 50)) < 0.4
    labels, stats = connected_components(mask)
    expected_labels, expected_stats = components_in_raster_order(mask)
    assert np.array_equal(labels, expected_labels) and np.array_equal(stats, expected_stats)


@pytest.mark.parametrize("shape", [(300, 512), (513, 257), (10, 10)])
def test_grid_sample_is_small_and_covers_every_row_and_column_band(shape):
    rows, cols = np.mgrid[:shape[0], :shape[1]]
    sample = _grid_sample(rows * 10000 + cols, size=1000)
    assert sample.size <= 1000 or sample.size == rows.size  # a small picture is taken whole
    sampled_rows, sampled_cols = sample // 10000, sample % 10000
    # Spread over the whole picture: no band of a tenth of the rows or columns is left out.
    assert np.ptp(sampled_rows) >= 0.9 * (shape[0] - 1) and np.ptp(sampled_cols) >= 0.9 * (shape[1] - 1)
    assert len(np.unique(sampled_cols)) >= min(shape[1], 10) and len(np.unique(sampled_rows)) >= min(shape[0], 10)


def test_connected_components_of_an_empty_mask():
    labels, stats = connected_components(np.zeros((5, 7), bool))
    assert not labels.any() and stats.shape == (0, 5)


@pytest.mark.parametrize("window", [3, 15])
def test_median_filter_is_the_exact_median_to_8_bits(window):
    low = np.random.default_rng(0).random((24, 31)).astype(np.float32)
    exact = torch_median_filter(low, window)
    assert np.array_equal(_median_filter(low, window), np.round(exact * 255).astype(np.float32) / 255)


@pytest.mark.parametrize("seed", range(4))
def test_median_of_nonnegative_values_is_numpys(seed):
    rng = np.random.default_rng(seed)
    for size in (1, 2, 7, 100, 1001):
        values = np.clip(rng.normal(0, 1, size), 0, None).astype(np.float32)
        if seed == 0:
            values[:] = 0
        assert _median_of_nonnegative(values) == float(np.median(values))


@pytest.mark.parametrize("seed", range(4))
def test_percentile_is_numpys_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    for size in (1, 2, 3, 8, 2047, 2048, 5001, 30000):
        values = (rng.random(size) ** 3).astype(np.float32 if seed % 2 else np.float64)
        values[rng.random(size) < 0.3] = 0.5  # many equal values, as a picture's contrast holds
        for q in (10, 25, 50, 90, 99):
            assert _percentile(values, q) == float(np.percentile(values, q)), (size, q)


@pytest.mark.parametrize("size", [5, 11, 5000])
def test_kth_extremes_are_those_of_a_full_partition(size):
    values = np.random.default_rng(size).normal(0, 1, size).astype(np.float32)
    k = min(10, size - 1)
    assert _kth_extremes(values, k) == full_partition_extremes(values, k)


@pytest.mark.parametrize("shape", [(1, 9), (2, 2), (2, 300), (40, 57)])
def test_mean_3x3_averages_only_neighbours_inside(shape):
    x = np.random.default_rng(1).random(shape).astype(np.float32)
    np.testing.assert_allclose(_mean_3x3(x), torch_mean_3x3(x), atol=1e-6)


def test_bilinear_enlarging_matches_torch():
    x = np.random.default_rng(2).random((8, 11)).astype(np.float32)
    np.testing.assert_allclose(_resize_linear(x, 112, 154), torch_linear(x, 112, 154), atol=1e-5)


def test_background_matches_torch_opening(clean_digits):
    x = 1 - on_paper(ink_of(clean_digits[4], 90), shape=(180, 240)).astype(np.float32) / 255
    np.testing.assert_allclose(background(x), torch_background(x), atol=1e-5)
    np.testing.assert_allclose(background(x, edges=False), torch_background(x, edges=False), atol=1e-5)


@pytest.mark.parametrize("shape", [(1, 300), (300, 1), (2, 300)])
def test_pictures_one_or_two_pixels_thin_have_no_digit_and_no_crash(shape):
    # The torch opening asked for a window of -1 on a one-pixel strip and raised.
    strip = np.full(shape, 255, np.uint8)
    strip.flat[strip.size // 3:strip.size // 2] = 0
    assert find_ink(strip) is None
    prepared = prepare_digit(strip)  # refused for its size, with a message, not a crash
    assert prepared.image is None and prepared.error is not None


# ------------------------------------------------------------------------------- what the model sees


def test_mnist_digits_still_pass_through_bit_for_bit(mnist):
    images = mnist.test_images[:300]
    for image in images:
        assert np.array_equal(prepare_digit(image).image, image)
        number = prepare_number(image, lambda batch: np.full((len(batch), 10), 0.1, np.float32))
        assert len(number.images) == 1 and np.array_equal(number.images[0], image)


def rendered_photos(mnist, count: int, seed: int) -> list[np.ndarray]:
    """MNIST test digits on paper: odd sizes and margins, light falling off, noise; a tenth of them tiny scans."""
    rng = np.random.default_rng(seed)
    photos = []
    for k, i in enumerate(rng.choice(len(mnist.test_images), count, replace=False)):
        tiny = k % 10 == 9
        ink = ink_of(mnist.test_images[i], int(rng.integers(8, 16) if tiny else rng.integers(30, 200)))
        margin = (2, 6) if tiny else (10, 300)
        shape = (ink.shape[0] + int(rng.integers(*margin)), ink.shape[1] + int(rng.integers(*margin)))
        light = np.linspace(rng.uniform(0.5, 1), 1, shape[1], dtype=np.float32)[None].repeat(shape[0], 0)
        photos.append(on_paper(ink, shape=shape, light=light, noise=0.02, seed=k))
    return photos


def test_rendered_digits_normalize_to_the_same_28x28(mnist):
    for photo in rendered_photos(mnist, 30, seed=0):
        found = model_sees(photo)
        with replaced_primitives():
            expected = model_sees(photo)
        assert found is not None and np.array_equal(found, expected)
