"""Frames drawn by hand round the writing: a circle or box round a number is found whole, and nothing else is."""

from __future__ import annotations

import numpy as np
import pytest
from photo_helpers import hand_frame, ink_of, number_ink, on_paper
from PIL import Image, ImageDraw

from digitnet.vision.frames import frame_mask
from digitnet.vision.preprocess import connected_components


def page(clean_digits, digits=(4, 0, 1, 5), height: int = 60) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A number's ink (bool) on a page with room round it, and the box it stands in."""
    coverage = number_ink([clean_digits[d] for d in digits], height=height, gaps=[14] * (len(digits) - 1))
    h, w = coverage.shape
    sheet = np.zeros((h + 120, w + 160), bool)
    sheet[60:60 + h, 80:80 + w] = coverage > 0.5
    return sheet, (80, 60, 80 + w, 60 + h)


def found(mask: np.ndarray) -> np.ndarray | None:
    """The frame's pixels, if one is found."""
    frame = frame_mask(*connected_components(mask))
    return None if frame is None else frame[0]


@pytest.mark.parametrize("kind", ["circle", "box"])
@pytest.mark.parametrize("gap", [0.0, 0.01])
def test_a_frame_round_a_number_is_found_whole_and_only_it(clean_digits, kind, gap):
    """Circled or boxed, closed or with its ends a little apart: the frame is exactly the ring's ink, every digit
    keeps all of its own."""
    writing, (x0, y0, x1, y1) = page(clean_digits)
    if kind == "circle":
        frame = hand_frame(writing.shape, (x0 - 45, y0 - 25, x1 + 45, y1 + 25), pen=6, gap=gap)
    else:
        frame = hand_frame(writing.shape, (x0 - 20, y0 - 20, x1 + 20, y1 + 20), pen=6, kind="box", gap=gap)
    assert not (frame & writing).any()  # clear of the digits
    assert np.array_equal(found(writing | frame), frame)


def test_a_tight_circle_running_into_a_digit_goes_and_the_digit_stays(clean_digits):
    """A circle drawn tight round the number runs into its first digit: one piece with it. The part next to the
    outside, about a pen deep, is the frame (with what of the digit pokes out past it); the digit keeps most of
    its ink, the others all of theirs."""
    writing, (x0, y0, x1, y1) = page(clean_digits, (7, 4, 1, 3))
    frame = hand_frame(writing.shape, (x0 - 20, y0 - 20, x1 + 40, y1 + 20), pen=6)
    assert (frame & writing).any() and len(connected_components(writing | frame)[1]) == 4  # the 7 joins it
    taken = found(writing | frame)
    assert taken is not None
    assert np.count_nonzero(taken & frame) >= 0.95 * np.count_nonzero(frame)
    labels, stats = connected_components(writing)
    kept = [np.count_nonzero((labels == k + 1) & ~taken & ~frame) / np.count_nonzero((labels == k + 1) & ~frame)
            for k in range(len(stats))]
    assert min(kept) >= 0.8 and sorted(kept)[1] == 1.0  # the 7 most of its ink, the 4, 1 and 3 all of theirs


def test_writing_without_a_frame_has_none(clean_digits):
    """A number, a 0 alone, a 0 with a speck inside it, a big 0 beside smaller digits, a 0 with its slash drawn
    apart inside it: none is a frame (nothing is held, or what is held is not a third of the ring's height, or not
    all the writing lies inside, or the ring is taller than wide, as a 0 is and a frame round writing is not)."""
    writing, _ = page(clean_digits)
    assert found(writing) is None
    drawn = ink_of(clean_digits[0], 100) > 0.5
    zero = np.zeros((120, 120), bool)
    zero[10:10 + drawn.shape[0], 10:10 + drawn.shape[1]] = drawn
    assert found(zero) is None
    speck = zero.copy()
    rows, cols = np.flatnonzero(zero.any(1)), np.flatnonzero(zero.any(0))
    cy, cx = (rows[0] + rows[-1]) // 2, (cols[0] + cols[-1]) // 2
    speck[cy - 2:cy + 2, cx - 2:cx + 2] = True
    assert found(speck) is None
    beside = np.zeros((120, 300), bool)
    beside[:, :120] = zero
    small = number_ink([clean_digits[d] for d in (1, 2)], 55) > 0.5
    beside[30:30 + small.shape[0], 140:140 + small.shape[1]] = small
    assert found(beside) is None
    for pen in (4, 7, 10):
        slashed = hand_frame((140, 120), (20, 10, 100, 130), pen)
        slash = Image.new("L", (120, 140))
        ImageDraw.Draw(slash).line([(45, 105), (75, 35)], fill=255, width=pen)
        slashed |= np.asarray(slash) > 127
        assert len(connected_components(slashed)[1]) == 2 and found(slashed) is None


