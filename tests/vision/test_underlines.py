"""Lines drawn under the writing: found by shape, taken away without the digits, and read past."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from digitnet.vision.preprocess import connected_components
from digitnet.vision.underlines import ALONE_THICKNESS, underline_mask

PEN = 6


def _digits(count: int = 4, height: int = 60, width: int = 36, gap: int = 14) -> tuple[np.ndarray, list[tuple]]:
    """Rings standing in for digits (``count`` of them, ``height`` tall) on a canvas with room below."""
    mask = np.zeros((height * 3, 40 + count * (width + gap)), np.uint8)
    boxes = []
    for k in range(count):
        x0 = 20 + k * (width + gap)
        cv2.ellipse(mask, ((x0 + width // 2), 20 + height // 2), (width // 2 - PEN // 2, height // 2 - PEN // 2),
                    0, 0, 360, 1, PEN)
        boxes.append((x0, 20, x0 + width, 20 + height))
    return mask, boxes


def _found(mask: np.ndarray) -> np.ndarray | None:
    mask = mask.astype(bool)
    labels, stats = connected_components(mask)
    return underline_mask(labels, stats, PEN)


def test_a_line_under_a_number_is_found_whole_and_nothing_else() -> None:
    digits, _ = _digits()
    line = np.zeros_like(digits)
    cv2.line(line, (15, 95), (digits.shape[1] - 15, 99), 1, PEN)  # a little sloped, apart from the digits
    found = _found(digits | line)
    assert found is not None
    assert (found == line.astype(bool)).all()


def test_where_a_digit_stands_on_the_line_only_the_lines_band_goes() -> None:
    digits, boxes = _digits()
    line = np.zeros_like(digits)
    bottom = boxes[0][3]  # the rings' lowest ink: the line runs through it, every ring touches it
    cv2.line(line, (15, bottom - 1), (digits.shape[1] - 15, bottom - 1), 1, PEN)
    found = _found(digits | line)
    assert found is not None
    rows = np.arange(digits.shape[0])[:, None] + np.zeros(digits.shape[1], int)
    # cv2 draws the line PEN + 1 rows thick; a run as thick as the line (ALONE_THICKNESS times) is the line's alone
    band = np.abs(rows - (bottom - 1)) <= (PEN + 1) * ALONE_THICKNESS / 2 + 1
    assert not (found & ~band).any()  # every ring keeps everything above the line's band ...
    assert found[line.astype(bool)].mean() > 0.97  # ... and the line goes (bar a pixel here and there)
    assert (digits.astype(bool) & ~found).sum() > 0.85 * digits.sum()  # the rings lose their bottoms only


@pytest.mark.parametrize("length", [0.5, 1.2])
def test_a_bar_shorter_than_the_rule_is_writing(length: float) -> None:
    digits, boxes = _digits(count=2)
    height = boxes[0][3] - boxes[0][1]
    bar = np.zeros_like(digits)
    cv2.line(bar, (20, 95), (20 + int(length * height), 95), 1, PEN)  # a minus sign, a long dash under a digit
    assert _found(digits | bar) is None


def test_wavy_bottoms_of_touching_digits_are_not_a_line() -> None:
    digits, boxes = _digits(count=4, gap=-4)  # rings overlapping: one piece, wider than the rule
    wave = np.zeros_like(digits)
    xs = np.arange(15, digits.shape[1] - 15)
    ys = (92 + 8 * np.sin(xs / 9.0)).astype(np.int32)  # a bottom stroke that goes up and down like 2s and 3s
    cv2.polylines(wave, [np.stack([xs, ys], 1)], False, 1, PEN)
    wave[:boxes[0][3]] = 0
    assert _found(digits | wave) is None


def _under_rings(ys: np.ndarray, height: int = 60) -> np.ndarray:
    """Four rings ``height`` tall and a stroke of the pen under them along ``ys`` (one row per column, from column
    15)."""
    digits, _ = _digits(height=height)
    stroke = np.zeros_like(digits)
    xs = np.arange(15, 15 + len(ys))
    cv2.polylines(stroke, [np.stack([xs, ys.astype(np.int32)], 1)], False, 1, PEN)
    return digits | stroke


def _stroke_alone(ys: np.ndarray, height: int = 60) -> np.ndarray:
    """The stroke of :func:`_under_rings` without the rings."""
    digits, _ = _digits(height=height)
    return _under_rings(ys, height).astype(bool) & ~digits.astype(bool)


def test_a_bowed_line_and_one_with_hooked_ends_go_whole() -> None:
    xs = np.arange(170)
    for ys in (95 + 0.0008 * (xs - 85) ** 2,  # bowed by more than its half thickness
               np.concatenate([95 - 0.8 * np.arange(8, 0, -1), np.full(154, 95.0), 95 - 0.8 * np.arange(1, 9)])):
        found = _found(_under_rings(ys))  # (the second: straight, its ends hooked up off it as a pen leaves the paper)
        assert found is not None
        assert (found == _stroke_alone(ys)).all()


@pytest.mark.parametrize("ys", [85 + 0.4 * np.arange(170), np.full(170, 95.0)], ids=["steep", "thick"])
def test_a_steep_or_thick_bar_under_the_writing_is_not_a_line(ys: np.ndarray) -> None:
    picture = _under_rings(ys)
    if ys[0] == ys[-1]:  # the thick one: a bar half a digit tall
        picture[95:125, 15:185] = 1
    assert _found(picture) is None


def test_a_stroke_that_wobbles_like_the_bottoms_of_digits_is_not_a_line() -> None:
    xs = np.arange(170)
    assert _found(_under_rings(np.full(len(xs), 95.0))) is not None  # straight: a line
    assert _found(_under_rings(95 + 0.0008 * (xs - 85) ** 2)) is not None  # bowed, smoothly: a line too
    # up and down by a little less than its half thickness every 24 columns: near a line all along, yet no pen's line
    assert _found(_under_rings(95 + 3 * np.sin(xs * 2 * np.pi / 24))) is None


def test_a_stroke_that_leaves_its_line_for_long_is_not_a_line() -> None:
    ys = np.full(170, 115.0)
    assert _found(_under_rings(ys, height=80)) is not None
    ys[66:102] = 107  # a fifth of it a stroke's width higher (a digit's bowl among straight bottoms), briefly
    assert _found(_under_rings(ys, height=80)) is None  # enough not to part it in two


def test_a_digits_own_long_base_is_not_a_line_under_it() -> None:
    # one digit written wide (a stretched 2, a 1 on a long foot): its base is long, straight and lowest, with
    # writing above it; but that writing is the base's own piece and stays one piece without it
    digit = np.zeros((180, 240), np.uint8)
    cv2.ellipse(digit, (80, 45), (40, 25), 0, 180, 360, 1, PEN)  # a 2's arch ...
    cv2.line(digit, (120, 45), (30, 100), 1, PEN)  # ... its diagonal ...
    cv2.line(digit, (30, 100), (150, 103), 1, PEN)  # ... and a base twice as long as the digit is tall
    assert _found(digit) is None
    digit[100:140, 170:176] = 1  # another piece beside it, above the base's level: still no line under writing
    assert _found(digit) is None


@pytest.mark.parametrize("drop", [0, 2, 9])
def test_a_line_one_pixel_thick_is_found_sloped_or_level(drop: int) -> None:
    """A fine pen's line under big writing, read reduced, may be one pixel thick: drawn in whole pixels, a sloped
    one steps from row to row, a rounding error that is no wobble."""
    digits, _ = _digits()
    line = np.zeros_like(digits)
    cv2.line(line, (15, 95), (digits.shape[1] - 15, 95 + drop), 1, 1)
    found = _found(digits | line)
    assert found is not None and (found == line.astype(bool)).all()


@pytest.mark.parametrize("pen", [2, 3])
def test_a_thin_line_under_big_writing_goes_at_the_coarse_scale(recognizer, clean_digits, pen: int) -> None:
    """Digits 240 px tall in a picture kept as it is for working are read halved (their strokes ~30 px), and the
    line a fine pen drew under them, a pixel or two thick there, goes with them: no digit's box reaches down to it."""
    from photo_helpers import number_ink, on_paper

    from digitnet.vision.preprocess import find_ink, working_gray

    ink = number_ink([clean_digits[d] for d in (1, 7, 0)], height=240)
    h, w = ink.shape
    canvas = np.zeros((h + 120, w + 160), np.float32)
    canvas[20:20 + h, 80:80 + w] = ink
    line = np.zeros_like(canvas, dtype=np.uint8)
    cv2.line(line, (40, h + 50), (w + 120, h + 62), 1, pen)
    photo = on_paper(np.maximum(canvas, line), shape=(h + 260, w + 260), at=(70, 50), noise=0.02)
    assert working_gray(photo)[1] == 1 and find_ink(photo).scale == pytest.approx(2, abs=0.01)
    answer = recognizer.read(photo)
    assert answer["text"] == "170"
    assert max(d["box"][3] for d in answer["digits"]) <= 70 + 20 + h + 4


