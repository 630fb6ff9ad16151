"""benchmarks/real_world.py renders what its table says it measures (the renderings, not the model)."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import real_world  # noqa: E402


@pytest.fixture(scope="module")
def digits(mnist) -> np.ndarray:
    return mnist.test_images[:40]


def test_an_8x8_scan_has_at_most_17_gray_levels_and_fills_its_cell(digits):
    rng = np.random.default_rng(0)
    for digit in digits:
        cells = real_world.scan_cells(digit, 8, 17, fill=True, rng=rng)
        assert cells.shape == (8, 8) and cells.dtype == np.uint8
        assert len(np.unique(cells)) <= 17
        assert set(np.unique(cells).tolist()) <= {round(k * 255 / 16) for k in range(17)}
        rows, cols = np.flatnonzero(cells.max(1)), np.flatnonzero(cells.max(0))
        assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 >= 7  # the digit fills its cell
        # nearest upscaling to 28×28 keeps the levels; bilinear makes new ones in between
        assert set(np.unique(real_world.upscale(cells, nearest=True)).tolist()) == set(np.unique(cells).tolist())
        assert real_world.upscale(cells, nearest=False).shape == (28, 28)


def test_a_binary_scan_has_two_levels_and_keeps_mnist_frame(digits):
    rng = np.random.default_rng(1)
    extents = {True: [], False: []}
    for digit in digits:
        for fill in (True, False):
            cells = real_world.scan_cells(digit, 12, 2, fill=fill, rng=rng)
            assert set(np.unique(cells).tolist()) == {0, 255}
            rows, cols = np.flatnonzero(cells.max(1)), np.flatnonzero(cells.max(0))
            extents[fill].append(max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1)
    # MNIST's frame: the 20-px digit in 28 px spans ~9 of 12 cells; filled, it spans the cell
    assert max(extents[False]) <= 11 and np.mean(extents[False]) <= 10
    assert np.mean(extents[True]) >= 11


def test_the_comb_and_the_row_of_boxes_have_one_box_per_digit():
    cells = [(50, 60)] * 5
    for comb in (True, False):
        lines = real_world.form_lines(cells, comb, line=3, margin=10, tick=0.4)
        # vertical lines: columns printed over at least the tick's height
        tall = lines.sum(0) >= 0.4 * 60
        starts = np.flatnonzero(np.diff(np.concatenate([[0], tall.astype(int)])) == 1)
        assert len(starts) == len(cells) + 1  # N cells between N + 1 lines
        field = lines[:, 10:-10]  # the margin is paper
        assert field[10 + 60:10 + 63].all(1).sum() == 3  # one baseline across the whole field, 3 px thick
        assert field[10:13].all(1).sum() == (0 if comb else 3)  # boxes have a top line, combs do not


@pytest.mark.parametrize("comb", [True, False])
def test_a_number_in_boxes_is_as_wide_as_its_boxes(digits, monkeypatch, comb):
    drawn = {}
    form_lines = real_world.form_lines

    def spy(cells, comb, line, margin, tick):
        drawn.update(cells=cells, line=line, margin=margin, printed=form_lines(cells, comb, line, margin, tick))
        return drawn["printed"]

    monkeypatch.setattr(real_world, "form_lines", spy)
    picture = real_world.boxed_number(list(digits[:6]), np.random.default_rng(2), comb=comb)
    cells, line, margin = drawn["cells"], drawn["line"], drawn["margin"]
    width = cells[0][0]
    assert len(cells) == 6 and all(w == width for w, _ in cells)  # one box per digit, all alike
    assert picture.shape[1] == 2 * margin + 6 * width + line  # the field: its boxes and the paper around
    writing = (picture < 128) & ~drawn["printed"]
    columns = np.flatnonzero(writing.any(0))
    # The writing spans the boxes: it starts in the first and ends in the last, and every box holds some.
    assert margin <= columns[0] < margin + width and margin + 5 * width <= columns[-1] < margin + 6 * width + line
    for k in range(6):
        assert writing[:, margin + k * width + line:margin + (k + 1) * width].any(), f"box {k} is empty"


def test_styles_draw_what_they_say(digits, mnist):
    rng = np.random.default_rng(3)
    digit = digits[0]
    plain = real_world.pen_bitmap(digit, real_world.PEN, fill=False, threshold=0.4)
    thick = real_world.styled(digit, "thick pen", rng)
    thin = real_world.styled(digit, "thin pen", rng)
    assert thick.sum() > plain.sum() > thin.sum()
    cramped = real_world.styled(digit, "cramped", rng)
    assert cramped.shape[1] < 0.8 * (np.flatnonzero(plain.any(0))[-1] - np.flatnonzero(plain.any(0))[0])
    seven = mnist.test_images[np.flatnonzero(mnist.test_labels == 7)[0]]
    crossed = real_world.styled(seven, "crossed 7", rng)
    assert crossed.sum() > real_world.pen_bitmap(seven, real_world.PEN, False, 0.4).sum()  # the bar adds ink
    one = mnist.test_images[np.flatnonzero(mnist.test_labels == 1)[0]]
    flagged = real_world.styled(one, "European 1 (flag)", rng)
    based = real_world.styled(one, "1 with flag and base", rng)
    plain_one = real_world.pen_bitmap(one, real_world.PEN, False, 0.4)
    plain_one = plain_one[np.flatnonzero(plain_one.any(1))[0]:]

    def top_span(ink: np.ndarray) -> int:  # how wide the top quarter of the ink is
        return int(np.ptp(np.flatnonzero(ink[:len(ink) // 4].any(0))))

    assert top_span(flagged) > top_span(plain_one) + 10  # the flag reaches out from the top of the 1
    assert based[-3:].sum(1).max() > 0.3 * real_world.PEN  # the base: a bar across the bottom rows


def test_loop_styles_open_or_add_the_loop_they_say(mnist):
    """An open 9 or 6 keeps its ink but for a cut across its loop, in the direction the style says, which leaves no
    paper inside and no piece cut off; a 2 with a loop gains a hole low on its left, where its stroke comes down to
    the base. Digits a style cannot be drawn on are None (left out of the row), never drawn wrong."""
    rng = np.random.default_rng(4)
    for style in ("open 9", "open 6"):
        opened = refused = 0
        for i in np.flatnonzero(mnist.test_labels == real_world.STYLE_LABEL[style])[:30]:
            pen = real_world.pen_bitmap(mnist.test_images[i], real_world.PEN, False, 0.4)
            styled = real_world.styled(mnist.test_images[i], style, rng)
            if styled is None:
                refused += 1
                continue
            if styled.sum() == pen.sum():
                assert real_world.holes(pen).sum() < 400  # open already (no loop bigger than a speck of paper)
                continue
            assert real_world.holes(styled).sum() < 0.3 * real_world.holes(pen).sum()
            assert 0.85 * pen.sum() < styled.sum() < pen.sum()  # a gap, not a lost stroke ...
            assert real_world.pieces(styled) <= real_world.pieces(pen)  # ... and nothing cut off
            rows, cols = np.nonzero(pen & ~_uncrop(styled, pen))  # where the gap is, seen from the loop's centre
            hole_rows, hole_cols = np.nonzero(real_world.holes(pen))
            angle = np.degrees(np.arctan2(-(rows.mean() - hole_rows.mean()), cols.mean() - hole_cols.mean()))
            low, high = real_world.OPENING[style]
            assert low - 30 <= angle <= high + 30, (style, i, angle)
            opened += 1
        assert opened >= 12 and refused <= 6, (style, opened, refused)
    looped_twos = 0
    for i in np.flatnonzero(mnist.test_labels == 2)[:10]:
        thin = real_world.styled(mnist.test_images[i], "thin pen", np.random.default_rng(0))  # the loop's fine pen
        looped = real_world.styled(mnist.test_images[i], "2 with a loop", np.random.default_rng(0))
        if looped is None or looped.sum() <= thin.sum():
            continue  # a pen too broad for a loop, or one there already
        assert _low_left_paper(looped) > _low_left_paper(thin) + 8  # a small loop: paper inside it
        looped_twos += 1
    assert looped_twos >= 5


def _uncrop(styled: np.ndarray, pen: np.ndarray) -> np.ndarray:
    """``styled`` (cropped to its ink) put back where it lies in ``pen``'s frame (it only lost ink)."""
    rows, cols = np.flatnonzero(styled.any(1)), np.flatnonzero(styled.any(0))
    frame = np.zeros_like(pen)
    for top in range(pen.shape[0] - styled.shape[0] + 1):
        for left in range(pen.shape[1] - styled.shape[1] + 1):
            window = pen[top:top + styled.shape[0], left:left + styled.shape[1]]
            if (window >= styled).all() and window[rows[0]].any() and window[:, cols[0]].any():
                frame[top:top + styled.shape[0], left:left + styled.shape[1]] = styled
                return frame
    raise AssertionError("the styled digit is not a part of the digit")


