"""The shared training step: what `digitnet train` and `digitnet bench` both run."""

from __future__ import annotations

import json

import torch

from digitnet.models import create_model
from digitnet.train import TrainConfig, train
from digitnet.train.step import make_batch, train_step, use_amp


def test_make_batch_gathers_normalizes_and_lays_out(mnist):
    images = torch.from_numpy(mnist.train_images[:32].copy())
    labels = torch.from_numpy(mnist.train_labels[:32].astype("int64"))
    spec = create_model("fastnet").spec
    idx = torch.tensor([3, 1, 4])
    x, y = make_batch(images, labels, idx, spec, channels_last=True)
    assert x.shape == (3, 1, 28, 28) and x.dtype == torch.float32
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(y, labels[idx])
    plain, _ = make_batch(images, labels, idx, spec)
    torch.testing.assert_close(x, plain)  # same values, only the memory layout differs
    shifted, _ = make_batch(images, labels, idx, spec, "strong", torch.Generator().manual_seed(0))
    assert shifted.shape == plain.shape and not torch.allclose(shifted, plain)


def test_train_step_updates_weights_and_returns_detached_figures(mnist):
    torch.manual_seed(0)
    model = create_model("mlp")
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    images = torch.from_numpy(mnist.train_images[:256].copy())
    labels = torch.from_numpy(mnist.train_labels[:256].astype("int64"))
    x, y = make_batch(images, labels, torch.arange(256), model.spec)
    before = [p.detach().clone() for p in model.parameters()]
    losses = [train_step(model, optimizer, x, y)[0] for _ in range(20)]
    assert not losses[0].requires_grad and losses[-1] < 0.5 * losses[0]  # it fits the batch
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_amp_is_on_for_cuda_only_by_default():
    assert use_amp(None, torch.device("cuda")) and not use_amp(None, torch.device("cpu"))
    assert use_amp(True, torch.device("cpu")) and not use_amp(False, torch.device("cuda"))


def test_bf16_autocast_runs_on_cpu_and_is_recorded(mnist, tmp_path):
    # The GPU path (bf16 autocast) exercised on the CPU: the logits come out in bf16 and training still learns.
    model = create_model("mlp")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    images = torch.from_numpy(mnist.train_images[:64].copy())
    labels = torch.from_numpy(mnist.train_labels[:64].astype("int64"))
    x, y = make_batch(images, labels, torch.arange(64), model.spec)
    _, logits = train_step(model, optimizer, x, y, amp=True)
    assert logits.dtype == torch.bfloat16
    cfg = TrainConfig(arch="mlp", epochs=3, train_subset=3500, val_size=500, test_subset=500, amp=True,
                      out=str(tmp_path / "run"), plots=False, device="cpu")
    result = train(cfg, mnist=mnist, quiet=True)
    assert result.metrics["test_accuracy"] > 0.8
    assert json.loads((tmp_path / "run" / "config.json").read_text())["amp"] is True
