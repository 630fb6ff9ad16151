"""Micro-batching: concurrent single-image classifications share one forward pass."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np


class MicroBatcher:
    """Gathers concurrent single-image classifications into one forward pass.

    No timer: the first request starts a pass at once; requests that arrive while a pass runs wait for it
    and then go together in the next one. A lone request is never delayed, and under load the batch grows
    with the queue. All passes run on one thread, so the model is never called concurrently.
    """

    def __init__(self, classify: Callable[[np.ndarray], np.ndarray], max_batch: int = 128):
        self.classify = classify
        self.max_batch = max_batch
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="digitnet-model")
        self._queue: list[tuple[np.ndarray, asyncio.Future]] = []
        self._running = False
        self._task: asyncio.Task | None = None
        self.passes = 0
        self.images = 0

    async def submit(self, image: np.ndarray) -> np.ndarray:
        """Probabilities (10,) of one uint8 28×28 image."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.append((image, future))
        if not self._running:
            self._running = True
            self._task = loop.create_task(self._run())  # keep a reference: the loop holds tasks weakly
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                batch, self._queue = self._queue[:self.max_batch], self._queue[self.max_batch:]
                batch = [(x, f) for x, f in batch if not f.done()]  # drop requests whose client went away
                if not batch:
                    continue
                images = np.stack([x for x, _ in batch])
                try:
                    probs = await loop.run_in_executor(self.executor, self.classify, images)
                except Exception as exc:  # the same error for everyone in the pass
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                self.passes += 1
                self.images += len(batch)
                for (_, future), row in zip(batch, probs, strict=True):
                    if not future.done():
                        future.set_result(row)
        finally:
            self._running = False

    def stats(self) -> dict:
        """Forward passes and images since start, and their mean batch size."""
        return {"passes": self.passes, "images": self.images,
                "mean_batch": round(self.images / self.passes, 2) if self.passes else 0.0}

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
