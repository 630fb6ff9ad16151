"""Fine-tuning (``--init``): a run starts from a saved model's weights and contract; weights that do not fit are
refused in one line."""

import pytest
import torch

from digitnet.data.splits import Split, Splits
from digitnet.saved_model import load_model
from digitnet.train.config import TrainConfig
from digitnet.train.setup import build_run
from digitnet.utils import DigitnetError


def _splits() -> Splits:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (16, 28, 28), dtype=torch.uint8, generator=g)
    labels = torch.arange(16) % 10
    return Splits(train=Split(images, labels), val=None, test=Split(images[:8], labels[:8]))


def test_a_run_with_init_starts_from_the_saved_weights():
    best = load_model("best")
    run = build_run(TrainConfig(arch="fastnet", arch_kwargs={"width": 32}, init="best", threads=1), _splits(),
                    torch.device("cpu"))
    state, start = run.model.state_dict(), best.model.state_dict()
    assert state.keys() == start.keys() and all(torch.equal(state[k], start[k]) for k in state)
    assert run.spec.contract() == best.spec.contract()
    fresh = build_run(TrainConfig(arch="fastnet", arch_kwargs={"width": 32}, threads=1), _splits(),
                      torch.device("cpu"))
    assert not torch.equal(fresh.model.state_dict()["0.0.weight"], start["0.0.weight"])  # random without --init


def test_weights_that_do_not_fit_the_run_are_refused():
    with pytest.raises(DigitnetError, match="--init best: it is fastnet .*pass the same --arch and --width"):
        build_run(TrainConfig(arch="fastnet", arch_kwargs={"width": 24}, init="best", threads=1), _splits(),
                  torch.device("cpu"))
    with pytest.raises(DigitnetError, match="--init /nonexistent: .*no such model directory"):
        build_run(TrainConfig(arch="fastnet", init="/nonexistent", threads=1), _splits(), torch.device("cpu"))
