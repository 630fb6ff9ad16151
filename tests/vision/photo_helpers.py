"""Pictures made from MNIST digits for the tests: ink on paper, lighting, numbers on a line."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from photo_digits import DESK_GRAIN, smooth_noise  # noqa: E402  (the benchmark's own desk grain)


def ink_of(digit: np.ndarray, height: int) -> np.ndarray:
    """An MNIST digit as ink coverage (0..1) ``height`` px tall, cropped to its ink."""
    side = round(height * 28 / 20)
    big = np.asarray(Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC), np.float32) / 255
    big = np.clip((big - 0.3) / 0.4, 0, 1)  # a crisp pen edge rather than blurry upscaled pixels
    rows, cols = np.flatnonzero(big.max(1) > 0), np.flatnonzero(big.max(0) > 0)
    return big[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def on_paper(ink: np.ndarray, shape: tuple[int, int] | None = None, at: tuple[int, int] | None = None,
             paper: float = 0.92, ink_level: float = 0.15, light: np.ndarray | None = None,
             noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """Ink drawn on a sheet of ``shape`` at ``at`` (top, left), dark on light; uint8 gray."""
    h, w = ink.shape
    shape = shape or (h + 40, w + 40)
    at = at or ((shape[0] - h) // 2, (shape[1] - w) // 2)
    coverage = np.zeros(shape, np.float32)
    coverage[at[0]:at[0] + h, at[1]:at[1] + w] = ink
    image = paper * (1 - coverage) + ink_level * coverage
    if light is not None:
        image = image * light
    if noise:
        image = image + np.random.default_rng(seed).normal(0, noise, shape)
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8)


def digit_photo(digit: np.ndarray, height: int = 80, **kwargs) -> np.ndarray:
    return on_paper(ink_of(digit, height), **kwargs)


def number_ink(digits: list[np.ndarray], height: int = 70, gaps: list[int] | None = None) -> np.ndarray:
    """Digits side by side on one line (ink coverage); a negative gap makes neighbours overlap."""
    inks = [ink_of(d, height) for d in digits]
    gaps = gaps if gaps is not None else [height // 4] * (len(inks) - 1)
    width = sum(i.shape[1] for i in inks) + sum(gaps)
    line = np.zeros((max(i.shape[0] for i in inks), width), np.float32)
    x = 0
    for k, ink in enumerate(inks):
        top = (line.shape[0] - ink.shape[0]) // 2
        region = line[top:top + ink.shape[0], x:x + ink.shape[1]]
        np.maximum(region, ink, out=region)
        x += ink.shape[1] + (gaps[k] if k < len(gaps) else 0)
    return line


def sheet_on_desk(digits: list[np.ndarray], desk: float, margin: int = 60, seed: int = 0,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``digits`` written on a sheet lying on a desk ``desk`` bright with photo_digits.py's grain (as read_lines.py's
    on-desk row draws it), ``margin`` px of desk showing above, below and left of the sheet, the sheet running off
    the photo's right edge; uint8 gray, and the writing's mask."""
    ink = number_ink(digits, height=50)
    sheet = on_paper(ink, shape=(ink.shape[0] + 50, ink.shape[1] + 60), noise=0.01, seed=seed)
    shape = (sheet.shape[0] + 2 * margin, sheet.shape[1] + margin)
    photo = desk * (1 + DESK_GRAIN * smooth_noise(*shape, np.random.default_rng(seed), cells=24))
    photo[margin:margin + sheet.shape[0], margin:] = sheet / 255
    truth = np.zeros(shape, bool)
    truth[margin + 25:margin + 25 + ink.shape[0], margin + 30:margin + 30 + ink.shape[1]] = ink > 0.5
    return (np.clip(photo, 0, 1) * 255).round().astype(np.uint8), truth


def call_guarded(function, fifos=(), timeout: float = 60.0):
    """``function()`` in a thread: fail instead of hanging if it blocks (on opening a FIFO, say).

    If the call is still running after ``timeout`` seconds, each FIFO in ``fifos`` is opened for writing and
    closed, which releases a reader stuck in ``open`` (it then reads end of file), and the test fails.
    """
    import os
    import threading

    import pytest

    outcome = {}

    def target():
        try:
            outcome["value"] = function()
        except BaseException as exc:  # noqa: BLE001 (re-raised in the test's thread)
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        for fifo in fifos:
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
        thread.join(10)
        pytest.fail(f"still running after {timeout:.0f} s: blocked reading a FIFO?")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def model_sees(picture: np.ndarray) -> np.ndarray | None:
    """What the model is given for a picture of one digit: ``prepare_digit``'s 28×28 (None: no digit in it)."""
    from digitnet.vision.pipeline import prepare_digit

    return prepare_digit(picture).image


def hand_frame(shape: tuple[int, int], box: tuple[int, int, int, int], pen: int, kind: str = "circle",
               gap: float = 0.0) -> np.ndarray:
    """A frame drawn with a ``pen`` px pen (bool): an ellipse in ``box`` (x0, y0, x1, y1), or a box with its sides
    bowed a little; ``gap``: the share of the way round left undrawn."""
    canvas = Image.new("L", (shape[1], shape[0]))
    draw = ImageDraw.Draw(canvas)
    x0, y0, x1, y1 = box
    t = np.linspace(0, 2 * np.pi * (1 - gap), 200)
    if kind == "circle":
        xs, ys = (x0 + x1) / 2 + (x1 - x0) / 2 * np.cos(t), (y0 + y1) / 2 + (y1 - y0) / 2 * np.sin(t)
    else:  # a box traced by hand: its sides bow outwards by 2% of its height
        corners = np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)], float)
        side = np.minimum((t / (np.pi / 2)).astype(int), 3)
        along = t / (np.pi / 2) - side
        xs = corners[side, 0] + (corners[side + 1, 0] - corners[side, 0]) * along
        ys = corners[side, 1] + (corners[side + 1, 1] - corners[side, 1]) * along
        bow = 0.02 * (y1 - y0) * np.sin(np.pi * along)
        xs = xs + bow * np.where(side == 1, 1, np.where(side == 3, -1, 0))
        ys = ys + bow * np.where(side == 2, 1, np.where(side == 0, -1, 0))
    draw.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=255, width=pen, joint="curve")
    return np.asarray(canvas) > 127
