"""The shared model of one server process: answers requests through the picture pipeline, classifying via the batcher.

No picture handling or answer formatting of its own: pictures and pixels are prepared by
:func:`~digitnet.vision.pipeline.prepare_digit` / :func:`~digitnet.vision.pipeline.prepare_number` in a worker
thread and answered by :func:`~digitnet.vision.pipeline.digit_answer` / :func:`~digitnet.vision.pipeline.number_answer`,
so an answer is ``Recognizer.predict``'s (and ``Recognizer.read``'s) for the same input. Every call of the model,
the pipeline's own (segmentation asks the model as it goes) as well as the answer's, goes through the
:class:`~digitnet.serve.batcher.MicroBatcher`: it batches them and runs the model on its one thread.

A thread cannot be interrupted, so a request's work in worker threads is a :class:`Job` that each picture and each
model call checks first: once its client has gone, or the server shuts down, the rest is skipped.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import io
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import anyio
import numpy as np
from PIL import Image

from digitnet.models.crnn import Decoded
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
# On shutdown, how long to wait for the worker threads to finish the step they are in: each checks its job before
# every model call (and each picture before it starts), so a step is the work up to the next model call.
CLOSE_WAIT_S = 5.0
T = TypeVar("T")
log = logging.getLogger("digitnet.serve")


def png_base64(image: np.ndarray) -> str:
    """A uint8 grayscale array as a base64 PNG (what the page shows as 'the model saw')."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), "L").save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def error_result(item: Item, error: ApiError, fields: tuple[str, ...]) -> dict:
    """A failed image inside a batch: the usual fields, empty, with ``error`` and its ``status`` set."""
    return {"path": item.name, **dict.fromkeys(fields), "error": error.message, "note": None,
            "status": error.status}


class Abandoned(ApiError):
    """Raised in a worker thread, between two steps of a request that nobody waits for any more."""

    def __init__(self) -> None:
        super().__init__(503, "the request was abandoned: its client went away, or the server is shutting down")


class Job:
    """The work of one request in worker threads: stopped between its steps (each picture, each model call) once
    nobody waits for its answer, so that it neither holds a worker nor delays the server's exit."""

    def __init__(self) -> None:
        self.stopped = threading.Event()  # a thread-safe flag: the worker threads read it

    def stop(self) -> None:
        self.stopped.set()


