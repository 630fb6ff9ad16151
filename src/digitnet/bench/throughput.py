"""Throughput and latency: training images/s per architecture, inference images/s, single-image latency.

Every figure is the median of several timed windows after a warm-up (first calls pay for oneDNN/cuDNN
kernel selection), with the device synchronized before each clock read. Training is stepped by the trainer's
own set-up (:func:`digitnet.train.setup.build_run`). Inference runs under
``torch.inference_mode`` in eval mode, channels-last on CPU as the trainer and the recognizer do.
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator

import numpy as np
import torch

from digitnet.data.splits import Split, Splits
from digitnet.models.registry import preprocess
from digitnet.train.config import TrainConfig
from digitnet.train.setup import build_run


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_rate(step: Callable[[], None], items_per_call: int, device: torch.device, seconds: float = 1.0,
               warmup: int = 2, windows: int = 3) -> float:
    """Items per second of ``step``: the median over ``windows`` windows of about ``seconds / windows`` each."""
    for _ in range(warmup):
        step()
    _sync(device)
    rates = []
    for _ in range(windows):
        calls, start = 0, time.perf_counter()
        while True:
            step()
            calls += 1
            _sync(device)
            elapsed = time.perf_counter() - start
            if elapsed >= seconds / windows:
                break
        rates.append(calls * items_per_call / elapsed)
    return statistics.median(rates)


def _batch(images: torch.Tensor, n: int) -> torch.Tensor:
    """``n`` images, repeating the pool if it is smaller."""
    reps = -(-n // images.shape[0])
    return images.repeat(reps, 1, 1)[:n] if reps > 1 else images[:n]


def train_throughput(arch: str, images: torch.Tensor, labels: torch.Tensor, device: torch.device,
                     seconds: float = 1.0, amp: bool | None = None) -> float:
    """Training images/s of ``arch``'s recipe, stepped as ``digitnet train`` steps it (see :func:`build_run`).

    Batch gathering, augmentation, memory format, mixed precision, optimizer and schedule are the trainer's;
    ``images``/``labels`` (repeated up to one batch if fewer) stand in for the training set.
    """
    cfg = TrainConfig(arch=arch, val_size=0, amp=amp).resolved()
    pool = max(len(labels), cfg.batch_size)
    train = Split(_batch(images, pool).to(device), _batch(labels.view(-1, 1, 1), pool).flatten().to(device))
    run = build_run(cfg, Splits(train=train, val=None, test=Split(train.images[:0], train.labels[:0])), device)
    run.train_model.train()
    batches = _endless(run)

    def step() -> None:
        x, y = run.make_batch(next(batches))
        run.train_step(x, y)

    return timed_rate(step, cfg.batch_size, device, seconds, warmup=2)


def _endless(run) -> Iterator[torch.Tensor]:
    """Full batches of one epoch after another (a short last batch would skew the images per call)."""
    while True:
        for idx in run.epoch_batches():
            if len(idx) == run.cfg.batch_size:
                yield idx


def inference_throughput(model: torch.nn.Module, images: torch.Tensor, batch_size: int, device: torch.device,
                         seconds: float = 0.5, amp: bool | None = None) -> float:
    """Inference images/s of a model at ``batch_size`` (uint8 → preprocess → logits, all on ``device``)."""
    model = model.eval()
    spec = model.spec
    channels_last = spec.channels_last and device.type == "cpu"
    x_u8 = _batch(images, batch_size).to(device)
    use_amp = device.type == "cuda" if amp is None else amp

    @torch.inference_mode()
    def step() -> None:
        x = preprocess(x_u8, spec)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            model(x)

    return timed_rate(step, batch_size, device, seconds, warmup=2)


def single_image_latency_ms(recognizer, image: np.ndarray, calls: int = 50) -> tuple[str, float]:
    """Median milliseconds of one call for one image: ``Recognizer.predict`` if it exists, else ``classify``."""
    if hasattr(recognizer, "predict"):
        name, call = "Recognizer.predict", lambda: recognizer.predict(image)
    else:
        name, call = "Recognizer.classify", lambda: recognizer.classify(image[None])
    for _ in range(3):
        call()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return name, 1000 * statistics.median(times)
