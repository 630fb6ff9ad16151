"""Files shipped inside the package: the default model, the best single model and the line recognizer."""

from pathlib import Path

from digitnet.utils import DigitnetError

ASSETS_DIR = Path(__file__).resolve().parent
# Names that `--model` and `load_model()` accept besides a directory, and the make target that builds each.
BUNDLED_MODELS = {"default": ("default-model", "make default-model"), "best": ("best-model", "make best-model"),
                  "line": ("line-model", "make line-model")}
MODEL_HELP = ("Model directory, or `best` for the bundled model most accurate on clean digits (default: the bundled "
              "default model).")


def bundled_model_dir(name: str = "default") -> Path:
    """A model shipped inside the package: ``default`` (fast, robust to photos), ``best`` (the most accurate on
    held-out clean digits) or ``line`` (the line recognizer that ``read`` uses)."""
    if name not in BUNDLED_MODELS:
        raise DigitnetError(f"no bundled model {name!r}; choose from {', '.join(BUNDLED_MODELS)}")
    folder, target = BUNDLED_MODELS[name]
    directory = ASSETS_DIR / folder
    if not (directory / "model.json").is_file():
        raise DigitnetError(f"the bundled {name} model is missing from {directory}; "
                            f"rebuild it with `{target}` or pass --model DIR")
    return directory

