"""How well does a model read digits in photos? MNIST test digits, photographed the way a phone sees them.

Each MNIST *test* digit is drawn as a pen stroke on paper: dark or blue ink on off-white paper with a
little texture, uneven light (a gradient, sometimes a soft shadow), a random size (40-300 px tall) and
position, rotated up to ±12°, blurred, noisy and saved as JPEG. Numbers are 2-6 such digits on a line,
with uneven gaps; 5% of neighbours touch (--touching). Every picture goes through the real pipeline as JPEG bytes.

    python benchmarks/photo_digits.py [--model DIR] [--n 1000] [--numbers 200] [--seed 0] [--json]

Reports single-digit accuracy next to the model's accuracy on the same digits as plain MNIST images,
and exact-match accuracy on numbers, the misread numbers sorted by where they went wrong (:func:`misread_kind`).
``--examples DIR`` writes a few sample pictures (the repo's examples/).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from digitnet.data import DEFAULT_VAL_SIZE, load_mnist
from digitnet.recognizer import Recognizer
from digitnet.vision.pipeline import DEFAULT_READER, READERS

MIN_HEIGHT, MAX_HEIGHT = 40, 300  # digit height in pixels
MAX_ROTATION = 12.0  # degrees
TOUCHING = 0.05  # chance that two neighbouring digits of a number touch


# ----------------------------------------------------------------------------------------- drawing


def ink_alpha(digit: np.ndarray, height: int, angle: float) -> np.ndarray:
    """An MNIST digit as a pen stroke ``height`` px tall (its 20-px box scaled), rotated: float 0..1 cropped to ink."""
    side = max(8, round(height * 28 / 20))
    big = Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC)
    big = big.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
    alpha = np.asarray(big, np.float32) / max(float(np.asarray(big).max()), 1.0)
    # Upscaled MNIST is blurry; a pen line has a crisp edge. Steepen the ramp around the stroke's half level
    # (relative to the digit's own darkest ink, so that the few faint MNIST digits keep their strokes).
    alpha = np.clip((alpha - 0.3) / 0.4, 0, 1)
    rows, cols = np.flatnonzero(alpha.max(1) > 0), np.flatnonzero(alpha.max(0) > 0)
    return alpha[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def photograph(alpha: np.ndarray, rng: np.random.Generator, focus_size: float | None = None,
               desk: np.ndarray | None = None) -> bytes:
    """Ink coverage ``alpha`` (H, W) as a JPEG phone photo of ink on paper.

    The defocus is relative to ``focus_size`` (default: the picture's short side, about a number's size); a
    page of several lines passes a size like its numbers', else its digits would be blurred away. ``desk``
    (H, W, 0..1): how much of each pixel is the surface the sheet lies on rather than the sheet (see ``on_desk``).
    """
    h, w = alpha.shape
    # (drawn first, so that pictures without a desk keep the stream of draws they always had)
    surface = desk_colour(rng) if desk is not None else None
    # Paper: warm off-white with a faint texture; ink: black-ish or ballpoint blue, not fully opaque.
    base = rng.uniform(0.80, 0.97)
    paper = np.array([base, base - rng.uniform(0.0, 0.04), base - rng.uniform(0.02, 0.10)], np.float32)
    if rng.random() < 0.5:
        ink = np.full(3, rng.uniform(0.05, 0.25), np.float32) + rng.uniform(-0.03, 0.03, 3).astype(np.float32)
    else:
        ink = np.array([rng.uniform(0.05, 0.2), rng.uniform(0.1, 0.3), rng.uniform(0.45, 0.75)], np.float32)
    coverage = alpha * rng.uniform(0.8, 1.0)
    texture = smooth_noise(h, w, rng, cells=8) * 0.03
    image = (paper + texture[..., None]) * (1 - coverage[..., None]) + ink * coverage[..., None]
    if desk is not None:
        grain = 1 + smooth_noise(h, w, rng, cells=24) * DESK_GRAIN  # its reflectance varies: a share of it
        image = image * (1 - desk[..., None]) + surface * grain[..., None] * desk[..., None]
    # Light: a linear falloff in a random direction, and half the time a soft-edged shadow.
    ys, xs = np.mgrid[:h, :w].astype(np.float32)
    theta = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(theta) * xs / w + np.sin(theta) * ys / h)
    ramp = (ramp - ramp.min()) / max(ramp.max() - ramp.min(), 1e-6)
    light = 1 - rng.uniform(0.1, 0.45) * ramp
    if rng.random() < 0.5:
        phi = rng.uniform(0, 2 * np.pi)
        edge = np.cos(phi) * (xs - rng.uniform(0, w)) + np.sin(phi) * (ys - rng.uniform(0, h))
        softness = rng.uniform(0.02, 0.15) * max(h, w)
        light *= 1 - rng.uniform(0.15, 0.45) / (1 + np.exp(-edge / softness))
    image = image * light[..., None]
    # Camera: defocus relative to the digit's size, sensor noise, JPEG.
    image = np.clip(image, 0, 1)
    pil = Image.fromarray((image * 255).round().astype(np.uint8))
    sigma = rng.uniform(0.0, 0.012) * (min(h, w) if focus_size is None else focus_size) + rng.uniform(0, 0.6)
    if sigma > 0.3:
        pil = pil.filter(ImageFilter.GaussianBlur(sigma))
    noisy = np.asarray(pil, np.float32) / 255 + rng.normal(0, rng.uniform(0.005, 0.04), (h, w, 3))
    pil = Image.fromarray((np.clip(noisy, 0, 1) * 255).round().astype(np.uint8))
    out = io.BytesIO()
    pil.save(out, "JPEG", quality=int(rng.integers(35, 92)))
    return out.getvalue()


DESK_SIDE = (0.05, 0.35)  # the desk showing beside the sheet, in heights of the sheet's picture ...
SHEET_OFF_EDGE = 0.25  # ... except on a side where the sheet runs off the photo's edge (this often)
SHEET_TILT = 8.0  # degrees
DESK_GRAIN = 0.15  # a table's own texture (wood, a pattern), finer than the paper's: ±15% of its brightness


def desk_colour(rng: np.random.Generator) -> np.ndarray:
    """What a sheet lies on, darker than paper: a black desk, dark or mid wood, or a gray table (RGB 0..1)."""
    kind = rng.integers(3)
    if kind == 0:
        return np.full(3, rng.uniform(0.03, 0.15), np.float32)
    if kind == 1:
        return (np.array([0.42, 0.30, 0.20]) * rng.uniform(0.4, 1.3)).astype(np.float32)
    return np.full(3, rng.uniform(0.3, 0.6), np.float32) + rng.uniform(-0.03, 0.03, 3).astype(np.float32)


def on_desk(alpha: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A sheet's ink coverage ``alpha`` photographed where it lies: the desk showing round it (on each side, or
    the sheet running off the photo there), the sheet turned a little. Returns the photo's ink coverage and how
    much of each pixel is desk, for ``photograph``."""
    h, w = alpha.shape
    sides = [0 if rng.random() < SHEET_OFF_EDGE else int(h * rng.uniform(*DESK_SIDE)) for _ in range(4)]
    top, right, bottom, left = sides
    angle = rng.uniform(-SHEET_TILT, SHEET_TILT)
    ink = Image.fromarray(alpha.astype(np.float32), "F").rotate(angle, Image.Resampling.BILINEAR, expand=True)
    sheet = Image.fromarray(np.ones((h, w), np.float32), "F").rotate(angle, Image.Resampling.BILINEAR, expand=True)
    ink, sheet = np.asarray(ink, np.float32), np.asarray(sheet, np.float32)
    # The turned sheet's corners stick out of the photo where a side has no desk: crop back to the sheet's size there.
    dy, dx = (ink.shape[0] - h) // 2, (ink.shape[1] - w) // 2
    rows = slice(dy if not top else 0, ink.shape[0] - (dy if not bottom else 0))
    cols = slice(dx if not left else 0, ink.shape[1] - (dx if not right else 0))
    ink, sheet = ink[rows, cols], sheet[rows, cols]
    pad = ((top, bottom), (left, right))
    return np.pad(ink, pad), 1 - np.clip(np.pad(sheet, pad), 0, 1)


