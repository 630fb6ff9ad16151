"""Metrics, reports and plots; ``evaluate`` scores a saved model on the MNIST test set."""

from __future__ import annotations

import os

import torch

from digitnet.data import load_mnist
from digitnet.evaluate.metrics import (
    classification_metrics,
    confusion_matrix,
    evaluate_model,
    fit_temperature,
    predict_logits,
)
from digitnet.saved_model import LoadedModel, load_model
from digitnet.utils import DigitnetError


def require_digit_classifier(loaded: LoadedModel) -> LoadedModel:
    """``loaded``, if it classifies single digits (what is scored on MNIST); a line recognizer is refused in one
    line that says where it is used."""
    if loaded.spec.task != "digits":
        raise DigitnetError(f"{loaded.path}: {loaded.arch!r} is a line recognizer, not a digit classifier scored on "
                            f"MNIST digits; read numbers with it: digitnet read PICTURE --line-model {loaded.path}")
    return loaded


def evaluate(model: str | os.PathLike | None = None, data: str | None = None, subset: int | None = None,
             calibrated: bool = False) -> dict:
    """Score a saved model on the 10,000 MNIST test images (the first ``subset`` of them if given).

    ``model``: a model directory, ``best``, or None for the bundled default model. ``data``: an IDX folder or a
    Keras mnist.npz (default: the installed copy). ``calibrated``: report the loss with the model's temperature.
    Returns ``{"model", "arch", "accuracy", "loss", "errors", "num_samples", "per_class", "confusion", ...}``.
    """
    loaded = require_digit_classifier(load_model(model))
    mnist = load_mnist(data)
    images, labels = mnist.test_images[:subset or None], mnist.test_labels[:subset or None]
    metrics = evaluate_model(loaded.model, torch.from_numpy(images), torch.from_numpy(labels.astype("int64")),
                             loaded.spec, temperature=loaded.temperature if calibrated else 1.0)
    return {"model": str(loaded.path), "arch": loaded.arch, **metrics}


__all__ = ["classification_metrics", "confusion_matrix", "evaluate", "evaluate_model", "fit_temperature",
           "predict_logits", "require_digit_classifier"]
