"""The shared model of one server process: answers requests through the picture pipeline, classifying via the batcher.

No picture handling or answer formatting of its own: pictures and pixels are prepared by
:func:`~digitnet.vision.pipeline.prepare_digit` / :func:`~digitnet.vision.pipeline.prepare_number` in a worker
thread and answered by :func:`~digitnet.vision.pipeline.digit_answer` / :func:`~digitnet.vision.pipeline.number_answer`,
so an answer is ``Recognizer.predict``'s (and ``Recognizer.read``'s) for the same input. Every call of the model,
the pipeline's own (segmentation asks the model as it goes) as well as the answer's, goes through the
:class:`~digitnet.serve.batcher.MicroBatcher`: it batches them and runs the model on its one thread.
"""

from __future__ import annotations

import base64
import io
import os
import time

import anyio
import numpy as np
from PIL import Image

from digitnet.recognizer import Recognizer
from digitnet.serve.batcher import MicroBatcher
from digitnet.serve.requests import ApiError, Item
from digitnet.serve.schemas import PredictOptions, ReadOptions
from digitnet.serve.settings import ServeSettings
from digitnet.vision.pipeline import (
    Prepared,
    PreparedNumber,
    digit_answer,
    number_answer,
    prepare_digit,
    prepare_number,
)
from digitnet.vision.preprocess import mnist_like

PREDICT_FIELDS = ("digit", "confidence", "probabilities")
READ_FIELDS = ("text", "lines", "digits")


