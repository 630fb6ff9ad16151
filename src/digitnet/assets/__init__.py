"""Files shipped inside the package: the default model."""

from pathlib import Path

from digitnet.utils import DigitnetError

ASSETS_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL_DIR = ASSETS_DIR / "default-model"


def default_model_dir() -> Path:
    """The bundled default model (produced by `make default-model`)."""
    if not (DEFAULT_MODEL_DIR / "model.json").is_file():
        raise DigitnetError(f"the bundled default model is missing from {DEFAULT_MODEL_DIR}; "
                            "rebuild it with `make default-model` or pass --model DIR")
    return DEFAULT_MODEL_DIR