class Service:
    """The shared model and the work queues of one server process."""

    def __init__(self, recognizer: Recognizer, settings: ServeSettings):
        self.recognizer = recognizer
        self.settings = settings
        self.batcher = MicroBatcher(recognizer.classify, settings.max_batch) if settings.batch else None
        self.image_limiter = anyio.CapacityLimiter(settings.image_workers)
        self.started = time.time()
        self.requests_in_flight = 0  # kept by serve.middleware.InFlightMiddleware
        self.closing = threading.Event()  # set by close(): every job stops at its next step
        self.busy_threads = 0  # worker threads in a job's step now: what close() waits for
        self._busy_lock = threading.Lock()

    async def classify(self, image: np.ndarray) -> np.ndarray:
        """Probabilities (10,) of one prepared 28×28: the pipeline's classify step, micro-batched."""
        if self.batcher is not None:
            return await self.batcher.submit(image)
        return (await anyio.to_thread.run_sync(self.recognizer.classify, image[None]))[0]

    def classify_in_worker(self, images: np.ndarray, job: Job | None = None) -> np.ndarray:
        """The pipeline's classify step for code in a worker thread (uint8 (N, 28, 28) → (N, 10)): through the
        batcher on the event loop, waiting for its answer. With ``--no-batch``, the model is called here.
        Raises :class:`Abandoned` instead once ``job`` is stopped."""
        self._check(job)
        if self.batcher is None:
            return self.recognizer.classify(images)
        return anyio.from_thread.run(self.batcher.classify, images)

    async def predict(self, item: Item, options: PredictOptions, job: Job | None = None) -> dict:
        """``Recognizer.predict`` for one item, with the classification going through the micro-batcher; a picture's
        work stops when ``job`` does."""
        if item.error:
            return error_result(item, item.error, PREDICT_FIELDS)
        try:
            if item.pixels is not None and mnist_like(item.pixels) is not None:
                # An MNIST-like 28×28 goes to the model as it is (inverted if dark on light, as
                # Recognizer.predict does): prepared on the event loop, since it needs no model call. A 28×28
                # array takes ~12 µs, and the thread hop cost 0.26 ms of CPU per request under load (measured
                # with benchmarks/load_test.py).
                prepared = self._prepare(item, None)
            else:  # decoding and normalizing a picture is slow, and may ask the model: off the event loop
                prepared = await self._in_worker(self._prepare, item, job)
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

    async def read(self, item: Item, options: ReadOptions, job: Job | None = None) -> dict:
        """``Recognizer.read`` for one item (a picture, not pixels); its work stops when ``job`` does."""
        if item.error:
            return error_result(item, item.error, READ_FIELDS)
        try:
            if item.data is None:
                raise ApiError(422, "/api/read needs a picture (a file or image_base64), not pixels; "
                                    "use /api/predict for a 28×28 digit")
            return await self._in_worker(self._read, item, options.debug, job)
        except ApiError as exc:
            return error_result(item, exc, READ_FIELDS)

    async def _in_worker(self, step: Callable[..., T], *args: object) -> T:
        """``step(*args)`` in a worker thread, under the limit of pictures read at once."""
        return await anyio.to_thread.run_sync(self._counted, step, *args, limiter=self.image_limiter)

    def _counted(self, step: Callable[..., T], *args: object) -> T:
        # Counted in the thread itself: a step cancelled before its thread started never runs, and one whose
        # request was cancelled runs on until its next check.
        with self._busy_lock:
            self.busy_threads += 1
        try:
            return step(*args)
        finally:
            with self._busy_lock:
                self.busy_threads -= 1

    def _check(self, job: Job | None) -> None:
        """Before a step of ``job`` (None: stopped by a shutdown only): go on only if the answer is still wanted."""
        if self.closing.is_set() or (job is not None and job.stopped.is_set()):
            raise Abandoned

    def _prepare(self, item: Item, job: Job | None) -> Prepared:
        """The 28×28 the model will see (``Recognizer.prepare``), or the note saying why there is none."""
        self._check(job)  # the picture may have waited for a worker while its client went away
        source = item.pixels if item.pixels is not None else item.data
        prepared = prepare_digit(source, functools.partial(self.classify_in_worker, job=job),
                                 max_pixels=self.settings.max_pixels)
        if prepared.error:
            self._check(job)  # a step refused as abandoned ends the pipeline as a fault: say abandoned instead
            raise ApiError(_error_status(prepared), _named(prepared.error, item.name))
        return prepared

    def _read(self, item: Item, debug: bool, job: Job | None) -> dict:
        # Read as Recognizer.read reads (loading included), under this server's size limit: its line recognizer
        # and reader; the digit model's calls go through the micro-batcher. (The line model, a separate small
        # network, is called from this worker thread.)
        self._check(job)  # the picture may have waited for a worker while its client went away
        recognizer = self.recognizer
        recognize = None
        if recognizer.line is not None:
            def recognize(images: list[np.ndarray]) -> list[Decoded]:
                self._check(job)
                return recognizer.recognize_lines(images)
        number = prepare_number(item.data, functools.partial(self.classify_in_worker, job=job), recognize,
                                recognizer.reader, max_pixels=self.settings.max_pixels)
        if number.error:
            self._check(job)  # a step refused as abandoned ends the pipeline as a fault: say abandoned instead
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

    async def close(self, wait_s: float = CLOSE_WAIT_S) -> None:
        """Stop every job at its next step and wait (up to ``wait_s``) for the worker threads to leave their steps,
        then stop the batcher.

        Waiting here, with the event loop still running: a thread's model call goes through the loop, and one made
        after the loop has stopped (but before it is closed) would never be answered, holding the process's exit.
        """
        self.closing.set()
        deadline = time.monotonic() + wait_s
        while self.busy_threads and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if self.busy_threads:  # a step (decoding, finding lines, one model call) cannot be interrupted
            log.warning("%d picture(s) still in a step of their reading: the process exits when they reach the "
                        "next one", self.busy_threads)
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
