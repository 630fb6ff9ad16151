"""Metrics, reports and plots."""

from digitnet.evaluate.metrics import (
    classification_metrics,
    confusion_matrix,
    evaluate_model,
    fit_temperature,
    predict_logits,
)

__all__ = ["classification_metrics", "confusion_matrix", "evaluate_model", "fit_temperature", "predict_logits"]
