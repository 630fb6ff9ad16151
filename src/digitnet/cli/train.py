"""CLI commands for training, added to the main app by ``register(app)``: ``train``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from digitnet.train.config import TrainConfig
from digitnet.train.signals import SIGNAL_EXIT_CODES

# Option defaults are TrainConfig's own, so the CLI and the Python API cannot drift apart.
DEFAULTS = TrainConfig()


def register(app: typer.Typer) -> None:
    """Add this concern's commands to ``app``."""
    app.command()(train)


def train(
    arch: str = typer.Option(DEFAULTS.arch, "--arch", "-a", help="Architecture (see `digitnet models`)."),
    width: int | None = typer.Option(None, help="Channel width of fastnet/bestnet/resnet (their `width` argument)."),
    epochs: int | None = typer.Option(DEFAULTS.epochs, help="Epochs (default: the architecture's recipe)."),
    batch_size: int | None = typer.Option(DEFAULTS.batch_size, "--batch-size", "-b", help="Batch size."),
    lr: float | None = typer.Option(DEFAULTS.lr, help="Learning rate (peak LR for onecycle/cosine)."),
    optimizer: str | None = typer.Option(DEFAULTS.optimizer, help="adam, adamw, sgd, rmsprop or adadelta."),
    momentum: float | None = typer.Option(DEFAULTS.momentum, help="Momentum for sgd."),
    nesterov: bool | None = typer.Option(DEFAULTS.nesterov, "--nesterov/--no-nesterov",
                                          help="Nesterov momentum (sgd)."),
    weight_decay: float | None = typer.Option(DEFAULTS.weight_decay, "--weight-decay",
                                              help="Weight decay on weight matrices."),
    l2: float | None = typer.Option(DEFAULTS.l2, help="Keras-style L2 penalty on weight matrices."),
    label_smoothing: float | None = typer.Option(DEFAULTS.label_smoothing, "--label-smoothing",
                                                 help="Label smoothing, 0..1."),
    schedule: str | None = typer.Option(DEFAULTS.schedule, help="none, plateau, step, cosine or onecycle."),
    warmup: float = typer.Option(DEFAULTS.warmup, help="Fraction of steps to warm up (onecycle, cosine)."),
    plateau_factor: float = typer.Option(DEFAULTS.plateau_factor, "--plateau-factor", help="LR factor on plateau."),
    plateau_patience: int = typer.Option(DEFAULTS.plateau_patience, "--plateau-patience",
                                         help="Epochs without improvement before cutting LR."),
    step_size: int = typer.Option(DEFAULTS.step_size, "--step-size", help="Epochs between LR cuts (step schedule)."),
    step_gamma: float = typer.Option(DEFAULTS.step_gamma, "--step-gamma", help="LR factor per cut (step schedule)."),
    early_stopping: int | None = typer.Option(DEFAULTS.early_stopping, "--early-stopping",
                                              help="Patience in epochs (off if unset)."),
    restore_best: bool | None = typer.Option(
        DEFAULTS.restore_best, "--restore-best/--keep-last",
        help="Save the best-validation epoch's weights, or the last epoch's. Default: best with early stopping or "
        "a none/step/plateau schedule, last for onecycle/cosine."),
    monitor: str = typer.Option(DEFAULTS.monitor,
                                help="Metric for plateau/early stopping: val_accuracy or val_loss."),
    augment: str | None = typer.Option(
        DEFAULTS.augment,
        help="Augmentation: none, light, robust, strong, real-world (coarse scans, pens, form boxes) or every-hand "
             "(real-world plus flagged and based 1s, crossed 7s, closed 4s)."),
    init: str | None = typer.Option(
        DEFAULTS.init, help="Fine-tune: start from this saved model folder's weights (or `best`), same --arch and "
                            "--width."),
    teacher: str | None = typer.Option(
        DEFAULTS.teacher, help="Distil from this saved model folder (or `best`): the student also learns its "
                               "softened answers, on the images it reads right."),
    distill: float = typer.Option(DEFAULTS.distill, help="The teacher's share of the loss, 0..1 (with --teacher)."),
    distill_temperature: float = typer.Option(DEFAULTS.distill_temperature, "--distill-temperature",
                                              help="Softmax temperature of the distillation term."),
    extra_data: str | None = typer.Option(
        DEFAULTS.extra_data, "--extra-data",
        help="Reader samples (.npz from benchmarks/reader_samples.py): digits and lines as `read` cut them from photos "
             "of training digits, mixed into every batch (with --init: fine-tune a model for reading pictures)."),
    extra_batch: int | None = typer.Option(
        DEFAULTS.extra_batch, "--extra-batch",
        help="Reader samples per batch (default: as many as the batch's own digits, or lines)."),
    val_size: int = typer.Option(DEFAULTS.val_size, "--val-size",
                                 help="Validation images from the end of training (0: none)."),
    train_subset: int | None = typer.Option(DEFAULTS.train_subset, "--train-subset",
                                            help="Train on the first N images only."),
    seed: int = typer.Option(DEFAULTS.seed, help="Random seed (runs are deterministic on CPU)."),
    device: str = typer.Option(DEFAULTS.device, help="auto, cpu, cuda, cuda:N or mps."),
    threads: int | None = typer.Option(DEFAULTS.threads, help="CPU threads for PyTorch."),
    amp: bool | None = typer.Option(DEFAULTS.amp, "--amp/--no-amp",
                                     help="bf16 mixed precision (default: on CUDA only)."),
    compile_model: bool = typer.Option(DEFAULTS.compile, "--compile",
                                       help="torch.compile the model (pays off on GPUs)."),
    data: str | None = typer.Option(DEFAULTS.data, help="MNIST from a folder of IDX files or a Keras mnist.npz."),
    download: bool = typer.Option(DEFAULTS.download, help="Allow downloading MNIST if it is not installed."),
    out: Path | None = typer.Option(DEFAULTS.out, "--out", "-o", help="Run directory (default runs/ARCH-TIME)."),
    resume: bool = typer.Option(DEFAULTS.resume, help="Continue the run in --out exactly where it stopped."),
    overwrite: bool = typer.Option(DEFAULTS.overwrite, "--overwrite",
                                   help="Replace the run already in --out (else refused)."),
    tensorboard: bool = typer.Option(DEFAULTS.tensorboard, help="Write TensorBoard logs into the run directory."),
    plots: bool = typer.Option(DEFAULTS.plots, help="Write curves, confusion matrix, galleries and report.html."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
    json_out: bool = typer.Option(False, "--json", help="Print the final metrics as one JSON object."),
) -> None:
    """Train a model on MNIST and save it (weights, metadata, history, metrics) in a run directory."""
    from digitnet import train as run_training  # the API function: the loop plus the report callbacks

    cfg = TrainConfig(
        arch=arch, epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, momentum=momentum,
        nesterov=nesterov, weight_decay=weight_decay, l2=l2, label_smoothing=label_smoothing, schedule=schedule,
        warmup=warmup, plateau_factor=plateau_factor, plateau_patience=plateau_patience, step_size=step_size,
        step_gamma=step_gamma, early_stopping=early_stopping, restore_best=restore_best, monitor=monitor,
        augment=augment, init=init, teacher=teacher, distill=distill, distill_temperature=distill_temperature,
        extra_data=extra_data, extra_batch=extra_batch,
        val_size=val_size, train_subset=train_subset, seed=seed, device=device, threads=threads, amp=amp,
        compile=compile_model, data=data, download=download,
        out=str(out) if out else None, resume=resume, overwrite=overwrite, tensorboard=tensorboard, plots=plots,
        arch_kwargs={"width": width} if width is not None else {},
    )
    result = run_training(cfg, quiet=quiet)
    if json_out:
        print(json.dumps({"run_dir": str(result.run_dir), **result.metrics}))
    if result.interrupted:
        raise typer.Exit(SIGNAL_EXIT_CODES.get(result.stop_signal or "SIGINT", 130))  # 143 after SIGTERM
