"""``Recognizer``: a loaded model plus the picture pipeline — the one object apps and the server use.

``predict`` answers for a single digit, ``read`` for a written number. Both accept a path, bytes,
a PIL image or a numpy array, and return plain dicts with the same fields as ``digitnet predict --json``
and ``digitnet read --json``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from digitnet.models.crnn import REDUCTION, Decoded, greedy_decode, output_lengths
from digitnet.runtime import check_engine, onnx_model
from digitnet.saved_model import LoadedModel, ModelLoadError, load_model
from digitnet.utils import DigitnetError
from digitnet.vision.batch import WorkerPool, ordered_batches, worker_count
from digitnet.vision.io import ImageSource
from digitnet.vision.pipeline import (
    DEFAULT_READER,
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
    with a line recognizer (``line``) as ``reader`` says (see :data:`digitnet.vision.pipeline.READERS`).

    ``engine``: what runs the models' forward passes, ``auto`` (ONNX Runtime where it can, else PyTorch; the
    default, or ``DIGITNET_ENGINE``), ``torch`` or ``onnxruntime`` (see :mod:`digitnet.runtime`). The models'
    weights are read when the recognizer is made: change them afterwards and make a new one.
    """

    def __init__(self, loaded: LoadedModel, line: LoadedModel | None = None, reader: str = DEFAULT_READER,
                 pool: WorkerPool | None = None, engine: str | None = None):
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
        # The same graphs in ONNX Runtime where it runs them (None: PyTorch does), several times faster on a few
        # small images.
        self._engine = check_engine(engine)  # workers started later run the models the same way
        self._onnx = onnx_model(loaded, self._engine)
        self._line_onnx = onnx_model(line, self._engine) if line is not None else None
        self._pool = pool  # worker processes for predict_many/read_many, started once, kept until close()

    @classmethod
    def from_pretrained(cls, model_dir: str | os.PathLike | None = None, device: str = "cpu",
                        line_model: str | os.PathLike | None = "line", reader: str = DEFAULT_READER,
                        workers: int = 0, engine: str | None = None) -> Recognizer:
        """Load ``model_dir`` (default: the bundled default model) and ``line_model`` (default: the bundled line
        recognizer; None, or ``reader="segment"``: none, lines are cut by the segmenter); ``engine`` as for the
        constructor.

        ``workers`` > 0 also starts that many worker processes for :meth:`predict_many` and :meth:`read_many`
        first, so that they get ready while this process loads the models; :meth:`close` stops them.
        """
        if reader == "segment":
            line_model = None
        engine = check_engine(engine)
        # The workers resolve the folders as load_model does here (same arguments, same working directory).
        models = WorkerModels(_fspath(model_dir), _fspath(line_model), reader, engine)
        pool = WorkerPool(workers, _start_worker, (models,)) if workers > 0 else None
        try:
            line = _load_line_model(line_model, device) if line_model is not None else None
            return cls(load_model(model_dir, device=device), line, reader, pool, engine)
        except BaseException:
            if pool is not None:
                pool.close()
            raise

    def close(self) -> None:
        """Stop the worker processes, if any were started (a later folder starts new ones)."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> Recognizer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def engine(self) -> str:
        """What runs the digit model's forward passes: ``onnxruntime`` or ``torch``."""
        return "onnxruntime" if self._onnx is not None else "torch"

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
        if self._onnx is not None and len(x):
            logits = torch.from_numpy(self._onnx(np.ascontiguousarray(x.cpu().numpy().reshape(len(x), 1, 28, 28))))
        else:
            logits = self.model(self.spec.prepare(x.to(self.device))).float()
        if calibrated:
            logits = logits / self.temperature
        return torch.softmax(logits, 1).cpu().numpy()

    @torch.inference_mode()
    def recognize_lines(self, images: list[np.ndarray]) -> list[Decoded]:
        """Read line images (float (32, W) in 0..1, ink bright, W a multiple of 4) with the line model, each on its own.

        One at a time, not one batch padded to the widest: the BiLSTM reads a short line's padding too, so its reading
        would depend on the other lines of its picture; and a picture of many short "lines" (noise) paid for padding
        them all (a 700×700 picture of salt noise: 12 s, 5.4 s one at a time). Readings of validation pages and
        separators are the same either way."""
        if self.line is None:
            raise DigitnetError("this recognizer has no line model")
        offset = float(self.line.metadata.get("ctc_offset", 0.0))
        lengths = output_lengths(torch.tensor([image.shape[1] for image in images], dtype=torch.long)).tolist()
        readings = []
        for image, length in zip(images, lengths, strict=True):
            batch = np.zeros((1, 1, image.shape[0], image.shape[1] + (-image.shape[1]) % REDUCTION), np.float32)
            batch[0, 0, :, :image.shape[1]] = image
            if self._line_onnx is not None:
                logits = torch.from_numpy(self._line_onnx(batch))
            else:
                logits = self.line.model(torch.from_numpy(batch).to(next(self.line.model.parameters()).device)).float()
            probabilities = torch.softmax(logits, 2).cpu().numpy()[0]
            readings.append(greedy_decode(probabilities[:length], offset))
        return readings

    # ------------------------------------------------------------------------------ pictures

    def prepare(self, image: ImageSource) -> Prepared:
        """The 28×28 this recognizer would classify for ``image`` (or why there is none)."""
        return prepare_digit(image, self.classify)

    def predict(self, image: ImageSource, top_k: int | None = None, min_confidence: float | None = None) -> dict:
        """Answer for a picture of one digit: the fields of ``digitnet predict --json``.

        ``image`` is a path, encoded bytes, a PIL image or a numpy array. Bad pictures do not raise: the
        answer has ``digit: None`` and says why in ``error`` (unusable picture) or ``note`` (no ink, a number,
        or below ``min_confidence``). Beside an answer, ``note`` says where only the first page of a multi-page
        file (TIFF, animated GIF) was read.
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
        rotation). Bad pictures do not raise: ``error`` says why; ``note`` says why there is no reading (no ink),
        or, beside one, that only the first page of a multi-page file was read.
        """
        return number_answer(self.prepare_number(image))

    # ------------------------------------------------------------------------------ folders

    def prepare_many(self, paths: Sequence[str], workers: int | None = None) -> Iterator[list[Prepared]]:
        """:meth:`prepare` for many files, in worker processes: lists of consecutive results in input order.

        Each list is what was ready together, to be classified in one pass (:meth:`answer`). ``workers``:
        processes to use (None: one per CPU; 0 or 1, a folder too small to repay starting them, or a model not
        loaded from a folder: this one). The workers are started once and kept for later calls until
        :meth:`close`.
        """
        pool = self._pool_for(workers, len(paths))
        function = _prepare_in_worker if pool else self.prepare
        return ordered_batches(function, paths, pool.workers if pool else 0, pool=pool)

    def predict_many(self, paths: Sequence[str], top_k: int | None = None, min_confidence: float | None = None,
                     workers: int | None = None) -> Iterator[dict]:
        """:meth:`predict` for many files: answers in input order, as they are ready (see :meth:`prepare_many`)."""
        for batch in self.prepare_many(paths, workers):
            yield from self.answer(batch, top_k=top_k, min_confidence=min_confidence)

    def read_many(self, paths: Sequence[str], workers: int | None = None) -> Iterator[dict]:
        """:meth:`read` for many files, in worker processes (each with its own copy of the model, since
        segmentation asks the model as it goes), answers yielded in input order as they are ready; the
        workers are those of :meth:`prepare_many`."""
        pool = self._pool_for(workers, len(paths))
        function = _read_in_worker if pool else self.read
        for batch in ordered_batches(function, paths, pool.workers if pool else 0, pool=pool):
            yield from batch

    def _pool_for(self, workers: int | None, items: int) -> WorkerPool | None:
        """The running pool, or a new one where ``items`` files repay starting it; None: work in this process."""
        if self.loaded.path is None or (workers is not None and workers <= 1) or \
                (self.line is not None and self.line.path is None):
            return None  # a model built in memory cannot be loaded by workers; 0 or 1: asked for this process
        if self._pool is not None and not self._pool.broken:
            return self._pool  # already started (its size fixed then): worth it for any number of files
        count = worker_count(workers, items)
        if count == 0:
            return None
        self.close()  # a broken pool
        line = os.fspath(self.line.path) if self.line is not None else None
        models = WorkerModels(os.fspath(self.loaded.path), line, self.reader, self._engine)
        self._pool = WorkerPool(count, _start_worker, (models,))
        return self._pool

    def __repr__(self) -> str:
        path = Path(self.loaded.path) if self.loaded.path else None
        line = str(self.line.path) if self.line is not None else None
        return f"Recognizer(arch={self.spec.name!r}, model={str(path)!r}, line_model={line!r}, reader={self.reader!r})"


