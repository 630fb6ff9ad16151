"""Where the picture pipeline spends its time: the photo benchmark's pictures through prepare_digit / prepare_number.

The pictures are ``benchmarks/photo_digits.py``'s phone photos (JPEG bytes, MNIST test digits, ``--seed``).
Each primitive of ``digitnet.vision`` is wrapped with a timer, so the table shows, per picture, the time spent
inside it (inclusive: ``find_ink`` holds ``background`` and ``connected_components``). Numbers are read with
``--reader`` (default: ``read``'s): "recognize_lines" is the line model's time, "classify" the digit model's (its
vote on the line model's digits, or the segmenter's candidate cuts), not picture preparation.
Times are CPU time of the calling thread (OpenCV and torch run on one thread here), which a busy shared
machine disturbs far less than wall-clock time.

    python benchmarks/pipeline_speed.py [--n 300] [--numbers 100] [--seed 0] [--threads 1] [--reader R] [--json]

To compare with another version of the package, run it with that version first on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # photo_digits.py

import photo_digits  # noqa: E402

from digitnet.data import load_mnist  # noqa: E402
from digitnet.recognizer import Recognizer  # noqa: E402
from digitnet.vision import pipeline  # noqa: E402

MODULES = ["digitnet.vision.io", "digitnet.vision.preprocess", "digitnet.vision.boxes", "digitnet.vision.segment",
           "digitnet.vision.lines", "digitnet.vision.line_reader", "digitnet.vision.pipeline"]
# The primitives timed, where a version of the package has them (old helpers come and go).
PRIMITIVES = ["load_picture", "find_writing", "find_ink", "working_gray", "_resize_area", "ink_is_dark", "background",
              "_low_res", "_median_filter", "without_specks", "connected_components", "box_lines", "find_groups",
              "seams", "normalize_digit", "stroke_width", "find_lines", "dropped_specks", "line_image", "items_of"]


def timed(name: str, call, seconds: dict[str, float], calls: dict[str, int]):
    """``call`` wrapped so that each call adds its thread CPU time to ``seconds[name]`` and one to ``calls[name]``."""
    @functools.wraps(call)
    def wrapper(*args, **kwargs):
        started = time.thread_time()
        try:
            return call(*args, **kwargs)
        finally:
            seconds[name] += time.thread_time() - started
            calls[name] += 1
    return wrapper


def instrument(seconds: dict[str, float], calls: dict[str, int]) -> list[tuple]:
    """Replace each primitive, in every module that holds it, by a wrapper timing it into these dicts; returns
    what was replaced, (module, name, original), for :func:`restore`."""
    modules = [importlib.import_module(name) for name in MODULES]
    replaced = []
    for name in PRIMITIVES:
        original = next((getattr(m, name) for m in modules if callable(getattr(m, name, None))), None)
        if original is None:
            continue
        wrapper = timed(name, original, seconds, calls)
        for module in modules:
            if getattr(module, name, None) is original:
                setattr(module, name, wrapper)
                replaced.append((module, name, original))
    return replaced


def restore(replaced: list[tuple]) -> None:
    for module, name, original in replaced:
        setattr(module, name, original)


def measure(n: int, numbers: int, seed: int, reader: str = pipeline.DEFAULT_READER) -> dict:
    rng = np.random.default_rng(seed)
    mnist = load_mnist()
    images = mnist.test_images
    recognizer = Recognizer.from_pretrained()
    digits = [photo_digits.digit_picture(images[i], rng) for i in rng.choice(len(images), n, replace=False)]
    lines = [photo_digits.number_picture([images[i] for i in rng.choice(len(images), int(rng.integers(2, 7)))],
                                         rng)[0] for _ in range(numbers)]
    for picture in digits[:5] + lines[:3]:  # warm up: first calls allocate, import and compile
        pipeline.prepare_digit(picture, recognizer.classify)
        pipeline.prepare_number(picture, recognizer.classify, recognizer.recognize_lines, reader)
    result = {"seed": seed, "n": n, "numbers": numbers, "reader": reader, "engine": recognizer.engine}
    seconds: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    replaced = instrument(seconds, calls)
    classify = timed("classify", recognizer.classify, seconds, calls)
    recognize = timed("recognize_lines", recognizer.recognize_lines, seconds, calls)
    try:
        for kind, pictures in (("digit", digits), ("number", lines)):
            seconds.clear()
            calls.clear()
            started = time.thread_time()
            for picture in pictures:
                if kind == "digit":
                    pipeline.prepare_digit(picture, classify)
                else:
                    pipeline.prepare_number(picture, classify, recognize, reader)
            total = time.thread_time() - started
            count = max(len(pictures), 1)
            result[kind] = {"total_ms": 1000 * total / count,
                            "primitives": {k: {"ms": 1000 * v / count, "calls": calls[k] / count}
                                           for k, v in seconds.items()}}
    finally:
        restore(replaced)
    return result


def print_table(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("ms per picture (inclusive)", f"prepare_digit ({result['n']})",
                  f"prepare_number ({result['numbers']})",
                  title=f"picture pipeline CPU time, photo benchmark seed {result['seed']}, "
                  f"reader {result['reader']}, {result['engine']}, 1 process")
    names = [n for n in [*PRIMITIVES, "recognize_lines", "classify"]
             if n in result["digit"]["primitives"] or n in result["number"]["primitives"]]
    table.add_row("whole call", f"{result['digit']['total_ms']:.2f}", f"{result['number']['total_ms']:.2f}")
    for name in names:
        cells = []
        for kind in ("digit", "number"):
            entry = result[kind]["primitives"].get(name)
            cells.append(f"{entry['ms']:.2f} ({entry['calls']:.1f}×)" if entry else "—")
        table.add_row(f"  {name}", *cells)
    Console().print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=300, help="single-digit photos")
    parser.add_argument("--numbers", type=int, default=100, help="photos of numbers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--reader", default=pipeline.DEFAULT_READER, choices=pipeline.READERS,
                        help="how read reads a line (prepare_number)")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    result = measure(args.n, args.numbers, args.seed, args.reader)
    if not args.json:
        print_table(result)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
