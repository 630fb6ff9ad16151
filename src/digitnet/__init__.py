"""digitnet: train, evaluate, explain and serve handwritten-digit recognizers on MNIST."""

__version__ = "0.1.0"

from digitnet.models import create_model, list_models  # noqa: E402
from digitnet.recognizer import Recognizer  # noqa: E402
from digitnet.saved_model import LoadedModel, load_model, save_model  # noqa: E402
from digitnet.train import TrainConfig, train  # noqa: E402

__all__ = ["LoadedModel", "Recognizer", "TrainConfig", "__version__", "create_model", "list_models", "load_model",
           "save_model", "train"]
