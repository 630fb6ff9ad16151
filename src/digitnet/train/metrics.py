"""Logits in eval mode, accuracy, loss, per-class precision/recall/F1, the confusion matrix, calibration.

They live in ``train/`` because the trainer needs them (validation each epoch, the test set at the end,
the calibration temperature); :mod:`digitnet.evaluate` builds ``digitnet evaluate`` on top of them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from digitnet.models.registry import ModelSpec, preprocess

TEMPERATURE_RANGE = (0.05, 20.0)  # what fit_temperature can answer: a fit at a bound had further to go


@torch.inference_mode()
def predict_logits(model: nn.Module, images: torch.Tensor, spec: ModelSpec, batch_size: int = 2048) -> torch.Tensor:
    """Logits (N, 10) for uint8 images (N, 28, 28), computed in large batches in eval mode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    channels_last = spec.channels_last and device.type == "cpu"
    outputs = []
    for start in range(0, images.shape[0], batch_size):
        x = preprocess(images[start:start + batch_size].to(device), spec)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        outputs.append(model(x).float())
    model.train(was_training)
    return torch.cat(outputs) if outputs else torch.zeros(0, 10)


def confusion_matrix(labels: torch.Tensor, predictions: torch.Tensor, num_classes: int = 10) -> torch.Tensor:
    """Rows are true classes, columns predicted classes."""
    index = labels.long().cpu() * num_classes + predictions.long().cpu()
    return torch.bincount(index, minlength=num_classes * num_classes).view(num_classes, num_classes)


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0) -> dict:
    """Everything ``digitnet evaluate --json`` prints, from logits and true labels."""
    logits, labels = logits.float().cpu(), labels.long().cpu()
    predictions = logits.argmax(1)
    confusion = confusion_matrix(labels, predictions)
    tp = confusion.diag().double()
    precision = tp / confusion.sum(0).double().clamp(min=1)
    recall = tp / confusion.sum(1).double().clamp(min=1)
    f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
    n = len(labels)
    return {
        "accuracy": float((predictions == labels).double().mean()) if n else 0.0,
        "loss": float(F.cross_entropy(logits / temperature, labels)) if n else 0.0,
        "num_samples": n,
        "errors": int((predictions != labels).sum()),
        "per_class": [
            {"digit": d, "precision": float(precision[d]), "recall": float(recall[d]), "f1": float(f1[d]),
             "support": int(confusion[d].sum())}
            for d in range(10)
        ],
        "confusion": confusion.tolist(),
    }


def saved_test_metrics(test: dict, calibrated_loss: float) -> dict:
    """The test-set figures a saved model records in its ``metrics``, from :func:`classification_metrics` (or a
    line model's test) and the loss after calibration."""
    return {"test_accuracy": test["accuracy"], "test_loss": test["loss"], "test_loss_calibrated": calibrated_loss,
            "test_errors": test["errors"], "test_samples": test["num_samples"]}


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Temperature scaling (Guo et al. 2017): the T in [0.05, 20] minimizing NLL of softmax(logits / T) on held-out
    data; 1 where there is nothing to fit (no samples, logits not finite)."""
    logits, labels = logits.double().cpu(), labels.long().cpu()
    if len(labels) == 0 or not bool(torch.isfinite(logits).all()):
        return 1.0
    # The NLL is convex in b = 1/T, so its slope, mean(E_softmax(b·z)[z] - z_label), only rises with b: bisecting
    # on the slope's sign finds the minimum within the bounds, in float64, and can never step outside them.
    # (LBFGS without a line search, used before, ran off to NaN on a barely trained model's small logits.)
    true = logits.gather(1, labels[:, None]).squeeze(1)
    low, high = -math.log(TEMPERATURE_RANGE[1]), -math.log(TEMPERATURE_RANGE[0])  # bounds of log b
    for _ in range(64):  # the interval shrinks 2^64-fold: to float64's precision
        middle = (low + high) / 2
        slope = ((torch.softmax(logits * math.exp(middle), 1) * logits).sum(1) - true).mean()
        if slope > 0:  # the NLL rises here: its minimum lies at a smaller b
            high = middle
        else:
            low = middle
    return math.exp(-(low + high) / 2)
