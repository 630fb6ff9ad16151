"""digitnet: train, evaluate, explain and serve handwritten-digit recognizers on MNIST."""

import sys
import types

from digitnet.models import create_model, list_models
from digitnet.recognizer import Recognizer  # noqa: E402
from digitnet.saved_model import LoadedModel, load_model, save_model  # noqa: E402
from digitnet.train import Callback, TrainConfig, TrainResult  # noqa: E402
from digitnet.version import __version__  # noqa: E402

__all__ = ["LoadedModel", "Recognizer", "TrainConfig", "__version__", "create_model", "list_models", "load_model",
           "save_model", "train"]


class _TrainPackage(types.ModuleType):
    """``digitnet.train`` is the training subpackage (``import digitnet.train as t; t.engine``) and, called,
    trains as ``digitnet train`` does (README: ``digitnet.train(digitnet.TrainConfig(...))``).

    A module that can be called, rather than a function of that name here: a function would hide the
    subpackage from ``import digitnet.train as t`` and ``from digitnet import train``.
    """

    def __call__(self, config: TrainConfig, mnist=None, callbacks=(), console=None,
                 quiet: bool = False) -> TrainResult:
        """Train and save a model as ``digitnet train`` does.

        The loop is :func:`digitnet.train.train`; this adds the callbacks ``config`` asks of the layer above it,
        :mod:`digitnet.evaluate`: the run report (``plots``) and TensorBoard's gallery of mistakes
        (``tensorboard``). ``callbacks``: more :class:`digitnet.train.Callback` objects, run before those.
        """
        from digitnet.evaluate.report import config_callbacks  # matplotlib loads only when training

        extra: list[Callback] = [*callbacks, *config_callbacks(config)]
        return self.train(config, mnist, callbacks=extra, console=console, quiet=quiet)


train = sys.modules["digitnet.train"]
train.__class__ = _TrainPackage