def test_a_line_with_nothing_written_above_it_is_not_an_underline() -> None:
    digits, _ = _digits(count=2)
    width = digits.shape[1]
    canvas = np.zeros((digits.shape[0], width * 3), np.uint8)
    canvas[:, :width] = digits
    line = canvas.copy()
    cv2.line(line, (width + 10, 150), (width * 3 - 10, 150), 1, PEN)  # beside the digits, not under them
    assert _found(line) is None
    cv2.line(line, (10, 150), (width - 10, 150), 1, PEN)  # under them too: found
    assert _found(line) is not None


def _underlined_numbers(mnist, glyph_pool, count: int = 6):
    """Numbers of four sure MNIST test digits, each drawn plain and then underlined (touching the digits or not,
    sloped, now and then twice), as ``benchmarks/read_lines.py`` draws them."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from photo_helpers import number_ink, on_paper
    from read_lines import underlined

    rng = np.random.default_rng(3)
    for _ in range(count):
        labels = rng.integers(0, 10, 4)
        digits = [glyph_pool[int(d)][int(rng.integers(0, len(glyph_pool[int(d)])))] for d in labels]
        ink = number_ink(digits, height=70)
        yield "".join(map(str, labels)), on_paper(ink), on_paper(underlined(ink, 70, rng))


def test_underlined_numbers_read_as_the_same_numbers_without_their_line(mnist, glyph_pool) -> None:
    from digitnet.recognizer import Recognizer

    recognizer = Recognizer.from_pretrained()
    for truth, plain, underlined in _underlined_numbers(mnist, glyph_pool):
        without = recognizer.read(plain)
        assert without["text"] == truth  # sure digits: the line is the only difficulty
        answer = recognizer.read(underlined)
        assert answer["text"] == truth, answer["text"]
        # the line's ink is no digit's: no box reaches lower than without it (both pictures: digits 20 px down)
        assert max(d["box"][3] for d in answer["digits"]) <= max(d["box"][3] for d in without["digits"]) + 1


def test_a_total_underlined_twice_loses_both_lines() -> None:
    from photo_helpers import on_paper

    from digitnet.vision.lines import dropped_specks
    from digitnet.vision.pipeline import find_writing

    digits, boxes = _digits()
    lines = np.zeros_like(digits)
    right = digits.shape[1] - 15
    cv2.line(lines, (15, 86), (right, 100), 1, PEN)  # drawn by hand: not level (a printed line would be)
    cv2.line(lines, (15, 114), (right, 104), 1, PEN)  # the second meets the first at its right end: one piece
    point = np.zeros_like(digits)
    cv2.circle(point, (boxes[1][2] + 7, boxes[1][3] - PEN), PEN // 2 + 1, 1, -1)  # a decimal point by the line
    written = find_writing(on_paper((digits | lines | point).astype(np.float32)))
    assert not written.in_boxes
    # the point stays ink: too small beside the lines, ink finding took it for dust; without them it is judged
    # against the rings, and is writing (a piece of the mask, not a speck)
    at_point = point.astype(bool)
    assert (written.ink[20:-20, 20:-20][at_point] > written.threshold).mean() > 0.9
    assert written.mask[20:-20, 20:-20][at_point].mean() > 0.9
    specks, _ = dropped_specks(written)
    assert not any(x0 <= boxes[1][2] + 27 <= x1 for x0, _, x1, _, _ in specks)
    below = np.zeros(written.mask.shape, bool)
    below[20 + boxes[0][3] + 4:] = True  # on_paper's margin: 20 px; a few rows below the rings' lowest ink
    assert written.mask.sum() > 0.8 * digits.sum()  # the rings stay ...
    assert not (written.mask & below).any()  # ... the lines under them go, both


def test_a_level_run_broken_by_blobs_is_judged_without_failing() -> None:
    # (review) a thick level run, then thin runs on its level parted by blobs hanging below it: the stretch judged
    # held no column as thin as the line's median; the bow was once fitted to nothing (TypeError)
    from digitnet.vision.pipeline import find_writing

    mask = np.zeros((200, 600), np.uint8)
    for k in range(4):
        cv2.ellipse(mask, (60 + 50 * k, 60), (15, 20), 0, 0, 360, 1, 3)
    mask[95:105, 20:120] = 1
    x = 120
    for _ in range(3):
        mask[95:130, x:x + 25] = 1
        mask[99:101, x + 25:x + 85] = 1
        x += 85
    mask = cv2.warpAffine(mask, cv2.getRotationMatrix2D((300, 100), 2, 1.0), (600, 200), flags=cv2.INTER_NEAREST)
    picture = np.full((260, 660), 255, np.uint8)
    picture[30:230, 30:630][mask.astype(bool)] = 0
    assert find_writing(picture) is not None


def test_the_example_total_reads_without_its_lines(recognizer) -> None:
    from pathlib import Path

    answer = recognizer.read(Path(__file__).resolve().parents[2] / "examples" / "total.png")
    assert answer["text"] == "845"  # "345" before: the lines joined the 8
    assert len(answer["lines"]) == 1 and [d["char"] for d in answer["digits"]] == ["8", "4", "5"]


def test_ruler_straight_lines_under_a_number_are_underlines_not_a_form() -> None:
    # perfectly level, they are what the box-line finder takes for a form's baseline; with no wall or tooth across
    # the writing they part no cells: the underline search takes them, and the number is read as writing
    from photo_helpers import on_paper

    from digitnet.vision.pipeline import find_writing

    digits, boxes = _digits()
    line = np.zeros_like(digits)
    cv2.line(line, (15, 92), (digits.shape[1] - 15, 92), 1, PEN)  # a total, ruled twice
    cv2.line(line, (15, 106), (digits.shape[1] - 15, 106), 1, PEN)
    written = find_writing(on_paper((digits | line).astype(np.float32)))
    assert not written.in_boxes
    assert not written.mask[20 + boxes[0][3] + 4:].any()  # the lines are gone ...
    assert written.mask.sum() > 0.95 * digits.sum()  # ... the rings stay
    assert find_writing(on_paper((digits | line).astype(np.float32)), underlines=False).in_boxes  # (predict: a form)