def squared_paper(alpha: np.ndarray, height: int, rng: np.random.Generator) -> np.ndarray:
    """``alpha`` written on squared paper (an exercise book): printed lines both ways, cells 0.4-0.75 of a digit's
    ``height``, 1.5-3% of it wide, printed at 15-35% of the ink's coverage (so in the ink's colour, lighter)."""
    cell = height * rng.uniform(0.4, 0.75)
    width = max(1.0, height * rng.uniform(0.015, 0.03))
    strength = rng.uniform(0.15, 0.35)
    ys, xs = np.mgrid[:alpha.shape[0], :alpha.shape[1]].astype(np.float32)
    oy, ox = rng.uniform(0, cell, 2)
    on_line = (((ys + oy) % cell) < width) | (((xs + ox) % cell) < width)
    return np.maximum(alpha, on_line * np.float32(strength))


def notebook_paper(alpha: np.ndarray, height: int, rng: np.random.Generator) -> np.ndarray:
    """``alpha`` (one line of writing) on a notebook's ruled paper: the writing standing on a ruled line (0-10% of
    its ``height`` above it), the lines 1.1-1.7 heights apart and 2-5% of it wide (0.1-0.3 mm under 5-7 mm digits),
    and in three pictures of four the page's margin, a vertical line as wide 0.1-1 heights left of the writing,
    from the picture's top to its bottom (the sheet widened to the left where it would not fit). Printed in the
    ink's colour at the strength their own colour's brightness gives against a pen's (the picture pipeline reads
    brightness alone): light blue ruled lines 10-25%, the margin from pink to dark red 25-65%."""
    h, w = alpha.shape
    rows, cols = np.flatnonzero(alpha.max(1) > 0.5), np.flatnonzero(alpha.max(0) > 0.5)
    spacing = height * rng.uniform(1.1, 1.7)
    width = max(1.0, height * rng.uniform(0.02, 0.05))
    baseline = rows[-1] + 1 + height * rng.uniform(0.0, 0.1)
    ys, xs = np.mgrid[:h, :w].astype(np.float32)
    ruled = ((ys - baseline) % spacing) < width
    printed = ruled * np.float32(rng.uniform(0.1, 0.25))
    if rng.random() < 0.75:
        left = cols[0] - height * rng.uniform(0.1, 1.0) - width
        if left < 2:  # the sheet reaches further left, past the margin, as a page does
            extra = int(np.ceil(2 - left + height * rng.uniform(0.05, 0.3)))
            alpha, printed = np.pad(alpha, ((0, 0), (extra, 0))), np.pad(printed, ((0, 0), (extra, 0)))
            printed[:, :extra] = printed[:, extra:extra + 1]  # the ruled lines run on
            left += extra
            xs = np.mgrid[:h, :alpha.shape[1]][1].astype(np.float32)
        margin = (xs >= left) & (xs < left + width)
        printed = np.maximum(printed, margin * np.float32(rng.uniform(0.25, 0.65)))
    return np.maximum(alpha, printed)


