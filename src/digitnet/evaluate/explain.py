"""What did the model look at? Probabilities and a saliency map for one 28×28 digit.

Two saliency methods:

* ``gradient``: SmoothGrad (Smilkov et al. 2017): the magnitude of the gradient of the predicted class's
  score (its logit, as Simonyan et al. 2013) with respect to each input pixel, averaged over noisy copies of
  the input. Plain gradients of a ReLU network are speckled; averaging over noise keeps the structure. The
  logit rather than the probability: a saturated softmax has almost no gradient left for the winning class.
* ``occlusion`` (Zeiler & Fergus 2014): black out a small patch at every position and measure how much the
  log-probability of the predicted class drops; a pixel's importance is the mean drop of the patches covering it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from digitnet.evaluate.plots import Plot, plot_explanation
from digitnet.models.registry import to_unit
from digitnet.utils import DigitnetError
from digitnet.vision.io import ImageSource
from digitnet.vision.pipeline import prepare_digit

METHODS = ("gradient", "occlusion")


@dataclass
class Explanation:
    """One explained digit: the input, the model's probabilities, the saliency map and its figure."""

    image: np.ndarray  # uint8 (28, 28), white ink on black: exactly what the model was given
    probabilities: np.ndarray  # (10,), calibrated
    predicted: int
    saliency: np.ndarray  # float (28, 28) in 0..1, 1 = most important pixel
    method: str
    plot: Plot

    def save(self, path: str | os.PathLike) -> Path:
        """Write the explanation figure as a PNG."""
        return self.plot.save(path)


def _as_digit(array: np.ndarray | torch.Tensor) -> np.ndarray:
    """A uint8 (28, 28) array from uint8 pixels or floats in 0..1."""
    image = array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else np.asarray(array)
    if image.ndim == 3 and image.shape[0] == 1:
        image = image[0]
    if image.shape != (28, 28):
        raise DigitnetError(f"explain needs a 28×28 grayscale digit, got an array of shape {image.shape}")
    if image.dtype != np.uint8:
        image = (np.clip(image.astype(np.float32), 0, 1) * 255).round().astype(np.uint8)
    return image


def _logits(model, spec, pixels: torch.Tensor) -> torch.Tensor:
    """Logits for a batch of (N, 28, 28) float pixels in 0..1 (``spec.prepare`` takes floats as they are)."""
    return model(spec.prepare(pixels)).float()


def saliency_gradient(model, spec, image: np.ndarray, target: int, samples: int = 32, noise: float = 0.15,
                      seed: int = 0) -> np.ndarray:
    """SmoothGrad saliency (28, 28) of class ``target`` for a uint8 digit, scaled to 0..1."""
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    base = to_unit(torch.from_numpy(image))
    noisy = (base + noise * torch.randn(samples, 28, 28, generator=generator)).to(device)
    # Callers may sit inside inference mode (a server, a notebook); gradients need it off.
    with torch.inference_mode(False), torch.enable_grad():
        noisy = noisy.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(_logits(model, spec, noisy)[:, target].sum(), noisy)
    saliency = grad.abs().mean(0).cpu().numpy()
    return saliency / max(float(saliency.max()), 1e-12)


@torch.inference_mode()
def saliency_occlusion(model, spec, image: np.ndarray, target: int, patch: int = 6, stride: int = 2) -> np.ndarray:
    """Occlusion saliency (28, 28) of class ``target`` for a uint8 digit, scaled to 0..1."""
    device = next(model.parameters()).device
    base = to_unit(torch.from_numpy(image)).to(device)
    positions = [(y, x) for y in range(0, 28 - patch + 1, stride) for x in range(0, 28 - patch + 1, stride)]
    batch = base.repeat(len(positions), 1, 1)
    for i, (y, x) in enumerate(positions):
        batch[i, y:y + patch, x:x + patch] = 0.0  # black: the background of MNIST
    reference = F.log_softmax(_logits(model, spec, base[None]), 1)[0, target]
    drops = (reference - F.log_softmax(_logits(model, spec, batch), 1)[:, target]).clamp(min=0).cpu()
    total = torch.zeros(28, 28)
    coverage = torch.zeros(28, 28)
    for drop, (y, x) in zip(drops, positions, strict=True):
        total[y:y + patch, x:x + patch] += drop
        coverage[y:y + patch, x:x + patch] += 1
    saliency = (total / coverage.clamp(min=1)).numpy()
    return saliency / max(float(saliency.max()), 1e-12)


def explain_array(recognizer, array: np.ndarray | torch.Tensor, method: str = "occlusion",
                  title: str = "") -> Explanation:
    """Explain a 28×28 digit (uint8, white on black) with ``recognizer``: probabilities, saliency and a figure."""
    if method not in METHODS:
        raise DigitnetError(f"unknown saliency method {method!r}; choose one of: {', '.join(METHODS)}")
    image = _as_digit(array)
    probabilities = recognizer.classify(image)[0]
    predicted = int(probabilities.argmax())
    was_training = recognizer.model.training
    recognizer.model.eval()
    try:
        if method == "gradient":
            saliency = saliency_gradient(recognizer.model, recognizer.spec, image, predicted)
        else:
            saliency = saliency_occlusion(recognizer.model, recognizer.spec, image, predicted)
    finally:
        recognizer.model.train(was_training)
    plot = plot_explanation(image, probabilities, saliency, method, title)
    return Explanation(image, probabilities, predicted, saliency, method, plot)


def explain_picture(recognizer, source: ImageSource, method: str = "occlusion") -> Explanation:
    """Explain a picture file (or bytes, PIL image, array) of one digit, prepared as ``Recognizer.predict`` does.

    The same pipeline step as predictions, the multi-digit check included: a picture of a number, or one
    without ink, raises with the note ``predict`` would answer with instead of explaining a guess.
    """
    prepared = prepare_digit(source, recognizer.classify)
    name = prepared.path or "<image>"
    if prepared.error:
        raise DigitnetError(prepared.error)
    if prepared.image is None:
        raise DigitnetError(f"{name}: {prepared.note or 'no digit found'}")
    return explain_array(recognizer, prepared.image, method, title=f"{Path(name).name} · model {recognizer.spec.name}")
