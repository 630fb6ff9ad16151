"""``Recognizer``: a loaded model plus the picture pipeline — the one object apps and the server use.

``predict`` answers for a single digit, ``read`` for a written number. Both accept a path, bytes,
a PIL image or a numpy array, and return plain dicts with the same fields as ``digitnet predict --json``
and ``digitnet read --json``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from digitnet.models.crnn import REDUCTION, Decoded, greedy_decode, output_lengths
from digitnet.saved_model import LoadedModel, ModelLoadError, load_model
from digitnet.utils import DigitnetError
from digitnet.vision.batch import ordered_batches, worker_count
from digitnet.vision.io import ImageSource
from digitnet.vision.pipeline import (
    READERS,
    Prepared,
    PreparedNumber,
    classify_prepared,
    number_answer,
    prepare_digit,
    prepare_number,
)


class Recognizer:
    """Classify digits with a saved model, preparing inputs exactly as the model was trained; read lines of them
    with a line recognizer (``line``) as ``reader`` says (see :data:`digitnet.vision.pipeline.READERS`)."""

    def __init__(self, loaded: LoadedModel, line: LoadedModel | None = None, reader: str = "line"):
        if reader not in READERS:
            raise DigitnetError(f"unknown reader {reader!r}; choose one of {', '.join(READERS)}")
        if line is not None and line.spec.task != "lines":
            raise DigitnetError(f"{line.path}: {line.spec.name!r} is not a line recognizer (try crnn-digits)")
        if loaded.spec.task != "digits":
            raise DigitnetError(f"{loaded.path}: {loaded.spec.name!r} reads lines, not digits; pass it as the "
                                "line model (--line-model)")
        self.line = line
        self.reader = reader if line is not None else "segment"
        self.loaded = loaded
        self.model = loaded.model.eval()
        self.spec = loaded.spec
        self.temperature = loaded.temperature
        self.device = next(self.model.parameters()).device
        # PyTorch modules are safe to call from several threads in inference mode; the lock only guards
        # lazily built state, so concurrent requests never see a half-initialized recognizer.
        self._lock = threading.Lock()

    @classmethod
    def from_pretrained(cls, model_dir: str | os.PathLike | None = None, device: str = "cpu",
                        line_model: str | os.PathLike | None = "line", reader: str = "line") -> Recognizer:
        """Load ``model_dir`` (default: the bundled default model) and ``line_model`` (default: the bundled line
        recognizer; None, or ``reader="segment"``: none, lines are cut by the segmenter)."""
        line = None
        if line_model is not None and reader != "segment":
            try:
                line = load_model(line_model, device=device)
            except ModelLoadError:
                raise
            except DigitnetError as exc:  # the bundled line model is missing: say how to get one
                raise DigitnetError(f"{exc} (or read with --reader segment)") from None
        return cls(load_model(model_dir, device=device), line, reader)

    @property
    def metadata(self) -> dict:
        return self.loaded.metadata

    @torch.inference_mode()
    def classify(self, images: np.ndarray | torch.Tensor, calibrated: bool = True) -> np.ndarray:
        """Probabilities (N, 10) for MNIST-like images: uint8 (N, 28, 28) white ink on black, or float 0..1.

        The pipeline's ``classify`` step; the model's input is made by ``spec.prepare``, with the input
        contract saved with the weights.
        """
        x = torch.as_tensor(np.asarray(images)) if not isinstance(images, torch.Tensor) else images
        if x.dim() == 2:
            x = x.unsqueeze(0)
        if x.dtype != torch.uint8:
            x = (x.float().clamp(0, 1) * 255).round().to(torch.uint8)
        logits = self.model(self.spec.prepare(x.to(self.device))).float()
        if calibrated:
            logits = logits / self.temperature
        return torch.softmax(logits, 1).cpu().numpy()

    @torch.inference_mode()
    def recognize_lines(self, images: list[np.ndarray]) -> list[Decoded]:
        """Read line images (float (32, W) in 0..1, ink bright, W a multiple of 4) with the line model, in one pass."""
        if self.line is None:
            raise DigitnetError("this recognizer has no line model")
        width = max(image.shape[1] for image in images)
        width += (-width) % REDUCTION
        batch = np.zeros((len(images), 1, images[0].shape[0], width), np.float32)
        for k, image in enumerate(images):
            batch[k, 0, :, :image.shape[1]] = image
        device = next(self.line.model.parameters()).device
        probabilities = torch.softmax(self.line.model(torch.from_numpy(batch).to(device)).float(), 2).cpu().numpy()
        lengths = output_lengths(torch.tensor([image.shape[1] for image in images])).tolist()
        return [greedy_decode(p[:n]) for p, n in zip(probabilities, lengths, strict=True)]

    # ------------------------------------------------------------------------------ pictures

    def prepare(self, image: ImageSource) -> Prepared:
        """The 28×28 this recognizer would classify for ``image`` (or why there is none)."""
        return prepare_digit(image, self.classify)

    def predict(self, image: ImageSource, top_k: int | None = None, min_confidence: float | None = None) -> dict:
        """Answer for a picture of one digit: the fields of ``digitnet predict --json``.

        ``image`` is a path, encoded bytes, a PIL image or a numpy array. Bad pictures do not raise: the
        answer has ``digit: None`` and says why in ``error`` (unusable picture) or ``note`` (no ink, a number,
        or below ``min_confidence``).
        """
        return self.predict_batch([image], top_k=top_k, min_confidence=min_confidence)[0]

    def predict_batch(
        self, images: list[ImageSource], top_k: int | None = None, min_confidence: float | None = None
    ) -> list[dict]:
        """:meth:`predict` for many pictures, classified in one forward pass."""
        return self.answer([self.prepare(image) for image in images], top_k=top_k, min_confidence=min_confidence)

    def answer(
        self, prepared: list[Prepared], top_k: int | None = None, min_confidence: float | None = None
    ) -> list[dict]:
        """Classify prepared pictures (one forward pass) and build their answers."""
        return classify_prepared(prepared, self.classify, top_k=top_k, min_confidence=min_confidence)

    def prepare_number(self, image: ImageSource) -> PreparedNumber:
        """The lines this recognizer would read in ``image``: digits' crops, boxes, probabilities, separators and signs
        (or why there are none)."""
        recognize = self.recognize_lines if self.line is not None else None
        return prepare_number(image, self.classify, recognize, self.reader)

    def read(self, image: ImageSource) -> dict:
        """Read written numbers: the fields of ``digitnet read --json``.

        ``text`` is the lines of writing top to bottom, joined by newlines, each its digits, decimal points or
        commas, minus signs and spaces left to right; ``lines`` has each line's ``text``, ``box`` and items;
        ``digits`` every item in reading order, with its ``char``, ``digit`` (null for a separator or sign),
        ``confidence`` and ``box`` [x0, y0, x1, y1] in the picture's pixels (x1, y1 exclusive, after EXIF
        rotation). Bad pictures do not raise: ``error`` says why.
        """
        return number_answer(self.prepare_number(image))

    # ------------------------------------------------------------------------------ folders

    def prepare_many(self, paths: Sequence[str], workers: int | None = None) -> Iterator[list[Prepared]]:
        """:meth:`prepare` for many files, in worker processes: lists of consecutive results in input order.

        Each list is what was ready together, to be classified in one pass (:meth:`answer`). ``workers``:
        processes to use (None: one per CPU; 0 or 1, few files, or a model not loaded from a folder: this one).
        """
        count = self._workers(workers, len(paths))
        function = _prepare_in_worker if count else self.prepare
        return ordered_batches(function, paths, count, _start_worker, self._worker_args())

    def predict_many(self, paths: Sequence[str], top_k: int | None = None, min_confidence: float | None = None,
                     workers: int | None = None) -> Iterator[dict]:
        """:meth:`predict` for many files: answers in input order, as they are ready (see :meth:`prepare_many`)."""
        for batch in self.prepare_many(paths, workers):
            yield from self.answer(batch, top_k=top_k, min_confidence=min_confidence)

    def read_many(self, paths: Sequence[str], workers: int | None = None) -> Iterator[dict]:
        """:meth:`read` for many files, in worker processes (each with its own copy of the model, since
        segmentation asks the model as it goes), answers yielded in input order as they are ready."""
        count = self._workers(workers, len(paths))
        function = _read_in_worker if count else self.read
        for batch in ordered_batches(function, paths, count, _start_worker, self._worker_args()):
            yield from batch

    def _workers(self, workers: int | None, items: int) -> int:
        # Workers load the model from its folder; one built in memory stays in this process.
        return worker_count(workers, items) if self.loaded.path is not None else 0

    def _worker_args(self) -> tuple:
        line = os.fspath(self.line.path) if self.line is not None and self.line.path is not None else None
        return (os.fspath(self.loaded.path) if self.loaded.path is not None else None, line, self.reader)

    def __repr__(self) -> str:
        path = Path(self.loaded.path) if self.loaded.path else None
        line = str(self.line.path) if self.line is not None else None
        return f"Recognizer(arch={self.spec.name!r}, model={str(path)!r}, line_model={line!r}, reader={self.reader!r})"


# ------------------------------------------------------------------------------ worker processes

_worker_recognizer: Recognizer | None = None  # each worker process's own copy of the model


def _start_worker(model_dir: str, line_dir: str | None = None, reader: str = "segment") -> None:
    global _worker_recognizer
    # On the CPU whatever the parent uses: a small model on one core beats every worker setting up a GPU.
    _worker_recognizer = Recognizer.from_pretrained(model_dir, device="cpu", line_model=line_dir, reader=reader)


def _prepare_in_worker(path: str) -> Prepared:
    return _worker_recognizer.prepare(path)


def _read_in_worker(path: str) -> dict:
    return _worker_recognizer.read(path)
