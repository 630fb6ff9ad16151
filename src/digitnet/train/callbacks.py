"""Early stopping on a monitored metric, keeping the best weights to restore at the end."""

from __future__ import annotations

import copy

from torch import nn


class EarlyStopping:
    """Stop after ``patience`` epochs without improvement of ``monitor``; remember the best weights."""

    def __init__(self, monitor: str = "val_accuracy", patience: int | None = None, min_delta: float = 0.0):
        self.monitor = monitor
        self.patience = patience
        self.min_delta = min_delta
        self.maximize = not monitor.endswith("loss")
        self.best: float | None = None
        self.best_epoch = 0
        self.best_state: dict | None = None
        self.bad_epochs = 0

    def improved(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best + self.min_delta if self.maximize else value < self.best - self.min_delta

    def update(self, value: float, epoch: int, model: nn.Module) -> bool:
        """Record this epoch's value; return True when training should stop."""
        if self.improved(value):
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            self.best_state = copy.deepcopy({k: v.detach().clone() for k, v in model.state_dict().items()})
        else:
            self.bad_epochs += 1
        return self.patience is not None and self.bad_epochs >= self.patience

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs,
                "best_state": self.best_state}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.bad_epochs, self.best_state = state["bad_epochs"], state["best_state"]
