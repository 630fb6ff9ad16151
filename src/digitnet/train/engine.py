"""The training loop, top to bottom.

The whole data set lives as one uint8 tensor on the training device. An epoch is a random permutation
cut into index slices; each batch is gathered, normalized and (optionally) augmented on the device,
then forward, backward, step. Loss and accuracy accumulate as device tensors, so the loop never waits
on the device except to refresh the progress bar a few times a second.

After each epoch: validate, step the schedule, log a history row, write ``last.pt`` (and ``best.pt``),
and check early stopping. After the last: restore the best weights, fit a calibration temperature on
the validation set, evaluate on the test set once, and save the model with its metadata.
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from digitnet.data.sources import MNIST, load_mnist
from digitnet.data.splits import Split, make_splits
from digitnet.evaluate.metrics import classification_metrics, fit_temperature, predict_logits
from digitnet.models.registry import count_parameters, create_model
from digitnet.saved_model import environment_info, save_model
from digitnet.train import distributed
from digitnet.train.callbacks import EarlyStopping
from digitnet.train.checkpoint import load_checkpoint, save_checkpoint
from digitnet.train.config import TrainConfig
from digitnet.train.optim import PER_STEP_SCHEDULES, build_optimizer, build_scheduler
from digitnet.train.step import make_batch, train_step, use_amp
from digitnet.utils import DigitnetError, atomic_write_json, atomic_write_text, seed_everything

HISTORY_FIELDS = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_accuracy", "lr",
                  "seconds", "train_seconds", "images_per_second"]


@dataclass
class TrainResult:
    run_dir: Path
    model: torch.nn.Module
    metrics: dict
    history: list[dict] = field(default_factory=list)
    interrupted: bool = False


EpochHook = Callable[[int, dict, torch.nn.Module], None]


def default_run_dir(arch: str) -> Path:
    return Path("runs") / f"{arch}-{time.strftime('%Y%m%d-%H%M%S')}"


def train(
    config: TrainConfig,
    mnist: MNIST | None = None,
    on_epoch_end: EpochHook | None = None,
    console: Console | None = None,
    quiet: bool = False,
) -> TrainResult:
    """Train ``config.arch`` on MNIST and save everything into the run directory."""
    cfg = config.resolved()
    console = console or Console(stderr=True, quiet=quiet, soft_wrap=True)
    device = distributed.setup(cfg.device)  # joins the process group under torchrun; rank 0 alone writes
    console.quiet = console.quiet or not distributed.is_main()
    run_dir = Path(distributed.broadcast_object(cfg.out or str(default_run_dir(cfg.arch))))
    if cfg.resume and not (run_dir / "last.pt").is_file():
        raise DigitnetError(f"--resume: {run_dir / 'last.pt'} not found; pass the --out of the run to resume")
    if distributed.is_main():
        run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)

    mnist = mnist or load_mnist(cfg.data, allow_download=cfg.download)
    splits = make_splits(mnist, cfg.val_size, cfg.train_subset, cfg.test_subset, device=device)
    train_set = splits.train
    if len(train_set) == 0:
        raise DigitnetError("the training split is empty")

    model = create_model(cfg.arch, **cfg.arch_kwargs).to(device)
    spec = model.spec
    channels_last = spec.channels_last and device.type == "cpu"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    train_model = distributed.wrap(model, device)  # DDP under torchrun, else the model itself
    if cfg.compile:
        train_model = torch.compile(train_model)  # shares the parameters: checkpoints still save `model`
    amp = use_amp(cfg.amp, device)
    steps_per_epoch = math.ceil(len(train_set) / cfg.batch_size)
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg, steps_per_epoch)
    per_step = cfg.schedule in PER_STEP_SCHEDULES
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    stopper = EarlyStopping(cfg.monitor if splits.val is not None else "train_loss", cfg.early_stopping)
    history: list[dict] = []
    start_epoch = 1

    if cfg.resume:
        state = load_checkpoint(run_dir / "last.pt")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state.get("scheduler") is not None:
            scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng_cpu"])
        generator.set_state(state["rng_generator"])
        if device.type == "cuda" and state.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(state["rng_cuda"])
        stopper.load_state_dict(state["stopper"])
        history = state["history"]
        start_epoch = state["epoch"] + 1
        console.print(f"[bold]Resuming[/] {run_dir} at epoch {start_epoch}/{cfg.epochs}")

    loggers = make_loggers(cfg, run_dir, model, splits) if distributed.is_main() else []
    if distributed.is_main():
        atomic_write_json(run_dir / "config.json", cfg.to_dict())
        atomic_write_json(run_dir / "environment.json", {**environment_info(), "device": str(device),
                                                         "world_size": distributed.world_size()})
    console.print(f"[bold]{cfg.arch}[/] ({count_parameters(model):,} params) on {device} · {len(train_set):,} train, "
                  f"{len(splits.val) if splits.val else 0:,} val · {cfg.epochs} epochs · batch {cfg.batch_size} · "
                  f"{cfg.optimizer} lr {cfg.lr} · {cfg.schedule} · augment {cfg.augment} → {run_dir}")

    interrupted = False
    stop = False
    epoch = start_epoch - 1
    try:
        for epoch in range(start_epoch, cfg.epochs + 1):
            row = _train_one_epoch(train_model, train_set, optimizer, scheduler if per_step else None, cfg, generator,
                                   channels_last, amp, epoch, console, spec)
            eval_start = time.perf_counter()
            if splits.val is not None:
                val = classification_metrics(predict_logits(model, splits.val.images, spec), splits.val.labels)
                row.update(val_loss=val["loss"], val_accuracy=val["accuracy"])
            if cfg.track_test:
                row["test_accuracy"] = classification_metrics(
                    predict_logits(model, splits.test.images, spec), splits.test.labels)["accuracy"]
            row["eval_seconds"] = time.perf_counter() - eval_start
            row = distributed.broadcast_object(row)  # every rank schedules and stops on rank 0's numbers
            monitored = row.get(stopper.monitor, row["train_loss"])
            if scheduler is not None and not per_step:
                if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    scheduler.step(monitored)
                else:
                    scheduler.step()
            stop = stopper.update(monitored, epoch, model)
            history.append(row)
            _log_epoch(console, row, cfg.epochs)
            if distributed.is_main():
                _write_history(run_dir, history)
                state = {
                    "format": "digitnet-checkpoint", "epoch": epoch, "config": cfg.to_dict(),
                    "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "rng_cpu": torch.get_rng_state(), "rng_generator": generator.get_state(),
                    "rng_cuda": torch.cuda.get_rng_state() if device.type == "cuda" else None,
                    "stopper": stopper.state_dict(), "history": history,
                }
                save_checkpoint(run_dir / "last.pt", state)
                if stopper.best_epoch == epoch:
                    save_checkpoint(run_dir / "best.pt", {"format": "digitnet-checkpoint", "epoch": epoch,
                                                          "model": model.state_dict()})
            for logger in loggers:
                logger.on_epoch_end(epoch, row, model)
            if on_epoch_end is not None:
                on_epoch_end(epoch, row, model)
            if stop:
                console.print(f"Early stopping: no {stopper.monitor} improvement for {cfg.early_stopping} epochs "
                              f"(best {stopper.best:.4f} at epoch {stopper.best_epoch})")
                break
    except KeyboardInterrupt:
        interrupted = True
        console.print(f"\n[yellow]Interrupted[/] during epoch {epoch}. The checkpoint of the last finished epoch "
                      f"is in {run_dir / 'last.pt'}; continue with the same command plus --resume.")

    if cfg.restores_best() and stopper.best_state is not None:
        # Early stopping or a constant/stepped LR: the best-validation epoch (Keras' restore_best_weights).
        # One-cycle/cosine keep the last epoch: picking a mid-schedule epoch by a noisy validation score
        # (5,000 images: one image is 0.02%) throws away the annealed end the schedule is for.
        model.load_state_dict(stopper.best_state)
        weights_epoch = stopper.best_epoch
    else:
        weights_epoch = len(history)
    metrics = _finish(model, cfg, splits, history, run_dir, mnist, interrupted, console, weights_epoch) \
        if distributed.is_main() else None
    metrics = distributed.broadcast_object(metrics)
    distributed.cleanup()
    for logger in loggers:
        logger.on_train_end(run_dir, model, splits, metrics)
    return TrainResult(run_dir=run_dir, model=model, metrics=metrics, history=history, interrupted=interrupted)


class RunLogger:
    """Something that watches a run: TensorBoard, the run report. Subclass and override what you need."""

    def on_epoch_end(self, epoch: int, row: dict, model: torch.nn.Module) -> None:
        """After each epoch, with its history row."""

    def on_train_end(self, run_dir: Path, model: torch.nn.Module, splits, metrics: dict) -> None:
        """After the model is saved: write plots, reports, final logs."""


def make_loggers(cfg: TrainConfig, run_dir: Path, model: torch.nn.Module, splits) -> list[RunLogger]:
    """The loggers a config asks for (``--tensorboard``, ``--plots``)."""
    # Imported here: both modules import this one (RunLogger), and matplotlib/TensorBoard load only when asked for.
    loggers: list[RunLogger] = []
    if cfg.tensorboard:
        from digitnet.train.tensorboard import TensorBoardLogger

        loggers.append(TensorBoardLogger(run_dir, model, splits))
    if cfg.plots:
        from digitnet.evaluate.report import ReportLogger

        loggers.append(ReportLogger())
    return loggers


def _train_one_epoch(model, train_set: Split, optimizer, step_scheduler, cfg: TrainConfig, generator: torch.Generator,
                     channels_last: bool, amp: bool, epoch: int, console: Console, spec) -> dict:
    model.train()
    device = train_set.images.device
    n = len(train_set)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    start = time.perf_counter()
    columns = [TextColumn(f"epoch {epoch}/{cfg.epochs}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[stats]}"), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=True, disable=console.quiet) as progress:
        task = progress.add_task("train", total=n, stats="")
        last_refresh = start
        for idx in distributed.shard_batches(n, cfg.batch_size, generator, device=device):
            x, y = make_batch(train_set.images, train_set.labels, idx, spec, cfg.augment, generator, channels_last)
            loss, logits = train_step(model, optimizer, x, y, cfg.label_smoothing, amp)
            if step_scheduler is not None:
                step_scheduler.step()
            loss_sum += loss * len(y)
            correct += (logits.argmax(1) == y).sum()
            seen += len(y)
            now = time.perf_counter()
            if now - last_refresh > 0.5:  # the only host sync in the loop, a couple of times a second
                last_refresh = now
                progress.update(task, completed=seen, stats=f"loss {loss_sum.item() / seen:.4f} "
                                f"acc {correct.item() / seen:.4f} {seen / (now - start):,.0f} img/s")
    loss_sum, correct, seen = distributed.all_reduce_sum(loss_sum, correct, seen)  # whole-batch figures
    train_seconds = time.perf_counter() - start
    return {
        "epoch": epoch, "train_loss": loss_sum.item() / seen, "train_accuracy": correct.item() / seen,
        "lr": optimizer.param_groups[0]["lr"], "train_seconds": train_seconds,
        "seconds": train_seconds, "images_per_second": seen / train_seconds,
    }


def _log_epoch(console: Console, row: dict, epochs: int) -> None:
    parts = [f"epoch {row['epoch']:>3}/{epochs}", f"loss {row['train_loss']:.4f}", f"acc {row['train_accuracy']:.4f}"]
    if "val_accuracy" in row:
        parts += [f"val_loss {row['val_loss']:.4f}", f"val_acc {row['val_accuracy']:.4f}"]
    if "test_accuracy" in row:
        parts.append(f"test_acc {row['test_accuracy']:.4f}")
    parts += [f"lr {row['lr']:.2e}", f"{row['train_seconds']:.1f}s", f"{row['images_per_second']:,.0f} img/s"]
    console.print(" · ".join(parts))


def _write_history(run_dir: Path, history: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_FIELDS + ["eval_seconds"], extrasaction="ignore")
    writer.writeheader()
    for row in history:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write_text(run_dir / "history.csv", buffer.getvalue())


def _finish(model, cfg: TrainConfig, splits, history: list[dict], run_dir: Path, mnist: MNIST,
            interrupted: bool, console: Console, weights_epoch: int) -> dict:
    spec = model.spec
    temperature = 1.0
    if splits.val is not None:
        # Calibrate on validation data, never on the test set.
        temperature = fit_temperature(predict_logits(model, splits.val.images, spec), splits.val.labels)
    test = classification_metrics(predict_logits(model, splits.test.images, spec), splits.test.labels)
    test_calibrated_loss = classification_metrics(predict_logits(model, splits.test.images, spec),
                                                  splits.test.labels, temperature)["loss"]
    train_seconds = sum(r["train_seconds"] for r in history)
    metrics = {
        "test_accuracy": test["accuracy"], "test_loss": test["loss"], "test_loss_calibrated": test_calibrated_loss,
        "test_errors": test["errors"], "test_samples": test["num_samples"],
        "val_accuracy": history[-1].get("val_accuracy") if history else None,
        "best_epoch": max(range(len(history)), key=lambda i: history[i].get("val_accuracy", 0)) + 1
        if history and "val_accuracy" in history[0] else len(history),
        "epochs_run": len(history),
        "weights_epoch": weights_epoch,  # the epoch whose weights were saved
        "train_seconds": train_seconds, "temperature": temperature,
        "interrupted": interrupted,
    }
    save_model(model, run_dir, {
        "temperature": temperature,
        "metrics": metrics,
        "data": {"checksum": mnist.checksum, "source": mnist.source, "train_size": len(splits.train),
                 "val_size": len(splits.val) if splits.val else 0, "test_size": len(splits.test)},
        "training": {k: v for k, v in cfg.to_dict().items() if k not in ("out", "resume")},
    })
    atomic_write_json(run_dir / "metrics.json", {**metrics, "per_class": test["per_class"],
                                                 "confusion": test["confusion"]})
    console.print(f"[bold green]test accuracy {test['accuracy']:.4%}[/] (loss {test['loss']:.4f}, "
                  f"{test['errors']} errors of {test['num_samples']}) · trained {train_seconds:.1f}s · "
                  f"saved to {run_dir}")
    if interrupted:
        os.environ.setdefault("DIGITNET_INTERRUPTED", "1")
    return metrics
