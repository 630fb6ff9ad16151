"""The trainer's callbacks: everything around the loop that is not the loop.

A :class:`Callback` (like Lightning's or Keras') overrides the hooks it needs; the engine calls them in list
order. Each sees the :class:`Fit` (the run, its directory, its history) and may ask the loop to stop. What a
callback must remember across a Ctrl-C, a kill or a crash goes through ``state_dict``/``load_state_dict``; the
engine saves every callback's state inside ``last.pt``, so a resumed run continues exactly.

Callbacks that write files or print set ``writes = True``: under torchrun rank 0 alone runs them.

Here: early stopping and the choice of the saved epoch (:class:`EarlyStopping`), ``history.csv``
(:class:`HistoryCSV`), the progress bar and epoch lines (:class:`ConsoleLog`), and ``last.pt``/``best.pt``
(:class:`Checkpoints`). TensorBoard is in :mod:`digitnet.train.tensorboard`, the run report in
:mod:`digitnet.evaluate.report`.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from digitnet.models.registry import count_parameters
from digitnet.train import distributed
from digitnet.train.checkpoint import save_checkpoint
from digitnet.train.run_folder import write_error
from digitnet.utils import atomic_write_text

if TYPE_CHECKING:
    from digitnet.train.setup import Run
    from digitnet.train.signals import StopRequest

HISTORY_FIELDS = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_accuracy", "lr",
                  "seconds", "train_seconds", "images_per_second"]


@dataclass
class Fit:
    """One call of the trainer as its callbacks see it."""

    run: Run
    run_dir: Path
    console: Console
    callbacks: list[Callback] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)  # one row per finished epoch
    epoch: int = 0  # the epoch in progress, or the last one finished
    stop_reason: str | None = None  # set by a callback to end training after this epoch
    interrupted: bool = False  # Ctrl-C or SIGTERM
    best_epoch: int | None = None  # by run.monitor; kept up to date by EarlyStopping
    weights_epoch: int | None = None  # the epoch whose weights the model holds at the end
    stop: StopRequest | None = None  # polled between steps: SIGTERM or a first Ctrl-C ends the fit cleanly
    # Where inside epoch ``len(history) + 1`` the fit stopped (a signal) or resumes: the step, the generator's
    # state at the epoch's start (it redraws the epoch's batch order) and the epoch's running sums. None between
    # epochs.
    position: dict | None = None
    saved: str | None = None  # what the last.pt on disk holds ("epoch 3", "epoch 4, step 120"), None: no last.pt

    @property
    def stop_signal(self) -> str | None:
        """The signal that stopped the fit (``SIGTERM``, ``SIGINT``), if one did."""
        return self.stop.signal_name if self.stop is not None and self.interrupted else None

    def stop_requested(self) -> bool:
        """Whether a signal asked the fit to stop; under torchrun, whether any rank was asked (all stop alike)."""
        requested = self.stop is not None and self.stop.requested
        if distributed.is_distributed():  # one tiny all-reduce per step: the ranks must stop at the same step
            return distributed.all_reduce_sum(int(requested))[0] > 0
        return requested

    @contextmanager
    def writing(self, path: Path) -> Iterator[None]:
        """Turn a failed write (full disk, read-only or forbidden folder) into one line: the path, the cause and
        what is still safe on disk."""
        try:
            yield
        except OSError as exc:
            if self.saved is not None:
                safe = (f"{self.run_dir / 'last.pt'} ({self.saved}) is intact: fix that and continue with the "
                        "same command plus --resume")
            else:
                safe = "no checkpoint of this run was written yet"
            raise write_error(exc, exc.filename or path, safe) from None

    @property
    def cfg(self):
        return self.run.cfg

    @property
    def model(self) -> torch.nn.Module:
        return self.run.model

    def checkpoint(self) -> dict:
        """``last.pt``: everything needed to continue this fit exactly where it is, callbacks included."""
        run = self.run
        return {
            "format": "digitnet-checkpoint", "epoch": len(self.history),  # finished epochs
            "config": run.cfg.to_dict(),
            "model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict() if run.scheduler is not None else None,
            "rng_cpu": torch.get_rng_state(), "rng_generator": run.generator.get_state(),
            "rng_cuda": torch.cuda.get_rng_state() if run.device.type == "cuda" else None,
            "callbacks": {cb.state_key: cb.state_dict() for cb in self.callbacks if cb.state_dict()},
            "history": self.history,
            "position": self.position,
        }

    def restore(self, state: dict) -> None:
        """Continue from a ``last.pt`` written by :meth:`checkpoint`."""
        run = self.run
        run.model.load_state_dict(state["model"])
        run.optimizer.load_state_dict(state["optimizer"])
        if run.scheduler is not None and state.get("scheduler") is not None:
            run.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng_cpu"])
        run.generator.set_state(state["rng_generator"])
        if run.device.type == "cuda" and state.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(state["rng_cuda"])
        saved = dict(state.get("callbacks") or {})
        if "stopper" in state:  # checkpoints written before callbacks kept their own state
            saved.setdefault(EarlyStopping.state_key, state["stopper"])
        for cb in self.callbacks:
            if cb.state_key in saved:
                cb.load_state_dict(saved[cb.state_key])
        self.history = list(state["history"])
        self.epoch = state["epoch"]
        self.position = state.get("position")
        self.saved = _describe_saved(len(self.history), self.position)


def _describe_saved(epochs_done: int, position: dict | None) -> str:
    if position is None:
        return f"epoch {epochs_done}"
    return f"epoch {epochs_done + 1} up to step {position['step']}"


class Callback:
    """Watches (and may steer) a fit. Override the hooks you need; all default to doing nothing."""

    writes = False  # True for callbacks that write files or print: rank 0 alone runs them

    @property
    def state_key(self) -> str:
        """The key of this callback's state in ``last.pt``."""
        return type(self).__name__

    def on_fit_start(self, fit: Fit) -> None:
        """Before the first epoch (of this process: after a resume, ``fit.history`` holds the earlier ones)."""

    def on_epoch_start(self, fit: Fit) -> None:
        """Before epoch ``fit.epoch``."""

    def on_batch_end(self, fit: Fit, seen: int, loss_sum: torch.Tensor, correct: torch.Tensor) -> None:
        """After each step: images ``seen`` this epoch on this rank, their summed loss and correct count.

        The sums are device tensors: reading them (``.item()``) waits for the device, so do it rarely.
        """

    def on_epoch_end(self, fit: Fit, row: dict) -> None:
        """After epoch ``fit.epoch`` was validated; ``row`` is its history row. Set ``fit.stop_reason`` to stop."""

    def on_epoch_stopped(self, fit: Fit) -> None:
        """A signal stopped epoch ``fit.epoch`` between two steps; ``fit.position`` says where."""

    def on_train_end(self, fit: Fit) -> None:
        """Training is over (finished, stopped early or interrupted), before the final evaluation."""

    def on_fit_end(self, fit: Fit, test_logits: torch.Tensor, metrics: dict) -> None:
        """After the model is saved, with the test set's logits (computed once, for every callback)."""

    def state_dict(self) -> dict:
        """What to save in ``last.pt``; empty: nothing."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""


class EarlyStopping(Callback):
    """Track the best epoch by ``monitor``; stop after ``patience`` epochs without improvement (None: never).

    At the end it decides which weights the model keeps (``restore_best``): the best epoch's, as Keras'
    ``restore_best_weights``, or the last epoch's.
    """

    state_key = "EarlyStopping"

    def __init__(self, monitor: str = "val_accuracy", patience: int | None = None, min_delta: float = 0.0,
                 restore_best: bool = True):
        self.monitor = monitor
        self.patience = patience
        self.min_delta = min_delta
        self.restore_best = restore_best
        self.maximize = not monitor.endswith("loss")
        self.best: float | None = None
        self.best_epoch = 0
        self.best_state: dict | None = None
        self.bad_epochs = 0

    def improved(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best + self.min_delta if self.maximize else value < self.best - self.min_delta

    def update(self, value: float, epoch: int, model: torch.nn.Module) -> bool:
        """Record this epoch's value; return True when training should stop."""
        if self.improved(value):
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            # Only the best weights need keeping when they may be restored; best.pt is written from the model.
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()} \
                if self.restore_best else None
        else:
            self.bad_epochs += 1
        return self.patience is not None and self.bad_epochs >= self.patience

    def on_fit_start(self, fit: Fit) -> None:
        fit.best_epoch = self.best_epoch or None

    def on_epoch_end(self, fit: Fit, row: dict) -> None:
        if self.update(row[self.monitor], fit.epoch, fit.model):
            fit.stop_reason = (f"Early stopping: no {self.monitor} improvement for {self.patience} epochs "
                               f"(best {self.best:.4f} at epoch {self.best_epoch})")
        fit.best_epoch = self.best_epoch

    def on_train_end(self, fit: Fit) -> None:
        if self.restore_best and self.best_state is not None:
            # Early stopping or a constant/stepped LR: the best epoch's weights. (One-cycle/cosine keep the last:
            # picking a mid-schedule epoch by a noisy validation score -- 5,000 images: one image is 0.02% --
            # throws away the annealed end the schedule is for; see TrainConfig.restores_best.)
            fit.model.load_state_dict(self.best_state)
            fit.weights_epoch = self.best_epoch
        else:
            fit.weights_epoch = len(fit.history)

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs,
                "best_state": self.best_state}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.bad_epochs, self.best_state = state["bad_epochs"], state["best_state"]


