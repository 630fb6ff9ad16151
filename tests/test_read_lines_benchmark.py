"""benchmarks/read_lines.py draws what its table says it measures, and runs end to end at tiny sizes."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import read_lines  # noqa: E402

from digitnet.vision.preprocess import connected_components, stroke_width  # noqa: E402


class Keeper:
    """A recognizer that reads nothing and keeps the pictures a row hands it: only what the row draws is looked at."""

    def __init__(self) -> None:
        self.pictures: list[bytes] = []

    def read(self, picture: bytes) -> dict:
        self.pictures.append(picture)
        return {"text": ""}

    def classify(self, images: np.ndarray) -> np.ndarray:
        return np.eye(10)[np.zeros(len(images), int)]

    def gray(self) -> list[np.ndarray]:
        """The pictures kept, decoded to gray."""
        import io

        from PIL import Image

        return [np.asarray(Image.open(io.BytesIO(picture)).convert("L")) for picture in self.pictures]


@pytest.fixture(scope="module")
def digits(mnist) -> list[np.ndarray]:
    return list(mnist.test_images[:12])


def test_marks_are_drawn_as_a_pen_would():
    rng = np.random.default_rng(0)
    for _ in range(20):
        pen = rng.uniform(4, 12)
        dot = read_lines.dot_alpha(pen, rng)
        assert pen * 0.8 <= max(dot.shape) <= pen * 2.6 and max(dot.shape) <= 1.6 * min(dot.shape)
        comma, depth = read_lines.comma_alpha(pen, 80, rng)
        assert comma.shape[0] > comma.shape[1] and depth > 0.1 * 80  # taller than wide, reaching down
        minus = read_lines.minus_alpha(pen, 80, rng)
        assert minus.shape[1] >= 0.3 * 80 and minus.shape[1] > 1.5 * minus.shape[0]  # a flat bar


def test_a_line_with_separators_has_its_marks_where_they_belong(digits):
    rng = np.random.default_rng(1)
    line = read_lines.line_alpha("-12.5,3", digits[:4], rng, 60)
    _, stats = connected_components(line > 0.5)
    order = np.argsort(stats[:, 0])
    heights = stats[:, 3] - stats[:, 1]
    # minus, two digits, point, digit, comma, digit (MNIST digits are one stroke at this size, mostly)
    assert len(stats) >= 7
    minus, point = stats[order[0]], stats[order[3]]
    assert minus[2] - minus[0] > 2 * (minus[3] - minus[1])  # flat
    baseline = np.median(stats[heights >= 0.6 * heights.max(), 3])  # where the digits end
    assert heights[order[3]] < 0.4 * heights.max() and abs(point[3] - baseline) <= 0.1 * 60  # small, on the baseline
    comma = stats[order[5]]
    assert comma[3] > baseline + 0.1 * 60  # reaching below it


def test_loose_marks_leave_their_usual_height_and_nothing_else_moves(digits):
    """The loose-marks row sets points up to LOOSE_LIFT off where the separators row sets them and minus signs up to
    LOOSE_MINUS off their number's middle; the same line drawn loosely has everything else where it was."""
    height, lifts, drops = 60, [], []
    for seed in range(30):
        plain = read_lines.line_alpha("-1.2", digits[:2], np.random.default_rng(seed), height)
        loose = read_lines.line_alpha("-1.2", digits[:2], np.random.default_rng(seed), height, loose=True)
        # as wide (a mark moved past the digits' rows may make the picture taller: rows are compared below)
        assert plain.shape[1] == loose.shape[1]
        (_, plain_stats), (_, loose_stats) = connected_components(plain > 0.5), connected_components(loose > 0.5)
        if len(plain_stats) != 4 or len(loose_stats) != 4:
            continue  # a digit in two pieces, or a mark run into one: the pieces are not told apart by order
        before, after = (stats[np.argsort(stats[:, 0])] for stats in (plain_stats, loose_stats))
        after[:, [1, 3]] -= after[1, 1] - before[1, 1]  # rows counted from the first digit's top
        assert np.array_equal(before[[1, 3]], after[[1, 3]])  # the digits where they were
        assert np.array_equal(before[:, [0, 2, 4]], after[:, [0, 2, 4]])  # every mark as wide and at its column
        drops.append((after[0, 1] - before[0, 1]) / height)  # the minus sign
        lifts.append((before[2, 1] - after[2, 1]) / height)  # the point
    assert len(lifts) >= 20
    # up and down, spread over the range (a number's height is about the line's here)
    assert min(lifts) < 0 and max(lifts) > 0.2
    assert read_lines.LOOSE_LIFT[0] - 0.05 <= min(lifts) and max(lifts) <= read_lines.LOOSE_LIFT[1] + 0.05
    assert min(drops) < -0.1 and max(drops) > 0.1 and max(np.abs(drops)) <= read_lines.LOOSE_MINUS[1] * 1.2 + 0.05


