"""``digitnet.train`` is the training subpackage and, called, the README's training function."""

from __future__ import annotations

import types

import digitnet
from digitnet.train.config import TrainConfig


def test_digitnet_train_is_the_subpackage():
    import digitnet.train as t
    from digitnet import train as from_import
    from digitnet.train import engine

    assert isinstance(t, types.ModuleType) and t is from_import is digitnet.train
    assert t.engine is engine and t.TrainConfig is TrainConfig  # attribute access to its modules and names


def test_calling_digitnet_train_runs_the_loop_with_the_report(monkeypatch, tmp_path):
    import digitnet.train as t
    from digitnet.evaluate.report import ReportCallback

    seen = {}

    def loop(config, mnist=None, callbacks=(), console=None, quiet=False):
        seen.update(config=config, mnist=mnist, callbacks=list(callbacks), quiet=quiet)
        return "result"

    monkeypatch.setattr(t, "train", loop)  # the trainer itself, digitnet.train.train
    config = TrainConfig(arch="mlp", out=str(tmp_path))
    mine = t.Callback()
    assert digitnet.train(config, callbacks=[mine], quiet=True) == "result"
    assert seen["config"] is config and seen["quiet"] is True
    assert seen["callbacks"][0] is mine and any(isinstance(c, ReportCallback) for c in seen["callbacks"])
