import csv
import json

import pytest
import torch

from digitnet import TrainConfig, load_model, train
from digitnet.train import Callback
from digitnet.train.checkpoint import CheckpointError, load_checkpoint

SMALL = dict(train_subset=1024, test_subset=500, val_size=500, batch_size=128, plots=False)


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class AfterEpoch(Callback):
    """Calls ``fn(epoch, row, model)`` after each epoch (before the checkpoint callback writes last.pt)."""

    def __init__(self, fn):
        self.fn = fn

    def on_epoch_end(self, fit, row):
        self.fn(fit.epoch, row, fit.model)


def test_a_real_model_learns_mnist(mnist, tmp_path):
    # The pipeline must really learn: one epoch of LeNet-5 on the full training split reaches >= 97%.
    result = train(TrainConfig(arch="lenet5", epochs=1, batch_size=64, out=str(tmp_path / "run"), plots=False),
                   mnist=mnist, quiet=True)
    assert result.metrics["test_accuracy"] >= 0.97
    assert result.metrics["test_samples"] == 10000
    loaded = load_model(result.run_dir)
    assert loaded.metadata["metrics"]["test_accuracy"] == result.metrics["test_accuracy"]
    assert loaded.metadata["data"]["checksum"] == mnist.checksum


def test_run_directory_contents(mnist, tmp_path):
    result = train(TrainConfig(arch="mlp", epochs=2, out=str(tmp_path / "run"), **SMALL), mnist=mnist, quiet=True)
    run = result.run_dir
    rows = list(csv.DictReader((run / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert all(float(r["lr"]) > 0 and float(r["val_accuracy"]) > 0 for r in rows)
    config = json.loads((run / "config.json").read_text())
    assert config["arch"] == "mlp" and config["l2"] == 1e-3  # the family default was applied
    env = json.loads((run / "environment.json").read_text())
    assert env["torch"] == torch.__version__ and env["device"] == "cpu"
    metrics = json.loads((run / "metrics.json").read_text())
    assert sum(map(sum, metrics["confusion"])) == 500
    assert load_checkpoint(run / "last.pt")["epoch"] == 2
    assert (run / "best.pt").is_file() and (run / "model.safetensors").is_file()


def test_same_seed_same_weights_on_cpu(mnist, tmp_path):
    cfg = dict(arch="fastnet", epochs=1, augment="light", **SMALL)
    a = train(TrainConfig(out=str(tmp_path / "a"), seed=3, **cfg), mnist=mnist, quiet=True)
    b = train(TrainConfig(out=str(tmp_path / "b"), seed=3, **cfg), mnist=mnist, quiet=True)
    c = train(TrainConfig(out=str(tmp_path / "c"), seed=4, **cfg), mnist=mnist, quiet=True)
    wa, wb, wc = _weights(a.model), _weights(b.model), _weights(c.model)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


def test_interrupt_then_resume_matches_an_uninterrupted_run(mnist, tmp_path):
    cfg = dict(arch="fastnet", epochs=3, schedule="onecycle", augment="light", seed=1, **SMALL)
    straight = train(TrainConfig(out=str(tmp_path / "straight"), **cfg), mnist=mnist, quiet=True)

    def ctrl_c_after_epoch_2(epoch, row, model):
        if epoch == 2:
            raise KeyboardInterrupt

    first = train(TrainConfig(out=str(tmp_path / "resumed"), **cfg), mnist=mnist, quiet=True,
                  callbacks=[AfterEpoch(ctrl_c_after_epoch_2)])
    assert first.interrupted and len(first.history) == 2
    assert (tmp_path / "resumed" / "model.safetensors").is_file()  # Ctrl-C still saved a usable model
    resumed = train(TrainConfig(out=str(tmp_path / "resumed"), resume=True, **cfg), mnist=mnist, quiet=True)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]
    ws, wr = _weights(straight.model), _weights(resumed.model)
    for key in ws:
        torch.testing.assert_close(wr[key], ws[key], rtol=0, atol=0)


def test_early_stopping_restores_the_best_weights(mnist, tmp_path):
    # lr so high that validation accuracy collapses after the first epoch: training must stop and keep epoch 1.
    seen = {}

    def remember(epoch, row, model):
        seen[epoch] = (row["val_accuracy"], _weights(model))

    result = train(TrainConfig(arch="mlp", epochs=6, optimizer="sgd", lr=0.05, early_stopping=1,
                               out=str(tmp_path / "run"), **SMALL), mnist=mnist, quiet=True,
                   callbacks=[AfterEpoch(remember)])
    accs = {e: acc for e, (acc, _) in seen.items()}
    best = max(accs, key=accs.get)
    assert len(result.history) < 6 or best == 6
    final = _weights(result.model)
    assert all(torch.equal(final[k], seen[best][1][k]) for k in final)
    assert result.metrics["weights_epoch"] == best


@pytest.mark.parametrize(("overrides", "expect"), [
    ({"schedule": "onecycle"}, "last"),  # annealed to ~0 on purpose: the schedule decides
    ({"schedule": "none"}, "best"),  # constant LR: validation picks the epoch
    ({"schedule": "none", "restore_best": False}, "last"),  # --keep-last
])
def test_which_epoch_is_saved_without_early_stopping(mnist, tmp_path, overrides, expect):
    seen = {}
    cfg = TrainConfig(arch="mlp", epochs=3, optimizer="sgd", lr=0.05, out=str(tmp_path / "run"), **overrides, **SMALL)
    result = train(cfg, mnist=mnist, quiet=True,
                   callbacks=[AfterEpoch(lambda e, row, m: seen.update({e: (row["val_accuracy"], _weights(m))}))])
    accs = {e: acc for e, (acc, _) in seen.items()}
    epoch = 3 if expect == "last" else max(accs, key=accs.get)
    final = _weights(result.model)
    assert all(torch.equal(final[k], seen[epoch][1][k]) for k in final)
    assert result.metrics["weights_epoch"] == epoch and result.metrics["epochs_run"] == 3


def test_resume_without_checkpoint_and_corrupt_checkpoint(tmp_path, mnist):
    from digitnet.utils import DigitnetError

    with pytest.raises(DigitnetError, match="last.pt not found"):
        train(TrainConfig(arch="mlp", out=str(tmp_path / "none"), resume=True, **SMALL), mnist=mnist, quiet=True)
    (tmp_path / "bad.pt").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CheckpointError, match="unreadable checkpoint"):
        load_checkpoint(tmp_path / "bad.pt")