def test_dust_lies_where_no_point_sits(digits):
    """The dusty row's specks are small and lie above the digits' lower part or under the baseline: a speck on
    the baseline would be a decimal point to any reader."""
    height, found = 60, 0
    for seed in range(8):
        line = read_lines.line_alpha("1234", digits[:4], np.random.default_rng(seed), height, dust=4)
        _, stats = connected_components(line > 0.5)
        heights = stats[:, 3] - stats[:, 1]
        baseline = np.median(stats[heights >= 0.6 * heights.max(), 3])
        for x0, y0, x1, y1, _ in stats[heights < 0.3 * height]:  # the specks apart from the digits
            assert max(x1 - x0, y1 - y0) < 0.3 * height
            middle = (y0 + y1) / 2 - baseline
            assert middle <= -0.4 * height or middle >= 0.35 * height
            found += 1
    assert found >= 8


def test_an_underlined_number_keeps_its_digits_and_gains_one_or_two_lines_under_them(digits):
    from photo_digits import number_alpha

    height, counts = 60, set()
    for seed in range(20):
        rng = np.random.default_rng(seed)
        number, _ = number_alpha(digits[:4], rng, height, touching=0.0)
        drawn = read_lines.underlined(number, height, rng)
        ink = np.flatnonzero(number.max(0) > 0)
        number = number[:, ink[0]:ink[-1] + 1]
        h, w = number.shape
        # the number, unchanged (but where a line touches its lowest ink), in the top rows; the lines below it
        top = int(0.8 * h)
        left = next(x for x in range(drawn.shape[1] - w + 1) if np.array_equal(drawn[:top, x:x + w], number[:top]))
        below = drawn[h:] > 0.5
        rows = np.flatnonzero(below.any(1))
        assert len(rows) and rows[0] < read_lines.UNDERLINE_DROP[1] * height + 0.3 * height
        # each line reaches from near the number's left end to near its right end
        reach = np.flatnonzero(below.any(0))
        assert reach[0] <= left + 0.15 * height and reach[-1] >= left + w - 1 - 0.15 * height
        # one line, or two (a total; two lines may meet where their slopes cross): bands of ink down a column
        under = below[:, left:left + w]
        bands = np.count_nonzero(np.diff(under.astype(np.int8), axis=0) == 1, axis=0) + under[0]
        counts.add(int(bands.max()))
    assert counts == {1, 2}


@pytest.mark.parametrize("kind", read_lines.KINDS)
def test_every_kind_of_number_is_what_it_says(kind):
    rng = np.random.default_rng(2)
    for _ in range(10):
        text = read_lines.separator_text(kind, rng)
        marks = {"decimal point": ".", "decimal comma": ",", "minus": "-", "date": ".", "groups": " "}
        assert marks[kind] in text and set(text) <= {"d", ".", ",", "-", " "}
        if kind == "date":
            assert [len(p) for p in text.split(".")][:2] == [2, 2]


def _bands(mask: np.ndarray) -> list[tuple[int, int]]:
    """Runs of rows holding ink: the lines of an unturned page, top to bottom."""
    rows = np.concatenate([[False], mask.any(1), [False]]).astype(int)
    edges = np.flatnonzero(np.diff(rows))
    return list(zip(edges[::2], edges[1::2], strict=True))