class HistoryCSV(Callback):
    """``history.csv``: one row per epoch, rewritten whole (atomically) after each."""

    writes = True

    def on_epoch_end(self, fit: Fit, row: dict) -> None:
        path = fit.run_dir / "history.csv"
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=HISTORY_FIELDS + ["eval_seconds"], extrasaction="ignore")
        writer.writeheader()
        for r in fit.history:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
        with fit.writing(path):
            atomic_write_text(path, buffer.getvalue())


class Checkpoints(Callback):
    """``last.pt`` after every epoch (to resume), ``best.pt`` when the epoch is the best so far, and ``last.pt``
    where a signal stopped an epoch (mid-epoch: ``--resume`` continues from that very step).

    The engine runs it after every other callback, so ``last.pt`` holds their state after this epoch.
    Each write is atomic: a failed one (full disk) leaves the previous ``last.pt`` whole.
    """

    writes = True

    def _save_last(self, fit: Fit) -> None:
        path = fit.run_dir / "last.pt"
        with fit.writing(path):
            save_checkpoint(path, fit.checkpoint())
        fit.saved = _describe_saved(len(fit.history), fit.position)

    def on_epoch_end(self, fit: Fit, row: dict) -> None:
        self._save_last(fit)
        if fit.best_epoch == fit.epoch:
            path = fit.run_dir / "best.pt"
            with fit.writing(path):
                save_checkpoint(path, {"format": "digitnet-checkpoint", "epoch": fit.epoch,
                                       "model": fit.model.state_dict()})

    def on_epoch_stopped(self, fit: Fit) -> None:
        self._save_last(fit)


