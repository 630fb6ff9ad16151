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


def test_early_stopping_stops_and_restores_the_best_weights(mnist, tmp_path):
    # lr 0.05 for Adam is too high for this MLP: validation accuracy peaks at epoch 3 and falls at epoch 4, so with
    # patience 1 training must stop after epoch 4 (of 6) and keep epoch 3's weights.
    seen = {}

    def remember(epoch, row, model):
        seen[epoch] = (row["val_accuracy"], _weights(model))

    result = train(TrainConfig(arch="mlp", epochs=6, lr=0.05, early_stopping=1, out=str(tmp_path / "run"), **SMALL),
                   mnist=mnist, quiet=True, callbacks=[AfterEpoch(remember)])
    accs = {e: acc for e, (acc, _) in seen.items()}
    best = max(accs, key=accs.get)
    assert len(result.history) == best + 1 < 6  # stopped early: patience 1 after the best epoch
    final = _weights(result.model)
    assert all(torch.equal(final[k], seen[best][1][k]) for k in final)
    metrics = result.metrics
    assert metrics["weights_epoch"] == metrics["best_epoch"] == best and metrics["epochs_run"] == best + 1
    assert metrics["val_accuracy"] == accs[best]  # of the weights saved, not of the last epoch


def test_best_epoch_follows_the_monitor_and_the_test_set_runs_once(mnist, tmp_path, monkeypatch):
    from digitnet.train import engine

    test_size = 300
    test_passes = []
    predict = engine.predict_logits

    def counting_predict(model, images, spec, *args, **kwargs):
        if len(images) == test_size:
            test_passes.append(1)
        return predict(model, images, spec, *args, **kwargs)

    monkeypatch.setattr(engine, "predict_logits", counting_predict)
    # The train loss falls every epoch while validation accuracy peaks at epoch 3: the best epoch by the monitored
    # train_loss is the last one, and those are the weights kept.
    cfg = TrainConfig(arch="mlp", epochs=5, lr=0.01, monitor="train_loss", seed=1, out=str(tmp_path / "run"),
                      **{**SMALL, "test_subset": test_size})
    result = train(cfg, mnist=mnist, quiet=True)
    losses = [row["train_loss"] for row in result.history]
    assert losses == sorted(losses, reverse=True)
    assert max(result.history, key=lambda r: r["val_accuracy"])["epoch"] != 5  # else this test proves nothing
    assert result.metrics["best_epoch"] == result.metrics["weights_epoch"] == 5
    assert result.metrics["val_accuracy"] == result.history[-1]["val_accuracy"]
    assert json.loads((result.run_dir / "metrics.json").read_text())["monitor"] == "train_loss"
    assert len(test_passes) == 1  # the final evaluation, shared by every callback


def test_plateau_without_validation_cuts_the_lr_only_when_the_train_loss_stops_falling(mnist, tmp_path):
    # --val-size 0 monitors train_loss: ReduceLROnPlateau must be in "min" mode. In "max" mode a falling loss reads
    # as no improvement and, with patience 0, the LR is cut after every epoch.
    cfg = TrainConfig(arch="mlp", epochs=3, lr=1e-3, schedule="plateau", plateau_patience=0,
                      out=str(tmp_path / "run"), **{**SMALL, "val_size": 0})
    result = train(cfg, mnist=mnist, quiet=True)
    losses = [row["train_loss"] for row in result.history]
    assert losses == sorted(losses, reverse=True) and len(set(losses)) == 3
    assert [row["lr"] for row in result.history] == [1e-3] * 3


class Killed(BaseException):
    """Stands in for kill -9: nothing after it runs, nothing is saved."""


# Plateau cuts and early stopping both depend on state carried across epochs (the scheduler's best and bad epochs,
# early stopping's best value, bad epochs and best weights): a resume must restore all of it. Uninterrupted, this
# run cuts the LR twice, stops early after epoch 7 of 8 and keeps epoch 5's weights.
RESUME_RECIPE = dict(arch="mlp", epochs=8, lr=0.01, schedule="plateau", plateau_patience=0, early_stopping=2,
                     monitor="val_loss", seed=1, **SMALL)


def _same_run(a, b):
    wa, wb = _weights(a.model), _weights(b.model)
    for key in wa:
        torch.testing.assert_close(wb[key], wa[key], rtol=0, atol=0)
    ignore = {"train_seconds", "interrupted"}
    assert {k: v for k, v in a.metrics.items() if k not in ignore} == \
        {k: v for k, v in b.metrics.items() if k not in ignore}
    measured = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr")
    assert [[r[k] for k in measured] for r in a.history] == [[r[k] for k in measured] for r in b.history]


@pytest.fixture(scope="module")
def straight_run(mnist, tmp_path_factory):
    result = train(TrainConfig(out=str(tmp_path_factory.mktemp("straight")), **RESUME_RECIPE), mnist=mnist,
                   quiet=True)
    lrs = [row["lr"] for row in result.history]
    assert len(set(lrs)) >= 2 and len(result.history) < RESUME_RECIPE["epochs"]  # both mechanisms at work
    assert result.metrics["weights_epoch"] < len(result.history)
    return result


def test_ctrl_c_mid_epoch_then_resume_reproduces_the_run_with_plateau_and_early_stopping(mnist, tmp_path,
                                                                                         straight_run):
    class CtrlCInEpoch5(Callback):
        def on_batch_end(self, fit, seen, loss_sum, correct):
            if fit.epoch == 5 and seen >= 512:
                raise KeyboardInterrupt

    out = str(tmp_path / "run")
    first = train(TrainConfig(out=out, **RESUME_RECIPE), mnist=mnist, quiet=True, callbacks=[CtrlCInEpoch5()])
    assert first.interrupted and len(first.history) == 4
    assert load_checkpoint(tmp_path / "run" / "last.pt")["epoch"] == 4
    resumed = train(TrainConfig(out=out, resume=True, **RESUME_RECIPE), mnist=mnist, quiet=True)
    assert not resumed.interrupted
    _same_run(straight_run, resumed)


def test_kill_between_epochs_then_resume_reproduces_the_run_with_plateau_and_early_stopping(mnist, tmp_path,
                                                                                            straight_run):
    class KillBeforeEpoch5(Callback):
        def on_epoch_start(self, fit):
            if fit.epoch == 5:
                raise Killed

    out = tmp_path / "run"
    with pytest.raises(Killed):
        train(TrainConfig(out=str(out), **RESUME_RECIPE), mnist=mnist, quiet=True, callbacks=[KillBeforeEpoch5()])
    assert not (out / "model.safetensors").exists()  # died: only the checkpoints are there
    state = load_checkpoint(out / "last.pt")
    assert state["epoch"] == 4 and state["callbacks"]["EarlyStopping"]["bad_epochs"] == 1
    resumed = train(TrainConfig(out=str(out), resume=True, **RESUME_RECIPE), mnist=mnist, quiet=True)
    _same_run(straight_run, resumed)


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