def test_a_page_holds_its_lines_and_each_line_its_digits(mnist, monkeypatch):
    # Digits that are one stroke, written apart (no touching), so ink blobs count digits.
    single = [d for d in mnist.test_images[:200] if len(connected_components(d > 127)[1]) == 1][:9]
    rng = np.random.default_rng(4)
    counts, heights = [2, 4, 3], [50, 64, 44]
    lines, at = [], 0
    for count, height in zip(counts, heights, strict=True):
        lines.append(read_lines.number_alpha(single[at:at + count], rng, height, touching=0.0)[0])
        at += count
    monkeypatch.setattr(read_lines, "MAX_SLOPE", 0.0)  # level, so that rows of ink are lines
    page = read_lines.page_alpha(lines, heights, rng)
    bands = _bands(page > 0.5)
    assert len(bands) == 3  # as many lines as written, apart
    for (top, bottom), count, height in zip(bands, counts, heights, strict=True):
        assert len(connected_components(page[top:bottom] > 0.5)[1]) == count  # each line its own digits
        assert 0.8 * height <= bottom - top <= 1.5 * height  # about its own height
    monkeypatch.undo()
    turned = read_lines.page_alpha(lines, heights, np.random.default_rng(5))  # turned by up to ±5°
    assert len(connected_components(turned > 0.5)[1]) == sum(counts)


def test_the_benchmark_counts_what_it_drew(tmp_path, monkeypatch):
    # Every misread picture is saved under its truth: the figures and the saved truths must agree.
    n = 5
    drawn_dust, drawn_loose = [], []
    line_alpha = read_lines.line_alpha

    def spy(*args, **kwargs):
        drawn_dust.append(args[4] if len(args) > 4 else kwargs.get("dust", 0))
        drawn_loose.append(bool(args[5] if len(args) > 5 else kwargs.get("loose", False)))
        return line_alpha(*args, **kwargs)

    monkeypatch.setattr(read_lines, "line_alpha", spy)
    result = read_lines.run(None, n=n, seed=0, single=2, save=str(tmp_path))
    # the separators row draws no dust, the dusty row 1-4 specks a number, every kind in turn; the loose marks row
    # no dust, its marks loose
    assert len(drawn_dust) == 3 * n and drawn_dust[:n] == [0] * n and all(1 <= d <= 4 for d in drawn_dust[n:2 * n])
    assert drawn_dust[2 * n:] == [0] * n and drawn_loose == [False] * 2 * n + [True] * n
    loose_missed = [name for name in (p.stem for p in tmp_path.glob("*.jpg")) if name.startswith("loose-")]
    assert len(loose_missed) == round(n * (1 - result["loose_marks"]["exact"]))
    dusty_missed = [name for name in (p.stem for p in tmp_path.glob("*.jpg")) if name.startswith("dusty-")]
    assert len(dusty_missed) == round(n * (1 - result["dusty"]["exact"]))
    assert set(result["dusty"]["by_kind"]) == set(read_lines.KINDS)
    underlined_missed = [name for name in (p.stem for p in tmp_path.glob("*.jpg")) if name.startswith("underlined-")]
    assert len(underlined_missed) == round(n * (1 - result["underlined"]["exact"]))
    names = [p.stem for p in tmp_path.glob("*.jpg")]
    lines_missed = [name for name in names if name.startswith("lines-")]
    seps_missed = [name for name in names if name.startswith("sep-")]
    assert len(lines_missed) == round(n * (1 - result["multi_line"]["exact"]))
    assert len(seps_missed) == round(n * (1 - result["separators"]["exact"]))
    for name in lines_missed:  # lines-K-TRUTH-as-ANSWER, lines joined by "_": 2-5 lines of 1-8 digits
        truth = name.split("-")[2].split("_")
        assert 2 <= len(truth) <= 5 and all(line.isdigit() and 1 <= len(line) <= 8 for line in truth)
    assert set(result["separators"]["by_kind"]) == set(read_lines.KINDS)
    assert result["single_line"]["n"] == 2
    writers_missed = [name for name in names if name.startswith("writers-")]
    assert len(writers_missed) == round(n * (1 - result["writers"]["exact"]))
    fine_missed = [name for name in names if name.startswith("fine-pen-")]
    assert len(fine_missed) == round(n * (1 - result["fine_pen"]["exact"]))
    for row, prefix in (("on_desk", "desk-"), ("squared", "squared-")):
        missed = [name for name in names if name.startswith(prefix)]
        assert len(missed) == round(n * (1 - result[row]["exact"]))
    # one-line numbers come from photo_digits.py, which sorts its misread numbers too
    assert sum(result["single_line"]["misread"].values()) == round(2 * (1 - result["single_line"]["exact"]))
    # each misread picture has one kind (where it went wrong): as many as were saved, for every row that sorts them
    for row, prefix in (("multi_line", "lines-"), ("separators", "sep-"), ("dusty", "dusty-"),
                        ("loose_marks", "loose-"), ("writers", "writers-"), ("fine_pen", "fine-pen-"),
                        ("squared", "squared-")):
        misread = result[row]["misread"]
        assert set(misread) == set(read_lines.MISREADS)
        assert sum(misread.values()) == sum(name.startswith(prefix) for name in names), row


