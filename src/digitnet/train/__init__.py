"""Training: the loop (engine), its callbacks, the run set-up, optimizers and schedules, checkpoints, metrics.

``digitnet.train.train(config)`` is the trainer itself; it writes no run report, which belongs to
:mod:`digitnet.evaluate` (a layer above). Calling this package, ``digitnet.train(config)`` (made callable
by :mod:`digitnet`), adds it: use that to train as ``digitnet train`` does.
"""

from digitnet.train.callbacks import Callback, Fit
from digitnet.train.config import TrainConfig
from digitnet.train.engine import TrainResult, train
from digitnet.train.setup import Run, build_run

__all__ = ["Callback", "Fit", "Run", "TrainConfig", "TrainResult", "build_run", "train"]
