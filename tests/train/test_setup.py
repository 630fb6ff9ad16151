"""One run set-up (build_run): what it builds from a config, and the one place that steps the schedule."""

from __future__ import annotations

import pytest
import torch

from digitnet.data.splits import Split, Splits
from digitnet.train.config import TrainConfig
from digitnet.train.setup import build_run, resolve_monitor
from digitnet.utils import DigitnetError


def _splits(n=64, val=True):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (n,), generator=g)
    part = Split(images[:16], labels[:16])
    return Splits(train=Split(images, labels), val=part if val else None, test=part)


def test_the_monitor_falls_back_to_the_train_loss_without_validation():
    assert resolve_monitor(TrainConfig(), has_val=True) == "val_accuracy"
    assert resolve_monitor(TrainConfig(monitor="val_loss"), has_val=False) == "train_loss"
    with pytest.raises(DigitnetError, match="--monitor 'val_acc'"):
        resolve_monitor(TrainConfig(monitor="val_acc"), has_val=True)


@pytest.mark.parametrize(("val", "monitor", "mode"), [
    (True, "val_accuracy", "max"), (True, "val_loss", "min"), (False, "val_accuracy", "min")])
def test_plateau_mode_follows_the_metric_it_is_fed(val, monitor, mode):
    run = build_run(TrainConfig(arch="mlp", schedule="plateau", monitor=monitor), _splits(val=val),
                    torch.device("cpu"))
    assert run.scheduler.mode == mode
    assert run.monitor == (monitor if val else "train_loss")


def test_epoch_schedules_step_at_epoch_end_and_per_step_ones_after_each_step():
    step_run = build_run(TrainConfig(arch="mlp", schedule="step", step_size=1, step_gamma=0.5, lr=0.1,
                                     batch_size=16), _splits(), torch.device("cpu"))
    for idx in step_run.epoch_batches():
        step_run.train_step(*step_run.make_batch(idx))
    assert step_run.lr == pytest.approx(0.1)  # not touched by the steps
    step_run.end_epoch({})
    assert step_run.lr == pytest.approx(0.05)

    cycle_run = build_run(TrainConfig(arch="mlp", schedule="onecycle", lr=0.1, batch_size=16, epochs=2),
                          _splits(), torch.device("cpu"))
    lrs = []
    for idx in cycle_run.epoch_batches():
        cycle_run.train_step(*cycle_run.make_batch(idx))
        lrs.append(cycle_run.lr)
    assert len(set(lrs)) == len(lrs) == 4  # a new LR after every step
    cycle_run.end_epoch({})
    assert cycle_run.lr == lrs[-1]  # the epoch end leaves a per-step schedule alone

    plateau_run = build_run(TrainConfig(arch="mlp", schedule="plateau"), _splits(), torch.device("cpu"))
    with pytest.raises(DigitnetError, match="needs val_accuracy"):
        plateau_run.end_epoch({"train_loss": 1.0})
