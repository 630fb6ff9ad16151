"""The training loop, top to bottom.

:func:`digitnet.train.setup.build_run` builds the run from the config: the whole data set as one uint8 tensor
on the training device, the model, optimizer and schedule. An epoch is a random permutation cut into index
slices; each batch is gathered, normalized and (optionally) augmented on the device, then forward, backward,
step. Loss and accuracy accumulate as device tensors, so the loop never waits on the device except when the
progress bar reads them a couple of times a second.

After each epoch: validate, step an epoch schedule, and hand the row to the callbacks
(:mod:`digitnet.train.callbacks`): early stopping, ``history.csv``, the console line, TensorBoard, and last
``last.pt``/``best.pt``. After the last (or Ctrl-C): the callbacks choose the weights to keep, then the engine
fits a calibration temperature on the validation set, runs the test set through the model once, saves the
model with its metadata and gives the test logits to every callback (the run report draws from them).

This module imports nothing from :mod:`digitnet.evaluate`: the run report is a callback of that layer, added by
whoever calls (``digitnet.train(config)``, the package called, adds it when ``config.plots``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from rich.console import Console

from digitnet.data.sources import MNIST, load_mnist
from digitnet.models.crnn import ALPHABET
from digitnet.models.registry import count_parameters
from digitnet.saved_model import environment_info, save_model
from digitnet.train import distributed
from digitnet.train.callbacks import HISTORY_FIELDS, Callback, Checkpoints, ConsoleLog, EarlyStopping, Fit, HistoryCSV
from digitnet.train.checkpoint import load_checkpoint
from digitnet.train.config import TrainConfig
from digitnet.train.metrics import classification_metrics, fit_temperature, predict_logits, saved_test_metrics
from digitnet.train.run_folder import RunLock, check_out_dir, check_writable, checkpoint_bytes, clear_run
from digitnet.train.setup import Run, build_run
from digitnet.train.signals import StopRequest
from digitnet.utils import DigitnetError, atomic_write_json

__all__ = ["HISTORY_FIELDS", "TrainResult", "default_callbacks", "default_run_dir", "train"]


@dataclass
class TrainResult:
    run_dir: Path
    model: torch.nn.Module
    metrics: dict
    history: list[dict] = field(default_factory=list)
    interrupted: bool = False
    stop_signal: str | None = None  # SIGTERM or SIGINT when a signal stopped the run


def default_run_dir(arch: str) -> Path:
    return Path("runs") / f"{arch}-{time.strftime('%Y%m%d-%H%M%S')}"


def default_callbacks(run: Run, extra: Sequence[Callback] = ()) -> list[Callback]:
    """The callbacks of a fit, in the order they run: ours, ``extra``, then the checkpoint (which saves theirs).

    Early stopping runs first (it sets the best epoch the others read). Under torchrun the callbacks that
    write run on rank 0 only; early stopping runs everywhere, so every rank stops and restores alike.
    """
    cfg = run.cfg
    callbacks: list[Callback] = [EarlyStopping(run.monitor, cfg.early_stopping, restore_best=cfg.restores_best()),
                                 HistoryCSV(), ConsoleLog()]
    if cfg.tensorboard:
        from digitnet.train.tensorboard import TensorBoardCallback  # loads TensorBoard only when asked for

        if not any(isinstance(cb, TensorBoardCallback) for cb in extra):  # the caller may bring its own
            callbacks.append(TensorBoardCallback())
    callbacks += [*extra, Checkpoints()]
    return [cb for cb in callbacks if distributed.is_main() or not cb.writes]


def train(
    config: TrainConfig,
    mnist: MNIST | None = None,
    callbacks: Sequence[Callback] = (),
    console: Console | None = None,
    quiet: bool = False,
) -> TrainResult:
    """Train ``config.arch`` on MNIST and save everything into the run directory.

    ``callbacks`` run after ours (early stopping, history, console, TensorBoard) and before the checkpoint.
    This does not write the run report (``config.plots``): ``digitnet.train(config)`` (the package, called) adds it.

    The run folder is never replaced silently (a run in it needs ``resume`` or ``overwrite``) and has one writer
    (a lock held until the model is saved). SIGTERM or a first Ctrl-C stops after the current step with a
    mid-epoch ``last.pt`` that ``resume`` continues exactly; a second Ctrl-C stops at once. A failed write (full
    disk, ...) is one line naming the path, with the previous ``last.pt`` intact.
    """
    cfg = config.resolved()
    console = console or Console(stderr=True, quiet=quiet, soft_wrap=True)
    device = distributed.setup(cfg.device)  # joins the process group under torchrun; rank 0 alone writes
    ended = False
    try:
        console.quiet = console.quiet or not distributed.is_main()
        run_dir = Path(distributed.broadcast_object(cfg.out or str(default_run_dir(cfg.arch))))

        mnist = mnist or load_mnist(cfg.data, allow_download=cfg.download)
        run = build_run(cfg, mnist, device)
        lock = _claim_run_dir(run_dir, cfg, count_parameters(run.model))
        try:
            with StopRequest() as stop:
                fit = Fit(run=run, run_dir=run_dir, console=console, stop=stop)
                fit.callbacks = default_callbacks(run, callbacks)
                with fit.writing(run_dir):  # the last resort; the callbacks name the file that failed
                    metrics = _fit(fit, mnist)
        finally:
            if lock is not None:
                lock.release()
        ended = True
    finally:
        distributed.cleanup(wait=ended)  # leave the process group on an error too
    return TrainResult(run_dir=run_dir, model=run.model, metrics=metrics, history=fit.history,
                       interrupted=fit.interrupted, stop_signal=fit.stop_signal)


def _claim_run_dir(run_dir: Path, cfg: TrainConfig, num_parameters: int) -> RunLock | None:
    """On rank 0: check that ``run_dir`` can be written, lock it, and refuse to replace a run in it unasked.

    The checks run under the lock, so two runs started together cannot both find the folder empty. Every rank
    raises rank 0's error. Returns the lock (rank 0) for the caller to release when the run is saved.
    """
    lock, error = None, None
    if distributed.is_main():
        try:
            check_writable(run_dir, checkpoint_bytes(num_parameters))  # creates it; room for one last.pt
            lock = RunLock(run_dir).acquire()
            check_out_dir(run_dir, cfg.resume, cfg.overwrite)
            if cfg.overwrite:
                clear_run(run_dir)
        except DigitnetError as exc:
            if lock is not None:
                lock.release()
            error = str(exc)
    error = distributed.broadcast_object(error)
    if error is not None:
        raise DigitnetError(error)
    return lock


def _fit(fit: Fit, mnist: MNIST) -> dict:
    """Restore (``resume``), run the epochs, then finish: the final evaluation and the saved model."""
    run, cfg, run_dir = fit.run, fit.cfg, fit.run_dir
    if cfg.resume:
        # weights, optimizer, schedule, RNGs, callbacks, history, and where inside an epoch it stopped
        state = load_checkpoint(run_dir / "last.pt")
        started_from = state.get("config", {}).get("init")
        if started_from != cfg.init:  # the weights' input contract came from it (see setup.init_weights)
            raise DigitnetError(f"--resume: this run was started with --init {started_from}; resume it with the "
                                "same --init" if started_from else "--resume: this run was started without --init; "
                                "resume it without")
        started = state.get("config", {})
        for key, option in (("extra_data", "--extra-data"), ("extra_batch", "--extra-batch")):
            if started.get(key) != getattr(cfg, key):  # the batches it was making are part of the recipe
                raise DigitnetError(f"--resume: this run was started with {option} {started.get(key)}; resume it "
                                    "with the same")
        fit.restore(state)
    if distributed.is_main():
        atomic_write_json(run_dir / "config.json", cfg.to_dict())
        atomic_write_json(run_dir / "environment.json", {**environment_info(), "device": str(run.device),
                                                         "world_size": distributed.world_size()})
    _call(fit, "on_fit_start")

    try:
        for epoch in range(len(fit.history) + 1, cfg.epochs + 1):  # after a resume: from the next epoch
            fit.epoch = epoch
            _call(fit, "on_epoch_start")
            row = _train_one_epoch(fit)
            if row is None:  # a signal stopped the epoch between two steps: save where, then finish
                _refuse_diverged(fit)
                fit.interrupted = True
                _call(fit, "on_epoch_stopped")  # Checkpoints writes the mid-epoch last.pt
                break
            row.update(_validate(run))
            row = distributed.broadcast_object(row)  # every rank schedules and stops on rank 0's numbers
            _refuse_diverged(fit, {k: row.get(k) for k in ("train_loss", "val_loss")})  # before last.pt is written
            run.end_epoch(row)  # epoch schedules; ReduceLROnPlateau reads row[run.monitor]
            fit.history.append(row)
            _call(fit, "on_epoch_end", row)  # ... and last of them, Checkpoints writes last.pt
            if fit.stop_requested():  # signalled during the epoch's last step or its validation
                fit.interrupted = True
            if fit.stop_reason or fit.interrupted:
                break
    except KeyboardInterrupt:
        # A second Ctrl-C (or one where no handler could be installed): last.pt holds what was last saved;
        # the model as it stands is still saved below.
        fit.interrupted = True

    _call(fit, "on_train_end")  # early stopping puts back the weights to keep
    metrics = _finish(fit, mnist) if distributed.is_main() else None
    return distributed.broadcast_object(metrics)


def _call(fit: Fit, hook: str, *args) -> None:
    for callback in fit.callbacks:
        getattr(callback, hook)(fit, *args)


def _train_one_epoch(fit: Fit) -> dict | None:
    """Train epoch ``fit.epoch`` and return its row; None when a signal stopped it (``fit.position`` says where).

    A resumed position redraws the epoch's batch order from the generator's state at the epoch's start, then
    puts the generator back where it was and skips the steps already taken: the rest of the epoch runs exactly
    as it would have without the stop.
    """
    run = fit.run
    run.train_model.train()
    position, fit.position = fit.position, None
    generator_now = run.generator.get_state()
    if position is not None:
        run.generator.set_state(position["generator_at_start"])
    generator_at_start = run.generator.get_state()
    batches = list(run.epoch_batches())  # draws the epoch's order: the generator's first use in the epoch
    loss_sum = torch.zeros((), device=run.device)
    correct = torch.zeros((), device=run.device, dtype=torch.long)
    seen, first_step, seconds_before = 0, 0, 0.0
    if position is not None:
        run.generator.set_state(generator_now)  # as last.pt saved it: augmentation continues where it stopped
        first_step, seconds_before = position["step"], position["seconds"]
        if distributed.is_main():  # the sums saved were over all ranks: they are added back once
            loss_sum += position["loss_sum"].to(run.device)
            correct += position["correct"].to(run.device)
            seen = position["seen"]
    start = time.perf_counter() - seconds_before
    for step in range(first_step, len(batches)):
        x, y = run.make_batch(batches[step])
        loss, logits = run.train_step(x, y)  # steps a per-step schedule too
        right, count = run.score(logits, y)
        loss_sum += loss * count
        correct += right.to(correct.device)
        seen += count
        _call(fit, "on_batch_end", seen, loss_sum, correct)
        if step + 1 < len(batches) and fit.stop_requested():
            total_loss, total_correct, total_seen = distributed.all_reduce_sum(loss_sum, correct, seen)
            fit.position = {"step": step + 1, "generator_at_start": generator_at_start,
                            "loss_sum": total_loss.cpu(), "correct": total_correct.cpu(), "seen": total_seen,
                            "seconds": time.perf_counter() - start}
            return None
    loss_sum, correct, seen = distributed.all_reduce_sum(loss_sum, correct, seen)  # whole-batch figures
    train_seconds = time.perf_counter() - start
    return {
        "epoch": fit.epoch, "train_loss": loss_sum.item() / seen, "train_accuracy": correct.item() / seen,
        "lr": run.lr, "train_seconds": train_seconds, "seconds": train_seconds,
        "images_per_second": seen / train_seconds,
    }


def _refuse_diverged(fit: Fit, losses: dict[str, float | None] | None = None, training: bool = True) -> None:
    """Stop a run that diverged (weights or ``losses`` not finite numbers) before anything of it is saved: the
    ``last.pt`` already on disk stays as it was, and no model that answers NaN is ever written.

    ``training``: called from inside the loop, where the callbacks are told that training is over first (the
    progress bar goes, TensorBoard flushes), as :func:`_fit` tells them after the last epoch.
    """
    bad = [f"{name.replace('_', ' ')} {value}" for name, value in (losses or {}).items()
           if value is not None and not math.isfinite(value)]
    tensors = [t for t in fit.model.state_dict().values() if t.is_floating_point()]
    if tensors and not bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all()):
        bad.append("weights not finite numbers")
    if not bad:
        return
    kept = (f"{fit.run_dir / 'last.pt'} ({fit.saved}) is intact" if fit.saved is not None
            else "no checkpoint of this run was written")
    if training:
        _call(fit, "on_train_end")
    raise DigitnetError(f"the run diverged in epoch {fit.epoch} ({', '.join(bad)}); nothing of it was saved and "
                        f"{kept}: train again with a lower --lr (this run's: {fit.cfg.lr:g}), and --overwrite or "
                        "another --out")


def _validate(run: Run) -> dict:
    """The epoch's validation figures (and the test accuracy with ``track_test``, for benchmarks)."""
    start = time.perf_counter()
    row = {}
    if run.lines is not None:
        row.update(run.lines.validate(run.model))
    elif run.splits.val is not None:
        val = classification_metrics(predict_logits(run.model, run.splits.val.images, run.spec), run.splits.val.labels)
        row.update(val_loss=val["loss"], val_accuracy=val["accuracy"])
    if run.cfg.track_test and run.lines is None:
        test = run.splits.test
        row["test_accuracy"] = classification_metrics(predict_logits(run.model, test.images, run.spec),
                                                      test.labels)["accuracy"]
    row["eval_seconds"] = time.perf_counter() - start
    return row