def test_a_frame_open_wider_than_its_ends_may_miss_is_no_frame(clean_digits):
    """A circle left a third undrawn is not round the number: nothing is taken."""
    writing, (x0, y0, x1, y1) = page(clean_digits)
    frame = hand_frame(writing.shape, (x0 - 45, y0 - 25, x1 + 45, y1 + 25), pen=6, gap=0.33)
    assert found(writing | frame) is None


def test_the_example_circled_number_reads_without_its_circle(recognizer) -> None:
    from pathlib import Path

    answer = recognizer.read(Path(__file__).resolve().parents[2] / "examples" / "circled.png")
    assert answer["text"] == "1290"  # "050" before: the circle read as 0s, the digits inside it lost
    assert len(answer["lines"]) == 1 and [d["char"] for d in answer["digits"]] == ["1", "2", "9", "0"]


@pytest.mark.parametrize("kind", ["circle", "box"])
def test_a_small_digit_in_a_big_frame_is_not_taken_for_dust(clean_digits, recognizer, kind):
    """Ink finding drops pieces far smaller than the largest as dust, and before the frame goes the largest is the
    frame: a 1 written small, a fifth of its ink, would go with the dust. Once the frame is gone, the writing's
    pieces are judged against the writing's own."""
    from digitnet.vision.pipeline import find_writing
    from digitnet.vision.preprocess import find_ink

    inks = [ink_of(clean_digits[d], h) for d, h in ((2, 60), (1, 34), (7, 60), (5, 60))]
    top = max(i.shape[0] for i in inks)
    line = np.zeros((top, sum(i.shape[1] for i in inks) + 3 * 24), np.float32)
    x, spans = 0, []
    for ink in inks:
        line[top - ink.shape[0]:, x:x + ink.shape[1]] = ink  # on one baseline
        spans.append((x, x + ink.shape[1]))
        x += ink.shape[1] + 24
    h, w = line.shape
    sheet = np.zeros((h + 240, w + 300), np.float32)
    sheet[120:120 + h, 150:150 + w] = line
    box = (90, 95, w + 210, h + 145)  # snug: the writing stands over a third of its height
    frame = hand_frame(sheet.shape, box, pen=12, kind=kind)
    picture = on_paper(np.maximum(sheet, frame), shape=sheet.shape)
    one = (slice(120, 120 + h), slice(150 + spans[1][0], 150 + spans[1][1]))  # where the 1 is
    frame_area, one_area = np.count_nonzero(frame), np.count_nonzero(line[:, spans[1][0]:spans[1][1]] > 0.5)
    assert one_area < 0.04 * frame_area  # dust beside the frame: ink finding drops it ...
    assert not find_ink(picture).mask[one].any()
    writing = find_writing(picture)
    assert writing.mask[one].any() and len(writing.components()[1]) == 4  # ... and it comes back as a digit
    assert recognizer.read(picture)["text"] == "2175"