def test_the_fine_pen_row_writes_every_digit_with_a_fineliner(mnist, monkeypatch):
    drawn = []
    styled_ink = read_lines.styled_ink
    monkeypatch.setattr(read_lines, "styled_ink",
                        lambda digit, style, *args: drawn.append(style) or styled_ink(digit, style, *args))

    images, labels = mnist.test_images[:200], mnist.test_labels[:200]
    result = read_lines._numbers_row(Keeper(), images, labels, np.random.default_rng(0), 4, (2, 6), 0.05, 0.05,
                                     "fine-pen", [], pen="fine pen")
    assert result["n"] == 4 and result["exact"] == 0 and 8 <= len(drawn) <= 24 and set(drawn) == {"fine pen"}
    one = mnist.test_images[np.flatnonzero(mnist.test_labels == 8)[0]]
    rng = np.random.default_rng(1)
    fine, plain = styled_ink(one, "fine pen", 80, 0.0, rng), styled_ink(one, None, 80, 0.0, rng)
    # a fineliner: strokes 2.5-5% of the digit's height across, where MNIST's pens are about 10%
    assert stroke_width(fine > 0.5) < 0.6 * stroke_width(plain > 0.5)
    assert abs(fine.shape[0] - plain.shape[0]) < 0.15 * 80  # at the same height


