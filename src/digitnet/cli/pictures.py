"""CLI commands for pictures (the recognizer), added to the main app by ``register(app)``: ``predict`` and ``read``.

They live beside :mod:`digitnet.recognizer` (not in :mod:`digitnet.vision`, a layer below it) because they call it.

Imports of torch and the pipeline happen inside the commands, so ``digitnet --help`` stays fast.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from digitnet.assets import MODEL_HELP
from digitnet.cli.errors import print_error

if TYPE_CHECKING:
    import numpy as np

T = TypeVar("T")
SHADES = " ░▒▓█"  # five levels of ink, each pixel drawn two characters wide so the digit is not squashed


def render_ascii(image: np.ndarray) -> str:
    """A 28×28 uint8 image as text: what the model sees, in the terminal."""
    levels = (image.astype("int32") * len(SHADES)) // 256
    return "\n".join("".join(SHADES[v] * 2 for v in row) for row in levels)


def _fail(message: str) -> None:
    print_error(message)
    raise typer.Exit(1)


def _load(model: Path | None, paths: list[str], workers: int | None, line_model: Path | str | None = None,
          reader: str = "segment"):
    """The recognizer for ``paths``, with its worker processes (if the folder repays them) started first: they
    get ready while this process loads the models. Close it to stop them. No ``line_model``: lines are cut by the
    segmenter (``predict`` reads one digit a picture and needs none)."""
    from digitnet.recognizer import Recognizer
    from digitnet.utils import DigitnetError
    from digitnet.vision.batch import worker_count

    try:
        return Recognizer.from_pretrained(model, line_model=line_model, reader=reader,
                                          workers=worker_count(workers, len(paths)))
    except DigitnetError as exc:
        _fail(str(exc))


def _inputs(images: list[str]) -> list[str]:
    from digitnet.vision.io import expand_inputs

    notes: list[str] = []
    paths = expand_inputs(images, notes)
    for note in notes:
        typer.echo(f"note: {note}", err=True)
    if not paths:
        _fail(f"no pictures found in {', '.join(images)}")
    return paths


def _debug_path(directory: Path, source: str, used: set[str]) -> Path:
    """``DIR/<picture name>.png``, numbered when two inputs share a name."""
    stem, n = Path(source).stem, 1
    name = f"{stem}.png"
    while name in used:
        n += 1
        name = f"{stem}-{n}.png"
    used.add(name)
    return directory / name


WORKERS_HELP = ("Worker processes that decode and prepare pictures [default: one per CPU from 200 pictures on, "
                "fewer are read faster in this process]; 0 or 1: all in this process.")


def progress_wanted(json_out: bool) -> bool:
    """A progress bar on stderr only where someone watches it: stderr is a terminal and JSON is not being piped."""
    return sys.stderr.isatty() and not (json_out and not sys.stdout.isatty())


def _same_terminal() -> bool:
    """Whether stdout and stderr are one terminal, so lines printed to stdout can go above the bar."""
    try:
        return sys.stdout.isatty() and os.ttyname(sys.stdout.fileno()) == os.ttyname(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):  # no file descriptor (captured output), or not a terminal
        return False


def _with_progress(items: Iterable[T], total: int, json_out: bool,
                   pictures: Callable[[T], int] = lambda _: 1) -> Iterator[T]:
    """``items`` as they come, counted on a Rich bar on stderr (see :func:`progress_wanted`) as ``pictures(item)``."""
    items = _stopping_on_ctrl_c(items)
    if not progress_wanted(json_out):
        yield from items
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    # What is printed to stdout meanwhile goes above the bar when both are the same terminal; stdout sent
    # elsewhere (a file, a pipe) is left alone, or its lines would end up on stderr.
    with Progress(TextColumn("pictures"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True, redirect_stdout=_same_terminal()) as bar:
        task = bar.add_task("pictures", total=total)
        for item in items:
            yield item
            bar.advance(task, pictures(item))


def _stopping_on_ctrl_c(items: Iterable[T]) -> Iterator[T]:
    """``items``, stopped by Ctrl-C (SIGINT) for certain: the signal raises KeyboardInterrupt as usual, and is
    remembered, so that the next item raises it again where the first was swallowed (a KeyboardInterrupt that
    lands in a finalizer or a callback is only printed, and the folder would be read to its end)."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # started with SIGINT ignored (nohup &): leave it so
        yield from items
        return
    interrupted = False

    def on_sigint(signum, frame) -> None:
        nonlocal interrupted
        interrupted = True
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        for item in items:
            if interrupted:
                raise KeyboardInterrupt
            yield item
    finally:
        signal.signal(signal.SIGINT, previous)


def register(app: typer.Typer) -> None:
    """Add this concern's commands to ``app``."""
    app.command()(predict)
    app.command()(read)


