"""One run set-up: everything a training run needs, built from a :class:`TrainConfig` in one place.

``digitnet train`` (:mod:`digitnet.train.engine`), the benchmark's timed loop (``digitnet.bench.timing``), its
throughput figures (``digitnet.bench.throughput``) and ``benchmarks/profile_step.py`` all build a :class:`Run`
and step it with :meth:`Run.make_batch` and :meth:`Run.train_step`, so the benchmark times exactly what users
run: the same model placement, memory format, mixed precision, compile, optimizer and schedule.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from digitnet.data.lines import MAX_CHARS
from digitnet.data.samples import ReaderSamples, load_reader_samples
from digitnet.data.sources import MNIST
from digitnet.data.splits import Splits, make_splits
from digitnet.models.crnn import ALPHABET
from digitnet.models.registry import MNIST_SIDE, ModelSpec, create_model
from digitnet.saved_model import ModelLoadError, load_model
from digitnet.train import distributed
from digitnet.train.config import TrainConfig
from digitnet.train.lines import LineTask, ctc_loss, with_reader_lines
from digitnet.train.optim import PER_STEP_SCHEDULES, build_optimizer, build_scheduler
from digitnet.train.step import distillation_loss, make_batch, train_step, use_amp
from digitnet.utils import DigitnetError, seed_everything

LINE_MAX_GRAD_NORM = 5.0  # a line recognizer's gradients are clipped to this norm (CTC + LSTM)
# What early stopping, best-epoch selection and ReduceLROnPlateau may watch.
MONITORS = ("val_accuracy", "val_loss", "train_accuracy", "train_loss")


@dataclass
class Run:
    """A built run: data on its device, the model, how it is stepped, and the schedule."""

    cfg: TrainConfig  # resolved: no None hyper-parameters
    device: torch.device
    splits: Splits
    model: nn.Module  # the module whose weights are saved
    train_model: nn.Module  # what the step calls: ``model``, or a DDP/compiled wrapper sharing its parameters
    spec: ModelSpec
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau | None
    generator: torch.Generator  # batch order and augmentation: part of the exact-resume state
    amp: bool
    channels_last: bool
    steps_per_epoch: int
    monitor: str  # the metric that picks the best epoch, stops early and drives ReduceLROnPlateau
    lines: LineTask | None = None  # a line recognizer's batches, loss and evaluation (spec.task == "lines")
    teacher: nn.Module | None = None  # distillation's teacher (cfg.teacher), frozen, in eval mode
    extra: ReaderSamples | None = None  # reader samples (cfg.extra_data) on the device, mixed into every batch

    @property
    def per_step_schedule(self) -> bool:
        return self.scheduler is not None and self.cfg.schedule in PER_STEP_SCHEDULES

    @property
    def needs_epoch_metric(self) -> bool:
        """Whether :meth:`end_epoch` needs the monitored metric (ReduceLROnPlateau does)."""
        return isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)

    @property
    def batch_digits(self) -> int:
        """Training digits one batch takes: ``batch_size`` images, or the slots of ``batch_size`` lines."""
        return self.lines.digits_per_batch if self.lines is not None else self.cfg.batch_size

    @property
    def samples_per_epoch(self) -> int:
        """Images (or lines) this rank trains on in one epoch (its shard under torchrun)."""
        digits = distributed.shard_size(len(self.splits.train))
        if self.lines is None:
            return digits
        per_batch = self.batch_digits // distributed.world_size()  # this rank's digits per step
        full, rest = divmod(digits, per_batch)
        return full * (per_batch // MAX_CHARS) + rest // MAX_CHARS

    def epoch_batches(self) -> Iterator[torch.Tensor]:
        """Index batches of one epoch (this rank's shard of a fresh permutation under torchrun)."""
        return distributed.shard_batches(len(self.splits.train), self.batch_digits, self.generator,
                                         device=self.device)

    def make_batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The training batch ``idx``: gathered, normalized, augmented, in the model's memory format.

        For a line recognizer: lines drawn from those digits, and their targets (:class:`LineTargets`).
        """
        train = self.splits.train
        if self.lines is not None:
            x, target = self.lines.make_batch(train.images, train.labels, idx, self.generator, self.cfg.augment)
            if self.extra is not None:
                x, target = with_reader_lines(x, target, self.extra, self._extra_pick(len(self.extra.texts)).tolist())
            return x, target
        x, y = make_batch(train.images, train.labels, idx, self.spec, self.cfg.augment, self.generator,
                          self.channels_last)
        if self.extra is not None:
            # As the reader cut them: not augmented further (their distortions are the point).
            x_read, y_read = make_batch(self.extra.digits, self.extra.labels, self._extra_pick(len(self.extra.labels)),
                                        self.spec, "none", None, self.channels_last)
            x, y = torch.cat([x, x_read]), torch.cat([y, y_read])
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
        return x, y

    @property
    def extra_count(self) -> int:
        """Reader samples in each of this rank's batches (``extra_batch`` is global, as ``batch_size`` is)."""
        return self.cfg.extra_per_batch // distributed.world_size()

    def _extra_pick(self, available: int) -> torch.Tensor:
        """Which reader samples go into this batch: ``extra_batch`` drawn at random (with replacement) from the
        generator every rank shares, each rank taking its own share of them (:func:`load_extra` checked that they
        divide evenly)."""
        pick = torch.randint(available, (self.cfg.extra_per_batch,), generator=self.generator,
                             device=self.generator.device)
        return pick[distributed.rank()::distributed.world_size()]

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step, then a per-step schedule's step. Detached loss and logits, no host sync."""
        lines = self.lines is not None
        loss_function = ctc_loss if lines else None
        if self.teacher is not None:
            with torch.no_grad():
                teacher_logits = self.teacher(x)  # the same augmented images the student sees
            loss_function = partial(distillation_loss, teacher_logits=teacher_logits, weight=self.cfg.distill,
                                    temperature=self.cfg.distill_temperature, label_smoothing=self.cfg.label_smoothing)
        loss, logits = train_step(self.train_model, self.optimizer, x, y, self.cfg.label_smoothing, self.amp,
                                  loss_function, LINE_MAX_GRAD_NORM if lines else None)
        if self.per_step_schedule:
            self.scheduler.step()
        return loss, logits

    def score(self, logits: torch.Tensor, y) -> tuple[torch.Tensor, int]:
        """Right answers in a training batch (images classified right, lines read exactly) and its size: of the
        batch's own samples (an epoch counts those; reader samples ride along)."""
        own = len(y) - self.extra_count
        if self.lines is not None:
            return self.lines.score(logits[:own], y.head(own) if self.extra_count else y)
        return (logits[:own].argmax(1) == y[:own]).sum(), own

    def end_epoch(self, metrics: dict | None = None) -> None:
        """Step an epoch schedule. ReduceLROnPlateau gets ``metrics[self.monitor]``: the metric its mode was made for.

        The one place besides :meth:`train_step` that steps the schedule.
        """
        if self.scheduler is None or self.per_step_schedule:
            return
        if self.needs_epoch_metric:
            if metrics is None or metrics.get(self.monitor) is None:
                raise DigitnetError(f"--schedule plateau needs {self.monitor} at the end of each epoch")
            self.scheduler.step(metrics[self.monitor])
        else:
            self.scheduler.step()

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]


