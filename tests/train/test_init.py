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
    with pytest.raises(DigitnetError,
                       match=r"--init best: it is fastnet \(width=32\), the run trains fastnet \(width=24\); pass its"):
        build_run(TrainConfig(arch="fastnet", arch_kwargs={"width": 24}, init="best", threads=1), _splits(),
                  torch.device("cpu"))
    with pytest.raises(DigitnetError, match="--init /nonexistent: .*no such model directory"):
        build_run(TrainConfig(arch="fastnet", init="/nonexistent", threads=1), _splits(), torch.device("cpu"))


def test_the_run_is_fed_as_the_init_weights_were_trained(unit_best):
    """A saved model whose model.json says "unit" (not the registry's "mnist") is fine-tuned on 0..1 pixels."""
    import warnings

    from digitnet.saved_model import ModelContractWarning

    odd = unit_best
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelContractWarning)
        run = build_run(TrainConfig(arch="fastnet", arch_kwargs={"width": 32}, init=str(odd), threads=1), _splits(),
                        torch.device("cpu"))
    assert run.spec.normalization == "unit" and run.spec.mean_std == (0.0, 1.0)


def test_init_through_the_command_line_and_resume_only_with_the_same_init(tmp_path):
    import json

    from typer.testing import CliRunner

    from digitnet.cli import app

    runner = CliRunner()
    out = tmp_path / "run"
    common = ["train", "--arch", "fastnet", "--width", "32", "--train-subset", "256", "--val-size", "256",
              "--batch-size", "128", "--threads", "1", "--no-plots", "--quiet", "--out", str(out)]
    first = runner.invoke(app, [*common, "--epochs", "1", "--init", "best"])
    assert first.exit_code == 0, first.output
    assert json.loads((out / "model.json").read_text())["training"]["init"] == "best"
    again = runner.invoke(app, [*common, "--epochs", "2", "--resume"])
    assert again.exit_code != 0 and "started with --init best" in str(again.exception)