# ------------------------------------------------------------------------------ worker processes

@dataclass(frozen=True)
class WorkerModels:
    """What each worker process loads: picklable, one field per model (a model dir as given to load_model)."""

    digits: str | None  # None: the bundled default model
    line: str | None = None  # the line recognizer (None: none, lines are cut by the segmenter)
    reader: str = "segment"  # how read reads a line (see READERS)
    engine: str | None = None  # what runs the models (see Recognizer)


_worker_recognizer: Recognizer | None = None  # each worker process's own copy of the model


def _fspath(model_dir: str | os.PathLike | None) -> str | None:
    return None if model_dir is None else os.fspath(model_dir)


def _load_line_model(line_model: str | os.PathLike, device: str) -> LoadedModel:
    try:
        return load_model(line_model, device=device)
    except ModelLoadError:
        raise
    except DigitnetError as exc:  # the bundled line model is missing: say what else works
        raise DigitnetError(f"{exc} (or read with --reader segment)") from None


def _start_worker(models: WorkerModels) -> None:
    global _worker_recognizer
    # On the CPU whatever the parent uses: a small model on one core beats every worker setting up a GPU.
    _worker_recognizer = Recognizer.from_pretrained(models.digits, device="cpu", line_model=models.line,
                                                    reader=models.reader, engine=models.engine)


def _prepare_in_worker(path: str) -> Prepared:
    return _worker_recognizer.prepare(path)


def _read_in_worker(path: str) -> dict:
    return _worker_recognizer.read(path)