def test_other_writers_keep_their_habits_through_a_number(mnist):
    """Each writer has one way with each digit: a habit only its own digit has, at about its share of writers, and
    else one pen for every digit; the styled digit is drawn at the height asked."""
    rng = np.random.default_rng(0)
    writers = [read_lines.writer_styles(rng) for _ in range(500)]
    for digit, habits in read_lines.WRITER_HABITS.items():
        for style, share in habits:
            assert abs(np.mean([w[digit] == style for w in writers]) - share) < 0.07, style
    for ways in writers:
        pens = {way for digit, way in ways.items()
                if way not in [style for style, _ in read_lines.WRITER_HABITS.get(digit, ())]}
        assert len(pens) == 1 and pens <= {None, *read_lines.WRITER_PENS}
    assert 0.5 < np.mean([w[0] is not None for w in writers]) < 0.7  # WRITER_PEN of them write with a pen of their own
    one = mnist.test_images[np.flatnonzero(mnist.test_labels == 1)[0]]
    plain = read_lines.styled_ink(one, None, 80, 0.0, rng)
    flagged = read_lines.styled_ink(one, "European 1 (flag)", 80, 0.0, rng)
    assert abs(flagged.shape[0] - plain.shape[0]) < 0.15 * 80  # the same height ...

    def top_span(ink: np.ndarray) -> int:  # how wide the top quarter of the ink is
        return int(np.ptp(np.flatnonzero(ink[:len(ink) // 4].max(0) > 0.5)))

    assert top_span(flagged) > top_span(plain) + 8  # ... and a flag reaching out from the top


def test_spaced_digits_stand_evenly_a_pitch_apart(mnist):
    # The spaced row: centres evenly 1.1-1.7 heights apart whatever each digit's width, never touching.
    single = [d for d in mnist.test_images[:300] if len(connected_components(d > 127)[1]) == 1]
    ones = [d for d, label in zip(mnist.test_images[:300], mnist.test_labels[:300], strict=True)
            if label == 1 and len(connected_components(d > 127)[1]) == 1]
    rng = np.random.default_rng(6)
    for k in range(5):
        digits = [single[k], ones[k], single[k + 5], ones[k + 5]]
        alpha, touching = read_lines.number_alpha(digits, rng, 60, 0.0, 0.0, read_lines.SPACED_PITCH)
        _, stats = connected_components(alpha > 0.5)
        stats = stats[np.argsort(stats[:, 0])]
        assert len(stats) == 4 and not touching
        centres = (stats[:, 0] + stats[:, 2]) / 2
        steps = np.diff(centres) / 60
        assert np.all(steps > 0.9) and np.all(steps < 1.9), steps  # the pitch (±5%), give or take ink centring
        assert steps.max() / steps.min() < 1.3, steps


def test_tiles_stand_side_by_side_each_in_its_own_columns(mnist):
    import io

    from PIL import Image

    single = [d for d in mnist.test_images[:300] if len(connected_components(d > 127)[1]) == 1][:4]
    for pad, scale in ((0, 1.0), (8, 2.0)):
        strip = np.asarray(Image.open(io.BytesIO(read_lines.tile_strip(single, pad, scale))).convert("L"))
        assert strip.shape == (round(28 * scale), round(4 * (28 + 2 * pad) * scale))
        ink = strip < 128  # dark on white
        pitch = (28 + 2 * pad) * scale
        for k, tile in enumerate(single):  # each tile's ink within its own columns, as much of it as drawn
            columns = ink[:, round(k * pitch):round((k + 1) * pitch)]
            assert abs(columns.sum() - (tile > 127).sum() * scale ** 2) <= 0.25 * (tile > 127).sum() * scale ** 2


def test_the_tiles_rows_count_what_they_drew(tmp_path):
    # Misread strips are saved as tilesPAD-K-TRUTH-as-ANSWER: side by side (pad 0) or set apart (pad 4-12).
    result = read_lines.run(None, n=4, seed=0, save=str(tmp_path), rows=("tiles", "tiles_apart"))
    missed = [p.stem.split("-") for p in tmp_path.glob("tiles*.jpg")]
    pads = [int(name[0].removeprefix("tiles")) for name in missed]
    assert sum(pad == 0 for pad in pads) == round(4 * (1 - result["tiles"]["exact"]))
    assert sum(4 <= pad <= 12 for pad in pads) == round(4 * (1 - result["tiles_apart"]["exact"]))
    assert all(name[2].isdigit() and 2 <= len(name[2]) <= 8 for name in missed)


def test_a_sheet_on_a_desk_keeps_its_writing_with_the_desk_beside_it():
    from photo_digits import on_desk, photograph

    alpha = np.zeros((100, 240), np.float32)
    alpha[40:60, 50:190] = 1.0
    rng = np.random.default_rng(0)
    shown = []
    for _ in range(40):
        ink, desk = on_desk(alpha, rng)
        assert ink.shape == desk.shape
        assert abs(ink.sum() - alpha.sum()) < 0.03 * alpha.sum()  # the writing whole: turned, not cut
        assert desk[ink > 0.1].max() < 0.05  # and on the sheet, never on the desk
        sides = [desk[0].mean(), desk[-1].mean(), desk[:, 0].mean(), desk[:, -1].mean()]
        shown.append(np.mean([side > 0.9 for side in sides]))  # the desk along that whole edge of the photo
    # on each side the desk shows, but where the sheet runs off the photo (a quarter of the time)
    assert 0.6 < np.mean(shown) < 0.9
    ink, desk = on_desk(alpha, np.random.default_rng(3))
    from io import BytesIO

    from PIL import Image
    photo = np.asarray(Image.open(BytesIO(photograph(ink, np.random.default_rng(4), desk=desk))).convert("L"), float)
    sheet = (desk < 0.01) & (ink < 0.01)
    assert photo[desk > 0.99].mean() < photo[sheet].mean() - 20  # the desk is darker than the paper


def test_squared_paper_is_printed_lighter_than_the_writing():
    from photo_digits import squared_paper

    alpha = np.zeros((200, 300), np.float32)
    alpha[80:120, 100:200] = 1.0
    lined = squared_paper(alpha, 100, np.random.default_rng(0))
    assert np.array_equal(lined[alpha == 1], alpha[alpha == 1])  # the writing as it was
    printed = lined[alpha == 0]
    strength = printed.max()
    assert 0.15 <= strength <= 0.35 and set(np.unique(printed)) == {0.0, strength}
    # lines both ways, 40-75 px apart (cells 0.4-0.75 of the digits' height)
    for axis in (0, 1):
        on = np.flatnonzero((lined == strength).mean(axis) > 0.5)
        starts = on[np.r_[True, np.diff(on) > 1]]
        assert len(starts) >= 3 and 40 <= np.median(np.diff(starts)) <= 76


@pytest.mark.parametrize(("truth", "text", "plain_right", "kind"), [
    ("12\n345", "12", [True] * 5, "lines"),  # a line lost
    ("12\n345", "12\n34\n5", [True] * 5, "lines"),
    ("12\n345", "12\n35", [True] * 5, "characters"),  # a digit dropped ...
    ("12.50", "1250", [True] * 4, "characters"),  # ... or a point
    ("12.50", "12.58", [True, True, True, True], "picture"),  # the 0 reads right on its own: the photo lost it
    ("12.50", "12.58", [True, True, True, False], "digit model"),  # the 0 is misread on its own too
    ("12.50", "12,50", [True] * 4, "marks"),
    ("12 345", "12.345", [True] * 5, "marks"),
    ("12.50", "12.5.", [True] * 4, "picture"),  # a digit the model reads right on its own read as a mark
    ("12.50", "12.5.", [True, True, True, False], "marks"),  # one it misreads on its own too
    # one wrong digit the model reads right on its own is enough for "picture", whatever else is wrong
    ("12.50\n7", "17,50\n1", [True, False, True, True, True], "picture"),
    ("12.50\n7", "17,50\n7", [True, False, True, True, True], "marks"),
])
def test_a_misread_is_put_where_it_went_wrong(truth, text, plain_right, kind):
    assert read_lines.misread_kind(truth, text, np.array(plain_right)) == kind


def test_a_run_that_leaves_out_a_row_of_a_shared_stream_says_which_rows_drew_other_pictures(monkeypatch):
    import hashlib

    from digitnet.recognizer import Recognizer

    seen = []

    def read(self, picture):  # the pictures each row hands the reader, not the reading
        data = picture if isinstance(picture, bytes) else np.ascontiguousarray(picture).tobytes()
        seen.append(hashlib.sha256(data).hexdigest())
        return {"path": None, "text": "", "lines": [], "digits": [], "error": None, "note": None}

    monkeypatch.setattr(Recognizer, "read", read)

    def drawn(rows: tuple[str, ...]) -> list[str]:
        seen.clear()
        read_lines.run(None, n=2, seed=0, rows=rows)
        return list(seen)

    together, alone = drawn(("touching_pairs", "overlapping")), drawn(("overlapping",))
    assert len(together) == 4 and alone != together[2:]  # overlapping drew other pictures without touching pairs
    assert read_lines.shared_stream_note(("overlapping",)).startswith("note: overlapping draws other pictures")
    assert drawn(("spaced", "writers"))[2:] == drawn(("writers",))  # a row with its own generator: the same
    assert read_lines.shared_stream_note(("writers",)) is None
    assert read_lines.shared_stream_note(read_lines.ROWS) is None
    # each stream from its start: the same pictures as a full run
    assert read_lines.shared_stream_note(("multi_line", "separators", "touching_pairs")) is None
    note = read_lines.shared_stream_note(("separators", "touching_pairs", "long"))
    assert "separators, long draw" in note
    for stream in read_lines.SHARED_STREAMS:  # in the order the run draws them
        assert list(stream) == [row for row in read_lines.ROWS if row in stream]


@pytest.mark.parametrize("brush", [1, 2, 4])
def test_a_drawn_digit_is_its_centre_line_as_wide_as_the_brush(mnist, brush):
    eight = mnist.test_images[np.flatnonzero(mnist.test_labels == 8)[0]]
    drawn = read_lines.drawn_ink(eight, 200, 0.0, brush)
    assert set(np.unique(drawn)) == {0.0, 1.0}  # a pencil tool: ink or paper, no blur
    assert stroke_width(drawn > 0.5) <= 2 * brush  # as wide as the brush (a slanted stroke's rows run longer)
    assert abs(drawn.shape[0] - 200) < 0.1 * 200  # the digit's height kept
    assert len(connected_components(drawn > 0.5)[1]) == 1  # the 8 in one stroke, as its pen drew it


def test_the_drawn_row_reads_screenshots_of_its_numbers(mnist):
    keeper = Keeper()
    images, labels = mnist.test_images[:200], mnist.test_labels[:200]
    result = read_lines._numbers_row(keeper, images, labels, np.random.default_rng(0), 3, (2, 6), 0.05, 0.05,
                                     "drawn", [], drawn=read_lines.DRAWN_HEIGHT)
    pictures = keeper.pictures
    assert result["n"] == 3 and len(pictures) == 3
    import io

    from PIL import Image
    for png in pictures:
        picture = np.asarray(Image.open(io.BytesIO(png)))
        assert picture.ndim == 2 and picture.max() == 255 and picture.min() == 0  # black on a white canvas
        assert stroke_width(picture < 128) <= 2 * read_lines.DRAWN_BRUSH


def test_the_turned_row_photographs_its_numbers_turned(mnist):
    keeper = Keeper()
    images, labels = mnist.test_images[:200], mnist.test_labels[:200]
    read_lines._numbers_row(keeper, images, labels, np.random.default_rng(0), 6, (3, 6), 0.05, 0.05, "turned", [],
                            turn=read_lines.TURN)
    angles = []
    for picture in keeper.gray():  # the writing's main axis: its ink's covariance
        ys, xs = np.nonzero(picture < np.median(picture) - 60)
        spread, axes = np.linalg.eigh(np.cov(np.stack([xs, ys]).astype(float)))
        angles.append(abs(np.degrees(np.arctan(axes[1, 1] / axes[0, 1]))))
    assert len(angles) == 6 and min(angles) > 5 and max(angles) < 34


def test_the_slanted_row_draws_numbers_by_a_hand_that_leans(mnist, monkeypatch):
    from digitnet.vision.lines import MNIST_SLANT, writing_slant
    from digitnet.vision.pipeline import find_writing

    keeper, shears = Keeper(), []

    def slanted(alpha: np.ndarray, shear: float) -> np.ndarray:
        shears.append(shear)
        return lean(alpha, shear)

    lean = read_lines.slanted
    monkeypatch.setattr(read_lines, "slanted", slanted)
    images, labels = mnist.test_images[:200], mnist.test_labels[:200]
    read_lines._numbers_row(keeper, images, labels, np.random.default_rng(0), 12, (3, 7), 0.05, 0.05, "slanted", [],
                            slant=read_lines.SLANT)
    shears = np.array(shears)
    low, high = read_lines.SLANT
    assert len(shears) == 12 and ((np.abs(shears) >= low) & (np.abs(shears) <= high)).all()
    assert 0 < (shears < 0).sum() < 6  # a few writers lean back
    # Each picture leans as its writer was drawn to (y runs down: a forward lean measures negative), on top of the
    # MNIST digits' own lean.
    measured = np.array([writing_slant(find_writing(picture)) for picture in keeper.gray()])
    assert np.corrcoef(measured, -shears)[0, 1] > 0.9
    assert np.abs(measured + shears - MNIST_SLANT[0]).max() < 0.45
