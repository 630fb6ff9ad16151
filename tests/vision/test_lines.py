"""`read` finds lines of writing, separators, signs and spaces (issue 12), and one line reads as before."""

from __future__ import annotations

import json

import numpy as np
import pytest
from photo_helpers import ink_of, number_ink, on_paper
from PIL import Image
from read_lines import slanted  # (the benchmark's writer who leans; photo_helpers puts benchmarks/ on the path)

from digitnet.vision.lines import (
    MNIST_SLANT,
    Line,
    find_lines,
    learned_slant,
    nearest_line,
    one_line_slope,
    read_lines,
    writing_slant,
)
from digitnet.vision.pipeline import NO_INK, number_answer, prepare_number
from digitnet.vision.preprocess import Ink, connected_components, without_specks

HEIGHT = 60


def disk(radius: float) -> np.ndarray:
    """A pen dot: ink coverage of a filled circle."""
    side = int(2 * radius) + 3
    yy, xx = np.mgrid[:side, :side] - (side - 1) / 2
    return np.clip(radius + 0.5 - np.hypot(yy, xx), 0, 1).astype(np.float32)


def comma(height: int = HEIGHT) -> np.ndarray:
    """A comma: a dot with a tail going down and to the left."""
    canvas = np.zeros((height // 2, height // 4), np.float32)
    head = disk(4.5)
    canvas[:head.shape[0], -head.shape[1]:] = head
    for t in np.linspace(0, 1, 40):  # the tail, about a pen wide
        y, x = int(6 + t * (canvas.shape[0] - 9)), int(canvas.shape[1] - 7 - t * 6)
        canvas[y:y + 3, x:x + 5] = 1
    return canvas


def bar(length: int, thickness: int = 6) -> np.ndarray:
    return np.ones((thickness, length), np.float32)


def row(items: list, digits: dict[int, np.ndarray], height: int = HEIGHT, gap: int | None = None,
        comma_size: int | None = None) -> np.ndarray:
    """A line of writing on a common baseline: digits (ints), marks (".", ",", "-", " ") and "|", a 1 drawn as
    one upright stroke of the minus's pen; a comma is ``comma(comma_size)``, by default ``comma(height)``: half
    the digits' height."""
    gap = height // 4 if gap is None else gap
    baseline = 2 * height
    placed, x = [], 0
    for item in items:
        if item == " ":
            x += height  # a space: a digit's height more
            continue
        if isinstance(item, int):
            ink = ink_of(digits[item], height)
            top = baseline - ink.shape[0]
        elif item == ".":
            ink = disk(5)
            top = baseline - ink.shape[0] + 1
        elif item == ",":
            ink = comma(comma_size or height)
            top = baseline - 10
        elif item == "|":
            ink = bar(height).T
            top = baseline - height
        else:
            ink = bar(int(0.45 * height))
            top = baseline - height // 2 - 3
        placed.append((ink, top, x))
        x += ink.shape[1] + gap
    canvas = np.zeros((4 * height, x), np.float32)
    for ink, top, left in placed:
        region = canvas[top:top + ink.shape[0], left:left + ink.shape[1]]
        np.maximum(region, ink, out=region)
    rows = np.flatnonzero(canvas.max(1) > 0)
    return canvas[rows[0]:rows[-1] + 1]


def page(lines: list[np.ndarray], gap: int = 30, indent: int = 20, angle: float = 0.0) -> np.ndarray:
    """Lines one under another (each indented a little more), optionally turned by ``angle`` degrees."""
    width = max(line.shape[1] for line in lines) + indent * len(lines)
    out = np.zeros((sum(line.shape[0] for line in lines) + gap * (len(lines) - 1), width), np.float32)
    y = 0
    for k, line in enumerate(lines):
        out[y:y + line.shape[0], k * indent:k * indent + line.shape[1]] = line
        y += line.shape[0] + gap
    if angle:
        out = np.asarray(Image.fromarray(out, "F").rotate(angle, Image.Resampling.BICUBIC, expand=True))
    return np.clip(out, 0, 1)


def read(recognizer, coverage: np.ndarray) -> dict:
    return number_answer(prepare_number(on_paper(coverage, noise=0.02), recognizer.classify))


def test_two_lines_read_as_two_lines_in_order(recognizer, clean_digits):
    picture = page([number_ink([clean_digits[d] for d in (5, 1, 8)], HEIGHT),
                    number_ink([clean_digits[d] for d in (3, 7)], HEIGHT)])
    answer = read(recognizer, picture)
    assert answer["text"] == "518\n37"
    assert [line["text"] for line in answer["lines"]] == ["518", "37"]
    assert answer["lines"][0]["box"][3] <= answer["lines"][1]["box"][1]  # the first line is above the second
    assert answer["digits"] == answer["lines"][0]["digits"] + answer["lines"][1]["digits"]
    for line in answer["lines"]:  # a line's box holds its items
        x0, y0, x1, y1 = line["box"]
        assert all(x0 <= d["box"][0] and d["box"][2] <= x1 and y0 <= d["box"][1] and d["box"][3] <= y1
                   for d in line["digits"])


def test_sloped_lines_of_different_heights_and_a_line_of_one_digit(recognizer, clean_digits):
    lines = [number_ink([clean_digits[d] for d in (2, 0, 4, 6)], 70),
             number_ink([clean_digits[9]], 50),
             number_ink([clean_digits[d] for d in (7, 3, 1, 5, 8)], 56)]
    for angle in (-4.0, 4.0):
        answer = read(recognizer, page(lines, gap=24, angle=angle))
        assert answer["text"] == "2046\n9\n73158", angle


def test_a_decimal_point_is_kept_and_a_speck_far_from_the_baseline_is_not(recognizer, clean_digits):
    line = row([3, ".", 1, 4], clean_digits)
    answer = read(recognizer, line)
    assert answer["text"] == "3.14"
    point = answer["digits"][1]
    assert point["char"] == "." and point["digit"] is None and 0.5 < point["confidence"] <= 1
    # The same dot moved up to the top of the line, between the 1 and the 4: dust, not a point.
    speckled = row([3, 1, 4], clean_digits)
    speck = disk(5)
    x = np.flatnonzero(speckled.any(0))
    gaps = np.flatnonzero(~speckled.any(0)[x[0]:x[-1]]) + x[0]
    left = int(gaps[len(gaps) * 3 // 4]) - speck.shape[1] // 2
    speckled[2:2 + speck.shape[0], left:left + speck.shape[1]] = np.maximum(
        speckled[2:2 + speck.shape[0], left:left + speck.shape[1]], speck)
    assert read(recognizer, speckled)["text"] == "314"


def test_a_decimal_comma(recognizer, clean_digits):
    answer = read(recognizer, row([3, ",", 1, 4], clean_digits))
    assert answer["text"] == "3,14" and answer["digits"][1]["char"] == ","


def test_a_minus_is_not_a_one(recognizer, clean_digits):
    # The model has no class for a minus: shown the bar as a 28×28 it answers some digit. Only the rule for
    # signs (a flat bar at mid-height) keeps the bar out of the digits.
    minus = read(recognizer, row(["-", 3], clean_digits))
    assert minus["text"] == "-3"
    sign, three = minus["digits"]
    assert sign["char"] == "-" and sign["digit"] is None and three["digit"] == 3
    assert sign["box"][2] <= three["box"][0] and sign["box"][3] - sign["box"][1] < 0.3 * HEIGHT  # the bar itself
    # The same pen's stroke upright and a digit tall is a one: not flat, so no sign, and read by the model.
    one = read(recognizer, row(["|", 3], clean_digits))
    assert one["text"] == "13" and one["digits"][0]["digit"] == 1


def test_digit_groups_keep_their_space(recognizer, clean_digits):
    answer = read(recognizer, row([1, 2, " ", 3, 4, 5], clean_digits))
    assert answer["text"] == "12 345"
    two, space, three = answer["digits"][1:4]
    assert space["char"] == " " and space["digit"] is None
    assert space["box"][0] == two["box"][2] and space["box"][2] == three["box"][0]  # the gap, full line height
    assert space["box"][1] <= min(two["box"][1], three["box"][1])
    assert space["box"][3] >= max(two["box"][3], three["box"][3])


def test_a_date_with_dots(recognizer, clean_digits):
    answer = read(recognizer, row([2, 3, ".", 1, 1, ".", 2, 0, 2, 6], clean_digits))
    assert answer["text"] == "23.11.2026"
    assert "".join(d["char"] for d in answer["digits"]) == answer["text"]


def pieces_of(line: np.ndarray) -> np.ndarray:
    """The stats (x0, y0, x1, y1, area) of a drawn line's pieces of ink, as find_lines gets them."""
    return connected_components(line > 0.5)[1]


def test_the_pieces_of_a_broken_digit_stay_on_one_line(clean_digits):
    # "88" cut across at half height (2 px of paper): four pieces, each half a digit tall. Walked one by one,
    # the lower halves stand a whole piece's height below the upper ones, which makes two lines of half-digits.
    # One above the other, sharing columns and (nearly) touching, each pair is one digit: one line.
    line = number_ink([clean_digits[8], clean_digits[8]], HEIGHT)
    middle = line.shape[0] // 2
    line[middle - 1:middle + 1] = 0
    stats = pieces_of(line)
    heights = stats[:, 3] - stats[:, 1]
    assert len(stats) >= 4 and (heights[heights >= 0.3 * HEIGHT] <= 0.6 * HEIGHT).all()  # in halves
    lines = find_lines(stats)
    assert len(lines) == 1 and sorted(lines[0].components) == list(range(len(stats)))


def test_digits_directly_under_one_another_are_two_lines():
    stats = np.array([[0, 0, 40, 60, 900], [0, 80, 40, 140, 900], [60, 0, 100, 60, 900], [60, 80, 100, 140, 900]])
    lines = find_lines(stats)
    assert [sorted(line.components) for line in lines] == [[0, 2], [1, 3]]


def test_one_line_answers_keep_their_fields(recognizer, clean_digits):
    answer = read(recognizer, number_ink([clean_digits[d] for d in (4, 0, 7)], HEIGHT))
    assert set(answer) == {"path", "text", "lines", "digits", "error", "note"}
    assert answer["text"] == "407" and len(answer["lines"]) == 1
    assert answer["lines"][0]["digits"] == answer["digits"] and answer["lines"][0]["text"] == "407"
    for item in answer["digits"]:
        assert set(item) == {"char", "digit", "confidence", "box"} and item["char"] == str(item["digit"])


def test_no_ink_has_no_lines(recognizer):
    answer = number_answer(prepare_number(np.full((80, 120), 230, np.uint8), recognizer.classify))
    assert answer["lines"] == [] and answer["digits"] == [] and answer["text"] == "" and answer["note"] == NO_INK


def test_an_mnist_digit_is_one_line_of_one_digit(mnist, recognizer):
    answer = number_answer(prepare_number(mnist.test_images[0], recognizer.classify))
    assert len(answer["lines"]) == 1 and answer["lines"][0]["box"] == [0, 0, 28, 28]
    assert answer["digits"][0]["char"] == str(answer["digits"][0]["digit"]) == answer["text"]


@pytest.mark.parametrize("items", [[7, 7], [5, 5, 5]])
def test_detached_bars_of_fives_and_sevens_stay_with_their_digit(recognizer, clean_digits, items):
    # Each digit's top fifth lifted a little off its body: the bar is part of the digit, not a minus.
    ink = number_ink([clean_digits[d] for d in items], HEIGHT)
    cut = ink.shape[0] // 5
    lifted = np.zeros((ink.shape[0] + 4, ink.shape[1]), np.float32)
    lifted[:cut] = ink[:cut]
    lifted[cut + 4:] = ink[cut:]
    assert "-" not in read(recognizer, lifted)["text"]


def test_read_prints_each_line_and_its_json_has_the_lines(recognizer, clean_digits, tmp_path):
    from typer.testing import CliRunner

    from digitnet.cli import app

    path = tmp_path / "amounts.png"
    Image.fromarray(on_paper(page([row([1, 2, ".", 5, 0], clean_digits), row(["-", 3], clean_digits)]))).save(path)
    runner = CliRunner()
    table = runner.invoke(app, ["read", str(path)])
    assert table.exit_code == 0
    rows = table.stdout.splitlines()
    first = next(i for i, r in enumerate(rows) if "12.50" in r)
    assert "-3" in rows[first + 1]  # the second line of writing, right under the first
    answer = json.loads(runner.invoke(app, ["read", "--json", str(path)]).stdout)
    assert answer["text"] == "12.50\n-3" and [line["text"] for line in answer["lines"]] == ["12.50", "-3"]


def test_a_comma_tall_enough_to_anchor_a_line_stays_on_its_digits_line(clean_digits):
    # "8012,092" with a big comma (a thick pen's): 36 px tall, over half the digits' 60, so it anchors a line,
    # and its centre 8 px below the baseline, more than half a digit height from the line's centre: it started
    # a line of its own (read as a "9" under the number). It reaches into the digits' band, and is too short to
    # be a line of digits beside them: it belongs to their line.
    stats = pieces_of(row([8, 0, 1, 2, ",", 0, 9, 2], clean_digits, comma_size=72))
    lines = find_lines(stats)
    assert len(lines) == 1 and sorted(lines[0].components) == list(range(len(stats)))


# ------------------------------------------------------------------------------ lines that keep their ink

# Three upright strokes, 24 px wide (a pen's width), walked left to right: a short one (160 tall) starts line A;
# the next, as short, sits 88 px lower (over half its height: it starts line B); the third, twice as tall, is
# nearer A's centre and joins A. A's fit (median tops and bottoms of its two digits: 380..620) now reaches down
# over the second stroke, whose centre (568) lies inside both lines' bands, within both lines' spans: a tie.
TIED = np.array([[0, 400, 24, 560, 3840], [240, 488, 264, 648, 3840], [480, 360, 528, 680, 15360]])


def test_an_anchor_tied_between_two_lines_stays_with_its_own():
    # The tie went to the earlier line A, leaving line B with no components at all.
    lines = find_lines(TIED)
    assert [sorted(line.components) for line in lines] == [[0, 2], [1]]


def test_a_point_on_a_line_whose_digit_tied_with_another_line_is_read():
    # The same strokes as ink, and a pen dot (24 px, too small beside the tall stroke to survive as ink) on line
    # B's baseline right of its digit: reading it indexed the stats with B's (empty, float) list of components.
    mask = np.zeros((700, 560), bool)
    for x0, y0, x1, y1, _ in TIED:
        mask[y0:y1, x0:x1] = True
    contrast = mask.astype(np.float32)
    contrast[624:648, 272:296] = 1.0
    ink = Ink(ink=contrast, mask=mask, level=1.0, scale=1.0, dark_ink=True, threshold=0.5)

    def ones(batch: np.ndarray) -> np.ndarray:  # every digit a 1: this is about the lines, not the model
        return np.tile(np.eye(10, dtype=np.float32)[1], (len(batch), 1))

    assert ["".join(item.char for item in line.items) for line in read_lines(ink, ones)] == ["11", "1."]


def test_a_tie_goes_to_the_line_whose_span_covers_the_piece():
    # A runs at y 0..100 from x 0 to 100, B at y 175..275 from x 350 to 450. A piece centred at x 350, y 125 is
    # 0.25 line heights below A plus 0.1 × 2.5 beyond A's end, and 0.5 above B, in B's columns: B's, not the
    # earlier A's.
    a = Line(blobs=[(0, 0, 100, 100)], top0=0.0, bottom0=100.0, height=100.0)
    b = Line(blobs=[(350, 175, 450, 275)], top0=175.0, bottom0=275.0, height=100.0)
    assert nearest_line([a, b], np.array([345, 120, 355, 130])) == 1
    assert nearest_line([b, a], np.array([345, 120, 355, 130])) == 0


def test_a_tie_inside_two_lines_goes_to_the_one_with_a_digit_beside_the_piece():
    # Overlapping bands (y 100..200 and 150..250), both spans cover x 210: the piece is in the columns of B's digit
    # and 165 px from A's nearest.
    a = Line(blobs=[(0, 100, 40, 200), (400, 100, 440, 200)], top0=100.0, bottom0=200.0, height=100.0)
    b = Line(blobs=[(180, 150, 220, 250)], top0=150.0, bottom0=250.0, height=100.0)
    assert nearest_line([a, b], np.array([205, 170, 215, 180])) == 1
    assert nearest_line([b, a], np.array([205, 170, 215, 180])) == 0


def test_a_speck_within_the_papers_noise_is_no_decimal_point(recognizer, clean_digits):
    # "3.14" as find_ink sees it on paper noisy enough that its floor (4 × noise = 0.7) is above half the ink's
    # level (0.5): a dot of contrast 0.6 is as faint as the noise, not ink; one of 0.8 is a pen's point.
    line = row([3, ".", 1, 4], clean_digits)
    labels, stats = connected_components(line > 0)
    dot = labels == 1 + int(np.argmin(stats[:, 4]))
    texts = []
    for strength in (0.6, 0.8):
        contrast = np.pad(np.where(dot, strength * line, line), 20)
        ink = Ink(ink=contrast, mask=without_specks(contrast > 0.7)[0], level=1.0, scale=1.0, dark_ink=True,
                  threshold=0.7)
        texts.append("".join(item.char for text_line in read_lines(ink, recognizer.classify)
                             for item in text_line.items))
    assert texts == ["314", "3.14"]


@pytest.mark.parametrize("seed", range(6))
def test_a_lines_slope_is_the_least_squares_fit_through_its_digits(seed):
    from digitnet.vision.lines import MAX_SLOPE, _fit

    rng = np.random.default_rng(seed)
    slope = rng.uniform(-0.15, 0.15)
    xs = np.linspace(0, 600, int(rng.integers(3, 9))) + rng.uniform(-20, 20)  # spans many digit heights
    tops = 100 + slope * xs + rng.normal(0, 3, xs.size)
    line = Line(blobs=[(x - 15, y, x + 15, y + 60 + rng.normal(0, 2)) for x, y in zip(xs, tops, strict=True)])
    _fit(line)
    boxes = np.array(line.blobs)
    centres_x, centres_y = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    expected = float(np.clip(np.polyfit(centres_x, centres_y, 1)[0], -MAX_SLOPE, MAX_SLOPE))
    assert line.slope == pytest.approx(expected, abs=1e-12)
    _fit(line, level=True)
    assert line.slope == 0.0


@pytest.mark.parametrize("angle", [-24.0, 17.0])
def test_a_number_photographed_at_a_slope_is_read_turned_level(recognizer, clean_digits, angle):
    # Past line finding's slope (about 8.5°), each digit fell further below the line than a line height allows and
    # started a line of its own. The writing is turned level first; its boxes come back turned.
    digits = (9, 2, 5, 7, 3, 0)
    coverage = page([number_ink([clean_digits[d] for d in digits], HEIGHT)], angle=angle)
    answer = read(recognizer, coverage)
    assert answer["text"] == "925730"
    # The boxes, in the picture's own pixels, run along the writing (PIL turns counter-clockwise: up to the right
    # for a positive angle) and together hold its ink.
    centres = boxes_on_the_ink(answer, coverage)
    slope = np.polyfit(centres[:, 0], centres[:, 1], 1)[0]
    assert abs(np.degrees(np.arctan(-slope)) - angle) < 4


def boxes_on_the_ink(answer: dict, coverage: np.ndarray) -> np.ndarray:
    """Check that the digits' boxes of ``answer`` (a reading of ``on_paper(coverage)``) lie in the picture, left to
    right, each about a digit wide, and together hold its ink; their centres (x, y)."""
    boxes = np.array([d["box"] for d in answer["digits"]], np.float64)
    picture = on_paper(coverage)
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= picture.shape[1]).all()
    assert (boxes[:, 3] <= picture.shape[0]).all()
    assert (boxes[:, 2] - boxes[:, 0] < 2 * HEIGHT).all()  # a digit's box, not the writing's
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    assert (np.diff(centres[:, 0]) > 0).all()
    ys, xs = np.nonzero(picture < 128)
    held = np.zeros(len(xs), bool)
    for x0, y0, x1, y1 in boxes:
        held |= (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)
    assert held.mean() > 0.95
    return centres


def leaves_as_it_is(monkeypatch, change: str) -> list:
    """``pipeline.<change>`` (a turn or shear of a picture before it is read) checked to leave every picture it is
    handed as it is; the list it adds a True to at each call."""
    from digitnet.vision import pipeline

    def untouched(pixels, ink):
        calls.append(True)
        result = original(pixels, ink)
        assert result is None
        return result

    calls: list = []
    original = getattr(pipeline, change)
    monkeypatch.setattr(pipeline, change, untouched)
    return calls


def test_a_level_line_and_a_page_of_lines_are_not_turned(clean_digits, monkeypatch):
    calls = leaves_as_it_is(monkeypatch, "_levelled")
    line = number_ink([clean_digits[d] for d in (4, 1, 8, 6)], HEIGHT)
    pictures = (line,  # level
                page([line], angle=6.0),  # a slope line finding follows
                page([number_ink([clean_digits[d] for d in (5, 1, 8)], HEIGHT),  # a page, turned 15°
                      number_ink([clean_digits[d] for d in (3, 7, 2)], HEIGHT),
                      number_ink([clean_digits[d] for d in (6, 0, 9)], HEIGHT)], angle=15.0),
                # two short level lines, the second under the end of the first: a staircase fits a slope of
                # about 30°, but each line steps level
                page([number_ink([clean_digits[d] for d in (6, 0)], HEIGHT),
                      number_ink([clean_digits[d] for d in (1, 5)], HEIGHT)], gap=8, indent=100))
    for coverage in pictures:
        # (prepare_number answers a fault of ours as an error for the picture: the check failing is one)
        assert prepare_number(on_paper(coverage), lambda images: np.full((len(images), 10), 0.1)).error is None
    assert len(calls) == len(pictures)


def test_one_line_slope_takes_a_steep_line_but_no_staircase_of_two_level_lines():
    def stats(centres: list[tuple[float, float]], height: int = 60, width: int = 40) -> np.ndarray:
        return np.array([(x - width // 2, y - height // 2, x + width // 2, y + height // 2, width * height)
                         for x, y in centres])

    steep = [(20 + 50 * k, 100 + 0.5 * 50 * k + (-1) ** k * 4) for k in range(5)]  # 26.6°, centres jittered ±4 px
    assert one_line_slope(stats(steep)) == pytest.approx(0.5, abs=0.05)
    # "60" over "15", the second line indented under the end of the first: the four centres fit a slope of about
    # 0.5 within half a height, but from one digit to the next in each line the writing steps level.
    staircase = [(20, 30), (70, 30), (120, 100), (170, 100)]
    assert one_line_slope(stats(staircase)) is None
    assert one_line_slope(stats(steep[:2])) is None  # two digits are no line to fit


@pytest.mark.parametrize("shear", [0.6, -0.45])
def test_writing_slant_measures_how_far_the_hand_leans(clean_digits, shear):
    from digitnet.vision.pipeline import find_writing

    line = number_ink([clean_digits[d] for d in (3, 1, 4, 7, 5)], HEIGHT)
    upright = writing_slant(find_writing(on_paper(line)))
    leant = writing_slant(find_writing(on_paper(slanted(line, shear))))
    assert leant - upright == pytest.approx(-shear, abs=0.05)  # (y runs down: a forward lean is negative)
    # Marks and signs say nothing of the hand's lean: only the digits are measured.
    marked = row(["-", 3, 1, ".", 4, 7], clean_digits)
    bare = row([3, 1, " ", 4, 7], clean_digits)
    assert writing_slant(find_writing(on_paper(marked))) == pytest.approx(
        writing_slant(find_writing(on_paper(bare))), abs=0.01)


def test_the_learned_slant_is_how_far_lines_of_mnist_training_digits_lean(mnist):
    # MNIST_SLANT and the bounds learned_slant draws from it, measured again: the training digits (the 55,000 the
    # models learn from) set side by side in lines, each line's lean as writing_slant measures a picture's.
    class Tiles:  # all that writing_slant reads of an Ink: its components (and the cache its digits are kept in)
        def __init__(self, mask: np.ndarray) -> None:
            self.mask = mask
            self.cache: dict = {}

        def components(self):
            return connected_components(self.mask)

    rng = np.random.default_rng(0)
    training = mnist.train_images[:55_000] > 127
    for digits, lines in ((1, 6000), (3, 4000), (5, 3000)):
        picks = rng.integers(len(training), size=(lines, digits))
        slants = np.array([writing_slant(Tiles(np.hstack(list(training[p])))) for p in picks])
        assert slants.mean() == pytest.approx(MNIST_SLANT[0], abs=0.01)
        if digits > 1:  # (one digit's lean has longer tails than a normal spread: a line's, pooled, has not)
            assert slants.std() * np.sqrt(digits) == pytest.approx(MNIST_SLANT[1], abs=0.015)
            assert tuple(np.percentile(slants, [1, 99])) == pytest.approx(learned_slant(digits), abs=0.03)


@pytest.mark.parametrize(("digits", "shear"), [((5, 3, 7, 0, 4), 0.8), ((1, 7, 1, 4, 7), -0.55)])
def test_a_number_written_leaning_far_is_read_upright(recognizer, glyph_pool, digits, shear, monkeypatch):
    # Cut into upright columns, a digit leaning as far as this stands with its top over its neighbour's foot; the
    # picture is sheared back into the lean the models learned first, and its boxes come back to its own pixels.
    from digitnet.vision import pipeline

    truth = "".join(map(str, digits))
    coverage = slanted(number_ink([glyph_pool[d][0] for d in digits], HEIGHT, gaps=[0] * (len(digits) - 1)), shear)
    answer = read(recognizer, coverage)
    assert answer["text"] == truth
    boxes_on_the_ink(answer, coverage)
    # (read() above cuts lines with the segmenter alone; `read` itself by default asks the line recognizer too)
    assert recognizer.read(on_paper(coverage, noise=0.02))["text"] == truth
    monkeypatch.setattr(pipeline, "_upright", lambda pixels, ink: None)
    assert read(recognizer, coverage)["text"] != truth  # read as it leans, it was misread


def test_a_number_photographed_turned_and_leaning_far_is_read_with_its_boxes_on_its_digits(recognizer, glyph_pool,
                                                                                           monkeypatch):
    # Turned level first, then sheared upright: each box goes back through both into the picture's own pixels.
    from digitnet.vision import pipeline

    both = []
    after = pipeline._after
    monkeypatch.setattr(pipeline, "_after", lambda first, then: both.append(True) or after(first, then))
    digits = (5, 3, 7, 0, 4)
    line = slanted(number_ink([glyph_pool[d][0] for d in digits], HEIGHT, gaps=[0] * 4), 0.8)
    coverage = page([line], angle=-20.0)
    answer = read(recognizer, coverage)
    assert answer["text"] == "53704" and both
    centres = boxes_on_the_ink(answer, coverage)
    assert np.degrees(np.arctan(-np.polyfit(centres[:, 0], centres[:, 1], 1)[0])) == pytest.approx(-20, abs=5)


def test_writing_that_leans_as_mnist_does_is_not_sheared(clean_digits, monkeypatch):
    calls = leaves_as_it_is(monkeypatch, "_upright")
    line = number_ink([clean_digits[d] for d in (4, 1, 8, 6)], HEIGHT)
    pictures = (line, slanted(line, 0.15), slanted(line, -0.1),
                page([number_ink([clean_digits[d] for d in (5, 1, 8)], HEIGHT),
                      number_ink([clean_digits[d] for d in (3, 7, 2)], HEIGHT)]))
    for coverage in pictures:
        # (prepare_number answers a fault of ours as an error for the picture: the check failing is one)
        assert prepare_number(on_paper(coverage), lambda images: np.full((len(images), 10), 0.1)).error is None
    assert len(calls) == len(pictures)
