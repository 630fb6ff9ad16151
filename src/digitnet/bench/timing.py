"""Time to accuracy: train with the clock running only while training, evaluate the test set on the way.

Both runners stop their stopwatch before every evaluation and restart it after, so the figure is pure
training time (data already in memory, model built); evaluation time is summed and reported apart.
Both are evaluated at the same points (:func:`evaluation_due`: the same fractions of an epoch) and the
first evaluation whose test accuracy reaches the target fixes the figure. Our recipe is set up and
stepped as ``digitnet train`` does it (:func:`digitnet.train.setup.build_run` and its ``train_step``: batches
by index from one in-memory tensor, preprocessing on the device, channels-last on CPU, fused optimizer, the
same schedule stepping, no host syncs); the reference by its own per-sample DataLoader pipeline
(:mod:`digitnet.bench.reference`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import torch
import torch.nn.functional as F

from digitnet.bench import reference
from digitnet.data.sources import MNIST
from digitnet.train.config import TrainConfig
from digitnet.train.metrics import predict_logits
from digitnet.train.setup import build_run


@dataclass
class TimeToAccuracy:
    """One run: when (in training seconds) the test accuracy first reached ``target``, and the curve."""

    recipe: str
    seed: int
    target: float
    time_s: float | None  # training seconds until the first evaluation at or above target; None: not reached
    epochs: float | None  # epochs trained at that point
    train_seconds: float  # training seconds of the whole run (up to the stop)
    eval_seconds: float  # evaluation time, excluded from the figures above
    compile_seconds: float = 0.0  # part of train_seconds spent compiling (torch.compile), 0 when not used
    images: int = 0  # training images processed
    steps: int = 0
    final_accuracy: float = 0.0
    best_accuracy: float = 0.0
    eval_every_epochs: float = 1.0  # the granularity asked for; evaluation_due() places the points
    steps_per_epoch: int = 1
    capped: bool = False  # stopped by a step/epoch cap before the schedule ended
    curve: list[dict] = field(default_factory=list)  # {"step", "epoch", "train_seconds", "test_accuracy"}

    @property
    def reached(self) -> bool:
        return self.time_s is not None

    def to_dict(self) -> dict:
        return {**asdict(self), "reached": self.reached}


class Stopwatch:
    """Accumulates the seconds between ``start`` and ``stop``; waits for the device before reading it.

    ``cpu=True`` counts this process's CPU seconds instead of wall seconds: with one thread that is what
    the wall clock would read on an idle machine, so runs on a shared machine stay comparable.
    """

    def __init__(self, device: torch.device, cpu: bool = False) -> None:
        self.device = device
        self.total = 0.0
        self._now = time.process_time if cpu else time.perf_counter
        self._started: float | None = None

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def start(self) -> None:
        self._sync()
        self._started = self._now()

    def stop(self) -> float:
        self._sync()
        if self._started is not None:
            self.total += self._now() - self._started
            self._started = None
        return self.total


def evaluation_due(step: int, steps_per_epoch: int, every_epochs: float) -> bool:
    """Whether the test set is evaluated after ``step`` (1-based): the one schedule both recipes use.

    ``every_epochs`` < 1 splits each epoch into ``round(1 / every_epochs)`` equal parts, its end included
    (469-step epochs at 1/4 are evaluated after steps 117, 234, 352 and 469); ``every_epochs`` >= 1 evaluates
    at the end of every ``round(every_epochs)``-th epoch. Placing points by fractions of an epoch, not every
    N steps, puts recipes with different batch sizes on the same grid of epochs.
    """
    epoch, in_epoch = divmod(step - 1, steps_per_epoch)
    if every_epochs >= 1:
        return in_epoch == steps_per_epoch - 1 and (epoch + 1) % max(1, round(every_epochs)) == 0
    parts = max(1, round(1 / every_epochs))
    return in_epoch + 1 in {round(j * steps_per_epoch / parts) for j in range(1, parts + 1)}


def run_recipe(
    cfg: TrainConfig,
    mnist: MNIST,
    target: float = 0.99,
    eval_every: float = 0.125,
    stop_at_target: bool = True,
    max_steps: int | None = None,
    amp: bool | None = None,
    compile_model: bool = False,
    recipe_name: str | None = None,
    cpu_clock: bool = False,
    coarse_every: float | None = None,
) -> TimeToAccuracy:
    """Train ``cfg`` (all 60,000 training images unless ``cfg.train_subset``) and time it to ``target``.

    ``amp``: bf16 autocast; None = on CUDA only (CPUs without bf16 units run it slower than fp32).
    ``compile_model``: ``torch.compile`` the model; its compile time counts as training time.
    ``cpu_clock``: time in process CPU seconds (see :class:`Stopwatch`).
    ``coarse_every``: keep training after the target is reached until an evaluation on the coarser schedule
    of this many epochs reaches it too, so the figure at that granularity can be read off the same curve.
    """
    # Set up exactly as `digitnet train` does; no validation split: the clock stops for test evaluations only.
    cfg = replace(cfg.resolved(), val_size=0, compile=compile_model, amp=amp)
    device = torch.device(cfg.device) if cfg.device != "auto" else _auto_device()
    run = build_run(cfg, mnist, device)
    model, spec, test_set = run.model, run.spec, run.splits.test
    steps_per_epoch = run.steps_per_epoch
    total_steps = cfg.epochs * steps_per_epoch
    if max_steps is not None:
        total_steps = min(total_steps, max_steps)

    clock = Stopwatch(device, cpu_clock)
    result = TimeToAccuracy(recipe=recipe_name or cfg.arch, seed=cfg.seed, target=target, time_s=None, epochs=None,
                            train_seconds=0.0, eval_seconds=0.0, eval_every_epochs=eval_every,
                            steps_per_epoch=steps_per_epoch, capped=total_steps < cfg.epochs * steps_per_epoch)
    # The train loss of the epoch, summed on the device: only ReduceLROnPlateau needs it (the one host sync
    # it costs falls at the epoch end); other schedules run without it, as the trainer's step does.
    loss_sum = torch.zeros((), device=device) if run.needs_epoch_metric else None

    def batches():
        nonlocal loss_sum
        for _ in range(cfg.epochs):
            yield from run.epoch_batches()
            if loss_sum is not None:
                run.end_epoch({"train_loss": loss_sum.item() / len(run.splits.train)})
                loss_sum.zero_()
            else:
                run.end_epoch()

    step = 0
    run.train_model.train()
    clock.start()
    for step, idx in enumerate(batches(), 1):
        x, y = run.make_batch(idx)
        loss, _ = run.train_step(x, y)  # steps a per-step schedule too
        if loss_sum is not None:
            loss_sum += loss * len(y)
        result.images += len(idx)
        if compile_model and step == 1:
            result.compile_seconds = clock.stop()  # the first step pays for compilation
            clock.start()
        if evaluation_due(step, steps_per_epoch, eval_every) or step == total_steps:
            train_seconds = clock.stop()
            accuracy = _timed_eval(result, lambda: _accuracy(model, test_set, spec))
            _record(result, step, train_seconds, accuracy)
            if (stop_at_target and _done(result, coarse_every)) or step == total_steps:
                break
            run.train_model.train()
            clock.start()
    result.steps = step
    result.train_seconds = clock.stop()
    return result


def run_reference(
    mnist: MNIST,
    seed: int = 1,
    target: float = 0.99,
    eval_every: float = 1.0,
    max_epochs: int = 14,
    max_steps: int | None = None,
    device: str = "auto",
    train_subset: int | None = None,
    test_subset: int | None = None,
    threads: int | None = None,
    on_eval: Callable[[dict], None] | None = None,
    cpu_clock: bool = False,
    coarse_every: float | None = 1.0,
) -> TimeToAccuracy:
    """The PyTorch examples recipe (see :mod:`digitnet.bench.reference`), timed the same way as ours.

    Evaluated on :func:`evaluation_due`'s schedule, as ours; ``eval_every`` < 1 evaluates inside an epoch and
    at its end (the original evaluates after each epoch). ``coarse_every`` as for :func:`run_recipe`; by
    default the run goes on to an epoch end at target, the original's figure. ``on_eval`` gets every curve
    point as it is recorded (progress for a run of minutes).
    """
    dev = torch.device(device) if device != "auto" else _auto_device()
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)  # the original seeds once, before building anything
    train_images, train_labels = mnist.train_images[:train_subset], mnist.train_labels[:train_subset]
    test_images, test_labels = mnist.test_images[:test_subset], mnist.test_labels[:test_subset]
    train_loader = reference.make_loader(reference.PerSampleMNIST(train_images, train_labels), 64, dev)
    test_loader = reference.make_loader(reference.PerSampleMNIST(test_images, test_labels), 1000, dev)
    model, optimizer, scheduler = reference.build(dev)
    steps_per_epoch = len(train_loader)
    total_steps = max_epochs * steps_per_epoch if max_steps is None else min(max_steps, max_epochs * steps_per_epoch)
    clock = Stopwatch(dev, cpu_clock)
    result = TimeToAccuracy(recipe="pytorch-examples", seed=seed, target=target, time_s=None, epochs=None,
                            train_seconds=0.0, eval_seconds=0.0, eval_every_epochs=eval_every,
                            steps_per_epoch=steps_per_epoch,
                            capped=total_steps < 14 * steps_per_epoch)  # the original trains 14 epochs

    def batches():
        for _ in range(max_epochs):
            yield from train_loader
            scheduler.step()  # StepLR, once per epoch as the original

    step = 0
    model.train()
    clock.start()
    for step, (data, labels) in enumerate(batches(), 1):
        data, labels = data.to(dev), labels.to(dev)
        optimizer.zero_grad()
        loss = F.nll_loss(model(data), labels)
        loss.backward()
        optimizer.step()
        if (step - 1) % steps_per_epoch % 10 == 0:
            loss.item()  # the original prints the loss every 10 batches: keep its host sync
        result.images += len(labels)
        if evaluation_due(step, steps_per_epoch, eval_every) or step == total_steps:
            train_seconds = clock.stop()
            accuracy = _timed_eval(result, lambda: reference.evaluate(model, test_loader, dev))
            _record(result, step, train_seconds, accuracy)
            if on_eval is not None:
                on_eval(result.curve[-1])
            if _done(result, coarse_every) or step == total_steps:
                break
            clock.start()
    result.steps = step
    result.train_seconds = clock.stop()
    return result


def _auto_device() -> torch.device:
    from digitnet.utils import pick_device

    device = pick_device("auto")
    return device if device.type in ("cpu", "cuda") else torch.device("cpu")  # mps: untested, use the CPU


def _accuracy(model: torch.nn.Module, test_set, spec) -> float:
    logits = predict_logits(model, test_set.images, spec)
    return float((logits.argmax(1) == test_set.labels.to(logits.device)).float().mean())


def _timed_eval(result: TimeToAccuracy, evaluate) -> float:
    start = time.perf_counter()
    accuracy = evaluate()
    result.eval_seconds += time.perf_counter() - start
    return accuracy


def _record(result: TimeToAccuracy, step: int, train_seconds: float, accuracy: float) -> None:
    result.curve.append({"step": step, "epoch": round(step / result.steps_per_epoch, 4),
                         "train_seconds": round(train_seconds, 3), "test_accuracy": accuracy})
    result.final_accuracy = accuracy
    result.best_accuracy = max(result.best_accuracy, accuracy)
    if result.time_s is None and accuracy >= result.target:
        result.time_s = train_seconds
        result.epochs = step / result.steps_per_epoch


def time_to_target_every(run: TimeToAccuracy, every_epochs: float = 1.0) -> float | None:
    """The time to target had ``run`` been evaluated only on the schedule of ``every_epochs`` (default: epoch ends).

    Read off the recorded curve, so one run gives the figure at a coarser granularity too.
    """
    for point in run.curve:
        if evaluation_due(point["step"], run.steps_per_epoch, every_epochs) and point["test_accuracy"] >= run.target:
            return point["train_seconds"]
    return None


def _done(run: TimeToAccuracy, coarse_every: float | None) -> bool:
    """Reached at the run's own schedule and, if asked, at the coarser one too."""
    return run.reached and (coarse_every is None or time_to_target_every(run, coarse_every) is not None)