def smooth_noise(h: int, w: int, rng: np.random.Generator, cells: int) -> np.ndarray:
    """Smooth noise in -1..1 over an (h, w) picture, varying over ``cells`` cells across (bicubic, from a grid)."""
    coarse = Image.fromarray(rng.uniform(-1, 1, (cells, cells)).astype(np.float32), "F")
    return np.asarray(coarse.resize((w, h), Image.Resampling.BICUBIC), np.float32)


def place(alpha: np.ndarray, rng: np.random.Generator, margin: tuple[float, float] = (0.2, 1.0)) -> np.ndarray:
    """Put the ink on a larger sheet at a random position (margins a random fraction of the ink's size)."""
    h, w = alpha.shape
    size = max(h, w)
    top, bottom = (int(rng.uniform(*margin) * size) + 2 for _ in range(2))
    left, right = (int(rng.uniform(*margin) * size) + 2 for _ in range(2))
    sheet = np.zeros((h + top + bottom, w + left + right), np.float32)
    sheet[top:top + h, left:left + w] = alpha
    return sheet


def digit_picture(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """One MNIST digit as a phone photo."""
    height = int(rng.integers(MIN_HEIGHT, MAX_HEIGHT + 1))
    alpha = ink_alpha(digit, height, rng.uniform(-MAX_ROTATION, MAX_ROTATION))
    return photograph(place(alpha, rng), rng)


def number_alpha(digits: list[np.ndarray], rng: np.random.Generator, height: int | None = None,
                 touching: float = TOUCHING, overlap: float = 0.05,
                 pitch: tuple[float, float] | None = None,
                 draw: Callable[[np.ndarray, int, float], np.ndarray] | None = None) -> tuple[np.ndarray, bool]:
    """Several MNIST digits written on a line: similar heights, uneven gaps, now and then touching.

    Each pair of neighbours touches (their ink boxes overlap by up to 5% of the height) with probability
    ``touching``. ``pitch``: instead, the digits' centres stand evenly this many heights apart (a number drawn
    from that range, each step ±5%), as in cells, however wide each digit is. Returns the ink and whether
    any neighbours touch. ``draw(digit, height, angle)``: how each digit becomes ink (default :func:`ink_alpha`).
    """
    draw = draw or ink_alpha
    height = height or int(rng.integers(MIN_HEIGHT, MAX_HEIGHT + 1))
    inks = [draw(d, round(height * rng.uniform(0.9, 1.1)), rng.uniform(-MAX_ROTATION, MAX_ROTATION))
            for d in digits]
    gaps = [height * (rng.uniform(-overlap, 0.0) if rng.random() < touching else rng.uniform(0.05, 0.4))
            for _ in inks[1:]]
    tops = [int(rng.uniform(-0.05, 0.05) * height) for _ in inks]
    lefts, x = [], 0.0
    if pitch is not None:
        step = rng.uniform(*pitch) * height
        centres = np.cumsum([0.0] + [step * rng.uniform(0.95, 1.05) for _ in inks[1:]]) + height
        lefts = [int(round(c - a.shape[1] / 2)) for c, a in zip(centres, inks, strict=True)]
        gaps = [lefts[i + 1] - lefts[i] - inks[i].shape[1] for i in range(len(inks) - 1)]
        shift = min(lefts)
        lefts = [left - shift for left in lefts]
    for i, a in enumerate(inks if pitch is None else ()):
        lefts.append(int(round(x)))
        x += a.shape[1] + (gaps[i] if i < len(gaps) else 0)
    base = -min(t + (height - a.shape[0]) // 2 for t, a in zip(tops, inks, strict=True))
    line = np.zeros((base + max(t + (height - a.shape[0]) // 2 + a.shape[0] for t, a in zip(tops, inks, strict=True))
                     + height, max(left + a.shape[1] for left, a in zip(lefts, inks, strict=True)) + 1), np.float32)
    for a, left, top in zip(inks, lefts, tops, strict=True):
        y = base + top + (height - a.shape[0]) // 2
        region = line[y:y + a.shape[0], left:left + a.shape[1]]
        np.maximum(region, a, out=region)  # where strokes cross, the ink is simply there
    rows = np.flatnonzero(line.max(1) > 0)
    return line[rows[0]:rows[-1] + 1], any(g <= 0 for g in gaps)


def number_picture(digits: list[np.ndarray], rng: np.random.Generator,
                   touching: float = TOUCHING) -> tuple[bytes, bool]:
    """A number as a phone photo, and whether some of its digits touch."""
    height = int(rng.integers(MIN_HEIGHT, MAX_HEIGHT + 1))
    alpha, touching = number_alpha(digits, rng, height, touching)
    return photograph(place(alpha, rng, margin=(0.05, 0.3)), rng), touching


# ------------------------------------------------------------------------------------- measuring


def benchmark_digits(split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """The digits a benchmark draws: the MNIST *test* split (what we report), or ``val``, the 5,000 held-out
    training digits the trainer validates on (for choosing between readers or settings without looking at test)."""
    mnist = load_mnist()
    if split == "test":
        return mnist.test_images, mnist.test_labels
    if split == "val":
        return mnist.train_images[-DEFAULT_VAL_SIZE:], mnist.train_labels[-DEFAULT_VAL_SIZE:]
    if split == "train":  # what the trainer trains on: for reader_samples.py, which makes training data, never measures
        return mnist.train_images[:-DEFAULT_VAL_SIZE], mnist.train_labels[:-DEFAULT_VAL_SIZE]
    raise ValueError(f"digits {split!r}: choose test, val or train")


MISREADS = ("lines", "characters", "picture", "marks", "digit model")


def misread_kind(truth: str, text: str, alone: np.ndarray) -> str:
    """Where a misread picture went wrong, the first of ``MISREADS`` that holds: a line more or fewer ("lines"); a
    line with a character more or fewer ("characters": a digit or mark dropped, added, or two run together); a
    digit read wrong that the digit model reads right as its plain MNIST 28×28 ("picture": the photo, the ink or
    the cut lost it); a mark or a space read wrong ("marks"); else only digits that the digit model misreads on
    their own ("digit model": the digit itself is hard for it). ``alone``: per digit of ``truth``, in order, whether
    the digit model reads its plain 28×28 right (:func:`plain_right`)."""
    lines, read = truth.split("\n"), text.split("\n")
    if len(lines) != len(read):
        return "lines"
    if any(len(a) != len(b) for a, b in zip(lines, read, strict=True)):
        return "characters"
    ordinal = np.cumsum([c.isdigit() for c in truth]) - 1  # which digit of the truth each character is
    wrong = [k for k, (a, b) in enumerate(zip(truth, text, strict=True)) if a != b]
    if any(truth[k].isdigit() and alone[ordinal[k]] for k in wrong):
        return "picture"
    if any(not truth[k].isdigit() or not text[k].isdigit() for k in wrong):
        return "marks"
    return "digit model"


def read_answer(recognizer: Recognizer, picture: bytes, truth: str) -> dict:
    """``recognizer.read(picture)`` for a benchmark picture that shows ``truth``. A recognizer that keeps what it
    read as training data (``reader_samples.SampleRecorder``) is told the truth as well."""
    answer = recognizer.read(picture)
    record = getattr(recognizer, "record_truth", None)
    if record is not None:
        record(truth)
    return answer


def plain_right(recognizer: Recognizer, images: np.ndarray, labels: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Per digit of ``index``: whether the digit model reads its plain MNIST 28×28 right."""
    return recognizer.classify(images[index]).argmax(1) == labels[index]


def run(model: str | None, n: int, numbers: int, seed: int, save: str | None = None,
        touching: float = TOUCHING, reader: str = DEFAULT_READER, line_model: str | None = "line",
        split: str = "test", recognizer: Recognizer | None = None) -> dict:
    """Measure (``recognizer``: this one instead of ``model`` and ``line_model`` loaded with ``reader``)."""
    rng = np.random.default_rng(seed)
    images, labels = benchmark_digits(split)
    if recognizer is None:
        recognizer = Recognizer.from_pretrained(model, line_model=line_model, reader=reader)
    result = {"model": str(recognizer.loaded.path), "arch": recognizer.spec.name, "seed": seed, "touching": touching,
              "reader": recognizer.reader, "digits": split,
              "model_test_accuracy": recognizer.metadata.get("metrics", {}).get("test_accuracy")}
    failures = []

    if n:
        index = rng.choice(len(images), size=n, replace=False)
        plain = recognizer.classify(images[index]).argmax(1)
        started = time.perf_counter()
        pictures = [digit_picture(images[i], rng) for i in index]
        made = time.perf_counter()
        answers = []
        for start in range(0, n, 256):
            answers.extend(recognizer.predict_batch(pictures[start:start + 256]))
        seconds = time.perf_counter() - made
        predicted = np.array([-1 if a["digit"] is None else a["digit"] for a in answers])
        correct = predicted == labels[index]
        result["single"] = {
            "n": n,
            "plain_mnist_accuracy": float((plain == labels[index]).mean()),
            "photo_accuracy": float(correct.mean()),
            "no_answer": int((predicted == -1).sum()),
            "ms_per_picture": 1000 * seconds / n,
            "generate_seconds": made - started,
        }
        result["single"]["gap_points"] = 100 * (result["single"]["plain_mnist_accuracy"]
                                                 - result["single"]["photo_accuracy"])
        failures += [(f"digit-{k}-{labels[i]}-as-{predicted[k]}", pictures[k])
                     for k, i in enumerate(index) if not correct[k]]

    if numbers:
        exact, plain_exact, digits_right, digits_total, wrong_length = 0, 0, 0, 0, 0
        by_touch = {True: [0, 0], False: [0, 0]}  # numbers with/without touching digits: [right, total]
        misread = dict.fromkeys(MISREADS, 0)  # the misread numbers by where they went wrong
        started = time.perf_counter()
        for k in range(numbers):
            length = int(rng.integers(2, 7))
            index = rng.choice(len(images), size=length, replace=False)
            truth = "".join(str(labels[i]) for i in index)
            picture, touch = number_picture([images[i] for i in index], rng, touching)
            text = read_answer(recognizer, picture, truth)["text"]
            exact += text == truth
            alone = plain_right(recognizer, images, labels, index)
            plain_exact += bool(alone.all())
            by_touch[touch][0] += text == truth
            by_touch[touch][1] += 1
            digits_total += length
            if len(text) == length:
                digits_right += sum(a == b for a, b in zip(text, truth, strict=True))
            else:
                wrong_length += 1
            if text != truth:
                misread[misread_kind(truth, text, alone)] += 1
                failures.append((f"number-{k}-{truth}-as-{text or 'none'}", picture))
        result["numbers"] = {
            "n": numbers,
            "plain_mnist_exact_match": plain_exact / numbers,  # the same digits as plain MNIST images
            "exact_match": exact / numbers,
            "digit_accuracy": digits_right / digits_total,  # digits of wrong-length answers count as wrong
            "wrong_length": wrong_length,
            "misread": misread,
            "separate": by_touch[False][1],
            "exact_match_separate": by_touch[False][0] / max(by_touch[False][1], 1),
            "touching": by_touch[True][1],
            "exact_match_touching": by_touch[True][0] / max(by_touch[True][1], 1),
            "ms_per_picture": 1000 * (time.perf_counter() - started) / numbers,
        }
    if save:
        save_failures(save, failures)
    return result


def save_failures(directory: str, failures: list[tuple[str, bytes]]) -> None:
    """Write each misread picture (JPEG bytes) as DIRECTORY/<name>.jpg, spaces in names as '~'."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    for name, data in failures:
        (out / f"{name.replace(' ', '~')}.jpg").write_bytes(data)


def write_examples(directory: str, seed: int) -> list[Path]:
    """A few sample pictures for the README demo, drawn from MNIST test digits (PNG, losslessly kept)."""
    rng = np.random.default_rng(seed)
    mnist = load_mnist()
    first = {d: int(np.flatnonzero(mnist.test_labels == d)[0]) for d in range(10)}
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def save(name: str, alpha: np.ndarray) -> None:
        picture = Image.open(io.BytesIO(photograph(alpha, rng)))
        path = out / name
        picture.save(path, optimize=True)
        written.append(path)

    for digit in (7, 3, 5):
        save(f"digit-{digit}.png", place(ink_alpha(mnist.test_images[first[digit]], 96, rng.uniform(-8, 8)), rng))
    alpha, _ = number_alpha([mnist.test_images[first[d]] for d in (2, 0, 2, 6)], rng, 64, touching=0.0)
    save("number-2026.png", place(alpha, rng, margin=(0.1, 0.2)))
    return written


def print_table(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    title = f"photo digits — {result['arch']} ({result['model']}), seed {result['seed']}"
    table = Table("measure", "value", title=title)
    if "single" in result:
        s = result["single"]
        table.add_row("single digits", f"{s['n']}")
        table.add_row("  same digits as plain MNIST", f"{s['plain_mnist_accuracy']:.2%}")
        table.add_row("  as photos", f"{s['photo_accuracy']:.2%}")
        table.add_row("  gap", f"{s['gap_points']:.2f} points (target ≤ 2)")
        table.add_row("  no answer", f"{s['no_answer']}")
        table.add_row("  time", f"{s['ms_per_picture']:.1f} ms/picture")
    if "numbers" in result:
        s = result["numbers"]
        table.add_row("numbers (2-6 digits)", f"{s['n']}")
        table.add_row("  same digits as plain MNIST", f"{s['plain_mnist_exact_match']:.2%}")
        table.add_row("  exact match", f"{s['exact_match']:.2%} (target ≥ 95%)")
        table.add_row("  misread, by where", ", ".join(f"{kind} {count}" for kind, count in s["misread"].items()))
        table.add_row("  digit accuracy", f"{s['digit_accuracy']:.2%}")
        table.add_row("  all digits apart", f"{s['exact_match_separate']:.2%} of {s['separate']}")
        table.add_row("  some digits touching", f"{s['exact_match_touching']:.2%} of {s['touching']}")
        table.add_row("  wrong number of digits", f"{s['wrong_length']}")
        table.add_row("  time", f"{s['ms_per_picture']:.1f} ms/picture")
    Console().print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="model directory (default: the bundled model)")
    parser.add_argument("--n", type=int, default=1000, help="single-digit pictures")
    parser.add_argument("--numbers", type=int, default=200, help="pictures of numbers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--touching", type=float, default=TOUCHING,
                        help=f"chance that neighbouring digits of a number touch (default {TOUCHING})")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 is steadier on a busy machine)")
    parser.add_argument("--reader", default=DEFAULT_READER, help=f"how read reads a line: {', '.join(READERS)}")
    parser.add_argument("--line-model", default="line", help="line recognizer directory (default: the bundled one)")
    parser.add_argument("--digits", default="test", choices=("test", "val"),
                        help="draw MNIST test digits (report) or the held-out training digits (tune)")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    parser.add_argument("--save-failures", metavar="DIR", help="write the misread pictures here")
    parser.add_argument("--examples", metavar="DIR", help="write sample pictures here and exit")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.examples:
        for path in write_examples(args.examples, args.seed):
            print(path)
        return 0
    result = run(args.model, args.n, args.numbers, args.seed, args.save_failures, args.touching, args.reader,
                 args.line_model, args.digits)
    if not args.json:
        print_table(result)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
