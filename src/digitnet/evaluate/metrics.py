"""``digitnet evaluate``'s metrics: a saved model on a test set.

The building blocks (logits, accuracy/loss/per-class figures, confusion matrix, temperature) live in
:mod:`digitnet.train.metrics`, where the trainer uses them; they are re-exported here for callers of this module.
"""

from __future__ import annotations

import torch
from torch import nn

from digitnet.models.registry import ModelSpec
from digitnet.train.metrics import classification_metrics, confusion_matrix, fit_temperature, predict_logits

__all__ = ["classification_metrics", "confusion_matrix", "evaluate_model", "fit_temperature", "predict_logits"]


def evaluate_model(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, spec: ModelSpec,
                   temperature: float = 1.0) -> dict:
    """Evaluate ``model`` on uint8 images and labels; see :func:`classification_metrics`."""
    return classification_metrics(predict_logits(model, images, spec), labels, temperature)