def _finish(fit: Fit, mnist: MNIST) -> dict:
    """Calibrate, evaluate the test set once, save the model and metrics, and hand the test logits around
    (a line recognizer: None; its test lines are drawn from the test digits and read once)."""
    run, history = fit.run, fit.history
    # The weights kept: the last epoch's, the best one's, or where a second Ctrl-C caught them.
    _refuse_diverged(fit, training=False)
    splits = run.splits
    temperature = 1.0
    if run.lines is not None:  # lines of test digits, read once; CTC posteriors are used as they are
        test_logits, test = None, run.lines.test(run.model)
    else:
        if splits.val is not None:
            # Calibrate on validation data, never on the test set.
            temperature = fit_temperature(predict_logits(run.model, splits.val.images, run.spec), splits.val.labels)
            if not math.isfinite(temperature):  # the fit cannot run off (it bisects within bounds); should it,
                temperature = 1.0  # uncalibrated answers, rather than a model that answers NaN
        test_logits = predict_logits(run.model, splits.test.images, run.spec)
        test = classification_metrics(test_logits, splits.test.labels)
    weights_epoch = fit.weights_epoch if fit.weights_epoch is not None else len(history)
    weights_row = history[weights_epoch - 1] if 0 < weights_epoch <= len(history) else {}
    metrics = {
        **saved_test_metrics(test, test["loss"] if test_logits is None else
                       classification_metrics(test_logits, splits.test.labels, temperature)["loss"]),
        "val_accuracy": weights_row.get("val_accuracy"),  # of the weights saved, not of the last epoch
        "best_epoch": fit.best_epoch or len(history),  # by the monitored metric
        "monitor": run.monitor,
        "epochs_run": len(history),
        "weights_epoch": weights_epoch,  # the epoch whose weights were saved
        "train_seconds": sum(r["train_seconds"] for r in history), "temperature": temperature,
        "interrupted": fit.interrupted,
    }
    _refuse_diverged(fit, {"test_loss": metrics["test_loss"]}, training=False)
    if run.lines is not None:
        metrics["test_char_error_rate"] = test["char_error_rate"]
    with fit.writing(fit.run_dir / "model.safetensors"):
        _save(fit, mnist, metrics, temperature, test)
    _call(fit, "on_fit_end", test_logits, metrics)
    return metrics


def _save(fit: Fit, mnist: MNIST, metrics: dict, temperature: float, test: dict) -> None:
    cfg, splits = fit.cfg, fit.run.splits
    save_model(fit.run.model, fit.run_dir, {
        "temperature": temperature,
        "metrics": metrics,
        "data": {"checksum": mnist.checksum, "source": mnist.origin, "train_size": len(splits.train),
                 "val_size": len(splits.val) if splits.val else 0, "test_size": len(splits.test)},
        "training": {k: v for k, v in cfg.to_dict().items() if k not in ("out", "resume", "overwrite")},
        # a line recognizer: where its CTC columns sit, measured on the validation lines (line_reader parts by it)
        **({"task": "lines", "alphabet": ALPHABET, "ctc_offset": fit.run.lines.alignment_offset(fit.run.model)}
           if fit.run.lines is not None else {}),
    })
    details = {"per_class": test["per_class"], "confusion": test["confusion"]} if "confusion" in test else \
        {"misread_lines": [{"text": truth, "read": read} for truth, read in test["wrong"][:200]]}
    atomic_write_json(fit.run_dir / "metrics.json", {**metrics, **details})
