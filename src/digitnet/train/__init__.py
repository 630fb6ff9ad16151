"""Training: the engine, optimizers and schedules, early stopping and checkpoints."""

from digitnet.train.config import TrainConfig
from digitnet.train.engine import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "train"]
