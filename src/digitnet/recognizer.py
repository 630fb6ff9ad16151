"""``Recognizer``: a loaded model plus the picture pipeline — the one object apps and the server use.

``predict`` answers for a single digit, ``read`` for a written number. Both accept a path, bytes,
a PIL image or a numpy array, and return plain dicts with the same fields as ``digitnet predict --json``
and ``digitnet read --json``.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import torch

from digitnet.models.registry import preprocess
from digitnet.saved_model import LoadedModel, load_model


class Recognizer:
    """Classify digits with a saved model, preparing inputs exactly as the model was trained."""

    def __init__(self, loaded: LoadedModel):
        self.loaded = loaded
        self.model = loaded.model.eval()
        self.spec = loaded.spec
        self.temperature = loaded.temperature
        self.device = next(self.model.parameters()).device
        self._channels_last = self.spec.channels_last and self.device.type == "cpu"
        # PyTorch modules are safe to call from several threads in inference mode; the lock only guards
        # lazily built state, so concurrent requests never see a half-initialized recognizer.
        self._lock = threading.Lock()

    @classmethod
    def from_pretrained(cls, model_dir: str | os.PathLike | None = None, device: str = "cpu") -> Recognizer:
        """Load ``model_dir`` (default: the bundled default model)."""
        return cls(load_model(model_dir, device=device))

    @property
    def metadata(self) -> dict:
        return self.loaded.metadata

    @torch.inference_mode()
    def classify(self, images: np.ndarray | torch.Tensor, calibrated: bool = True) -> np.ndarray:
        """Probabilities (N, 10) for MNIST-like images: uint8 (N, 28, 28) white ink on black, or float 0..1."""
        x = torch.as_tensor(np.asarray(images)) if not isinstance(images, torch.Tensor) else images
        if x.dim() == 2:
            x = x.unsqueeze(0)
        if x.dtype != torch.uint8:
            x = (x.float().clamp(0, 1) * 255).round().to(torch.uint8)
        batch = preprocess(x.to(self.device), self.spec)
        if self._channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        logits = self.model(batch).float()
        if calibrated:
            logits = logits / self.temperature
        return torch.softmax(logits, 1).cpu().numpy()

    def __repr__(self) -> str:
        path = Path(self.loaded.path) if self.loaded.path else None
        return f"Recognizer(arch={self.spec.name!r}, model={str(path)!r})"
