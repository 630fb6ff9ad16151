"""``digitnet evaluate`` and ``digitnet ensemble`` refuse, in one line, what they cannot score: a line recognizer,
a device torch does not have, a subset that is not a number of images."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from digitnet.assets import bundled_model_dir
from digitnet.cli import app
from digitnet.evaluate.ensemble import evaluate_model_dirs
from digitnet.utils import DigitnetError

runner = CliRunner()
LINE = str(bundled_model_dir("line"))


def one_line_error(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code != 0 and isinstance(result.exception, DigitnetError), result.output
    return str(result.exception)


@pytest.mark.parametrize("args", [["evaluate", "-m", LINE, "--subset", "10"],
                                  ["ensemble", "--models", f"default,{LINE}", "--subset", "10"]])
def test_a_line_recognizer_is_not_scored_as_a_digit_classifier(args):
    message = one_line_error(*args)
    assert message.startswith(f"{LINE}: 'crnn-digits' is a line recognizer, not a digit classifier")
    assert "digitnet read" in message and "\n" not in message


def test_the_python_api_refuses_a_line_recognizer_too():
    from digitnet.evaluate import evaluate

    with pytest.raises(DigitnetError, match="is a line recognizer, not a digit classifier"):
        evaluate(LINE, subset=10)


@pytest.mark.parametrize("device", ["bogus", "meta", *([] if torch.cuda.is_available() else ["cuda", "cuda:1"])])
def test_ensemble_refuses_a_device_it_cannot_use(device):
    message = one_line_error("ensemble", "--models", "default", "--subset", "10", "--device", device)
    assert message.startswith(f"--device {device}: ")


@pytest.mark.parametrize("command", [["evaluate"], ["ensemble", "--models", "default"]])
@pytest.mark.parametrize("subset", ["-5", "0"])
def test_a_subset_is_a_number_of_images(command, subset):
    result = runner.invoke(app, [*command, "--subset", subset])
    assert result.exit_code == 2 and "--subset" in result.output and "Traceback" not in result.output
    with pytest.raises(DigitnetError, match=f"--subset {subset}: "):
        evaluate_model_dirs(["default"], subset=int(subset))