def resolve_monitor(cfg: TrainConfig, has_val: bool) -> str:
    """``cfg.monitor``, or ``train_loss`` when there is no validation set to measure it on."""
    if cfg.monitor not in MONITORS:
        raise DigitnetError(f"--monitor {cfg.monitor!r}: choose one of {', '.join(MONITORS)}")
    return cfg.monitor if has_val or not cfg.monitor.startswith("val_") else "train_loss"


def init_weights(model: nn.Module, cfg: TrainConfig) -> nn.Module:
    """``model`` with ``cfg.init``'s weights and the input contract they were trained with (fine-tuning); as it is
    without ``cfg.init``."""
    if cfg.init is None:
        return model
    try:
        start = load_model(cfg.init)
    except ModelLoadError as exc:
        raise DigitnetError(f"--init {cfg.init}: {exc}") from None
    kwargs = start.metadata.get("arch_kwargs", {})
    if start.spec.composite:
        raise DigitnetError(f"--init {cfg.init}: an ensemble is not fine-tuned; fine-tune one of its members")
    if start.arch != cfg.arch or kwargs != cfg.arch_kwargs:
        def describe(arch: str, kw: dict) -> str:
            return arch + (f" ({', '.join(f'{k}={v}' for k, v in kw.items())})" if kw else "")

        raise DigitnetError(f"--init {cfg.init}: it is {describe(start.arch, kwargs)}, the run trains "
                            f"{describe(cfg.arch, cfg.arch_kwargs)}; pass its --arch and --width")
    model.load_state_dict(start.model.state_dict())
    model.spec = start.spec  # type: ignore[attr-defined]  # fed as the weights were trained, saved so again
    return model


