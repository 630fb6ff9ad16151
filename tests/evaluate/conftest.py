"""One tiny training run shared by the report, plot and explain tests (a few seconds on two cores)."""

from __future__ import annotations

import pytest

from digitnet import TrainConfig, train
from digitnet.data import load_mnist


@pytest.fixture(scope="session")
def mnist():
    return load_mnist()


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, mnist):
    """A 2-epoch LeNet-5 on 2,000 images with the default ``plots=True``: the run directory and its result."""
    run_dir = tmp_path_factory.mktemp("runs") / "lenet5"
    # threads=1: on a shared two-core machine, two OpenMP threads fighting other processes run ~10× slower.
    cfg = TrainConfig(arch="lenet5", epochs=2, train_subset=2000, val_size=1000, test_subset=1000, threads=1,
                      out=str(run_dir))
    return train(cfg, mnist=mnist, quiet=True)
