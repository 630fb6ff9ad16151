"""The reference recipe is a faithful, per-sample re-implementation of pytorch/examples mnist."""

from __future__ import annotations

import pytest
import torch

from digitnet.bench import reference
from digitnet.bench import run as bench_run
from digitnet.bench.timing import (
    TimeToAccuracy,
    _record,
    evaluation_due,
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
    # A hand-made curve evaluated every 1/4 of a 20-step epoch: the first point at target wins at each granularity.
    run = TimeToAccuracy(recipe="r", seed=0, target=0.99, time_s=None, epochs=None, train_seconds=0.0,
                         eval_seconds=0.0, eval_every_epochs=0.25, steps_per_epoch=20)
    for step, acc in [(5, 0.95), (10, 0.991), (15, 0.98), (20, 0.995), (25, 0.999)]:
        _record(run, step, step / 10, acc)
    assert run.time_s == 1.0 and run.epochs == 0.5
    assert time_to_target_every(run, 0.5) == 1.0  # steps 10, 20 of each epoch
    assert time_to_target_every(run) == 2.0  # epoch ends only
    assert time_to_target_every(run, 2.0) is None  # every 2nd epoch end: step 40 was never reached


def test_evaluation_points_are_the_same_fractions_of_an_epoch_for_any_batch_size():
    # 469 steps (ours, batch 128) and 938 steps (the reference, batch 64) per epoch, evaluated every 1/4 epoch.
    for steps_per_epoch in (469, 938):
        points = [s for s in range(1, 2 * steps_per_epoch + 1) if evaluation_due(s, steps_per_epoch, 0.25)]
        assert [round(s / steps_per_epoch, 2) for s in points] == [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]
    assert [s for s in range(1, 31) if evaluation_due(s, 10, 1.0)] == [10, 20, 30]
    assert [s for s in range(1, 31) if evaluation_due(s, 10, 2.0)] == [20]


def test_both_recipes_are_evaluated_on_the_same_grid_of_epochs(mnist):
    # 1,280 images: 10 steps of 128 for ours, 20 of 64 for the reference; the same 1/2-epoch grid in epochs.
    cfg = TrainConfig(arch="mlp", epochs=2, batch_size=128, train_subset=1280, test_subset=100, val_size=0,
                      device="cpu", threads=1, seed=0)
    ours = run_recipe(cfg, mnist, target=1.01, eval_every=0.5)
    ref = run_reference(mnist, seed=1, target=1.01, eval_every=0.5, max_epochs=2, train_subset=1280,
                        test_subset=100, threads=1)
    assert [p["epoch"] for p in ours.curve] == [p["epoch"] for p in ref.curve] == [0.5, 1.0, 1.5, 2.0]


def test_the_benchmark_evaluates_both_recipes_at_the_same_granularity(mnist, monkeypatch):
    asked = {}

    def fake(name):
        def runner(*args, **kwargs):
            asked[name] = kwargs.get("eval_every", args[3] if len(args) > 3 else None)
            return TimeToAccuracy(recipe=name, seed=0, target=0.99, time_s=1.0, epochs=0.5, train_seconds=1.0,
                                  eval_seconds=0.0, eval_every_epochs=asked[name], steps_per_epoch=4)
        return runner

    monkeypatch.setattr(bench_run, "run_recipe", fake("ours"))
    monkeypatch.setattr(bench_run, "run_reference", fake("reference"))
    result = bench_run.run_benchmark(bench_run.BenchOptions(seeds=1, throughput=False, device="cpu"), mnist)
    assert asked["ours"] == asked["reference"] == result["eval_every_epochs"]


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
    assert [p["step"] for p in run.curve][:5] == [2, 4, 6, 8, 10]  # every 1/5 of a 10-step epoch
    first = next(p["step"] for p in run.curve if p["test_accuracy"] >= 0.3)
    assert first < 10 and run.time_s is not None  # reached at a fine evaluation...
    assert run.steps == 10 and time_to_target_every(run) is not None  # ...and kept going to the epoch end
    fine_only = run_recipe(cfg, mnist, target=0.3, eval_every=0.2)
    assert fine_only.steps == first and fine_only.time_s is not None