def load_extra(cfg: TrainConfig, spec: ModelSpec, device: torch.device) -> ReaderSamples | None:
    """``cfg.extra_data``'s reader samples on ``device``, checked to hold what this model learns from; None without."""
    if cfg.extra_data is None:
        if cfg.extra_batch is not None:
            raise DigitnetError("--extra-batch needs --extra-data (the reader samples it counts)")
        return None
    count = cfg.extra_per_batch
    if count < 1 or count % distributed.world_size():
        raise DigitnetError(f"--extra-batch must be at least 1 and divide among the {distributed.world_size()} "
                            f"processes, got {count}")
    samples = load_reader_samples(cfg.extra_data)
    if spec.task == "lines":
        if not samples.texts:
            raise DigitnetError(f"--extra-data {cfg.extra_data}: it holds no lines for a line recognizer to learn "
                                "from")
        strange = sorted({c for text in samples.texts for c in text} - set(ALPHABET))
        if strange:
            raise DigitnetError(f"--extra-data {cfg.extra_data}: its lines hold characters the recognizer does not "
                                f"read: {''.join(strange)!r}")
    elif not len(samples.labels):
        raise DigitnetError(f"--extra-data {cfg.extra_data}: it holds no digits for a classifier to learn from")
    return samples.to(device)


def load_teacher(cfg: TrainConfig, spec: ModelSpec, device: torch.device) -> nn.Module | None:
    """``cfg.teacher`` loaded for distillation, checked to take the student's input as it is; None without one."""
    if cfg.teacher is None:
        return None
    if spec.task != "digits":
        raise DigitnetError(f"--teacher: distillation teaches digit classifiers, not {spec.name}")
    try:
        teacher = load_model(cfg.teacher, device)
    except ModelLoadError as exc:
        raise DigitnetError(f"--teacher {cfg.teacher}: {exc}") from None
    if teacher.spec.task != "digits":
        raise DigitnetError(f"--teacher {cfg.teacher}: {teacher.arch} reads lines; a teacher classifies digits")
    for p in teacher.model.parameters():
        p.requires_grad_(False)
    if teacher.spec.input_size == spec.input_size and teacher.spec.mean_std == spec.mean_std:
        return teacher.model.eval()
    return FedItsOwnWay(teacher.model.eval(), teacher.spec, spec)  # e.g. an ensemble (0..1 pixels), a LeNet (32 px)


class FedItsOwnWay(nn.Module):
    """A teacher given the student's prepared input, turned back into 28×28 pixels in 0..1 and prepared as the
    teacher's own input contract says."""

    def __init__(self, teacher: nn.Module, teacher_spec: ModelSpec, student_spec: ModelSpec):
        super().__init__()
        self.teacher, self.teacher_spec, self.student_spec = teacher, teacher_spec, student_spec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = (self.student_spec.input_size - MNIST_SIDE) // 2
        if pad:
            x = x[..., pad:-pad, pad:-pad]
        mean, std = self.student_spec.mean_std
        return self.teacher(self.teacher_spec.prepare(x * std + mean))


def build_run(cfg: TrainConfig, data: MNIST | Splits, device: torch.device) -> Run:
    """Seed, split ``data`` on ``device`` (an :class:`MNIST` is split as ``cfg`` says) and build the run.

    ``cfg.amp`` and ``cfg.compile`` apply here; under torchrun the model is wrapped in DDP.
    """
    cfg = cfg.resolved()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    splits = make_splits(data, cfg.val_size, cfg.train_subset, cfg.test_subset, device=device) \
        if isinstance(data, MNIST) else data
    if len(splits.train) == 0:
        raise DigitnetError("the training split is empty")

    model = init_weights(create_model(cfg.arch, **cfg.arch_kwargs), cfg).to(device)
    # channels-last pays off for convolutions on CPU (oneDNN); cuDNN picks its own layout.
    channels_last = model.spec.channels_last and device.type == "cpu"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    train_model = distributed.wrap(model, device)  # DDP under torchrun, else the model itself
    if cfg.compile:
        train_model = torch.compile(train_model)  # shares the parameters: checkpoints still save `model`
    lines = LineTask(splits, cfg.batch_size) if model.spec.task == "lines" else None
    steps_per_epoch = math.ceil(len(splits.train) / (lines.digits_per_batch if lines else cfg.batch_size))
    optimizer = build_optimizer(model, cfg)
    monitor = resolve_monitor(cfg, splits.val is not None)
    scheduler = build_scheduler(optimizer, cfg, steps_per_epoch, monitor)
    return Run(cfg=cfg, device=device, splits=splits, model=model, train_model=train_model, spec=model.spec,
               optimizer=optimizer, scheduler=scheduler, generator=torch.Generator(device=device).manual_seed(cfg.seed),
               amp=use_amp(cfg.amp, device), channels_last=channels_last, steps_per_epoch=steps_per_epoch,
               monitor=monitor, lines=lines, teacher=load_teacher(cfg, model.spec, device),
               extra=load_extra(cfg, model.spec, device))