def _low_left_paper(ink: np.ndarray) -> int:
    """Paper enclosed in the lower left quarter of the ink."""
    h, w = ink.shape
    return int(real_world.holes(ink)[h // 2:, :w // 2].sum())


def _pieces_and_loops(mask: np.ndarray) -> tuple[int, int]:
    return real_world.pieces(mask), real_world.pieces(real_world.holes(mask))


def test_a_fine_pen_draws_the_digit_again_along_its_centre_lines(mnist):
    bar = np.zeros((30, 60), bool)
    bar[10:19, 5:55] = True
    centre = real_world.skeleton(bar)
    assert centre[14, 10:50].all() and centre.sum(0).max() == 1  # one pixel wide, along the middle
    rng = np.random.default_rng(1)
    widths = set()
    for i in range(40):
        pen = real_world.pen_bitmap(mnist.test_images[i], real_world.PEN, False, 0.4)
        if real_world._stroke_width(pen) < real_world.FINE_PEN[1] + 3:
            continue  # a digit written finely already
        fine = real_world.styled(mnist.test_images[i], "fine pen", rng)
        widths.add(real_world._stroke_width(fine))
        assert _pieces_and_loops(fine) == _pieces_and_loops(pen)  # the same strokes: thinning keeps both
    assert widths and max(widths) <= real_world.FINE_PEN[1] and len(widths) >= 2  # the pens it says, of each width


def test_cut_out_pictures_leave_at_most_their_share_of_paper_round_the_ink(digits):
    rng = np.random.default_rng(2)
    touching = 0
    for digit in digits[:20]:
        for style in real_world.CUT_OUT:
            ink = real_world.styled(digit, style, rng)
            light_on_dark = style in real_world.LIGHT_ON_DARK
            picture = real_world.cut_out(ink, rng, light_on_dark)
            inked = (picture > 128) if light_on_dark else (picture < 128)
            assert inked.sum() == ink.sum()  # the ink, all of it, dark on light or light on dark
            rows, cols = np.flatnonzero(inked.any(1)), np.flatnonzero(inked.any(0))
            margins = (rows[0], picture.shape[0] - 1 - rows[-1], cols[0], picture.shape[1] - 1 - cols[-1])
            assert max(margins) <= real_world.CLOSE_CROP[1] * ink.shape[0]
            touching += min(margins) == 0
    assert touching >= 5  # some crops are cut to the ink itself
    pen = real_world.pen_bitmap(digits[0], real_world.PEN, False, 0.4)
    bold = real_world.styled(digits[0], "bold, cut out close", rng)
    assert real_world._stroke_width(bold) >= real_world._stroke_width(pen) + 2 * real_world.BOLD[0]


@pytest.mark.parametrize("style, least", [("European 1 (flag)", 0.95), ("closed 4", 0.9)])
def test_the_bundled_default_model_reads_european_ones_and_closed_fours(mnist, style, least):
    """The writers' styles the default model was trained for (--augment every-hand), drawn by real_world.py's own
    code (not the training augmentation's) from MNIST test digits, read through the pipeline."""
    from digitnet.recognizer import Recognizer

    rng = np.random.default_rng(5)
    label = real_world.STYLE_LABEL[style]
    index = rng.choice(np.flatnonzero(mnist.test_labels == label), size=200, replace=False)
    pictures = [real_world.on_paper(real_world.styled(mnist.test_images[i], style, rng), rng) for i in index]
    answers = real_world._pipeline_digits(Recognizer.from_pretrained(), pictures)
    # measured when written: 1s 99.5%, closed 4s 94% (the target 95%); the previous default 37% and 43%
    assert (answers == label).mean() >= least


def test_the_bundled_default_model_reads_coarse_scans_filling_their_cell(mnist):
    """The shipped default model was trained for coarse scanners (--augment real-world): 8×8 cells with 17 gray
    levels, the digit filling its cell, upscaled, read through the pipeline — what the MNIST-only recipes miss."""
    from digitnet.recognizer import Recognizer

    rng = np.random.default_rng(11)
    index = rng.choice(len(mnist.test_labels), size=200, replace=False)
    pictures = [real_world.upscale(real_world.scan_cells(mnist.test_images[i], 8, 17, fill=True, rng=rng),
                                   nearest=bool(k % 2)) for k, i in enumerate(index)]
    answers = real_world._pipeline_digits(Recognizer.from_pretrained(), pictures)
    assert (answers == mnist.test_labels[index]).mean() >= 0.95


# 77: a 2 beside its box's left wall, which stayed and was read as a 1 ("12") until a floor that a stroke lies along
# took the walls with it (stop 44)
@pytest.mark.parametrize("index", [40, 69, 77])
def test_a_digit_cut_by_its_box_lines_is_one_digit_not_two(mnist, index):
    """Taking a box's lines away cuts the strokes that crossed them; the gap left is not a space between digits
    (a cost for blank paper inside one digit made these '2 digits found')."""
    from digitnet.recognizer import Recognizer

    picture = real_world.boxed_digit(mnist.test_images[index], np.random.default_rng(2))
    answer = Recognizer.from_pretrained().predict(picture)
    assert answer["note"] is None and answer["digit"] == mnist.test_labels[index]


def test_numbers_in_rows_of_boxes_stay_one_line_without_stray_points(mnist):
    """Writing in form boxes: a digit sitting low in its box does not tilt the row into two lines ('19044' read
    '44' over '190'), and what is left of the box lines is not a decimal point ('7774' read '7774.')."""
    from digitnet.recognizer import Recognizer

    rng = np.random.default_rng(0)  # the pictures real_world.py's comb rows draw first (seed 0)
    pictures = {}
    for k in range(61):
        index = rng.choice(len(mnist.test_images), size=int(rng.integers(4, 7)), replace=False)
        picture = real_world.boxed_number([mnist.test_images[i] for i in index], rng, comb=k % 2 == 1)
        pictures[k] = (picture, "".join(str(mnist.test_labels[i]) for i in index))
    recognizer = Recognizer.from_pretrained()
    for k in (56, 60):
        picture, truth = pictures[k]
        answer = recognizer.read(picture)
        assert answer["text"] == truth and len(answer["lines"]) == 1


def test_a_light_form_is_printed_fainter_than_half_the_writing(digits, monkeypatch):
    drawn = {}
    form_lines = real_world.form_lines

    def spy(cells, comb, line, margin, tick):
        drawn["printed"] = form_lines(cells, comb, line, margin, tick)
        return drawn["printed"]

    monkeypatch.setattr(real_world, "form_lines", spy)
    for seed in range(5):
        picture = real_world.boxed_number(list(digits[:5]), np.random.default_rng(seed), comb=seed % 2 == 0,
                                          print_ink=real_world.LIGHT_PRINT).astype(float)
        paper = np.median(picture)
        pen = picture.min()
        # Where no writing crosses it, the form's gray is one value, between a fifth and a half of the way from
        # the paper to the writing's pen (below the pipeline's threshold for ink: half the writing's contrast).
        form = picture[drawn["printed"] & (picture > pen)]
        assert len(np.unique(form)) == 1
        assert 0.05 < (paper - form[0]) / (paper - pen) < 0.5
