"""Micro-batching: concurrent classifications share one forward pass, and the model runs on one thread."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np


class MicroBatcher:
    """Gathers concurrent classifications into one forward pass.

    No timer: the first request starts a pass at once; requests that arrive while a pass runs wait for it
    and then go together in the next one. A lone request is never delayed, and under load the batch grows
    with the queue. All passes run on one thread, so the model is never called concurrently: every model call
    of the server goes through here (a picture's own segmentation calls too, via :meth:`classify`).
    """

    def __init__(self, classify: Callable[[np.ndarray], np.ndarray], max_batch: int = 128):
        self.classify_step = classify
        self.max_batch = max_batch
        self.executor: ThreadPoolExecutor | None = None  # the model's thread: started by the first pass
        self._queue: deque[tuple[np.ndarray, asyncio.Future]] = deque()
        self._running = False
        self._task: asyncio.Task | None = None
        self.passes = 0
        self.images = 0

    async def submit(self, image: np.ndarray) -> np.ndarray:
        """Probabilities (10,) of one uint8 28×28 image."""
        return (await self.classify(image[None]))[0]

    async def classify(self, images: np.ndarray) -> np.ndarray:
        """Probabilities (N, 10) of uint8 (N, 28, 28) images, classified together in one pass."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.append((images, future))
        if not self._running:
            self._running = True
            self._task = loop.create_task(self._run())  # keep a reference: the loop holds tasks weakly
        return await future

    def _next_batch(self) -> list[tuple[np.ndarray, asyncio.Future]]:
        """Queued requests for one pass: up to max_batch images (a larger request goes alone, whole)."""
        batch, size = [], 0
        while self._queue and (not batch or size + len(self._queue[0][0]) <= self.max_batch):
            images, future = self._queue.popleft()
            if future.done():  # its client went away
                continue
            batch.append((images, future))
            size += len(images)
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        if self.executor is None:  # first pass, or the first since close(): an app's lifespan may run again
            self.executor = ThreadPoolExecutor(1, thread_name_prefix="digitnet-model")
        executor = self.executor
        try:
            while self._queue:
                batch = self._next_batch()
                if not batch:
                    continue
                images = batch[0][0] if len(batch) == 1 else np.concatenate([x for x, _ in batch])
                try:
                    probs = await loop.run_in_executor(executor, self.classify_step, images)
                except Exception as exc:  # the same error for everyone in the pass
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                self.passes += 1
                self.images += len(images)
                start = 0
                for x, future in batch:
                    if not future.done():
                        future.set_result(probs[start:start + len(x)])
                    start += len(x)
        finally:
            self._running = False

    def stats(self) -> dict:
        """Forward passes and images since start, and their mean batch size."""
        return {"passes": self.passes, "images": self.images,
                "mean_batch": round(self.images / self.passes, 2) if self.passes else 0.0}

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = None
