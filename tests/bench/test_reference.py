"""The reference recipe is a faithful, per-sample re-implementation of pytorch/examples mnist."""

from __future__ import annotations

import pytest
import torch

from digitnet.bench import reference
from digitnet.bench.timing import (
    TimeToAccuracy,
    _record,
    coarse_interval,
    run_recipe,
    run_reference,
    time_to_target_every,
)
from digitnet.models import ModelSpec, preprocess
from digitnet.train.config import TrainConfig


def test_dataset_is_per_sample_and_matches_torchvision_math(mnist):
    images, labels = mnist.train_images[:200], mnist.train_labels[:200]
    dataset = reference.PerSampleMNIST(images, labels)
    loader = reference.make_loader(dataset, 64, torch.device("cpu"), shuffle=False)
    batches = list(loader)
    assert dataset.calls == 200  # one __getitem__ per image, per epoch: the pipeline really is per-sample
    assert [len(b[1]) for b in batches] == [64, 64, 64, 8]
    x = torch.cat([b[0] for b in batches])
    assert x.shape == (200, 1, 28, 28) and x.dtype == torch.float32
    # ToTensor (/255) then Normalize((0.1307,), (0.3081,)) is what our batched preprocessing computes.
    expected = preprocess(torch.from_numpy(images), ModelSpec(name="x", description="x", normalization="mnist"))
    torch.testing.assert_close(x, expected, rtol=1e-6, atol=1e-6)
    assert torch.equal(torch.cat([b[1] for b in batches]), torch.from_numpy(labels.astype("int64")))


def test_reference_net_is_the_examples_net():
    model = reference.ReferenceNet()
    assert sum(p.numel() for p in model.parameters()) == 1_199_882  # as printed by the original
    out = model(torch.zeros(2, 1, 28, 28))
    assert out.shape == (2, 10)
    torch.testing.assert_close(out.exp().sum(1), torch.ones(2))  # log-softmax output
    _, optimizer, scheduler = reference.build(torch.device("cpu"))
    assert isinstance(optimizer, torch.optim.Adadelta) and optimizer.defaults["lr"] == 1.0
    assert isinstance(scheduler, torch.optim.lr_scheduler.StepLR) and scheduler.gamma == 0.7


def test_reference_run_is_capped_and_reports_not_reached(mnist):
    run = run_reference(mnist, seed=1, max_steps=5, train_subset=640, test_subset=200, threads=1)
    assert run.steps == 5 and run.images == 5 * 64 and run.capped
    assert run.time_s is None and not run.reached  # 5 steps cannot reach 99%
    assert run.train_seconds > 0 and run.eval_seconds > 0 and len(run.curve) == 1


def test_reference_evaluates_inside_epochs_and_at_their_ends(mnist):
    seen = []
    run = run_reference(mnist, seed=1, target=1.01, eval_every=0.5, max_epochs=2, train_subset=640,
                        test_subset=100, threads=1, on_eval=seen.append)
    assert [p["step"] for p in run.curve] == [5, 10, 15, 20] and seen == run.curve
    assert run.steps == 20 and run.capped and run.time_s is None


def test_coarser_granularities_are_read_off_the_curve():
    run = TimeToAccuracy(recipe="r", seed=0, target=0.99, time_s=None, epochs=None, train_seconds=0.0,
                         eval_seconds=0.0, eval_interval_steps=5, steps_per_epoch=20)
    for step, acc in [(5, 0.95), (10, 0.991), (15, 0.98), (20, 0.995), (25, 0.999)]:
        _record(run, step, step / 10, acc)
    assert run.time_s == 1.0 and run.epochs == 0.5
    assert time_to_target_every(run, 10) == 1.0
    assert time_to_target_every(run, 15) is None  # points 15 (below target) only
    assert time_to_target_every(run) == 2.0  # epoch ends only


def test_reference_keeps_going_to_an_epoch_end_that_reaches_the_target(mnist):
    # A target this low is reached at the first mid-epoch evaluation; the run goes on to the epoch's end so the
    # original's per-epoch figure can be read off the same curve, then stops.
    run = run_reference(mnist, seed=1, target=0.3, eval_every=0.5, max_epochs=3, train_subset=640,
                        test_subset=200, threads=1)
    assert run.reached and run.curve[0]["step"] == 5
    assert run.time_s == pytest.approx(run.curve[0]["train_seconds"], abs=1e-3)
    assert run.steps == 10 and [p["step"] for p in run.curve] == [5, 10]
    assert time_to_target_every(run) == pytest.approx(run.curve[1]["train_seconds"], abs=1e-3)


def test_recipe_trains_on_until_the_coarser_granularity_reaches_the_target(mnist):
    cfg = TrainConfig(arch="mlp", epochs=3, batch_size=64, train_subset=640, test_subset=200, val_size=0,
                      device="cpu", threads=1, seed=0)
    run = run_recipe(cfg, mnist, target=0.3, eval_every=0.2, coarse_every=1.0)
    coarse = coarse_interval(run.steps_per_epoch, run.eval_interval_steps, 1.0)
    assert run.eval_interval_steps == 2 and coarse == 10
    first = next(p["step"] for p in run.curve if p["test_accuracy"] >= 0.3)
    assert first < coarse and run.time_s is not None  # reached at a fine evaluation...
    assert run.steps == 10 and time_to_target_every(run, coarse) is not None  # ...and kept going to step 10
    fine_only = run_recipe(cfg, mnist, target=0.3, eval_every=0.2)
    assert fine_only.steps == first and fine_only.time_s is not None
