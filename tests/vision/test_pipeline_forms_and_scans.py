"""The pipeline on forms and coarse scans: box lines and combs go before segmentation, tiny pictures are read."""

from __future__ import annotations

import numpy as np
import pytest
from photo_helpers import hand_frame, ink_of, number_ink, sheet_on_desk
from PIL import Image

from digitnet.vision import pipeline
from digitnet.vision.pipeline import find_writing, prepare_digit, prepare_number
from digitnet.vision.preprocess import find_ink

LINE = 3  # printed line thickness, px


def in_box(ink: np.ndarray, pad: tuple[int, int, int, int] = (14, 14, 14, 14)) -> tuple[np.ndarray, np.ndarray]:
    """Ink coverage (0..1) inside a printed rectangle, ``pad`` (top, right, bottom, left) px of paper between them
    (0: the stroke touches the box): (dark-on-light uint8 picture, bool mask of the box)."""
    top, right, bottom, left = pad
    h, w = ink.shape
    shape = (h + top + bottom + 2 * LINE + 20, w + left + right + 2 * LINE + 20)
    box = np.zeros(shape, bool)
    y0, x0, y1, x1 = 10, 10, shape[0] - 10, shape[1] - 10
    box[y0:y1, x0:x1] = True
    box[y0 + LINE:y1 - LINE, x0 + LINE:x1 - LINE] = False
    coverage = box.astype(np.float32)
    region = coverage[y0 + LINE + top:y0 + LINE + top + h, x0 + LINE + left:x0 + LINE + left + w]
    np.maximum(region, ink, out=region)
    return (np.clip(0.92 - 0.8 * coverage, 0, 1) * 255).round().astype(np.uint8), box


