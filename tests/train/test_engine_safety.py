"""Never lose a run: refused overwrites, one writer per folder, SIGTERM/Ctrl-C mid-epoch, full disks, divergence."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from digitnet import TrainConfig, load_model, train
from digitnet.train import Callback
from digitnet.train.checkpoint import load_checkpoint
from digitnet.train.run_folder import RunLock
from digitnet.utils import DigitnetError

TINY = dict(arch="mlp", epochs=2, train_subset=512, test_subset=256, val_size=256, batch_size=64, plots=False)
# Mid-epoch stops must resume into the same run: augmentation and dropout draw random numbers and one-cycle steps
# the LR every step, so any state not carried over shows in the weights.
RECIPE = dict(TINY, augment="light", schedule="onecycle", seed=1)


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


MEASURED = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr")


def _rows(history):
    return [[row[k] for k in MEASURED] for row in history]


# --- 1. a run folder is never replaced silently --------------------------------------------------------------------

def test_a_finished_run_is_refused_without_resume_or_overwrite(mnist, tmp_path):
    out = tmp_path / "run"
    train(TrainConfig(out=str(out), **TINY), mnist=mnist, quiet=True)
    weights = (out / "model.safetensors").read_bytes()
    with pytest.raises(DigitnetError) as refused:
        train(TrainConfig(out=str(out), **{**TINY, "arch": "lenet5"}), mnist=mnist, quiet=True)
    message = str(refused.value)
    assert "\n" not in message
    assert "finished run (mlp, 2/2 epochs, test accuracy" in message
    assert "--resume" in message and "--overwrite" in message and "another --out" in message
    assert (out / "model.safetensors").read_bytes() == weights  # untouched
    assert not (out / ".lock").exists()  # the refused run let go of the folder

    replaced = train(TrainConfig(out=str(out), overwrite=True, **{**TINY, "arch": "lenet5", "epochs": 1}),
                     mnist=mnist, quiet=True)
    assert load_model(out).arch == "lenet5" and len(replaced.history) == 1
    assert len((out / "history.csv").read_text().splitlines()) == 2  # header + the new run's one epoch


def test_an_interrupted_run_is_refused_too(mnist, tmp_path):
    class Killed(BaseException):
        pass

    class KillInEpoch2(Callback):
        def on_epoch_start(self, fit):
            if fit.epoch == 2:
                raise Killed

    out = tmp_path / "run"
    with pytest.raises(Killed):
        train(TrainConfig(out=str(out), **TINY), mnist=mnist, quiet=True, callbacks=[KillInEpoch2()])
    with pytest.raises(DigitnetError, match=r"holds an interrupted run \(mlp, 1/2 epochs\)"):
        train(TrainConfig(out=str(out), **TINY), mnist=mnist, quiet=True)
    assert load_checkpoint(out / "last.pt")["epoch"] == 1


# --- 2. one writer per run folder ----------------------------------------------------------------------------------

def _hold_lock_in_child(run_dir: Path) -> subprocess.Popen:
    """Another process that holds the run folder's lock (as a running `digitnet train` does) until killed."""
    code = ("import sys, time; from digitnet.train.run_folder import RunLock; "
            "RunLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(120)")
    child = subprocess.Popen([sys.executable, "-c", code, str(run_dir)], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "locked"  # bounded: the child sleeps at most 120 s
    return child


def test_a_second_writer_is_refused_naming_the_holder(mnist, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    holder = _hold_lock_in_child(out)
    try:
        with pytest.raises(DigitnetError, match=rf"being written by another digitnet process \(PID {holder.pid}\)"):
            train(TrainConfig(out=str(out), **TINY), mnist=mnist, quiet=True)
        assert not (out / "history.csv").exists()
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_the_lock_is_held_for_the_whole_run_and_released(mnist, tmp_path):
    out = tmp_path / "run"
    held = []

    class TryToLock(Callback):
        def on_fit_end(self, fit, test_logits, metrics):  # after the model was saved: still ours
            with pytest.raises(DigitnetError, match=f"PID {os.getpid()}"):
                RunLock(fit.run_dir).acquire()
            held.append(True)

    train(TrainConfig(out=str(out), **TINY), mnist=mnist, quiet=True, callbacks=[TryToLock()])
    assert held and not (out / ".lock").exists()


def _digitnet(*args: str) -> list[str]:
    return [sys.executable, "-m", "digitnet", "train", *args]


def _wait_for(predicate, timeout: float, what: str, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the training process ended (rc {process.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


CLI_RUN = ["--arch", "mlp", "--train-subset", "16000", "--val-size", "256",
           "--batch-size", "16", "--augment", "light", "--schedule", "onecycle", "--seed", "1", "--threads", "1",
           "--no-plots", "--device", "cpu"]


def test_a_sigkilled_runs_stale_lock_is_taken_over_by_resume(tmp_path):
    out = tmp_path / "run"
    child = subprocess.Popen(_digitnet(*CLI_RUN, "--epochs", "2", "--out", str(out), "-q"))
    try:
        _wait_for(lambda: (out / "last.pt").is_file(), 120, "the first checkpoint", child)
        assert (out / ".lock").read_text().strip() == str(child.pid)
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        child.kill()
    assert (out / ".lock").exists()  # left behind by the killed run: stale, its flock died with it
    resumed = subprocess.run(_digitnet(*CLI_RUN, "--epochs", "2", "--out", str(out), "--resume", "-q", "--json"),
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert not (out / ".lock").exists()
    assert (out / "model.json").is_file()


# --- 3. SIGTERM and Ctrl-C stop after the current step with a mid-epoch checkpoint ----------------------------------

class SignalAt(Callback):
    """Sends this process ``signum`` after step ``step`` of ``epoch``, as a user or a scheduler would."""

    def __init__(self, signum: int, epoch: int, step: int):
        self.signum, self.epoch, self.step, self.steps = signum, epoch, step, 0

    def on_epoch_start(self, fit):
        self.steps = 0

    def on_batch_end(self, fit, seen, loss_sum, correct):
        self.steps += 1
        if fit.epoch == self.epoch and self.steps == self.step:
            os.kill(os.getpid(), self.signum)


@pytest.fixture(scope="module")
def straight(mnist, tmp_path_factory):
    return train(TrainConfig(out=str(tmp_path_factory.mktemp("straight")), **RECIPE), mnist=mnist, quiet=True)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_epoch_saves_the_step_and_resume_reproduces_the_run(mnist, tmp_path, straight, signum):
    out = tmp_path / "run"
    first = train(TrainConfig(out=str(out), **RECIPE), mnist=mnist, quiet=True,
                  callbacks=[SignalAt(signum, epoch=2, step=3)])
    assert first.interrupted and first.stop_signal == signal.Signals(signum).name
    assert len(first.history) == 1
    state = load_checkpoint(out / "last.pt")
    assert state["epoch"] == 1 and state["position"]["step"] == 3  # stopped right after the step it was in
    assert state["position"]["seen"] == 3 * RECIPE["batch_size"]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers put back

    resumed = train(TrainConfig(out=str(out), resume=True, **RECIPE), mnist=mnist, quiet=True)
    assert not resumed.interrupted
    _assert_same_weights(_weights(straight.model), _weights(resumed.model))
    assert _rows(resumed.history) == _rows(straight.history)


def test_sigterm_mid_epoch_from_the_command_line_then_resume_is_bit_for_bit(tmp_path):
    straight, out = tmp_path / "straight", tmp_path / "run"
    args = [*CLI_RUN, "--epochs", "2"]
    child = subprocess.Popen(_digitnet(*args, "--out", str(out)), stderr=subprocess.PIPE, text=True)
    try:
        # last.pt appears at the end of epoch 1; a moment later epoch 2 (1000 steps, about a second) is under way.
        _wait_for(lambda: (out / "last.pt").is_file(), 120, "the end of epoch 1", child)
        time.sleep(0.1)
        child.send_signal(signal.SIGTERM)
        _, stderr = child.communicate(timeout=120)
    finally:
        child.kill()
    assert child.returncode == 143, stderr
    hint = [line for line in stderr.splitlines() if "Interrupted" in line]
    assert len(hint) == 1 and "SIGTERM" in hint[0] and "--resume" in hint[0] and str(out / "last.pt") in hint[0]
    position = load_checkpoint(out / "last.pt")["position"]
    assert position is not None and 0 < position["step"] < 1000  # mid-epoch, not the end of epoch 1

    resumed = subprocess.run(_digitnet(*args, "--out", str(out), "--resume", "-q"), capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    done = subprocess.run(_digitnet(*args, "--out", str(straight), "-q"), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    a, b = load_checkpoint(straight / "last.pt"), load_checkpoint(out / "last.pt")
    _assert_same_weights(a["model"], b["model"])
    assert _rows(a["history"]) == _rows(b["history"])
    assert (straight / "model.safetensors").read_bytes() == (out / "model.safetensors").read_bytes()


# --- 4. a folder that cannot be written, a disk that fills up -------------------------------------------------------

def test_no_room_for_a_checkpoint_is_refused_before_training(mnist, tmp_path, monkeypatch):
    import shutil

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda _path: usage._replace(free=4096))
    with pytest.raises(DigitnetError, match=r"cannot write .*run: only 0\.0 MiB free"):
        train(TrainConfig(out=str(tmp_path / "run"), **TINY), mnist=mnist, quiet=True)
    assert not (tmp_path / "run" / "history.csv").exists()


def _fill_disk_from_epoch(monkeypatch, epoch: int) -> Callback:
    """From ``epoch`` on, every fsync fails with ENOSPC: the disk is full."""
    real_fsync = os.fsync
    full = []

    def fsync(fd):
        if full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)

    class DiskFills(Callback):
        def on_epoch_start(self, fit):
            if fit.epoch == epoch:
                full.append(True)

    return DiskFills()


def test_a_full_disk_is_one_line_and_the_previous_checkpoint_stays_loadable(mnist, tmp_path, monkeypatch):
    out = tmp_path / "run"
    with pytest.raises(DigitnetError) as failed:
        train(TrainConfig(out=str(out), **TINY), mnist=mnist, quiet=True,
              callbacks=[_fill_disk_from_epoch(monkeypatch, 2)])
    message = str(failed.value)
    assert "\n" not in message
    assert message.startswith(f"cannot write {out / 'history.csv'}: no space left on the device")
    assert f"{out / 'last.pt'} (epoch 1) is intact" in message and "--resume" in message
    assert load_checkpoint(out / "last.pt")["epoch"] == 1
    assert not list(out.glob(".*.tmp")) and not (out / ".lock").exists()
    monkeypatch.undo()
    resumed = train(TrainConfig(out=str(out), resume=True, **TINY), mnist=mnist, quiet=True)
    assert [row["epoch"] for row in resumed.history] == [1, 2]


def test_a_failed_checkpoint_write_names_last_pt(mnist, tmp_path, monkeypatch):
    from digitnet.train import checkpoint

    real = checkpoint.atomic_write_bytes

    def read_only_after_epoch_1(path, data):
        if Path(path).name == "last.pt" and Path(path).exists():
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real(path, data)

    monkeypatch.setattr(checkpoint, "atomic_write_bytes", read_only_after_epoch_1)
    out = tmp_path / "run"
    with pytest.raises(DigitnetError, match=rf"^cannot write {out / 'last.pt'}: read-only file system; "
                                            rf"{out / 'last.pt'} \(epoch 1\) is intact"):
        train(TrainConfig(out=str(out), **TINY), mnist=mnist, quiet=True)
    assert load_checkpoint(out / "last.pt")["epoch"] == 1


# --- 5. a run that diverges saves nothing of its NaNs ---------------------------------------------------------------

class _DivergesIn(Callback):
    """The weights turn NaN as epoch ``epoch`` starts, as a too-high learning rate would make them."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_epoch_start(self, fit):
        if fit.epoch == self.epoch:
            with torch.no_grad():
                next(fit.model.parameters()).fill_(float("nan"))


def test_a_diverged_epoch_is_one_line_and_the_checkpoints_before_it_stay(mnist, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(DigitnetError) as diverged:
        train(TrainConfig(out=str(out), **{**TINY, "epochs": 3}), mnist=mnist, quiet=True, callbacks=[_DivergesIn(2)])
    message = str(diverged.value)
    assert "\n" not in message
    assert message.startswith("the run diverged in epoch 2 (train loss nan")
    assert f"{out / 'last.pt'} (epoch 1) is intact" in message and "lower --lr (this run's: 0.001)" in message
    state = load_checkpoint(out / "last.pt")
    assert state["epoch"] == 1 and all(torch.isfinite(t).all() for t in state["model"].values())
    assert load_checkpoint(out / "best.pt")["epoch"] == 1
    assert (out / "history.csv").read_text().count("\n") == 2  # the header and epoch 1
    assert not (out / "model.safetensors").exists() and not (out / "model.json").exists()
    assert not (out / ".lock").exists()
    resumed = train(TrainConfig(out=str(out), resume=True, **{**TINY, "epochs": 3}), mnist=mnist, quiet=True)
    assert [row["epoch"] for row in resumed.history] == [1, 2, 3]


def test_weights_that_turned_nan_are_never_saved_as_a_model(mnist, tmp_path):
    # However training ended (here: the weights go bad after the last epoch was checked), no NaN model is written.
    class NanAtTheEnd(Callback):
        def on_train_end(self, fit):
            with torch.no_grad():
                next(fit.model.parameters()).fill_(float("nan"))

    out = tmp_path / "run"
    with pytest.raises(DigitnetError, match=r"^the run diverged in epoch 2 \(weights not finite numbers\)"):
        train(TrainConfig(out=str(out), **TINY), mnist=mnist, quiet=True, callbacks=[NanAtTheEnd()])
    assert load_checkpoint(out / "last.pt")["epoch"] == 2
    assert not (out / "model.safetensors").exists() and not (out / ".lock").exists()


def test_a_calibration_that_runs_off_leaves_the_model_uncalibrated_not_nan(mnist, tmp_path, monkeypatch):
    # fit_temperature's LBFGS used to run off to NaN on a barely trained model's logits (seen after a signal stopped
    # the run early; its bounded search cannot now): should a fit still fail, the model is saved with temperature
    # 1 and loads, rather than answering NaN.
    from digitnet.train import engine

    monkeypatch.setattr(engine, "fit_temperature", lambda logits, labels: float("nan"))
    out = tmp_path / "run"
    result = train(TrainConfig(out=str(out), **{**TINY, "epochs": 1}), mnist=mnist, quiet=True)
    assert result.metrics["temperature"] == 1.0
    assert load_model(out).temperature == 1.0
