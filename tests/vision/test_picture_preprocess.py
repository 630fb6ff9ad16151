"""Each step of picture → MNIST-like 28×28: polarity, background, threshold, crop, scale, centring, passthrough."""

from __future__ import annotations

from collections import deque
from dataclasses import replace

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from photo_helpers import digit_photo, ink_of, model_sees, number_ink, on_paper, sheet_on_desk
from PIL import Image

from digitnet.vision.pipeline import NO_INK, prepare_digit
from digitnet.vision.preprocess import (
    CENTER,
    COARSE_STROKE,
    _median_of_nonnegative,
    _order_statistics,
    connected_components,
    find_ink,
    ink_is_dark,
    mnist_like,
    normalize_digit,
    stroke_width,
    without_desk,
    without_specks,
    working_gray,
)


def center_of_mass(image: np.ndarray) -> tuple[float, float]:
    ys, xs = np.mgrid[:image.shape[0], :image.shape[1]]
    total = image.astype(np.float64).sum()
    return float((image * ys).sum() / total), float((image * xs).sum() / total)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


# ------------------------------------------------------------------------------------------ passthrough


def test_mnist_digits_pass_through_unchanged(mnist):
    # Every test digit, bit for bit: redoing MNIST's normalization on MNIST would only blur it.
    for image in mnist.test_images:
        out = model_sees(image)
        assert out is not None and out.dtype == np.uint8
        assert np.array_equal(out, image)


def test_inverted_mnist_digit_is_inverted_back(mnist):
    image = mnist.test_images[0]
    assert np.array_equal(model_sees(255 - image), image)


def test_float_mnist_digit_passes_through(mnist):
    image = mnist.test_images[1]
    assert np.array_equal(model_sees(image.astype(np.float32) / 255), image)


def test_mnist_digit_saved_as_rgb_passes_through(mnist):
    image = mnist.test_images[2]
    assert np.array_equal(model_sees(np.stack([image] * 3, axis=-1)), image)


def test_28x28_photo_is_not_mistaken_for_mnist():
    # Gray paper all round: not MNIST-like, so it gets the full treatment.
    assert mnist_like(np.full((28, 28), 128, np.uint8)) is None