def comb(inks: list[np.ndarray], cell: int = 90, offsets: list[int] | None = None,
         printed: float = 1.0) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """One digit per cell of a comb (a baseline with a tooth between cells, half the cell high), each digit
    standing on the baseline, centred in its cell or ``offsets`` px right of it; the comb printed ``printed`` as
    dark as the writing: (dark-on-light uint8 picture, each cell's x range)."""
    margin = 15
    shape = (cell + 2 * margin, len(inks) * cell + LINE + 2 * margin)
    coverage = np.zeros(shape, np.float32)
    base = margin + cell
    coverage[base:base + LINE, margin:margin + len(inks) * cell + LINE] = printed
    cells = []
    for k, ink in enumerate(inks):
        x = margin + k * cell
        coverage[base - cell // 2:base, x:x + LINE] = printed
        h, w = ink.shape
        left = x + (cell - w) // 2 + (offsets[k] if offsets else 0)
        region = coverage[base - h:base, left:left + w]  # its lowest stroke touches the baseline
        np.maximum(region, ink, out=region)
        cells.append((x, x + cell + LINE))
    coverage[base - cell // 2:base, margin + len(inks) * cell:margin + len(inks) * cell + LINE] = printed
    return (np.clip(0.92 - 0.8 * coverage, 0, 1) * 255).round().astype(np.uint8), cells


def tiny_scan(digit: np.ndarray, side: int, levels: int) -> np.ndarray:
    """A coarse scan of a digit filling its cell (ink box, aspect kept): uint8 ``side``×``side``, white on black,
    with ``levels`` gray levels (2: binary)."""
    rows, cols = np.flatnonzero(digit.max(1) > 0), np.flatnonzero(digit.max(0) > 0)
    crop = digit[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    size = max(crop.shape)
    square = np.zeros((size, size), np.uint8)
    square[(size - crop.shape[0]) // 2:, (size - crop.shape[1]) // 2:][:crop.shape[0], :crop.shape[1]] = crop
    small = np.asarray(Image.fromarray(square).resize((side, side), Image.Resampling.BOX), np.float32) / 255
    return (np.round(small / small.max() * (levels - 1)) * 255 / (levels - 1)).astype(np.uint8)


# ------------------------------------------------------------------------------------------- box lines


@pytest.mark.parametrize("digit", range(10))
def test_a_digit_touching_its_box_is_read_without_the_box(recognizer, clean_digits, digit):
    ink = ink_of(clean_digits[digit], 80)
    picture, box = in_box(ink, pad=(6, 10, 0, 10))  # its lowest stroke lies on the box's floor
    assert recognizer.predict(picture)["digit"] == digit
    found = find_writing(picture)
    # The walls, roof and floor are gone; the stroke lying on the floor is still there.
    assert not (found.mask & box)[:, :20].any() and not (found.mask & box)[:20].any()
    floor = picture.shape[0] - 10 - LINE
    assert np.flatnonzero(found.mask.any(1))[-1] >= floor - 3


def test_a_stroke_running_into_the_box_keeps_its_ink(recognizer, clean_digits):
    seven = ink_of(clean_digits[7], 80)
    picture, box = in_box(seven, pad=(0, 0, 14, 14))  # the 7's bar touches the roof, its end the right wall
    prepared = prepare_digit(picture, recognizer.classify)
    clean, _ = in_box(seven)
    clean_ink = find_writing(clean).mask
    assert prepared.image is not None and recognizer.classify(prepared.image[None]).argmax() == 7
    found = find_writing(picture).mask
    assert abs(int(found.sum()) - int(clean_ink.sum())) < 0.1 * clean_ink.sum()  # the bar is not taken with the roof


def test_a_postcode_in_a_comb_reads_as_five_digits_in_order(recognizer, clean_digits):
    digits = [3, 0, 7, 1, 9]
    picture, cells = comb([ink_of(clean_digits[d], 70) for d in digits])
    answer = recognizer.read(picture)
    assert answer["text"] == "30719"
    for found, (x0, x1) in zip(answer["digits"], cells, strict=True):
        left, top, right, bottom = found["box"]
        assert x0 <= left and right <= x1 + 1  # each digit inside its own cell, without the teeth
        assert bottom - top < 80  # and without the baseline's width or the teeth's height above it
    assert prepare_digit(picture, recognizer.classify).note.startswith("5 digits found")


def test_a_row_of_printed_boxes_is_cells_not_a_frame(mnist):
    """A form's row of boxes holds all the writing in its outline, as a frame drawn round a number does. Where digits
    run onto its lines they are one piece with it, the outline's ring takes some of their ink and it is less of it
    box lines, but the walls between the digits still make it a form, read cell by cell (30 rows of boxes as
    `real_world.py` prints them, 5 MNIST test digits each: taken for a frame, 13 were not read as boxes)."""
    import real_world  # (benchmarks/, on the path through photo_helpers)

    rng = np.random.default_rng(0)
    for _ in range(30):
        index = rng.choice(len(mnist.test_images), 5, replace=False)
        picture = real_world.boxed_number([mnist.test_images[i] for i in index], rng, comb=False)
        assert find_writing(picture).in_boxes


def test_digits_in_a_comb_get_no_spaces_however_they_sit_in_their_cells(recognizer, clean_digits):
    """A narrow 1 written at one side of its cell leaves a gap as wide as a space: the boxes space the digits."""
    digits = [1, 4, 1, 7]
    picture, _ = comb([ink_of(clean_digits[d], 60) for d in digits], cell=110, offsets=[-25, 25, -25, 25])
    answer = recognizer.read(picture)
    assert answer["text"] == "1417"
    assert [d["char"] for d in answer["digits"]] == ["1", "4", "1", "7"]


def test_a_comb_printed_in_a_light_colour_parts_the_digits_too(recognizer, clean_digits):
    """Forms are often printed in a light "dropout" colour, here a quarter of the writing's contrast: below the
    ink's threshold, so the comb is no ink, yet it holds the digits as a dark one does (no space beside a 1)."""
    digits = [1, 4, 1, 7]
    inks = [ink_of(clean_digits[d], 60) for d in digits]
    picture, _ = comb(inks, cell=110, offsets=[-25, 25, -25, 25], printed=0.25)
    alone, _ = comb([np.zeros_like(i) for i in inks], cell=110, offsets=[-25, 25, -25, 25], printed=0.25)
    ink = find_ink(picture)
    assert not (ink.mask & (alone < 200) & (picture > 150)).any()  # the comb is not ink (where no digit is on it)
    assert find_writing(picture).in_boxes
    assert recognizer.read(picture)["text"] == "1417"


@pytest.mark.parametrize("margin", [None, "left", "right"])
def test_faint_ruled_lines_are_paper_as_before(recognizer, clean_digits, margin):
    """Only a light form's cells count: faint lines running along the writing (ruled paper) or standing beside it
    (the page's margin line) part nothing, so a number written there reads as it does on plain paper, its space
    included."""
    digits = [clean_digits[d] for d in (4, 2, 7, 5)]
    coverage = number_ink(digits, height=60, gaps=[12, 60, 12])
    h, w = coverage.shape
    page = np.zeros((h + 80, w + 120), np.float32)
    page[40:40 + h, 60:60 + w] = coverage
    plain = (np.clip(0.92 - 0.8 * page, 0, 1) * 255).round().astype(np.uint8)
    ruled = page.copy()
    for y in (30, 40 + h + 4, 40 + h + 40):  # notebook ruling in a light colour, edge to edge
        ruled[y:y + 2] = np.maximum(ruled[y:y + 2], 0.2)
    if margin:
        x = 30 if margin == "left" else 60 + w + 30
        ruled[:, x:x + 2] = np.maximum(ruled[:, x:x + 2], 0.2)
    ruled = (np.clip(0.92 - 0.8 * ruled, 0, 1) * 255).round().astype(np.uint8)
    assert not find_writing(ruled).in_boxes
    assert recognizer.read(ruled)["text"] == recognizer.read(plain)["text"] == "42 75"


@pytest.mark.parametrize("margin", ["dark, broken where ruled lines cross it", "faint, darker in stretches"])
def test_a_notebook_margin_beside_the_number_is_not_a_1(recognizer, clean_digits, margin):
    """A notebook's margin: a red line from the page's top to its bottom, left of the number. Dark red passes for
    ink, and where the (light) ruled lines cross it the camera's blur leaves it broken; a lighter red is fainter
    than ink but darker in stretches (its print, the light). Read as ink, its pieces were 1s, some on lines of their
    own ("1\\n142 75\\n1")."""
    coverage = number_ink([clean_digits[d] for d in (4, 2, 7, 5)], height=60, gaps=[12, 60, 12])
    h, w = coverage.shape
    page = np.zeros((h + 160, w + 120), np.float32)
    page[80:80 + h, 70:70 + w] = coverage
    plain = (np.clip(0.92 - 0.8 * page, 0, 1) * 255).round().astype(np.uint8)
    ruled = np.arange(page.shape[0]) % 80 == 80 + h + 3 - 80  # under the writing and every 80 px (1.3 heights)
    page[ruled] = np.maximum(page[ruled], 0.15)
    line = np.full(page.shape[0], 0.7 if margin.startswith("dark") else 0.35, np.float32)
    if margin.startswith("dark"):
        for y in np.flatnonzero(ruled):
            line[max(0, y - 3):y + 5] = 0.3
    else:
        line[(np.arange(page.shape[0]) // 25) % 2 == 0] = 0.6
    page[:, 40:42] = np.maximum(page[:, 40:42], line[:, None])
    notebook = (np.clip(0.92 - 0.8 * page, 0, 1) * 255).round().astype(np.uint8)
    assert find_ink(notebook).mask[:, 40:42].any()  # the margin's darker part is ink ...
    writing = find_writing(notebook)
    assert not writing.mask[:, :60].any() and not writing.in_boxes  # ... and goes, leaving no cells
    assert recognizer.read(notebook)["text"] == recognizer.read(plain)["text"] == "42 75"


@pytest.mark.parametrize("offset", [0, 15, 30])
def test_squared_paper_is_paper_not_boxes(recognizer, clean_digits, offset):
    """Squared paper (an exercise book): faint lines both ways, cells narrower than the digits written over them.
    Its lines stand across the writing as a light form's walls do, but they cut through the digits instead of
    parting them: the number reads as on plain paper, not cut into the paper's cells (which read "4015" as
    "405")."""
    coverage = number_ink([clean_digits[d] for d in (4, 0, 1, 5)], height=90, gaps=[14, 14, 14])
    h, w = coverage.shape
    page = np.zeros((h + 80, w + 120), np.float32)
    page[40:40 + h, 60:60 + w] = coverage
    squared = page.copy()
    for at in range(offset, max(page.shape), 45):  # a cell half a digit high, lines a quarter of the ink's darkness
        squared[at:at + 2] = np.maximum(squared[at:at + 2], 0.25)
        squared[:, at:at + 2] = np.maximum(squared[:, at:at + 2], 0.25)
    plain, squared = ((np.clip(0.92 - 0.8 * p, 0, 1) * 255).round().astype(np.uint8) for p in (page, squared))
    assert not find_writing(squared).in_boxes
    assert recognizer.read(squared)["text"] == recognizer.read(plain)["text"] == "4015"


@pytest.mark.parametrize("desk", [0.06, 0.3])
@pytest.mark.parametrize("margin", [60, 200])
def test_a_note_on_a_desk_reads_as_on_plain_paper(recognizer, clean_digits, desk, margin):
    """A note photographed on a black desk or a gray table with a grain, small in the picture or large: the desk is
    not read (it was: its grain as a line of digits, or beside a wide desk the sheet as light ink, "023")."""
    photo, _ = sheet_on_desk([clean_digits[d] for d in (4, 0, 1, 5)], desk, margin)
    assert recognizer.read(photo)["text"] == "4015"


def test_pictures_without_lines_keep_all_their_ink(clean_digits):
    for digit in (1, 7, 4):  # a 1's stem and a 7's or 4's bars are long straight runs, but not box lines
        picture, _ = in_box(ink_of(clean_digits[digit], 80))
        plain = picture[10 + LINE + 8:-10 - LINE - 8, 10 + LINE + 8:-10 - LINE - 8]
        # Nothing is taken for a box line: the writing is all the ink find_ink finds.
        found = find_writing(plain)
        assert not found.in_boxes and np.array_equal(found.mask, find_ink(plain).mask)


# ---------------------------------------------------------------------------------------- coarse scans


@pytest.mark.parametrize(("side", "levels"), [(8, 17), (12, 2), (12, 17), (16, 2), (32, 17)])
def test_a_tiny_scan_is_read(recognizer, clean_digits, side, levels):
    pictures = [tiny_scan(clean_digits[d], side, levels) for d in range(10)]
    answers = recognizer.predict_batch(pictures)
    assert all(a["digit"] is not None for a in answers)
    right = sum(a["digit"] == d for d, a in enumerate(answers))
    assert right >= (9 if side <= 12 else 10)  # 8 and 12 px: the benchmark's targets are 93% and 95%


def test_a_digit_filling_its_frame_keeps_its_ink(recognizer, clean_digits):
    for digit in (0, 2, 6, 7):  # a 0's or 6's hole, a 2's base, a 7's bar: ink at the frame, or ink everywhere
        # A 12 px scan enlarged to 28×28 the usual way, edge to edge: not MNIST-like, so not passed through.
        scan = Image.fromarray(tiny_scan(clean_digits[digit], 12, 17)).resize((28, 28), Image.Resampling.BILINEAR)
        prepared = prepare_digit(np.asarray(scan), recognizer.classify)
        assert prepared.image is not None and recognizer.classify(prepared.image[None]).argmax() == digit
        found = find_writing(np.asarray(scan))
        on_edge = sum(int(side.any()) for side in (found.mask[0], found.mask[-1], found.mask[:, 0], found.mask[:, -1]))
        assert on_edge >= 2  # the ink touching the frame (two sides at least, by construction) was kept
        assert (~found.mask).sum() > 0.3 * found.mask.size  # and the digit did not become a blob


def test_a_tiny_number_is_read(recognizer, clean_digits):
    row = np.concatenate([tiny_scan(clean_digits[d], 16, 17) for d in (4, 2)], axis=1)
    number = prepare_number(row, recognizer.classify)
    assert "".join(str(int(p.argmax())) for p in number.probabilities) == "42"
    assert all(0 <= b[0] < b[2] <= 32 and 0 <= b[1] < b[3] <= 16 for b in number.boxes)  # boxes in the 32×16


def test_a_piece_narrower_than_a_stroke_at_the_right_edge_has_no_inside():
    """Whether lines cut through the writing's pieces looks inside each piece, a stroke in from its sides; a piece
    at the picture's right edge narrower than that (a hand-drawn box's corner cut by the picture) has no inside,
    and asking must not index past the edge (it raised IndexError and a photo could not be read)."""
    writing = np.zeros((40, 30), bool)
    writing[5:35, 2:22] = True  # a 0 drawn as a rectangle, strokes 3 px thick
    writing[8:32, 5:19] = False
    writing[10:30, 28:30] = True  # a sliver 2 px wide at the right edge
    across = np.zeros_like(writing)
    across[:, 25] = True  # between them
    pieces = np.array([[2, 5, 22, 35, 252], [28, 10, 30, 30, 40]])
    assert not pipeline._cuts_through(across, writing, pieces)
    across[:, 12] = True  # through the 0: one of two pieces, a third or more
    assert pipeline._cuts_through(across, writing, pieces)


@pytest.mark.parametrize("kind", ["circle", "box"])
def test_a_number_circled_or_boxed_by_hand_reads_as_on_plain_paper(recognizer, clean_digits, kind):
    """A total circled, an answer boxed on a worksheet: the frame drawn round the number is not read (it was: as
    0s and brackets, a box's sides as 1s), nor is one round a single digit."""
    coverage = number_ink([clean_digits[d] for d in (4, 0, 1, 5)], height=60, gaps=[14, 14, 14])
    h, w = coverage.shape
    page = np.zeros((h + 120, w + 160), np.float32)
    page[60:60 + h, 80:80 + w] = coverage
    room = (45, 25) if kind == "circle" else (20, 20)
    frame = hand_frame(page.shape, (80 - room[0], 60 - room[1], 80 + w + room[0], 60 + h + room[1]), 6, kind)
    plain, framed = ((np.clip(0.92 - 0.8 * p, 0, 1) * 255).round().astype(np.uint8)
                     for p in (page, np.maximum(page, frame)))
    assert recognizer.read(framed)["text"] == recognizer.read(plain)["text"] == "4015"
    margin = np.maximum(page, frame)
    margin[:, 20:24] = 0.6  # a notebook's margin beside it: a piece outside the frame, taken away as a line
    assert recognizer.read((np.clip(0.92 - 0.8 * margin, 0, 1) * 255).round().astype(np.uint8))["text"] == "4015"
    digit = np.zeros((200, 200), np.float32)
    seven = ink_of(clean_digits[7], 80)
    digit[60:60 + seven.shape[0], 70:70 + seven.shape[1]] = seven
    digit = np.maximum(digit, hand_frame(digit.shape, (30, 30, 170, 170), 6, kind))
    assert recognizer.predict((np.clip(0.92 - 0.8 * digit, 0, 1) * 255).round().astype(np.uint8))["digit"] == 7



def test_a_small_digit_in_a_comb_is_not_taken_for_dust(recognizer, clean_digits):
    """Ink finding drops pieces far smaller than the largest as dust, and in a form the largest is the comb: a 1
    written small in its cell would go with the dust. Once the comb is gone, the pieces are judged against the
    digits."""
    from digitnet.vision.pipeline import find_writing
    from digitnet.vision.preprocess import find_ink

    digits = [4, 0, 7, 3]
    picture, cells = comb([ink_of(clean_digits[d], 70) for d in digits] + [np.zeros((20, 10), np.float32)], cell=130)
    small = ink_of(clean_digits[1], 36)
    h, w = small.shape
    x = (cells[4][0] + cells[4][1] - w) // 2
    y = 15 + 130 - 65 - h // 2  # floating in the middle of the last cell, clear of the comb
    region = picture[y:y + h, x:x + w]
    np.minimum(region, (np.clip(0.92 - 0.8 * small, 0, 1) * 255).round().astype(np.uint8), out=region)
    assert not find_ink(picture).mask[y:y + h, x:x + w].any()  # dust beside the comb
    writing = find_writing(picture)
    assert writing.mask[y:y + h, x:x + w].any()  # without it, a digit
    assert recognizer.read(picture)["text"] == "40731"