class ConsoleLog(Callback):
    """What a user watches: a progress bar during each epoch, one line after it, and how training ended."""

    writes = True
    REFRESH_SECONDS = 0.5  # reading the running sums waits for the device: a couple of times a second at most

    def __init__(self) -> None:
        self.progress: Progress | None = None

    def on_fit_start(self, fit: Fit) -> None:
        run, cfg = fit.run, fit.cfg
        if fit.history:
            fit.console.print(f"[bold]Resuming[/] {fit.run_dir} at epoch {len(fit.history) + 1}/{cfg.epochs}")
        val = len(run.splits.val) if run.splits.val is not None else 0
        params = count_parameters(run.model)
        extra = ""
        if run.extra is not None:
            held = f"{len(run.extra.texts):,} lines" if run.lines is not None else f"{len(run.extra.labels):,} digits"
            extra = f" + {cfg.extra_per_batch} of {held} as read"
        fit.console.print(f"[bold]{cfg.arch}[/] ({params:,} params) on {run.device} · {len(run.splits.train):,} "
                          f"train, {val:,} val · {cfg.epochs} epochs · batch {cfg.batch_size}{extra} · {cfg.optimizer} "
                          f"lr {cfg.lr} · {cfg.schedule} · augment {cfg.augment} → {fit.run_dir}")

    def on_epoch_start(self, fit: Fit) -> None:
        columns = [TextColumn(f"epoch {fit.epoch}/{fit.cfg.epochs}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[stats]}"), TimeRemainingColumn()]
        self.progress = Progress(*columns, console=fit.console, transient=True, disable=fit.console.quiet)
        self.progress.start()
        # Under torchrun this rank sees its shard only: the bar counts shard steps × W, all ranks' images (lines).
        self.world = distributed.world_size()
        self.shard = fit.run.samples_per_epoch
        self.task = self.progress.add_task("train", total=self.shard * self.world, stats="")
        self.started = self.last_refresh = time.perf_counter()

    def on_batch_end(self, fit: Fit, seen: int, loss_sum: torch.Tensor, correct: torch.Tensor) -> None:
        now = time.perf_counter()
        last = seen >= self.shard  # always show the full bar at the epoch's end
        if self.progress is not None and (last or now - self.last_refresh > self.REFRESH_SECONDS):
            self.last_refresh = now
            images = seen * self.world
            self.progress.update(self.task, completed=images, stats=f"loss {loss_sum.item() / seen:.4f} "
                                 f"acc {correct.item() / seen:.4f} {images / (now - self.started):,.0f} img/s")

    def _close_progress(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def on_epoch_end(self, fit: Fit, row: dict) -> None:
        self._close_progress()
        parts = [f"epoch {row['epoch']:>3}/{fit.cfg.epochs}", f"loss {row['train_loss']:.4f}",
                 f"acc {row['train_accuracy']:.4f}"]
        if "val_accuracy" in row:
            parts += [f"val_loss {row['val_loss']:.4f}", f"val_acc {row['val_accuracy']:.4f}"]
        if "test_accuracy" in row:
            parts.append(f"test_acc {row['test_accuracy']:.4f}")
        parts += [f"lr {row['lr']:.2e}", f"{row['train_seconds']:.1f}s", f"{row['images_per_second']:,.0f} img/s"]
        fit.console.print(" · ".join(parts))

    def on_train_end(self, fit: Fit) -> None:
        self._close_progress()
        if fit.interrupted:
            by = f" by {fit.stop_signal}" if fit.stop_signal else ""
            if fit.saved:
                how = (f"{fit.run_dir / 'last.pt'} holds the run up to {fit.saved}: continue with the same command "
                       "plus --resume.")
            else:
                how = "no checkpoint was written yet: start again with the same command plus --overwrite."
            fit.console.print(f"\n[yellow]Interrupted[/]{by} during epoch {fit.epoch}; {how}")
        elif fit.stop_reason:
            fit.console.print(fit.stop_reason)

    def on_fit_end(self, fit: Fit, test_logits: torch.Tensor, metrics: dict) -> None:
        fit.console.print(f"[bold green]test accuracy {metrics['test_accuracy']:.4%}[/] (loss "
                          f"{metrics['test_loss']:.4f}, {metrics['test_errors']} errors of {metrics['test_samples']}) "
                          f"· trained {metrics['train_seconds']:.1f}s · saved to {fit.run_dir}")
