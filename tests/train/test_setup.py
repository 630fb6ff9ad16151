"""One run set-up (build_run): what it builds from a config, and the one place that steps the schedule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from digitnet.data.splits import Split, Splits
from digitnet.train.config import TrainConfig
from digitnet.train.setup import build_run, resolve_monitor
from digitnet.utils import DigitnetError


def _splits(n=64, val=True):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (n,), generator=g)
    part = Split(images[:16], labels[:16])
    return Splits(train=Split(images, labels), val=part if val else None, test=part)


def test_the_monitor_falls_back_to_the_train_loss_without_validation():
    assert resolve_monitor(TrainConfig(), has_val=True) == "val_accuracy"
    assert resolve_monitor(TrainConfig(monitor="val_loss"), has_val=False) == "train_loss"
    with pytest.raises(DigitnetError, match="--monitor 'val_acc'"):
        resolve_monitor(TrainConfig(monitor="val_acc"), has_val=True)


@pytest.mark.parametrize(("val", "monitor", "mode"), [
    (True, "val_accuracy", "max"), (True, "val_loss", "min"), (False, "val_accuracy", "min")])
def test_plateau_mode_follows_the_metric_it_is_fed(val, monitor, mode):
    run = build_run(TrainConfig(arch="mlp", schedule="plateau", monitor=monitor), _splits(val=val),
                    torch.device("cpu"))
    assert run.scheduler.mode == mode
    assert run.monitor == (monitor if val else "train_loss")


def test_epoch_schedules_step_at_epoch_end_and_per_step_ones_after_each_step():
    step_run = build_run(TrainConfig(arch="mlp", schedule="step", step_size=1, step_gamma=0.5, lr=0.1,
                                     batch_size=16), _splits(), torch.device("cpu"))
    for idx in step_run.epoch_batches():
        step_run.train_step(*step_run.make_batch(idx))
    assert step_run.lr == pytest.approx(0.1)  # not touched by the steps
    step_run.end_epoch({})
    assert step_run.lr == pytest.approx(0.05)

    cycle_run = build_run(TrainConfig(arch="mlp", schedule="onecycle", lr=0.1, batch_size=16, epochs=2),
                          _splits(), torch.device("cpu"))
    lrs = []
    for idx in cycle_run.epoch_batches():
        cycle_run.train_step(*cycle_run.make_batch(idx))
        lrs.append(cycle_run.lr)
    assert len(set(lrs)) == len(lrs) == 4  # a new LR after every step
    cycle_run.end_epoch({})
    assert cycle_run.lr == lrs[-1]  # the epoch end leaves a per-step schedule alone

    plateau_run = build_run(TrainConfig(arch="mlp", schedule="plateau"), _splits(), torch.device("cpu"))
    with pytest.raises(DigitnetError, match="needs val_accuracy"):
        plateau_run.end_epoch({"train_loss": 1.0})


def test_reader_samples_join_every_batch_as_they_were_cut(tmp_path):
    """--extra-data: each batch gets --extra-batch reader samples after its own digits, with their labels, prepared
    as the model takes digits but not augmented (their distortions are what is to be learned)."""
    from digitnet.data.samples import save_reader_samples
    from digitnet.models.registry import preprocess

    digits = torch.randint(0, 256, (6, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    path = tmp_path / "samples.npz"
    save_reader_samples(path, digits.numpy(), [0, 1, 2, 3, 4, 5], [], [])
    cfg = TrainConfig(arch="fastnet", batch_size=16, augment="light", extra_data=str(path), extra_batch=5)
    run = build_run(cfg, _splits(), torch.device("cpu"))
    idx = next(iter(run.epoch_batches()))
    state = run.generator.get_state()
    x, y = run.make_batch(idx)
    assert x.shape[0] == 21 and x.is_contiguous(memory_format=torch.channels_last)
    prepared = preprocess(digits, run.spec)
    for image, label in zip(x[16:], y[16:].tolist(), strict=True):  # each is its sample exactly, with its label
        assert float((image - prepared[label]).abs().max()) < 1e-6
    run.generator.set_state(state)  # drawn from the run's generator (its state is what resume restores)
    again, _ = run.make_batch(idx)
    assert torch.equal(again[16:], x[16:])
    right, count = run.score(run.train_step(x, y)[1], y)  # the step takes the longer batch ...
    assert count == 16  # ... and an epoch counts the batch's own digits

    with pytest.raises(DigitnetError, match="--extra-batch needs --extra-data"):
        build_run(TrainConfig(arch="mlp", extra_batch=4), _splits(), torch.device("cpu"))

    with pytest.raises(DigitnetError, match="holds no lines for a line recognizer"):
        build_run(TrainConfig(arch="crnn-digits", extra_data=str(path)), _splits(), torch.device("cpu"))
    with pytest.raises(DigitnetError, match="--extra-batch must be at least 1"):
        build_run(TrainConfig(arch="mlp", extra_data=str(path), extra_batch=0), _splits(), torch.device("cpu"))


def test_reader_lines_join_a_line_recognizer_s_batches(tmp_path):
    from digitnet.data.samples import LINE_ROWS, save_reader_samples
    from digitnet.models.crnn import REDUCTION

    wide = np.full((LINE_ROWS, 301), 255, np.uint8)  # wider than any synthetic line of the batch may be
    narrow = np.full((LINE_ROWS, 40), 128, np.uint8)
    path = tmp_path / "samples.npz"
    save_reader_samples(path, np.zeros((0, 28, 28), np.uint8), [], [wide, narrow], ["12.5", "-7"])
    run = build_run(TrainConfig(arch="crnn-digits", batch_size=2, extra_data=str(path), extra_batch=3),
                    _splits(n=120), torch.device("cpu"))
    x, target = run.make_batch(next(iter(run.epoch_batches())))
    assert x.shape[0] == 5 and x.shape[-1] % REDUCTION == 0 and x.shape[-1] >= 301 and len(target.texts) == 5
    for k, text in enumerate(target.texts[2:], start=2):  # each line with its own text, width and pixels
        line, width = (wide, 301) if text == "12.5" else (narrow, 40)
        assert torch.equal(x[k, 0, :, :width], torch.from_numpy(line).float() / 255) and not x[k, 0, :, width:].any()
        assert int(target.input_lengths[k]) == width // REDUCTION and int(target.target_lengths[k]) == len(text)
    logits = run.train_step(x, target)[1]
    assert run.score(logits, target)[1] == 2  # the batch's own lines

    with pytest.raises(DigitnetError, match="holds no digits for a classifier"):
        build_run(TrainConfig(arch="mlp", extra_data=str(path)), _splits(), torch.device("cpu"))
