"""TensorBoard logging for ``digitnet train --tensorboard``: everything lands in ``RUN_DIR/tensorboard/``.

Per epoch: losses, accuracies and the learning rate as scalars, and a histogram of every parameter and of
its gradient. Once: the model graph at the start, and the misclassified test digits at the end (from the test
logits the trainer computes once). Open it with ``tensorboard --logdir RUN_DIR/tensorboard`` (or ``--logdir runs``
to compare every run side by side).

It is a trainer callback (:class:`digitnet.train.callbacks.Callback`). The labelled gallery of the most confident
mistakes is drawn by ``digitnet.evaluate.plots``, a layer above this one: whoever builds the callback passes that
drawing in (``error_gallery``); ``digitnet.train(config)`` (the package, called) does.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from digitnet.models.registry import preprocess
from digitnet.train.callbacks import Callback, Fit
from digitnet.utils import DigitnetError

LOG_SUBDIR = "tensorboard"
# History column → TensorBoard tag. Tags sharing a prefix ("loss/...") are grouped in one TensorBoard section.
SCALAR_TAGS = {
    "train_loss": "loss/train",
    "val_loss": "loss/val",
    "train_accuracy": "accuracy/train",
    "val_accuracy": "accuracy/val",
    "test_accuracy": "accuracy/test",
    "lr": "learning_rate",
    "images_per_second": "speed/train_images_per_second",
}
MAX_MISCLASSIFIED = 64
# (images uint8 (N, 28, 28), labels (N,), probabilities (N, 10)) → a PNG of the most confident mistakes
ErrorGallery = Callable[[np.ndarray, np.ndarray, np.ndarray], bytes]


def _summary_writer(log_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise DigitnetError("--tensorboard needs the tensorboard package: "
                            "pip install 'digitnet[tensorboard]'") from None
    return SummaryWriter(log_dir=str(log_dir))


class TensorBoardCallback(Callback):
    """Writes a run's scalars, histograms, graph and misclassified digits for TensorBoard."""

    writes = True

    def __init__(self, error_gallery: ErrorGallery | None = None):
        self.error_gallery = error_gallery
        self.log_dir: Path | None = None
        self.writer = None

    def on_fit_start(self, fit: Fit) -> None:
        self.log_dir = fit.run_dir / LOG_SUBDIR
        self.writer = _summary_writer(self.log_dir)
        self._add_graph(fit.model, fit.run.splits)

    def _add_graph(self, model: nn.Module, splits) -> None:
        device = next(model.parameters()).device
        if splits is not None and len(splits.train):
            example = splits.train.images[:1].to(device)
        else:
            example = torch.zeros(1, 28, 28, dtype=torch.uint8, device=device)
        was_training = model.training
        # Trace in eval mode: a training-mode forward would move batch-norm running statistics and so
        # change the run just by logging it.
        model.eval()
        try:
            # add_graph traces with torch.jit.trace, which recent torch deprecates with no replacement in
            # SummaryWriter yet: the warning is for TensorBoard's maintainers, not for our users.
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                self.writer.add_graph(model, preprocess(example, model.spec))
        except Exception as exc:  # a graph TensorBoard cannot trace is no reason to lose the training run
            warnings.warn(f"TensorBoard: could not record the model graph ({exc})", stacklevel=2)
        finally:
            model.train(was_training)

    def on_epoch_end(self, fit: Fit, row: dict) -> None:
        for key, tag in SCALAR_TAGS.items():
            if row.get(key) is not None:
                self.writer.add_scalar(tag, row[key], fit.epoch)
        for name, param in fit.model.named_parameters():
            self.writer.add_histogram(f"weights/{name}", param.detach(), fit.epoch)
            # The step clears gradients at its start, so these are the epoch's last step's.
            if param.grad is not None:
                self.writer.add_histogram(f"gradients/{name}", param.grad.detach(), fit.epoch)
        self.writer.flush()

    def on_fit_end(self, fit: Fit, test_logits: torch.Tensor, metrics: dict) -> None:
        step = int(metrics.get("epochs_run") or 0)
        for key in ("test_accuracy", "test_loss"):
            if metrics.get(key) is not None:
                self.writer.add_scalar(f"final/{key}", metrics[key], step)
        if test_logits is None:  # a line recognizer: no per-digit answers to show
            self.writer.close()
            return
        test = fit.run.splits.test
        images, labels = test.images.cpu(), test.labels.cpu()
        probabilities = torch.softmax(test_logits.cpu(), 1)
        predicted = probabilities.argmax(1)
        wrong = torch.nonzero(predicted != labels).flatten()[:MAX_MISCLASSIFIED]
        if len(wrong):
            # (N, 1, 28, 28) in 0..1, shown as a grid; the text entry says which digit is which.
            self.writer.add_images("misclassified/test", images[wrong].unsqueeze(1).float() / 255, step)
            lines = [f"{i}. test image {int(j)}: true {int(labels[j])} → predicted {int(predicted[j])}"
                     for i, j in enumerate(wrong, 1)]
            self.writer.add_text("misclassified/test", "  \n".join(lines), step)
            if self.error_gallery is not None:
                png = self.error_gallery(images.numpy(), labels.numpy(), probabilities.numpy())
                picture = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
                self.writer.add_image("misclassified/most_confident", picture, step, dataformats="HWC")
        self.writer.close()

    def on_train_end(self, fit: Fit) -> None:
        if self.writer is not None:
            self.writer.flush()
