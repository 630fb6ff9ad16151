"""Box-line removal: printed lines go, handwritten strokes stay (also where they touch the box)."""

import numpy as np
import pytest
from PIL import Image

from digitnet.utils import DigitnetError
from digitnet.vision import boxes
from digitnet.vision.boxes import box_line_mask, box_lines, remove_box_lines, run_lengths


def pen(digit: np.ndarray, side: int = 84) -> np.ndarray:
    """An MNIST digit as a bool pen bitmap ``side`` px square."""
    big = np.asarray(Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC))
    return big > 100


def boxed(ink: np.ndarray, line: int = 3, margin: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """``ink`` inside a rectangle ``line`` px thick, ``margin`` px from the ink's frame: (picture, box only)."""
    h, w = ink.shape
    size = (h + 2 * margin, w + 2 * margin)
    box = np.zeros(size, bool)
    box[:line], box[-line:], box[:, :line], box[:, -line:] = True, True, True, True
    writing = np.zeros(size, bool)
    writing[margin:margin + h, margin:margin + w] = ink
    return box | writing, box


def test_run_lengths_counts_each_horizontal_run():
    mask = np.array([[1, 1, 0, 1, 1, 1, 0], [0, 0, 0, 0, 0, 0, 1]], bool)
    assert run_lengths(mask).tolist() == [[2, 2, 0, 3, 3, 3, 0], [0, 0, 0, 0, 0, 0, 1]]


@pytest.mark.parametrize("at", [(0, 0), (7, 30), (45, 3)])
def test_lines_are_found_the_same_wherever_the_ink_lies_on_the_sheet(mnist, at):
    # The search runs on the ink's bounding box only; paper around it must change nothing, also at the edges.
    picture, box = boxed(pen(mnist.test_images[3]))
    h, w = picture.shape
    sheet = np.zeros((h + 50, w + 40), bool)
    sheet[at[0]:at[0] + h, at[1]:at[1] + w] = picture
    lines = box_line_mask(sheet)
    assert not lines[:at[0]].any() and not lines[at[0] + h:].any()
    assert np.array_equal(lines[at[0]:at[0] + h, at[1]:at[1] + w], box_line_mask(picture))
    assert np.array_equal(box_line_mask(picture), box)


def test_a_rectangle_around_a_digit_goes_and_the_digit_stays(mnist):
    for digit in mnist.test_images[:20]:
        ink = pen(digit)
        picture, box = boxed(ink)
        cleaned = remove_box_lines(picture)
        writing = picture & ~box
        assert (cleaned == writing).all()


def test_a_stroke_that_crosses_the_box_keeps_its_pixels():
    picture, box = boxed(np.zeros((60, 40), bool), line=3, margin=6)
    stem = np.zeros_like(picture)
    # a pen stroke (8 px) is thicker than a printed line (3 px)
    stem[11:, 24:32] = True  # the stem of a 1, running down onto and across the box's bottom line
    stem[20:26, 2:24] = True  # and a bar that runs left into the box's left side
    cleaned = remove_box_lines(picture | stem)
    assert cleaned[stem].all()  # every pixel of the strokes, also those on the lines, is kept
    assert not cleaned[-3:, :24].any() and not cleaned[-3:, 32:].any()  # the rest of the bottom line is gone
    assert not cleaned[:20, :3].any() and not cleaned[26:, :3].any() and not cleaned[:3].any()  # other sides too
    assert not cleaned[:, -3:].any()


def test_the_walls_go_when_a_wide_digit_sits_through_the_floor():
    # A wide 0 written through the box's floor: the floor is thick across under the 0 and at both walls, so it is
    # thin along less than half its length unless the walls' crossings count as thin; then the walls end on no
    # line below, and the 0 reaches below them.
    h, w, line = 110, 88, 5
    picture = np.zeros((h + 10, w), bool)
    picture[:line], picture[h - line:h], picture[:h, :line], picture[:h, -line:] = True, True, True, True
    yy, xx = np.mgrid[:h + 10, :w]
    ring = ((yy - 72) / 46) ** 2 + ((xx - 44) / 24) ** 2
    zero = (ring <= 1) & (ring >= 0.55)
    picture |= zero
    lines = box_line_mask(picture)
    assert lines[20:h - 20, :line].all() and lines[20:h - 20, -line:].all()  # both walls go
    assert (lines & zero).sum() < 0.05 * zero.sum()  # the 0 stays


def test_a_digit_without_a_box_loses_nothing(mnist):
    # horizontal strokes of 7s, 5s and 2s are long, but not as long or as thin as a box
    lost = [int((pen(d) & box_line_mask(pen(d))).sum()) for d in mnist.test_images[:300]]
    assert sum(n > 0 for n in lost) <= 3


def test_a_comb_baseline_goes():
    ink = np.zeros((40, 100), bool)
    ink[36:39, :] = True  # the baseline
    ink[5:30, 20:25] = True  # a stroke above it
    assert remove_box_lines(ink)[36:39].sum() == 0
    assert remove_box_lines(ink)[5:30, 20:25].all()


def test_gray_pictures_get_their_lines_painted_paper():
    picture, box = boxed(np.pad(np.ones((30, 6), bool), ((0, 0), (12, 12))), line=2)
    gray = np.where(picture, 30, 230).astype(np.uint8)
    cleaned = remove_box_lines(gray)
    assert cleaned.dtype == np.uint8 and cleaned.shape == gray.shape
    assert (cleaned[box] == 230).all()
    assert (cleaned[picture & ~box] == 30).all()


def test_a_picture_that_is_not_2d_is_refused_in_one_line():
    with pytest.raises(DigitnetError, match="2-D"):
        remove_box_lines(np.zeros((4, 4, 3), np.uint8))


def row_of_boxes(inks: list[np.ndarray], comb: bool, line: int = 3, cell: tuple[int, int] = (60, 80)) -> tuple:
    """Inks written one per cell of a row of boxes (or a comb with teeth a third of the cell tall):
    (picture, printed lines only)."""
    w, h = cell
    size = (h + line + 20, w * len(inks) + line + 20)
    printed = np.zeros(size, bool)
    top = 10 + (2 * h // 3 if comb else 0)
    for k in range(len(inks) + 1):
        printed[top:10 + h + line, 10 + k * w:10 + k * w + line] = True
    printed[10 + h:10 + h + line, 10:10 + len(inks) * w + line] = True  # the baseline
    if not comb:
        printed[10:10 + line, 10:10 + len(inks) * w + line] = True
    writing = np.zeros(size, bool)
    for k, ink in enumerate(inks):
        ih, iw = ink.shape
        y, x = 10 + h - ih, 10 + k * w + (w - iw) // 2  # standing on the baseline
        writing[y:y + ih, x:x + iw] |= ink
    return printed | writing, printed


@pytest.mark.parametrize("comb", [False, True])
def test_the_walls_between_boxes_and_the_teeth_of_a_comb_go(mnist, comb):
    inks = []
    for digit in mnist.test_images[:5]:
        ink = pen(digit, 70)
        rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
        inks.append(ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1])
    picture, printed = row_of_boxes(inks, comb)
    cleaned = remove_box_lines(picture)
    writing = picture & ~printed
    assert cleaned[writing].all()  # the digits keep every pixel, also where they stand on the baseline
    assert not (cleaned & printed & ~under_writing(writing, printed)).any()  # the printed lines are gone


def under_writing(writing: np.ndarray, printed: np.ndarray) -> np.ndarray:
    """Printed pixels of the baseline right under a stroke that stands on it: they stay with the stroke."""
    baseline = np.flatnonzero(printed.sum(1) > 0.5 * printed.shape[1])[-3:]  # the lowest line, 3 px
    standing = writing[baseline[0] - 1] | writing[baseline[0]]
    out = np.zeros_like(printed)
    out[baseline[0]:baseline[-1] + 1] = standing
    return (out & printed) | writing


def test_a_thick_1_standing_on_a_comb_is_not_a_tooth():
    stem = np.ones((50, 9), bool)  # a pen stroke, thicker than the printed teeth
    picture, printed = row_of_boxes([stem, stem], comb=True)
    cleaned = remove_box_lines(picture)
    assert cleaned[picture & ~printed].all()
    assert not (cleaned & printed & ~under_writing(picture & ~printed, printed)).any()


def full_search(ink: np.ndarray) -> np.ndarray:
    """box_line_mask's full search on the ink's bounding box, without the quick check that skips it."""
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    lines = np.zeros_like(ink)
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    crop, thickness = np.ascontiguousarray(ink[box]), max(3, min(height, width) // 12)
    lines[box] = boxes._lines_in(crop, boxes.bridged_columns(crop, 0.7, thickness).T, 0.7, thickness, height, width)[0]
    return lines


def masks_with_and_without_lines(mnist) -> list[np.ndarray]:
    """Digits at several sizes, bare, boxed (lines 1–6 px), in rows of boxes and combs, with ruled bars, and noise."""
    rng = np.random.default_rng(0)
    masks = []
    for k, digit in enumerate(mnist.test_images[:120]):
        ink = pen(digit, int(rng.integers(30, 160)))
        masks.append(ink)
        if k % 3 == 0:
            masks.append(boxed(ink, line=int(rng.integers(1, 7)), margin=int(rng.integers(2, 15)))[0])
        if k % 4 == 0:  # a ruled bar through or under the digit, of any thickness
            barred = ink.copy()
            y, t = int(rng.integers(0, ink.shape[0])), int(rng.integers(1, 12))
            barred[y:y + t, int(rng.integers(0, 10)):] = True
            masks.append(barred)
            masks.append(barred.T.copy())
        if k % 5 == 0:  # a page's margin beside the digit, broken where ruled lines crossed it
            masks.append(with_margin(ink, gaps=int(rng.integers(1, 5)), gap=int(rng.integers(1, 8))))
    for k in range(0, 40, 5):
        inks = [pen(d, 60)[8:-8, 8:-8] for d in mnist.test_images[k:k + 3]]
        masks.append(row_of_boxes(inks, comb=k % 10 == 0, line=1 + k % 4)[0])
    for _ in range(40):
        noise = np.asarray(Image.fromarray(rng.integers(0, 256, (12, 12), dtype=np.uint8)).resize(
            (int(rng.integers(20, 120)), int(rng.integers(20, 120))), Image.Resampling.BICUBIC))
        masks.append(noise > rng.integers(100, 200))
    return [m for m in masks if m.any()]


def with_margin(ink: np.ndarray, gaps: int = 3, gap: int = 4, width: int = 2) -> np.ndarray:
    """``ink`` with a vertical line ``width`` px wide 20 px left of it, reaching 40 px above and below it, broken by
    ``gaps`` gaps of ``gap`` px spread along it."""
    h, w = ink.shape
    page = np.zeros((h + 80, w + 40), bool)
    page[40:40 + h, 40:] = ink
    page[:, 18:18 + width] = True
    for y in np.linspace(0, h + 80, gaps + 2)[1:-1].astype(int):
        page[y:y + gap, 18:18 + width] = False
    return page


@pytest.mark.parametrize("gap", [2, 4, 6])
def test_a_vertical_line_broken_where_lines_crossed_it_is_still_a_line(mnist, gap):
    """A notebook's margin is often broken where a ruled line crosses it (the camera's blur lightens both): its
    stretches, each shorter than the line must be, still make one line across gaps no longer than a line may be
    thick; the digit beside it keeps all its ink."""
    for digit in mnist.test_images[:10]:
        ink = pen(digit, 84)
        page = with_margin(ink, gaps=3, gap=gap)
        lines, across = box_lines(page)
        margin = page.copy()
        margin[:, 40:] = False
        assert np.array_equal(lines, margin) and np.array_equal(across, margin)


def test_the_quick_check_never_skips_a_line_the_full_search_finds(mnist):
    masks = masks_with_and_without_lines(mnist)
    found = 0
    for mask in masks:
        expected = full_search(mask)
        assert np.array_equal(box_line_mask(mask), expected)
        found += bool(expected.any())
    assert found >= 40  # the comparison covers many masks that have lines, not only ones without


def test_most_digits_without_a_box_skip_the_full_search(mnist, monkeypatch):
    # A 7's bar and a 1's stem are long runs, but thick: the full search (the costly part) need not run for them.
    searched = []
    monkeypatch.setattr(boxes, "_lines_in", lambda *args: searched.append(1) or (np.zeros_like(args[0]), False))
    digits = [pen(d, 140) for d in mnist.test_images[:200]]
    for ink in digits:
        box_line_mask(ink)
    assert len(searched) <= 0.1 * len(digits)
    sevens_and_ones = [pen(d, 140) for d, label in zip(mnist.test_images[:300], mnist.test_labels[:300], strict=True)
                       if label in (1, 7)]
    searched.clear()
    for ink in sevens_and_ones:
        box_line_mask(ink)
    assert len(searched) <= 0.1 * len(sevens_and_ones)


@pytest.mark.parametrize("comb", [True, False])
def test_walls_and_teeth_stand_across_the_writing_a_baseline_does_not(mnist, comb):
    inks = [pen(d, 60)[8:-8, 8:-8] for d in mnist.test_images[:3]]
    picture, printed = row_of_boxes(inks, comb=comb)[:2]
    lines, across = box_lines(picture)
    assert lines.any() and across.any() and not (across & ~lines).any()  # the walls between boxes, a comb's teeth
    assert across.sum(0).max() > 0.25 * 80  # upright, the height of a tooth or more
    written = np.zeros((120, 320), bool)
    written[20:80, 40:280] = np.hstack([pen(d, 80)[10:70, 10:70] for d in mnist.test_images[3:7]])
    written[84:87, :] = True  # the line it is written on, across the whole page
    lines, across = box_lines(written)
    assert lines[84:87].all() and not across.any()


@pytest.mark.parametrize("foot", [0.55, 0.7])
def test_a_foot_lying_along_the_floor_leaves_the_box_going_whole(foot):
    # A 3's foot resting on the box's floor for most of its width makes the floor thick there: only the stretches
    # near the walls are thin. The floor still runs from wall to wall, so it is a floor, and the walls go with it
    # (kept, they read as 1s beside the digit: "2 digits found").
    picture, box = boxed(np.zeros((60, 60), bool), line=3, margin=8)
    h, w = picture.shape
    stroke = np.zeros_like(picture)
    left = int(w * (1 - foot) / 2)
    stroke[h - 10:h, left:w - left] = True  # the foot, 10 px thick, lying on the 3-px floor
    stroke[15:h - 5, w - left - 8:w - left] = True  # and the digit's body rising from it
    lines, across = box_lines(picture | stroke)
    walls = box & ~stroke
    walls[:, 3:-3] = False
    assert lines[walls].all()  # both walls, whole
    assert not (lines & stroke).any()  # the digit keeps every pixel, its foot's too
    assert lines[:3].sum() == box[:3].sum()  # the roof goes