def png_base64(image: np.ndarray) -> str:
    """A uint8 grayscale array as a base64 PNG (what the page shows as 'the model saw')."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), "L").save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def error_result(item: Item, error: ApiError, fields: tuple[str, ...]) -> dict:
    """A failed image inside a batch: the usual fields, empty, with ``error`` and its ``status`` set."""
    return {"path": item.name, **dict.fromkeys(fields), "error": error.message, "note": None,
            "status": error.status}


class Service:
    """The shared model and the work queues of one server process."""

    def __init__(self, recognizer: Recognizer, settings: ServeSettings):
        self.recognizer = recognizer
        self.settings = settings
        self.batcher = MicroBatcher(recognizer.classify, settings.max_batch) if settings.batch else None
        self.image_limiter = anyio.CapacityLimiter(settings.image_workers)
        self.started = time.time()
        self.requests_in_flight = 0  # kept by serve.middleware.InFlightMiddleware

    async def classify(self, image: np.ndarray) -> np.ndarray:
        """Probabilities (10,) of one prepared 28×28: the pipeline's classify step, micro-batched."""
        if self.batcher is not None:
            return await self.batcher.submit(image)
        return (await anyio.to_thread.run_sync(self.recognizer.classify, image[None]))[0]

    def classify_in_worker(self, images: np.ndarray) -> np.ndarray:
        """The pipeline's classify step for code in a worker thread (uint8 (N, 28, 28) → (N, 10)): through the
        batcher on the event loop, waiting for its answer. With ``--no-batch``, the model is called here."""
        if self.batcher is None:
            return self.recognizer.classify(images)
        return anyio.from_thread.run(self.batcher.classify, images)

    async def predict(self, item: Item, options: PredictOptions) -> dict:
        """``Recognizer.predict`` for one item, with the classification going through the micro-batcher."""
        if item.error:
            return error_result(item, item.error, PREDICT_FIELDS)
        try:
            if item.pixels is not None and mnist_like(item.pixels) is not None:
                # An MNIST-like 28×28 goes to the model as it is (inverted if dark on light, as
                # Recognizer.predict does): prepared on the event loop, since it needs no model call. A 28×28
                # array takes ~12 µs, and the thread hop cost 0.26 ms of CPU per request under load (measured
                # with benchmarks/load_test.py).
                prepared = self._prepare(item)
            else:  # decoding and normalizing a picture is slow, and may ask the model: off the event loop
                prepared = await anyio.to_thread.run_sync(self._prepare, item, limiter=self.image_limiter)
        except ApiError as exc:
            return error_result(item, exc, PREDICT_FIELDS)
        probabilities = prepared.probabilities  # when preparing it classified it already
        if probabilities is None and prepared.image is not None:
            probabilities = await self.classify(prepared.image)
        result = digit_answer(prepared, probabilities, options.top_k, options.min_confidence)
        result["path"] = item.name
        if options.debug and prepared.image is not None:
            result["input_png"] = png_base64(prepared.image)
        return result

    async def read(self, item: Item, options: ReadOptions) -> dict:
        """``Recognizer.read`` for one item (a picture, not pixels)."""
        if item.error:
            return error_result(item, item.error, READ_FIELDS)
        try:
            if item.data is None:
                raise ApiError(422, "/api/read needs a picture (a file or image_base64), not pixels; "
                                    "use /api/predict for a 28×28 digit")
            return await anyio.to_thread.run_sync(self._read, item, options.debug, limiter=self.image_limiter)
        except ApiError as exc:
            return error_result(item, exc, READ_FIELDS)

    def _prepare(self, item: Item) -> Prepared:
        """The 28×28 the model will see (``Recognizer.prepare``), or the note saying why there is none."""
        source = item.pixels if item.pixels is not None else item.data
        prepared = prepare_digit(source, self.classify_in_worker, max_pixels=self.settings.max_pixels)
        if prepared.error:
            raise ApiError(_error_status(prepared), _named(prepared.error, item.name))
        return prepared

    def _read(self, item: Item, debug: bool) -> dict:
        # Read as Recognizer.read reads (loading included), under this server's size limit: its line recognizer
        # and reader; the digit model's calls go through the micro-batcher. (The line model, a separate small
        # network, is called from this worker thread.)
        recognizer = self.recognizer
        recognize = recognizer.recognize_lines if recognizer.line is not None else None
        number = prepare_number(item.data, self.classify_in_worker, recognize, recognizer.reader,
                                max_pixels=self.settings.max_pixels)
        if number.error:
            raise ApiError(_error_status(number), _named(number.error, item.name))
        result = number_answer(number)
        result["path"] = item.name  # everything else (text, lines, digits with char) goes out as the pipeline gave it
        if debug:  # the very 28×28 inputs the answer came from
            classified = _classified_items(result["digits"], len(number.images))
            for digit, crop, row in zip(classified, number.images, number.probabilities, strict=True):
                digit["input_png"] = png_base64(crop)
                digit["probabilities"] = [round(float(p), 6) for p in row]
        return result

    def health(self) -> dict:
        """Liveness and the batcher's counters (the fields of :class:`~digitnet.serve.schemas.Health`)."""
        return {"status": "ok", "model": self.recognizer.spec.name, "version": version(), "pid": os.getpid(),
                "uptime_s": round(time.time() - self.started, 1),
                "requests_in_flight": max(self.requests_in_flight - 1, 0),  # besides the health request itself
                "batcher": self.batcher.stats() if self.batcher else None}

    def model_info(self) -> dict:
        """The served model's metadata (the fields of :class:`~digitnet.serve.schemas.ModelInfo`)."""
        meta = self.recognizer.metadata
        spec = self.recognizer.spec
        metrics = meta.get("metrics", {})
        return {
            "architecture": spec.name, "description": spec.description,
            "arch_kwargs": meta.get("arch_kwargs", {}), "parameters": meta.get("num_parameters"),
            "accuracy": metrics.get("test_accuracy"), "test_samples": metrics.get("test_samples"),
            "input_size": spec.input_size,
            "normalization": meta.get("normalization", {"name": spec.normalization, "mean": spec.mean_std[0],
                                                        "std": spec.mean_std[1]}),
            "temperature": self.recognizer.temperature, "created": meta.get("created"),
            "version": version(), "format_version": meta.get("format_version"),
            "weights_sha256": meta.get("weights_sha256"), "metrics": metrics,
        }

    def close(self) -> None:
        if self.batcher is not None:
            self.batcher.close()


def _classified_items(items: list[dict], crops: int) -> list[dict]:
    """The items of a read answer that have a 28×28 of their own, in order: all of them when there are as many
    crops as items, else the digits (separators told apart by geometry alone, such as a space, have no crop)."""
    return items if len(items) == crops else [item for item in items if item.get("digit") is not None]


def _error_status(prepared: Prepared | PreparedNumber) -> int:
    """The HTTP status of a picture that could not be read: too large, a fault of ours, or a bad picture."""
    return 413 if prepared.too_large else 500 if prepared.fault else 422


def _named(message: str, name: str | None) -> str:
    """Vision errors call uploaded bytes "<bytes>"; name the uploaded file instead."""
    return message.replace("<bytes>", name) if name else message.replace("<bytes>: ", "")


def version() -> str:
    """The digitnet version (imported late: the package's __init__ imports much)."""
    from digitnet.version import __version__

    return __version__