def predict(
    images: list[str] = typer.Argument(..., help="Pictures (PNG, JPEG, BMP, GIF, TIFF, WebP), folders or globs."),
    model: Path | None = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    json_out: bool = typer.Option(False, "--json", help="One JSON object per picture, one per line."),
    top_k: int | None = typer.Option(None, "--top-k", "-k", min=1, max=10, help="Also list the K likeliest."),
    min_confidence: float | None = typer.Option(
        None, "--min-confidence", min=0.0, max=1.0, help="Answer no digit (null) below this confidence."),
    show: bool = typer.Option(False, "--show", help="Draw the 28×28 the model saw in the terminal."),
    save_debug: Path | None = typer.Option(
        None, "--save-debug", help="Write the 28×28 the model saw as DIR/<picture>.png."),
    workers: int | None = typer.Option(None, "--workers", min=0, help=WORKERS_HELP),
) -> None:
    """Recognize the digit in each picture: photos and scans of handwriting, or MNIST-like images.

    No ink: digit null, note "no ink found". Several digits: null, with a note to use `digitnet read`.
    A multi-page TIFF or animated GIF: its first page is read, and a note says so.
    An unreadable file gets a one-line error; the others are still read, and the exit status is 1.
    """
    import io

    from PIL import Image

    from digitnet.saved_model import METADATA_FILE
    from digitnet.utils import DigitnetError, atomic_write_bytes

    if save_debug is not None and (save_debug / METADATA_FILE).is_file():
        # A picture named like a run's files (samples.png, errors.png) would replace them.
        raise DigitnetError(f"--save-debug {save_debug} is a model folder; write the debug images elsewhere")
    paths = _inputs(images)
    recognizer = _load(model, paths, workers)
    try:
        out, err = Console(), Console(stderr=True)
        table = Table("picture", "digit", "confidence", *(["top-k"] if top_k else []), "note",
                      title=f"{recognizer.spec.name} ({recognizer.loaded.path})")
        failed, used = False, set()
        # Prepared in worker processes, handed back in input order as they are ready: one forward pass per batch.
        for prepared in _with_progress(recognizer.prepare_many(paths, workers), len(paths), json_out, len):
            answers = recognizer.answer(prepared, top_k=top_k, min_confidence=min_confidence)
            for p, answer in zip(prepared, answers, strict=True):
                failed |= answer["error"] is not None
                if save_debug is not None and p.image is not None:
                    buffer = io.BytesIO()
                    Image.fromarray(p.image).save(buffer, "PNG")
                    atomic_write_bytes(_debug_path(save_debug, answer["path"], used), buffer.getvalue())
                if show and p.image is not None:
                    # With --json, stdout carries only JSON lines; the drawing goes to stderr.
                    (err if json_out else out).print(f"{answer['path']}:\n{render_ascii(p.image)}", highlight=False)
                if json_out:
                    print(json.dumps(answer), flush=True)
                    continue
                digit = "—" if answer["digit"] is None else str(answer["digit"])
                confidence = "" if answer["confidence"] is None else f"{answer['confidence']:.1%}"
                note = f"[red]{escape(answer['error'])}[/]" if answer["error"] else escape(answer["note"] or "")
                extra = [", ".join(f"{t['digit']} {t['probability']:.1%}" for t in answer["top_k"])] if top_k else []
                table.add_row(escape(answer["path"]), digit, confidence, *extra, note)
        if not json_out:
            out.print(table)
        if failed:
            raise typer.Exit(1)
    finally:
        recognizer.close()


def read(
    images: list[str] = typer.Argument(..., help="Pictures of written numbers, folders or globs."),
    model: Path | None = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    json_out: bool = typer.Option(False, "--json", help="One JSON object per picture, one per line."),
    workers: int | None = typer.Option(None, "--workers", min=0, help=WORKERS_HELP),
    reader: str = typer.Option(
        "both", "--reader", help="How a line is read: `line` — the line recognizer finds the characters, it and the "
        "digit model both judge each digit; `ctc` — the line recognizer alone; `segment` — the rule-based segmenter "
        "cuts the line into digits for the digit model; `both` — `line` and `segment`, and where they disagree the "
        "reading whose characters are jointly likelier (the default: it measured best)."),
    line_model: Path | None = typer.Option(
        None, "--line-model", help="Line recognizer directory (a crnn-digits run) [default: the bundled one]."),
) -> None:
    """Read the numbers written in each picture: its lines top to bottom, each line's digits, decimal points and
    commas, minus signs and spaces left to right, with their boxes.

    Lines are found first; then each line is read whole by a learned line recognizer (CNN + BiLSTM + CTC) that
    places every character, each digit judged by the line recognizer and the digit model together, and by the
    rule-based segmenter; where the two readings differ, the likelier one is the answer (`--reader`). Digits in
    form boxes are parted by their boxes. An unreadable file gets a one-line error; the
    others are still read, and the exit status is 1.
    """
    from digitnet.vision.pipeline import READERS

    if reader not in READERS:
        _fail(f"--reader {reader!r}: choose one of {', '.join(READERS)}")
    paths = _inputs(images)
    recognizer = _load(model, paths, workers, line_model if line_model is not None else "line", reader)
    try:
        table = Table("picture", "text (one line each)", "characters (confidence)", "note",
                      title=f"{recognizer.spec.name} ({recognizer.loaded.path})")
        failed = False
        for answer in _with_progress(recognizer.read_many(paths, workers), len(paths), json_out):  # in input order
            failed |= answer["error"] is not None
            if json_out:
                print(json.dumps(answer), flush=True)
                continue
            # One row of the cell per line of writing; a space between digit groups is shown as "␣".
            digits = "\n".join(" ".join(f"{d['char'].replace(' ', '␣')} ({d['confidence']:.0%})"
                                         for d in line["digits"]) for line in answer["lines"])
            note = f"[red]{escape(answer['error'])}[/]" if answer["error"] else escape(answer["note"] or "")
            table.add_row(escape(answer["path"]), escape(answer["text"]) or "—", escape(digits), note)
        if not json_out:
            Console().print(table)
        if failed:
            raise typer.Exit(1)
    finally:
        recognizer.close()
