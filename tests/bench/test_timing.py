"""The bench's timed loop steps the trainer's own run set-up, epoch schedules included."""

from __future__ import annotations

import torch

from digitnet.bench.throughput import train_throughput
from digitnet.bench.timing import run_recipe
from digitnet.train.config import TrainConfig


def test_run_recipe_steps_a_plateau_schedule(mnist):
    # lenet5-bn's recipe reduces the LR on plateau: the timed loop must feed ReduceLROnPlateau the monitored
    # metric (train_loss: the bench has no validation split) instead of calling step() without one.
    cfg = TrainConfig(arch="lenet5-bn", epochs=2, batch_size=64, train_subset=256, test_subset=200, device="cpu",
                      threads=1, plateau_patience=0)
    assert cfg.resolved().schedule == "plateau"
    run = run_recipe(cfg, mnist, target=0.99, eval_every=0.5)
    assert run.steps == 8 and [p["step"] for p in run.curve] == [2, 4, 6, 8]
    assert run.images == 512 and 0 < run.final_accuracy <= 1


def test_train_throughput_uses_the_recipe_and_a_small_pool(mnist):
    images = torch.from_numpy(mnist.test_images[:100].copy())  # fewer than a batch of 128
    labels = torch.from_numpy(mnist.test_labels[:100].astype("int64"))
    # The pool is repeated up to one batch; the step is the trainer's (augmentation, schedule and all).
    assert train_throughput("fastnet-s", images, labels, torch.device("cpu"), seconds=0.2) > 0

