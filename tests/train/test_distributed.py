"""DDP: two CPU processes (gloo on 127.0.0.1) train exactly what one process trains with the same global batch."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from rich.console import Console

from digitnet import TrainConfig, load_model, train
from digitnet.models import create_model
from digitnet.train import Callback, distributed
from digitnet.train.callbacks import ConsoleLog

# LeNet-5 has neither BatchNorm (per-rank batch statistics) nor dropout, so two ranks of 16 and one process
# of 32 compute the same averaged gradient up to float rounding.
RECIPE = {"arch": "lenet5", "epochs": 2, "batch_size": 32, "train_subset": 96, "val_size": 0, "seed": 5, "threads": 1}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_rank(monkeypatch, rank: int, world: int) -> None:
    """Make this process look like rank ``rank`` of ``world`` (no process group needed)."""
    monkeypatch.setattr(distributed, "world_size", lambda: world)
    monkeypatch.setattr(distributed, "rank", lambda: rank)


def test_one_process_takes_every_index_once_per_epoch_in_batches():
    batches = list(distributed.shard_batches(100, 32, torch.Generator().manual_seed(1)))
    assert [len(b) for b in batches] == [32, 32, 32, 4]
    assert sorted(torch.cat(batches).tolist()) == list(range(100))
    again = torch.cat(list(distributed.shard_batches(100, 32, torch.Generator().manual_seed(1))))
    assert torch.equal(torch.cat(batches), again) and not torch.equal(again, torch.arange(100))  # seeded shuffle


def test_ranks_split_one_permutation_into_equal_disjoint_shards(monkeypatch):
    shards = []
    for rank in (0, 1, 2):
        _as_rank(monkeypatch, rank, 3)
        batches = list(distributed.shard_batches(100, 30, torch.Generator().manual_seed(1)))
        assert [len(b) for b in batches] == [10, 10, 10, 3]  # global batch 30 = 3 ranks × 10
        shards.append(torch.cat(batches))
    together = torch.cat(shards)
    assert len(together) == 99 == 3 * distributed.shard_size(100) and len(set(together.tolist())) == 99
    with pytest.raises(Exception, match="multiple of the 3 processes"):
        next(distributed.shard_batches(100, 32))


def test_the_progress_bar_reaches_the_end_under_torchrun(monkeypatch):
    # Rank 0 of 2 sees its shard only (500 of 1,001 images); the bar counts all ranks' images and ends full.
    _as_rank(monkeypatch, 0, 2)
    log = ConsoleLog()
    log.REFRESH_SECONDS = 3600.0  # no time-based refresh: the last step must still show
    fit = SimpleNamespace(epoch=1, cfg=SimpleNamespace(epochs=1), console=Console(file=io.StringIO()),
                          run=SimpleNamespace(samples_per_epoch=distributed.shard_size(1001)))  # as Run says
    log.on_epoch_start(fit)
    progress = log.progress
    seen = 0
    for batch in distributed.shard_batches(1001, 100, torch.Generator().manual_seed(0)):
        seen += len(batch)
        log.on_batch_end(fit, seen, torch.tensor(1.0 * seen), torch.tensor(seen))
    task = progress.tasks[0]
    assert seen == 500 and task.total == 1000 and task.completed == task.total


def test_the_process_group_is_left_when_training_fails(mnist, monkeypatch, tmp_path):
    left = []
    monkeypatch.setattr(distributed, "cleanup", lambda wait=True: left.append(wait))

    class Boom(Callback):
        def on_fit_start(self, fit):
            raise RuntimeError("boom")

    cfg = TrainConfig(arch="mlp", epochs=1, train_subset=64, test_subset=64, val_size=0, plots=False,
                      out=str(tmp_path / "run"))
    with pytest.raises(RuntimeError, match="boom"):
        train(cfg, mnist=mnist, quiet=True, callbacks=[Boom()])
    assert left == [False]  # left at once: the other ranks may never reach a barrier
    train(TrainConfig(**{**cfg.to_dict(), "overwrite": True}), mnist=mnist, quiet=True)
    assert left == [False, True]  # a run that ends meets the other ranks first


def test_an_interrupted_run_sets_no_environment_variable(mnist, monkeypatch, tmp_path):
    import signal

    monkeypatch.delenv("DIGITNET_INTERRUPTED", raising=False)

    class Stop(Callback):
        def on_batch_end(self, fit, seen, loss_sum, correct):
            os.kill(os.getpid(), signal.SIGTERM)  # the loop stops after this step, as on Ctrl-C

    result = train(TrainConfig(arch="mlp", epochs=2, train_subset=128, test_subset=64, val_size=0, plots=False,
                               out=str(tmp_path / "run")), mnist=mnist, quiet=True, callbacks=[Stop()])
    assert result.interrupted and result.stop_signal == "SIGTERM"  # what the CLI's exit code is made from
    assert "DIGITNET_INTERRUPTED" not in os.environ  # nothing process-wide is left behind for later runs


def test_two_cpu_ranks_match_one_process(mnist, tmp_path):
    single = train(TrainConfig(out=str(tmp_path / "single"), plots=False, **RECIPE), mnist=mnist, quiet=True)

    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
               "--master-addr", "127.0.0.1", "--master-port", str(_free_port()), "-m", "digitnet", "train",
               "--arch", RECIPE["arch"], "--epochs", str(RECIPE["epochs"]), "--batch-size", str(RECIPE["batch_size"]),
               "--train-subset", str(RECIPE["train_subset"]), "--val-size", "0", "--seed", str(RECIPE["seed"]),
               "--threads", "1", "--device", "cpu", "--no-plots", "--quiet", "--json", "--out", str(out)]
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    if done.returncode != 0 and "GLOO" in done.stderr and "interface" in done.stderr.lower():
        pytest.skip(f"gloo cannot use the loopback interface here: {done.stderr[-300:]}")
    assert done.returncode == 0, done.stderr[-3000:]
    # Rank 1 prints nothing: exactly one JSON line reaches stdout.
    json_lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(json_lines) == 1

    ddp = load_model(out)
    assert (out / "last.pt").is_file() and (out / "history.csv").is_file()
    assert json.loads((out / "environment.json").read_text())["world_size"] == 2
    expected = single.model.state_dict()
    got = ddp.model.state_dict()
    assert set(got) == set(expected)
    for key, value in expected.items():
        torch.testing.assert_close(got[key], value, rtol=1e-4, atol=1e-5)
    torch.manual_seed(RECIPE["seed"])
    initial = create_model(RECIPE["arch"]).state_dict()
    assert max(float((initial[k] - expected[k]).abs().max()) for k in initial) > 1e-3  # training moved the weights
