"""TrainConfig.check: every option's value is checked once, when the config is resolved (before any work)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from digitnet import TrainConfig
from digitnet.utils import DigitnetError

NAN, INF = math.nan, math.inf


@pytest.mark.parametrize(("fields", "problem"), [
    ({"epochs": 0}, "--epochs must be a whole number of at least 1, got 0"),
    ({"epochs": -1}, "--epochs must be"),
    ({"epochs": -10 ** 400}, "--epochs must be"),  # an int too long for a float: no OverflowError
    ({"distill_temperature": NAN}, "--distill-temperature must be a positive number, got nan"),
    ({"batch_size": 0}, "--batch-size must be a whole number of at least 1, got 0"),
    ({"batch_size": -4}, "--batch-size must be"),
    ({"step_size": 0, "schedule": "step"}, "--step-size must be"),
    ({"train_subset": -5}, r"--train-subset must be a whole number of at least 1 \(leave it out"),
    ({"train_subset": 0}, "--train-subset must be"),
    ({"test_subset": -1}, "--test-subset must be"),
    ({"early_stopping": 0}, r"--early-stopping must be .* \(leave it out to turn early stopping off\), got 0"),
    ({"early_stopping": -1}, "--early-stopping must be"),
    ({"threads": 0}, "--threads must be"),
    ({"threads": -1}, "--threads must be"),
    ({"plateau_patience": -1}, "--plateau-patience must be a whole number of at least 0, got -1"),
    ({"lr": -1.0}, "--lr must be a positive number, got -1.0"),
    ({"lr": 0.0}, "--lr must be a positive number"),
    ({"lr": NAN}, "--lr must be a positive number, got nan"),
    ({"lr": INF}, "--lr must be a positive number, got inf"),
    ({"momentum": -1.0}, r"--momentum must be in \[0, 1\), got -1.0"),
    ({"weight_decay": -1.0}, "--weight-decay must be a number of at least 0, got -1.0"),
    ({"l2": NAN}, "--l2 must be a number of at least 0, got nan"),
    ({"label_smoothing": 2.0}, "--label-smoothing must be in 0..1, got 2.0"),
    ({"label_smoothing": -1.0}, "--label-smoothing must be in 0..1"),
    ({"warmup": 2.0}, "--warmup must be a fraction of the run's steps, in 0..1, got 2.0"),
    ({"warmup": -1.0}, "--warmup must be"),
    ({"plateau_factor": 1.0}, "--plateau-factor must be between 0 and 1"),
    ({"step_gamma": 0.0}, "--step-gamma must be a positive number"),
    ({"augment": "bogus"}, "--augment must be one of none, light, .*, got 'bogus'"),
    ({"device": "bogus"}, "--device bogus: not a device; choose auto, cpu, cuda, cuda:N or mps"),
    ({"device": "meta"}, "--device meta: not a device"),
    ({"arch": "fastnet", "arch_kwargs": {"width": -3}}, "--width must be a whole number of at least 1, got -3"),
    ({"arch": "fastnet", "arch_kwargs": {"width": 0}}, "--width must be"),
    ({"arch": "mlp", "arch_kwargs": {"width": 8}}, "--width: mlp has no channel width to set"),
])
def test_a_bad_value_is_one_line_naming_the_option(fields, problem):
    with pytest.raises(DigitnetError, match=problem) as info:
        TrainConfig(**fields).resolved()
    assert "\n" not in str(info.value)


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has MPS")
def test_mps_where_there_is_none_is_refused():
    with pytest.raises(DigitnetError, match="--device mps: MPS .* is not available on this machine; use --device cpu"):
        TrainConfig(device="mps").resolved()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_where_there_is_none_is_refused_as_before():
    with pytest.raises(DigitnetError, match="--device cuda:1: CUDA is not available on this machine"):
        TrainConfig(device="cuda:1").resolved()


@pytest.mark.parametrize("fields", [
    {"val_size": 0}, {"weight_decay": 0.0, "l2": 0.0}, {"warmup": 0.0}, {"warmup": 1.0}, {"plateau_patience": 0},
    {"momentum": 0.0}, {"label_smoothing": 0.0}, {"label_smoothing": 1.0}, {"train_subset": 1},
    {"early_stopping": 1}, {"threads": 1}, {"device": "cpu"}, {"arch": "fastnet", "arch_kwargs": {"width": 8}},
    {"epochs": 10 ** 400}, {"batch_size": np.int64(64), "lr": np.float32(0.01)},  # numpy's numbers are numbers
])
def test_the_edges_that_mean_something_are_kept(fields):
    assert TrainConfig(**fields).resolved()


def test_checking_a_width_draws_none_of_the_runs_random_numbers():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    TrainConfig(arch="fastnet", arch_kwargs={"width": 8}).resolved()
    assert torch.equal(torch.rand(3), expected)