def test_a_28x28_photo_of_a_digit_on_gray_paper_comes_out_as_clean_as_a_large_one(clean_digits, recognizer):
    # Dark ink on paper at 235 with noise, 28×28: only inverted, its paper stayed at ~20 with its noise. Found
    # like any photo, its paper is 0 and it is the 28×28 the same digit gives photographed 200 px tall.
    differences = []
    for digit, image in clean_digits.items():
        noise = np.random.default_rng(digit).normal(0, 6, (28, 28))
        small = np.clip(235 - image * (205 / 255) + noise, 0, 255).round().astype(np.uint8)
        out = model_sees(small)
        assert recognizer.classify(out).argmax() == digit
        large = model_sees(digit_photo(image, height=200 * 20 // 28, noise=0.02, seed=digit))
        # Paper: more than 2 px from the large photo's strokes (room for a 1-px difference in centring).
        near = np.lib.stride_tricks.sliding_window_view(np.pad(large > 0, 2), (5, 5)).any((2, 3))
        assert (out[~near] == 0).all()
        # Up to the 1-px rounding of the centring shift, as for photos of any size.
        differences.append(min(np.abs(np.roll(out.astype(int), (dy, dx), (0, 1)) - large).mean()
                               for dy in (-1, 0, 1) for dx in (-1, 0, 1)))
    assert max(differences) < 12 and np.mean(differences) < 4, differences


# -------------------------------------------------------------------------------------------- polarity


def test_polarity_dark_ink_on_light_paper(clean_digits):
    assert ink_is_dark(digit_photo(clean_digits[3]).astype(np.float32) / 255)


def test_polarity_light_ink_on_dark_paper(clean_digits):
    photo = 255 - digit_photo(clean_digits[3])
    assert not ink_is_dark(photo.astype(np.float32) / 255)


def test_polarity_survives_a_shadow_over_most_of_the_border(clean_digits):
    # The shadowed paper is most of the border; a border-median rule would call the lit paper "ink".
    # A phone's shadow has a soft edge (a penumbra); here it covers the left two thirds of the sheet.
    shadow = 1 - 0.55 / (1 + np.exp((np.arange(160, dtype=np.float32) - 110) / 6))
    photo = digit_photo(clean_digits[5], height=60, shape=(160, 160), light=np.tile(shadow, (160, 1)))
    assert ink_is_dark(photo.astype(np.float32) / 255)
    lit = model_sees(digit_photo(clean_digits[5], height=60, shape=(160, 160)))
    assert np.abs(model_sees(photo).astype(int) - lit).mean() < 8


def test_same_digit_either_polarity_gives_same_image(clean_digits):
    dark_on_light = digit_photo(clean_digits[7], height=90)
    assert np.array_equal(model_sees(dark_on_light), model_sees(255 - dark_on_light))


def bold_crop(digit: np.ndarray, margin: int = 0, pen: int = 7) -> np.ndarray:
    """A digit written with a bold pen (``pen`` 7: strokes ~14% of its height) and cut out ``margin`` px from its ink
    (dark on light, uint8): the paper left between its strokes is no wider than they are."""
    ink = (ink_of(digit, 112) > 0.5).astype(np.uint8)
    ink = cv2.dilate(ink, np.ones((pen, pen), np.uint8)).astype(np.float32) if pen > 1 else ink.astype(np.float32)
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    ink = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    return on_paper(ink, shape=(ink.shape[0] + 2 * margin, ink.shape[1] + 2 * margin), at=(margin, margin))


@pytest.mark.parametrize("margin", [0, 4])
def test_a_bold_digit_cut_out_close_to_its_ink_is_found_and_read(clean_digits, recognizer, margin):
    # Cut out to its ink, a bold digit's strokes are as wide as the paper between them: read from inside alone, the
    # paper passed for light ink and the thick strokes for paper (4 of these 10 crops had no digit or the wrong one).
    read = []
    for digit, glyph in clean_digits.items():
        picture = bold_crop(glyph, margin)
        found = find_ink(picture)
        assert found is not None and found.dark_ink, digit
        assert found.mask.shape == working_gray(picture)[0].shape  # the margin it was looked for in is cut away
        # The mask is the pen's ink (the crop's dark pixels), not the paper between its strokes.
        assert iou(found.mask, picture < 128) > 0.8, digit
        read.append(recognizer.predict(picture)["digit"])
    assert read == list(clean_digits)


@pytest.mark.parametrize("angle", [0, 2, 4])
def test_a_number_cut_close_under_uneven_light_is_read(clean_digits, recognizer, angle):
    # The margin it is looked at with is one flat level, the edge's median: where the light falls off across the
    # picture, a step stands between the margin and the picture's darker edge, and it must not read as ink.
    line = number_ink([clean_digits[d] for d in (7, 2, 9)], height=80)
    shape = (line.shape[0] + 4, line.shape[1] + 4)
    ys, xs = np.mgrid[:shape[0], :shape[1]]
    fall = np.cos(angle) * xs / shape[1] + np.sin(angle) * ys / shape[0]
    light = 1 - 0.5 * (fall - fall.min()) / (fall.max() - fall.min())
    assert recognizer.read(on_paper(line, shape=shape, at=(2, 2), light=light, noise=0.01))["text"] == "729"


@pytest.mark.parametrize("pen", [1, 7])
def test_a_light_digit_on_black_cut_out_close_to_its_ink_keeps_its_polarity(clean_digits, recognizer, pen):
    # A bold one (pen 7) was taken for dark ink: the black gaps between its strokes are as narrow as the strokes. Its
    # edge, as dark as the picture gets, is trusted where the light holds nothing dark (a sheet on a desk would).
    picture = 255 - bold_crop(clean_digits[4], pen=pen)
    found = find_ink(picture)
    assert found is not None and not found.dark_ink
    assert recognizer.predict(picture)["digit"] == 4


@pytest.mark.parametrize("pen", [1, 5])
def test_light_ones_on_black_cut_out_close_to_their_ink_are_found_and_read(glyph_pool, recognizer, pen):
    # A 1 filling its crop: the first look takes the light stroke for paper and finds nothing (or a sliver); the
    # dark edge round light that holds nothing dark is paper, so it looks again with a margin of it.
    for glyph in glyph_pool[1]:
        picture = 255 - bold_crop(glyph, pen=pen)
        found = find_ink(picture)
        assert found is not None and not found.dark_ink
        assert recognizer.predict(picture)["digit"] == 1


def test_a_bold_light_number_on_black_cut_out_close_to_its_ink_is_read(clean_digits, recognizer):
    # A dark-mode screenshot cut to its writing in a bold pen: the light strokes hold no dark (no loops), so they
    # are no sheet on a desk, and the dark edge is paper. (Read as "91 5" before.)
    line = (number_ink([clean_digits[d] for d in (3, 5, 7)], height=80) > 0.5).astype(np.uint8)
    line = cv2.dilate(line, np.ones((5, 5), np.uint8)).astype(np.float32)
    picture = 255 - on_paper(line, shape=line.shape, at=(0, 0))
    found = find_ink(picture)
    assert found is not None and not found.dark_ink
    assert recognizer.read(picture)["text"] == "357"


def test_a_bold_number_cut_out_close_to_its_ink_is_read(clean_digits, recognizer):
    line = (number_ink([clean_digits[d] for d in (3, 0, 8, 5)], height=112) > 0.5).astype(np.uint8)
    line = cv2.dilate(line, np.ones((7, 7), np.uint8)).astype(np.float32)
    rows = np.flatnonzero(line.any(1))
    line = line[rows[0]:rows[-1] + 1]
    assert recognizer.read(on_paper(line, shape=line.shape, at=(0, 0)))["text"] == "3085"


def test_a_page_cut_close_to_its_writing_is_read_as_before(clean_digits, recognizer):
    # Three lines of digits cut out to their ink: the margin looked for round it adds paper, nothing else.
    lines = [number_ink([clean_digits[d] for d in row], height=60) for row in ((1, 2, 3), (4, 5, 6), (7, 8, 9))]
    width = max(line.shape[1] for line in lines)
    page = np.zeros((3 * 60 + 2 * 30, width), np.float32)
    for k, line in enumerate(lines):
        page[k * 90:k * 90 + line.shape[0], :line.shape[1]] = line
    assert recognizer.read(on_paper(page, shape=page.shape, at=(0, 0)))["text"] == "123\n456\n789"


# ------------------------------------------------------------------------------------------- background


def test_background_removal_under_a_strong_gradient(clean_digits):
    ink = ink_of(clean_digits[2], 100)
    shape = (ink.shape[0] + 80, ink.shape[1] + 160)
    truth = np.zeros(shape, bool)
    truth[40:40 + ink.shape[0], 80:80 + ink.shape[1]] = ink > 0.5
    light = np.linspace(0.25, 1.0, shape[1], dtype=np.float32)[None, :].repeat(shape[0], 0)
    photo = on_paper(ink, shape=shape, at=(40, 80), light=light, noise=0.02)
    # A global threshold cannot work: the dark side of the paper is darker than the ink on the bright side.
    otsu_like = photo < (photo.min() + photo.max()) / 2
    assert iou(otsu_like, truth) < 0.5
    found = find_ink(photo)
    assert found is not None and found.dark_ink
    assert iou(found.mask, truth) > 0.85


@pytest.mark.parametrize("height, thin, coarse, looks", [(200, False, True, 1), (40, False, False, 1),
                                                         (200, True, False, 2)])
def test_big_writing_is_found_at_a_coarser_scale_and_read_the_same(clean_digits, recognizer, monkeypatch, height, thin,
                                                                   coarse, looks):
    """In a picture kept as it is for working (at most 1,024 px), digits 200 px tall (strokes ~20 px) are found
    halved in one look, strokes still COARSE_STROKE wide, and read as the same number, boxed in the picture's own
    pixels. Digits 40 px tall are found as they are, in one look (a first guess says their strokes are too thin to
    halve); as tall with strokes thinned under twice COARSE_STROKE, they are looked at halved, then as they are."""
    text = "2026"
    ink = number_ink([clean_digits[int(c)] for c in text], height=height)
    if thin:  # a finer pen: the strokes eroded to about 12 px
        side = int(stroke_width(ink > 0.5)) - 12
        ink = cv2.erode(ink, np.ones((side, side), np.uint8))
        assert 2 * COARSE_STROKE > stroke_width(ink > 0.5) > COARSE_STROKE
    shape = (max(ink.shape[0] + 120, 320), max(ink.shape[1] + 120, 640))
    at = ((shape[0] - ink.shape[0]) // 2, (shape[1] - ink.shape[1]) // 2)
    photo = on_paper(ink, shape=shape, at=at, noise=0.02)
    gray, working = working_gray(photo)
    assert working == 1 and max(gray.shape) < 1024  # the picture as it is, large enough to be looked at halved
    import digitnet.vision.preprocess as preprocess

    calls = []
    ink_at = preprocess._ink_at
    monkeypatch.setattr(preprocess, "_ink_at", lambda *args: calls.append(args[1]) or ink_at(*args))
    found = find_ink(photo)
    assert len(calls) == looks
    assert found.scale == pytest.approx(2 if coarse else 1, abs=0.01)
    assert found.mask.shape == ((gray.shape[0] // 2, gray.shape[1] // 2) if coarse else gray.shape)
    assert found.stroke_width() >= COARSE_STROKE or not coarse
    if thin:
        return  # (erosion breaks some digits' thinner parts: what is read is not the point)
    answer = recognizer.read(photo)
    assert answer["text"] == text
    for x0, y0, x1, y1 in (d["box"] for d in answer["digits"]):
        assert at[1] - 2 <= x0 and x1 <= at[1] + ink.shape[1] + 2
        assert at[0] - 2 <= y0 < y1 <= at[0] + ink.shape[0] + 2
        assert 0.5 * height < y1 - y0


@pytest.mark.parametrize("desk", [0.1, 0.3, 0.55])
def test_a_sheet_photographed_on_a_desk_has_no_frame_of_ink(clean_digits, desk):
    """A note photographed where it lies: the desk shows round the sheet. The sheet's edge is the edge of something
    wider than any stroke (as a shadow is), not a line drawn round the writing; taken for ink it read as a form box
    (a 4-digit number as "199")."""
    ink = number_ink([clean_digits[d] for d in (3, 1, 4, 8)], height=50)
    sheet = on_paper(ink, shape=(ink.shape[0] + 60, ink.shape[1] + 80), noise=0.01)
    photo = np.full((sheet.shape[0] + 70, sheet.shape[1] + 90), round(255 * desk), np.uint8)
    photo[25:25 + sheet.shape[0], 40:40 + sheet.shape[1]] = sheet
    truth = np.zeros(photo.shape, bool)
    truth[55:55 + ink.shape[0], 80:80 + ink.shape[1]] = ink > 0.5
    found = find_ink(photo)
    assert found is not None and found.dark_ink
    assert iou(found.mask, truth) > 0.85


@pytest.mark.parametrize("desk", [0.06, 0.25, 0.45])
def test_the_desk_round_a_sheet_is_not_read(clean_digits, desk):
    """A sheet photographed where it lies, on a black, dark or gray desk with a grain of its own. Taken for paper
    in shadow, the desk's grain was read as strokes (a line of "digits" above the number), and beside a dark desk
    the sheet itself passed for light ink on dark paper: the desk is found and made paper first."""
    photo, truth = sheet_on_desk([clean_digits[d] for d in (3, 1, 4, 8)], desk)
    gray, _ = working_gray(photo)
    filled = without_desk(gray)
    assert filled is not None
    # The desk is paper now, as bright as the sheet beside it; the sheet and its writing are as they were.
    assert filled[:50].min() > 0.8 and filled[-50:].min() > 0.8 and filled[:, :50].min() > 0.8
    assert np.array_equal(filled[70:-70, 70:-10], gray[70:-70, 70:-10])
    found = find_ink(photo)
    assert found is not None and found.dark_ink
    assert iou(found.mask, truth) > 0.85


def test_a_soft_shadow_is_not_a_desk(clean_digits):
    """Half the writing in a shadow as dark as a desk, but soft-edged (its penumbra 3% of the picture): still paper,
    and its writing is found."""
    ink = number_ink([clean_digits[d] for d in (3, 1, 4, 8)], height=50)
    shape = (ink.shape[0] + 160, ink.shape[1] + 160)
    xs = np.arange(shape[1], dtype=np.float32)
    light = 1 - 0.6 / (1 + np.exp(-(xs - shape[1] / 2) / (0.03 * shape[1])))
    photo = on_paper(ink, shape=shape, light=np.repeat(light[None], shape[0], 0), noise=0.01)
    assert without_desk(working_gray(photo)[0]) is None
    truth = np.zeros(shape, bool)
    truth[80:80 + ink.shape[0], 80:80 + ink.shape[1]] = ink > 0.5
    found = find_ink(photo)
    assert found is not None and iou(found.mask, truth) > 0.85


@pytest.mark.parametrize("depth", [0.4, 0.55])
def test_a_thick_digit_in_a_shadow_is_not_on_a_desk(clean_digits, depth):
    """A marker's digit filling the picture, half in a shadow that reaches the picture's edge: the shadow is darker
    than paper, as a desk is, and where thick strokes cross its edge, that edge is sharp; but the ink on it is far
    darker than the shadow, and a desk has nothing written on it. (Taken for a desk, part of the digit was wiped.)"""
    for digit in range(10):
        ink = cv2.dilate(ink_of(clean_digits[digit], 170), np.ones((7, 7), np.uint8))
        shape = (ink.shape[0] + 30, ink.shape[1] + 60)
        ys, xs = np.mgrid[:shape[0], :shape[1]].astype(np.float32)
        for at in (0.3, 0.4):
            shadow = 1 - depth / (1 + np.exp((xs - at * shape[1]) / (0.02 * max(shape))))
            photo = on_paper(ink, shape=shape, light=(1 - 0.3 * ys / shape[0]) * shadow, noise=0.01)
            assert without_desk(working_gray(photo)[0]) is None, (digit, at)


@pytest.mark.parametrize(("height", "ink_level"), [(30, 0.15), (60, 0.65)])
def test_writing_in_a_hard_shadow_is_not_a_desk(clean_digits, height, ink_level):
    """A number half in a hard-edged shadow (sunlight: a penumbra 0.3% of the picture) that reaches the picture's
    edge, written with a fine pen or a pencil (70% of the paper's brightness): at the desk finder's low resolution its
    strokes in the shadow are gone or faint, and the shadow looks like a desk beside a rectangular sheet; at full
    resolution the writing in it shows, and it is paper."""
    ink = cv2.erode(number_ink([clean_digits[d] for d in (4, 0, 1, 5, 9)], height=height), np.ones((3, 3), np.uint8))
    shape = (ink.shape[0] * 4, ink.shape[1] * 2)
    ys, xs = np.mgrid[:shape[0], :shape[1]].astype(np.float32)
    for at in (0.45, 0.55, 0.65):
        for depth in (0.45, 0.6):
            edge = np.clip((xs - at * shape[1] + 0.2 * (ys - shape[0] / 2)) / (0.003 * max(shape)), -50, 50)
            photo = on_paper(ink, shape=shape, ink_level=ink_level, light=1 - depth / (1 + np.exp(-edge)), noise=0.01)
            assert without_desk(working_gray(photo)[0]) is None, (at, depth)


@pytest.mark.parametrize("shape", [(2000, 40), (40, 2000), (1030, 5), (1024, 30), (4000, 10)])
def test_a_strip_on_a_desk_is_read_without_error(shape):
    """A long strip of paper on a dark desk with a mark on it: at the desk finder's low resolution the strip is a few
    pixels across (its desk, dilated, once covered all of it and indexing the sheet's pixels failed)."""
    h, w = shape
    photo = np.full(shape, 15, np.uint8)
    photo[h // 4:h - h // 4, w // 4:w - w // 4] = 230
    photo[h // 2 - max(1, h // 12):h // 2 + max(1, h // 12), w // 2 - max(1, w // 40):w // 2 + max(1, w // 40)] = 20
    found = find_ink(photo)
    assert found is None or found.mask.any()


@pytest.mark.parametrize("thickness", [1, 3, 4])
def test_a_light_digit_on_black_is_not_a_sheet(glyph_pool, thickness):
    """An MNIST-style upload (white on black) enlarged, as drawn or thickened: the bright thing on a dark ground is
    the digit, with a rounded outline, bright only along its strokes; not a sheet on a desk. (A thick 8, its holes
    closed to slits, once passed for a sheet with writing on it, and was read "7,6 00 29".)"""
    for digit, glyph in ((digit, glyph) for digit, glyphs in glyph_pool.items() for glyph in glyphs):
        field = cv2.dilate(glyph, np.ones((thickness, thickness), np.uint8))
        photo = np.asarray(Image.fromarray(field).resize((280, 280), Image.Resampling.BICUBIC))
        assert without_desk(working_gray(photo)[0]) is None, digit
        if thickness == 1:  # (thicker, some strokes pass polarity's test of thinness: a limit of their own)
            found = find_ink(photo)
            assert found is not None and not found.dark_ink


def test_paper_texture_and_jpeg_noise_are_not_ink(clean_digits):
    photo = digit_photo(clean_digits[0], height=80, shape=(200, 200), noise=0.04, seed=3)
    found = find_ink(photo)
    assert found is not None
    labels, stats = connected_components(found.mask)
    # The digit's strokes only (a 0 may be closed or not): no speck of noise, however small, is left.
    assert 1 <= len(stats) <= 2 and stats[:, 4].min() > 0.2 * stats[:, 4].sum()


@pytest.mark.parametrize("picture", [
    np.full((120, 90), 235, np.uint8),  # blank page
    np.linspace(60, 240, 200 * 150).reshape(200, 150).astype(np.uint8),  # a smooth gradient
    (np.random.default_rng(0).normal(200, 6, (150, 150))).clip(0, 255).astype(np.uint8),  # paper grain
    np.zeros((50, 50), np.uint8),  # black
    np.zeros((28, 28), np.uint8),  # an empty MNIST field
    # A blank form scanned with salt noise (dark specks, some touching): specks, however many, are no digit.
    np.where(np.random.default_rng(1).random((300, 400)) < 0.02, 20, 230).astype(np.uint8),
    np.where(np.random.default_rng(2).random((60, 40)) < 0.05, 20, 230).astype(np.uint8),
])
def test_no_ink_found(picture):
    assert find_ink(picture) is None
    prepared = prepare_digit(picture)
    assert prepared.image is None and prepared.note == NO_INK and prepared.error is None


def test_a_number_in_salt_noise_is_read_and_the_noise_alone_is_not(clean_digits, recognizer):
    # Read before as a page of made-up lines ("1115 1", "8 8", ...) from the specks' clusters.
    rng = np.random.default_rng(3)
    page = on_paper(number_ink([clean_digits[d] for d in (4, 0, 7, 3)], height=70), shape=(400, 600), at=(150, 100))
    blank = np.full_like(page, 235)
    for picture in (page, blank):
        salt = rng.random(picture.shape) < 0.02
        picture[salt] = rng.integers(0, 80, int(salt.sum()))
    assert recognizer.read(page)["text"] == "4073"
    answer = recognizer.read(blank)
    assert answer["text"] == "" and answer["note"] == NO_INK


def test_faint_pencil_is_still_ink(clean_digits, recognizer):
    photo = digit_photo(clean_digits[4], height=80, paper=0.9, ink_level=0.65)  # ~30% contrast
    out = model_sees(photo)
    assert recognizer.classify(out).argmax() == 4
    # The same strokes as in ink: the faint ones are found whole, not only their darkest cores.
    inked = model_sees(digit_photo(clean_digits[4], height=80))
    assert iou(out > 127, inked > 127) > 0.8


# ---------------------------------------------------------------------------------- crop, scale, centre


def test_crop_scale_keeps_aspect_and_fits_20px():
    tall = np.zeros((300, 300), np.float32)
    tall[50:250, 120:170] = 1  # 200 × 50: aspect 4:1
    out = normalize_digit(tall)
    rows, cols = np.flatnonzero(out.max(1)), np.flatnonzero(out.max(0))
    assert len(rows) == 20 and len(cols) == 5
    wide = tall.T
    out = normalize_digit(wide)
    rows, cols = np.flatnonzero(out.max(1)), np.flatnonzero(out.max(0))
    assert len(cols) == 20 and len(rows) == 5


def test_position_and_size_do_not_matter(clean_digits):
    # Same digit, small in a corner or large in the middle: nearly the same 28×28.
    small = on_paper(ink_of(clean_digits[6], 40), shape=(300, 400), at=(10, 330))
    large = on_paper(ink_of(clean_digits[6], 240), shape=(300, 400), at=(30, 100))
    a, b = model_sees(small).astype(int), model_sees(large).astype(int)
    assert np.abs(a - b).mean() < 12


@pytest.mark.parametrize("digit", range(10))
def test_center_of_mass_within_half_pixel(clean_digits, digit):
    photo = on_paper(ink_of(clean_digits[digit], 120), shape=(260, 300), at=(17, 141))
    out = model_sees(photo)
    cy, cx = center_of_mass(out)
    assert abs(cy - CENTER) <= 0.5 and abs(cx - CENTER) <= 0.5
    assert out.max() == 255  # strokes reach full white, as in MNIST


def test_photo_normalizes_close_to_the_original_mnist_digit(clean_digits, recognizer):
    for digit, image in clean_digits.items():
        photo = digit_photo(image, height=150, noise=0.02, seed=digit)
        out = model_sees(photo)
        assert recognizer.classify(out).argmax() == digit
        # Same strokes as the MNIST original, up to anti-aliasing and the 1-px rounding of the centring shift.
        shifts = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
        best = max(iou(np.roll(out, shift, (0, 1)) > 127, image > 127) for shift in shifts)
        assert best > 0.75


def test_huge_picture_is_reduced_and_still_read(clean_digits, recognizer):
    photo = on_paper(ink_of(clean_digits[8], 900), shape=(2400, 1800))
    found = find_ink(photo)
    assert found.scale > 2 and max(found.mask.shape) <= 1024
    assert recognizer.classify(model_sees(photo)).argmax() == 8


# ------------------------------------------------------------------------------- connected components


def components_by_bfs(mask: np.ndarray) -> list[set]:
    seen, parts = np.zeros_like(mask), []
    for y, x in zip(*np.nonzero(mask), strict=True):
        if seen[y, x]:
            continue
        part, queue = set(), deque([(y, x)])
        seen[y, x] = True
        while queue:
            cy, cx = queue.popleft()
            part.add((cy, cx))
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ny, nx = cy + dy, cx + dx
                    if 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1] and mask[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        queue.append((ny, nx))
        parts.append(part)
    return parts


@pytest.mark.parametrize("seed", range(5))
def test_connected_components_match_a_flood_fill(seed):
    mask = np.random.default_rng(seed).random((40, 50)) < 0.35
    labels, stats = connected_components(mask)
    expected = components_by_bfs(mask)
    assert len(stats) == len(expected)
    found = {frozenset(zip(*np.nonzero(labels == k + 1), strict=True)) for k in range(len(stats))}
    assert found == {frozenset(p) for p in expected}
    for k, (x0, y0, x1, y1, area) in enumerate(stats):
        ys, xs = np.nonzero(labels == k + 1)
        assert (x0, y0, x1, y1, area) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1, len(xs))


def run_lengths_by_row(mask: np.ndarray) -> list[int]:
    """Every horizontal run of ink, row by row (the plain way)."""
    lengths = []
    for row in mask:
        run = 0
        for pixel in [*row, False]:
            if pixel:
                run += 1
            elif run:
                lengths.append(run)
                run = 0
    return lengths


@pytest.mark.parametrize("seed", range(5))
def test_stroke_width_is_the_median_horizontal_run(seed):
    rng = np.random.default_rng(seed)
    mask = rng.random((30, 41)) < rng.uniform(0.2, 0.8)
    mask[:, -1] |= rng.random(30) < 0.5  # runs reaching the right edge end there, not on the next row
    assert stroke_width(mask) == float(np.median(run_lengths_by_row(mask)))
    bar = np.zeros((20, 30), bool)
    bar[5:15, 3:10] = True  # a vertical stroke 7 px wide
    assert stroke_width(bar) == 7.0
    assert stroke_width(np.zeros((5, 5), bool)) == 1.0
    assert stroke_width(mask.astype(np.float32) * 2) == stroke_width(mask)  # nonzero is ink, whatever the type


def _faint_page(*extras: str, faint: float = 0.4) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A 7 written with a fine pen (3 px; 80 px tall) whose stem fades as the pen is lifted, from full contrast to
    0.3 of it, and faint ``extras`` (``faint`` of its contrast): a "smudge" 25 px across touching the stem from the
    left, a "rule" under the 7 running across the page, 3 px. Returns the picture and where its parts are (bool):
    the "stem" where it is 0.35–0.45 of the 7's contrast (fainter than half, clear of the paper), and each extra
    apart from the 7."""
    from PIL import Image, ImageDraw

    shape = (200, 560)
    coverage = np.zeros(shape, np.float32)
    bar = Image.new("F", shape[::-1])
    ImageDraw.Draw(bar).line([(200, 40), (250, 40)], fill=1.0, width=3)
    coverage = np.maximum(coverage, np.asarray(bar))
    stem = Image.new("F", shape[::-1])
    ImageDraw.Draw(stem).line([(250, 40), (215, 120)], fill=1.0, width=3)
    fade = np.clip(1 - 0.7 * (np.arange(shape[0]) - 40) / 80, 0.3, 1)[:, None]
    coverage = np.maximum(coverage, np.asarray(stem) * fade)
    seven = coverage > 0
    where = {"stem": (np.asarray(stem) > 0) & (fade < 0.45) & (fade > 0.35)}
    for name in extras:
        region = np.zeros(shape, bool)
        if name == "smudge":
            region[70:95, 206:231] = True  # 25 px: shorter than a digit, as a stroke is, but 8 pens wide
        else:  # "rule"
            region[119:122, :] = True
        coverage[region] = np.maximum(coverage[region], faint)
        where[name] = region & ~seven
    return on_paper(coverage, shape=shape, at=(0, 0)), where


def test_a_faint_fine_stroke_of_the_writing_is_ink_where_a_smudge_is_not(monkeypatch):
    import digitnet.vision.preprocess as preprocess

    picture, where = _faint_page("smudge")
    ink = find_ink(picture)
    assert ink.mask[where["stem"]].mean() > 0.9  # fainter than half the 7's contrast, yet its stroke
    assert ink.mask[where["smudge"]].mean() < 0.05  # as faint, but far wider than the pen
    # held below the writing's threshold only where a stroke is
    assert ink.thresholds is not None and ink.thresholds[where["stem"]].max() < ink.threshold
    assert ink.thresholds[where["smudge"]].min() == ink.threshold
    for carried, fresh in zip(ink.thresholded_components(), connected_components(ink.above()), strict=True):
        np.testing.assert_array_equal(carried, fresh)  # what readers share is all ink above its own threshold
    # Held to the writing's threshold alone, the 7 would lose its stem's lower half.
    monkeypatch.setattr(preprocess, "FAINT_STROKE", 1.0)
    plain = find_ink(picture)
    assert plain.thresholds is None and plain.mask[where["stem"]].mean() < 0.1


def test_a_faint_ruled_line_under_the_writing_stays_paper():
    """As narrow and as faint as the stem's end, and joined to it, but running on for more than a digit: printed.
    (The stem's faint end that touches it is taken for part of the line, and stays paper too.)"""
    picture, where = _faint_page("rule")
    ink = find_ink(picture)
    assert ink.mask[where["rule"]].mean() < 0.05


def test_a_faint_stroke_on_its_own_is_not_taken_for_writing():
    """Faint strokes count only where they join the writing: a lone one (a crease, a line from the page behind)
    stays paper."""
    picture, where = _faint_page()
    rows = np.flatnonzero(where["stem"].any(1))
    picture[rows[0] - 15:rows[0], 150:300] = picture[0, 0]  # the stem's faint end cut off the 7, 15 px away
    assert find_ink(picture).mask[where["stem"]].mean() < 0.05


def test_found_ink_carries_the_components_of_its_mask_and_of_all_ink_above_the_threshold(clean_digits):
    picture = digit_photo(clean_digits[3], noise=0.04, seed=1)
    picture[5:7, 5:7] = 0  # a speck that find_ink drops
    ink = find_ink(picture)
    above = ink.above()
    assert ink.thresholds is None and np.array_equal(above, ink.ink > ink.threshold)  # a plain photo: one threshold
    assert without_specks(above)[0].sum() < above.sum()  # specks were dropped: the kept pieces are numbered anew
    for cached, fresh in ((ink.components(), connected_components(ink.mask)),
                          (ink.thresholded_components(), connected_components(above))):
        for mine, theirs in zip(cached, fresh, strict=True):
            np.testing.assert_array_equal(mine, theirs)
            assert mine.dtype == theirs.dtype and not mine.flags.writeable  # shared by every reader: read-only
    assert ink.stroke_width() == stroke_width(ink.mask)
    # A copy with another mask works its components out again, from that mask.
    half = ink.mask.copy()
    half[:, : half.shape[1] // 2] = False
    other = replace(ink, mask=half)
    np.testing.assert_array_equal(other.components()[0], connected_components(half)[0])
    assert other.stroke_width() == stroke_width(half)


def test_writing_in_a_box_carries_the_components_of_its_own_mask(clean_digits):
    from digitnet.vision.pipeline import find_writing

    ink = ink_of(clean_digits[0], 70)
    page = np.zeros((ink.shape[0] + 40, ink.shape[1] + 40), np.float32)
    page[20:-20, 20:-20] = ink
    page[5:8, 5:-5] = page[-8:-5, 5:-5] = page[5:-5, 5:8] = page[5:-5, -8:-5] = 1  # a printed box
    writing = find_writing(on_paper(page))
    assert writing.in_boxes
    for cached, fresh in ((writing.components(), connected_components(writing.mask)),
                          (writing.thresholded_components(), connected_components(writing.above()))):
        for mine, theirs in zip(cached, fresh, strict=True):
            np.testing.assert_array_equal(mine, theirs)
    assert len(writing.components()[1]) < len(writing.thresholded_components()[1])  # the box went from the mask


# ------------------------------------------------------------------------------------------- robustness


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrays(np.float32, st.tuples(st.integers(8, 60), st.integers(8, 60)), elements=st.floats(0, 1, width=32)),
       st.sampled_from([np.uint8, np.uint16, np.float32]))
def test_any_array_gives_28x28_or_none(array, dtype):
    if dtype != np.float32:
        array = (array.astype(np.float64) * np.iinfo(dtype).max).astype(dtype)
    out = model_sees(array)
    assert out is None or (out.shape == (28, 28) and out.dtype == np.uint8)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(8, 120), st.integers(8, 120), st.booleans())
def test_random_pictures_never_crash(seed, h, w, color):
    rng = np.random.default_rng(seed)
    picture = (rng.random((h, w, 3) if color else (h, w)) * 255).astype(np.uint8)
    if rng.random() < 0.5:  # smooth blobs, more like pictures than white noise
        picture = np.sort(picture, axis=int(rng.integers(0, 2)))
    out = model_sees(picture)
    assert out is None or (out.shape == (28, 28) and out.dtype == np.uint8 and 0 <= out.min() <= out.max() <= 255)


# ------------------------------------------------------------------------------------------ statistics


def tie_heavy(rng: np.random.Generator, size: int) -> np.ndarray:
    """Contrast-like values: many zeros and many repeats of a few hundred levels, as a picture's ink has."""
    levels = np.round(np.clip(rng.normal(0.02, 0.05, size), 0, 1) * 255) / 255
    return (levels * rng.choice([1.0, 0.5, 0.25], size)).astype(np.float32)


@pytest.mark.parametrize("seed", range(3))
def test_order_statistics_are_those_of_a_full_sort(seed):
    rng = np.random.default_rng(seed)
    for values in (tie_heavy(rng, 12_000), rng.random(5000).astype(np.float32), tie_heavy(rng, 100),
                   np.repeat(np.float32(0.3), 4000)):
        ordered = np.sort(values)
        for ks in ([0], [values.size - 1], [values.size // 2 - 1, values.size // 2], [int(0.9 * values.size)]):
            assert _order_statistics(values, ks).tolist() == ordered[ks].tolist()


def test_order_statistics_stay_exact_when_the_sample_misleads():
    # The sample (every 16th value) sees only small values; the median lies among large ones: the bracket misses.
    values = np.ones(8000, np.float32)
    values[::16] = 0.0
    ks = [3999, 4000]
    assert _order_statistics(values, ks).tolist() == np.sort(values)[ks].tolist()


@pytest.mark.parametrize("seed", range(3))
def test_median_of_a_large_nonnegative_sample_is_numpys(seed):
    # Picture-sized samples (the sizes the noise estimate sees) take the bracketed path, not only the small one.
    rng = np.random.default_rng(seed)
    for size in (11_777, 12_000, 16_385):
        values = tie_heavy(rng, size)
        assert _median_of_nonnegative(values) == float(np.median(values))
        spread = np.abs(values - np.float32(np.median(values)))
        assert _median_of_nonnegative(spread) == float(np.median(spread))


def test_to_gray_is_pil_luminance_for_every_channel_layout() -> None:
    from PIL import Image

    from digitnet.vision.preprocess import to_gray

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    gray = to_gray(rgb)
    assert gray.dtype == np.float32 and gray.shape == (37, 53) and gray.flags.c_contiguous
    expected = (rgb.astype(np.float64) @ [0.299, 0.587, 0.114]) / 255
    assert np.abs(gray - expected).max() < 1e-6
    # PIL's "L" rounds to 8 bits: within half a level
    assert np.abs(gray * 255 - np.asarray(Image.fromarray(rgb).convert("L"))).max() <= 0.5 + 1e-3
    rgba = np.dstack([rgb, rng.integers(0, 256, (37, 53), dtype=np.uint8)])
    assert np.array_equal(to_gray(rgba), gray)  # alpha is not light
    assert np.array_equal(to_gray(rgb[..., 0]), rgb[..., 0].astype(np.float32) / 255)
    assert to_gray(np.zeros((0, 5, 3), np.uint8)).shape == (0, 5)
    floats = rgb.astype(np.float32) / 255  # float and 16-bit colour take OpenCV's way too
    assert np.abs(to_gray(floats) - expected).max() < 1e-6
    assert np.abs(to_gray(rgb.astype(np.uint16) * 257) - expected).max() < 1e-6


def test_a_pencil_line_in_a_picture_wider_than_the_working_side_stays_whole():
    # A drawing app's 1-px pencil, in a screenshot wider than WORK_SIDE: halved by area, the line fades to half ink
    # and breaks into dashes wherever it runs diagonally; each dash would be read as a piece of writing.
    canvas = np.full((400, 1300), 255, np.uint8)
    for k in range(4):
        cv2.ellipse(canvas, (200 + 300 * k, 200), (60, 110), 15, 0, 360, 0, 1, lineType=cv2.LINE_8)
    assert working_gray(canvas)[1] > 1  # the picture is reduced to be worked on
    ink = find_ink(canvas)
    assert ink.scale == 1  # ... and its strokes were looked for again where they are a pixel wide
    assert len(ink.components()[1]) == 4  # four rings, each whole
    # A picture the working side holds, and one with strokes wider than the reduction, are worked on as before.
    assert find_ink(canvas[:, :1000]).scale == 1
    thick = np.full((400, 1300), 255, np.uint8)
    cv2.ellipse(thick, (650, 200), (60, 110), 15, 0, 360, 0, 9)
    assert find_ink(thick).scale > 1