@pytest.mark.parametrize("underlined", [False, True])
def test_bits_of_a_frame_and_dust_outside_it_stay_dust(clean_digits, recognizer, underlined):
    """What comes back once the frame is gone is writing inside it: a bit of the frame's stroke broken off (a pen's
    skips on both sides of it), and a speck outside the frame, stay the dust ink finding took them for — also where
    an underline inside the frame goes next, and dust is judged once more."""
    import cv2

    from digitnet.vision.pipeline import find_writing

    writing, (x0, y0, x1, y1) = page(clean_digits)
    box = (x0 - 45, y0 - 25, x1 + 45, y1 + 25)
    drawn = hand_frame(writing.shape, box, pen=8)
    cy, right = (box[1] + box[3]) // 2, slice(box[2] - 8, box[2] + 8)
    skips, bit = np.zeros(writing.shape, bool), np.zeros(writing.shape, bool)
    skips[cy - 8:cy - 5, right] = skips[cy + 5:cy + 8, right] = True
    bit[cy - 5:cy + 5, right] = True
    frame, bit = drawn & ~skips & ~bit, drawn & bit  # the ring with two skips, and the dash between them
    dot = np.zeros(writing.shape, bool)
    dot[cy - 4:cy + 5, box[2] + 20:box[2] + 29] = True  # a speck outside it, level with the digits
    if underlined:  # a line drawn by hand under the number, inside the frame
        under = np.zeros(writing.shape, np.uint8)
        cv2.line(under, (x0 + 40, y1 + 7), (x1 - 40, y1 + 5), 1, 3)
        writing = writing | (under > 0)
    assert len(connected_components(writing | frame | bit | dot)[1]) == 7 + underlined
    # each far smaller than the frame, as large as a digit's part
    assert np.count_nonzero(bit) > 0.05 * np.count_nonzero(writing) / 4 < np.count_nonzero(dot)
    picture = on_paper((writing | frame | bit | dot).astype(np.float32), shape=writing.shape)
    written = find_writing(picture)
    assert not written.mask[frame].any()  # the frame is found and goes ...
    assert not written.mask[bit].any() and not written.mask[dot].any()  # ... the dash and the speck stay dust
    assert written.mask[writing].mean() > (0.7 if underlined else 0.95)  # (the underline goes too)
    plain = on_paper((writing | frame).astype(np.float32), shape=writing.shape)
    assert recognizer.read(picture)["text"] == recognizer.read(plain)["text"] == "4015"


def test_a_1_standing_straight_in_a_box_drawn_by_hand_is_no_wall(clean_digits):
    """A form's row of boxes is an outline with walls across the writing, and goes as boxes do; a box drawn by hand
    round "21" may hold a 1 straight enough to be taken for a wall (box line finding marks it across the writing),
    but apart from the outline: the box is a frame, the 1 a digit. A wall that is one piece with the outline makes
    it a form."""
    from digitnet.vision.pipeline import _without_frame
    from digitnet.vision.preprocess import find_ink

    two = ink_of(clean_digits[2], 90) > 0.5
    h, w = two.shape
    writing = np.zeros((h + 140, w + 200), bool)
    writing[70:70 + h, 60:60 + w] = two
    one = np.zeros(writing.shape, bool)
    one[70:70 + h, 60 + w + 40:60 + w + 46] = True  # a 1 drawn with a ruler
    frame = hand_frame(writing.shape, (30, 45, w + 150, h + 95), pen=6, kind="box")
    wall = np.zeros(writing.shape, bool)
    wall[45:h + 96, 60 + w + 14:60 + w + 20] = True  # from the outline's top to its bottom, between 2 and 1
    for walled in (False, True):
        ink = find_ink(on_paper((writing | one | frame | (wall & walled)).astype(np.float32), shape=writing.shape))
        across = one | (wall & walled)  # what box line finding would mark across the writing
        kept = _without_frame(ink, across, across)
        if walled:
            assert kept is ink  # a form's row of boxes: left to the box lines
        else:
            assert not kept.mask[frame].any() and kept.mask[one].mean() > 0.9  # a frame, and a 1
    # The box's side where the 2 runs into it: side and stroke side by side, one piece, marked as a wall over its
    # whole height; it stands along the frame, not clear of it inside: still a frame.
    touching = np.zeros(writing.shape, bool)
    touching[70:70 + h, 30:30 + w] = two  # its left stroke on the box's left side
    ink = find_ink(on_paper((touching | one | frame).astype(np.float32), shape=writing.shape))
    assert len(ink.components()[1]) == 2  # the box with the 2, and the 1
    side = np.zeros(writing.shape, bool)
    side[45:h + 96, 26:46] = True  # the left side, and the 2's strokes beside it
    kept = _without_frame(ink, side & ink.mask | one, side & ink.mask | one)
    assert kept is not ink and not kept.mask[frame].any()
