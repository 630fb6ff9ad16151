"""DDP: two CPU processes (gloo on 127.0.0.1) train exactly what one process trains with the same global batch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from digitnet import TrainConfig, load_model, train
from digitnet.data.splits import batch_indices
from digitnet.models import create_model
from digitnet.train import distributed

# LeNet-5 has neither BatchNorm (per-rank batch statistics) nor dropout, so two ranks of 16 and one process
# of 32 compute the same averaged gradient up to float rounding.
RECIPE = {"arch": "lenet5", "epochs": 2, "batch_size": 32, "train_subset": 96, "val_size": 0, "seed": 5, "threads": 1}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_single_process_sharding_is_the_plain_batching():
    a = [t.tolist() for t in distributed.shard_batches(100, 32, torch.Generator().manual_seed(1))]
    b = [t.tolist() for t in batch_indices(100, 32, torch.Generator().manual_seed(1))]
    assert a == b


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
