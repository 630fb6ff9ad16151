"""`digitnet train --arch crnn-digits`: the usual trainer (callbacks, run folder, report, resume) with CTC on
synthetic lines."""

from __future__ import annotations

import json

import pytest
import torch

from digitnet.data.lines import MAX_CHARS
from digitnet.train.config import TrainConfig
from digitnet.train.engine import train
from digitnet.train.lines import edit_distance, greedy_texts

pytestmark = pytest.mark.slow


def tiny(out, **overrides) -> TrainConfig:
    # 2 batches of 16 lines an epoch; validation and test lines from small splits.
    settings = {"arch": "crnn-digits", "epochs": 2, "train_subset": 2 * 16 * MAX_CHARS, "val_size": 400,
                "test_subset": 400, "threads": 1, "out": str(out), "plots": False, "seed": 0}
    return TrainConfig(**{**settings, **overrides})


def test_a_line_recognizer_trains_saves_and_reports(tmp_path, mnist) -> None:
    from digitnet import train as train_with_report  # the top-level function adds the report callback

    result = train_with_report(tiny(tmp_path / "run", plots=True), mnist=mnist)
    run = tmp_path / "run"
    model = json.loads((run / "model.json").read_text())
    assert model["arch"] == "crnn-digits" and model["task"] == "lines" and model["alphabet"] == "0123456789.,- "
    assert isinstance(model["ctc_offset"], float)  # measured on the validation lines (0 where none is read right)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test_samples"] == 100  # lines drawn from the 400 test digits
    assert 0 <= metrics["test_char_error_rate"] and "misread_lines" in metrics
    history = (run / "history.csv").read_text().splitlines()
    assert len(history) == 3  # header + 2 epochs, with the validation lines measured
    assert result.metrics["epochs_run"] == 2 and result.history[0]["val_loss"] > 0
    report = (run / "report.html").read_text()
    assert "test lines read exactly" in report and "CTC alignment" in report
    assert (run / "lines.png").stat().st_size > 1000 and (run / "curves.png").is_file()
    assert not (run / "confusion.png").exists()  # a digit classifier's figures only

    # `digitnet report` rebuilds it from the folder: the same test lines, so the same score on the page.
    from typer.testing import CliRunner

    from digitnet.cli import app

    for name in ("report.html", "lines.png", "curves.png"):
        (run / name).unlink()
    rebuilt = CliRunner().invoke(app, ["report", str(run)])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "lines.png" in rebuilt.output and (run / "lines.png").stat().st_size > 1000
    page = (run / "report.html").read_text()
    assert "CTC alignment" in page and f"{metrics['test_accuracy']:.2%}" in page


def test_resume_continues_a_line_run_exactly(tmp_path, mnist) -> None:
    # A constant LR: one-cycle's schedule depends on the epochs asked for, so 1 then 2 epochs would differ anyway.
    whole = train(tiny(tmp_path / "whole", schedule="none"), mnist=mnist, quiet=True)
    train(tiny(tmp_path / "parts", epochs=1, schedule="none"), mnist=mnist, quiet=True)
    resumed = train(tiny(tmp_path / "parts", resume=True, schedule="none"), mnist=mnist, quiet=True)
    assert resumed.metrics["epochs_run"] == 2
    for name, tensor in whole.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name


def test_greedy_texts_and_edit_distance() -> None:
    # logits (B=1, T=6, C) whose argmax path is 1 1 blank 1 . 5 → "11.5"
    classes = [2, 2, 0, 2, 11, 6]
    logits = torch.full((1, 6, 15), -5.0)
    logits[0, torch.arange(6), torch.tensor(classes)] = 5.0
    assert greedy_texts(logits, torch.tensor([6])) == ["11.5"]
    assert greedy_texts(logits, torch.tensor([2])) == ["1"]  # only the line's own columns
    assert edit_distance("12.5", "12,5") == 1 and edit_distance("123", "13") == 1 and edit_distance("", "ab") == 2


def test_alignment_offset_is_where_the_columns_sit_beside_the_ink(mnist) -> None:
    import torch

    from digitnet.data.lines import draw_lines
    from digitnet.models.crnn import ALPHABET
    from digitnet.train.lines import alignment_offset

    images = torch.from_numpy(mnist.test_images[:MAX_CHARS * 6])
    labels = torch.from_numpy(mnist.test_labels[:MAX_CHARS * 6].astype("int64"))
    lines = draw_lines(images, labels, torch.Generator().manual_seed(0), texts=["1234", "56 78", "9.01"] * 2,
                       augment=False)

    class Oracle(torch.nn.Module):
        """Fires each character of the drawn texts ``shift`` columns after the one its ink centre falls in."""

        def __init__(self, shift: int):
            super().__init__()
            self.shift = shift

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            logits = torch.zeros(x.shape[0], x.shape[-1] // 4, len(ALPHABET) + 1)
            logits[..., 0] = 5.0  # blank everywhere else
            for k, (text, centres) in enumerate(zip(lines.texts, lines.centres, strict=True)):
                for char, centre in zip(text, centres, strict=True):
                    logits[k, int(centre // 4) + self.shift, ALPHABET.index(char) + 1] = 10.0
            return logits

    # columns are 4 px: a column's middle is within 2 px of any centre in it
    assert abs(alignment_offset(Oracle(0), lines)) <= 2
    assert abs(alignment_offset(Oracle(-2), lines) + 8) <= 2  # two columns early: 8 px left
