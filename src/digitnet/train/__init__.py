"""Training: the loop (engine), its callbacks, the run set-up, optimizers and schedules, checkpoints, metrics.

``train(config)`` here is the trainer itself; it writes no run report, which belongs to
:mod:`digitnet.evaluate` (a layer above). The top-level :func:`digitnet.train` adds it: use that one to
train as ``digitnet train`` does.
"""

from digitnet.train.callbacks import Callback, Fit
from digitnet.train.config import TrainConfig
from digitnet.train.engine import TrainResult, train
from digitnet.train.setup import Run, build_run

__all__ = ["Callback", "Fit", "Run", "TrainConfig", "TrainResult", "build_run", "train"]
