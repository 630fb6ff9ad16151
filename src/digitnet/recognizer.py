"""``Recognizer``: a loaded model plus the picture pipeline — the one object apps and the server use.

``predict`` answers for a single digit, ``read`` for a written number. Both accept a path, bytes,
a PIL image or a numpy array, and return plain dicts with the same fields as ``digitnet predict --json``
and ``digitnet read --json``.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from digitnet.models.registry import preprocess
from digitnet.saved_model import LoadedModel, load_model
from digitnet.vision.io import ImageError, ImageSource, load_picture
from digitnet.vision.preprocess import find_ink, mnist_like, normalize_digit
from digitnet.vision.segment import Classifier, find_digits, find_groups, line_height

NO_INK = "no ink found"


@dataclass
class Prepared:
    """A picture made ready for the model: the 28×28 it will see, or why there is none."""

    path: str | None  # the file it came from, if any
    image: np.ndarray | None  # uint8 (28, 28), white on black: what the model sees
    error: str | None = None  # the picture could not be used (unreadable, too large, ...)
    note: str | None = None  # the picture was fine but holds no single digit to answer for


def prepare(source: ImageSource, classify: Classifier | None = None) -> Prepared:
    """Load a picture of one digit and normalize it like MNIST; never raises for a bad picture.

    With ``classify``, a picture that holds several digits is recognized as such (see :mod:`segment`)
    and answered with a note instead of a guess at one of them.
    """
    path = os.fspath(source) if isinstance(source, (str, os.PathLike)) else None
    try:
        picture = load_picture(source)
    except ImageError as exc:
        return Prepared(path, None, error=str(exc))
    passthrough = mnist_like(picture.pixels)
    if passthrough is not None:
        return Prepared(path, passthrough) if passthrough.any() else Prepared(path, None, note=NO_INK)
    ink = find_ink(picture.pixels)
    if ink is None:
        return Prepared(path, None, note=NO_INK)
    groups = find_groups(ink)
    tall = [g for g in groups if g.height >= 0.6 * line_height(groups)] if groups else []
    if len(tall) > 1 and classify is not None:  # a short piece beside a digit is a broken stroke, not a digit
        count = len(find_digits(ink, classify))
        if count > 1:
            return Prepared(path, None, note=f"{count} digits found: read numbers with `digitnet read`")
    return Prepared(path, normalize_digit(ink.mask))


@dataclass
class PreparedNumber:
    """A picture of a number, segmented: each digit's 28×28, its box and the model's probabilities."""

    path: str | None
    images: list[np.ndarray] = field(default_factory=list)  # uint8 (28, 28) per digit, left to right
    boxes: list[list[int]] = field(default_factory=list)  # [x0, y0, x1, y1] in the picture's pixels
    probabilities: list[np.ndarray] = field(default_factory=list)  # (10,) per digit
    error: str | None = None
    note: str | None = None


def prepare_number(source: ImageSource, classify: Classifier) -> PreparedNumber:
    """Load a picture of a written number and find its digits (what :meth:`Recognizer.read` answers from)."""
    path = os.fspath(source) if isinstance(source, (str, os.PathLike)) else None
    try:
        picture = load_picture(source)
    except ImageError as exc:
        return PreparedNumber(path, error=str(exc))
    passthrough = mnist_like(picture.pixels)
    if passthrough is not None:  # an MNIST digit is a one-digit number
        if not passthrough.any():
            return PreparedNumber(path, note=NO_INK)
        return PreparedNumber(path, [passthrough], [[0, 0, 28, 28]], list(classify(passthrough)))
    ink = find_ink(picture.pixels)
    segments = find_digits(ink, classify) if ink is not None else []
    if not segments:
        return PreparedNumber(path, note=NO_INK)
    height, width = picture.pixels.shape[:2]
    return PreparedNumber(path, [normalize_digit(s.mask) for s in segments],
                          [_scale_box(s.box, ink.scale, width, height) for s in segments],
                          [s.probabilities for s in segments])


def read_answer(number: PreparedNumber) -> dict:
    """The fields of ``digitnet read --json`` for a segmented number."""
    digits = [{"digit": int(p.argmax()), "confidence": round(float(p.max()), 6), "box": box}
              for p, box in zip(number.probabilities, number.boxes, strict=True)]
    return {"path": number.path, "text": "".join(str(d["digit"]) for d in digits), "digits": digits,
            "error": number.error, "note": number.note}


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

    # ------------------------------------------------------------------------------ pictures

    def prepare(self, image: ImageSource) -> Prepared:
        """The 28×28 this recognizer would classify for ``image`` (or why there is none)."""
        return prepare(image, self.classify)

    def predict(self, image: ImageSource, top_k: int | None = None, min_confidence: float | None = None) -> dict:
        """Answer for a picture of one digit: the fields of ``digitnet predict --json``.

        ``image`` is a path, encoded bytes, a PIL image or a numpy array. Bad pictures do not raise: the
        answer has ``digit: None`` and says why in ``error`` (unusable picture) or ``note`` (no ink, a number,
        or below ``min_confidence``).
        """
        return self.predict_batch([image], top_k=top_k, min_confidence=min_confidence)[0]

    def predict_batch(
        self, images: list[ImageSource], top_k: int | None = None, min_confidence: float | None = None
    ) -> list[dict]:
        """:meth:`predict` for many pictures, classified in one forward pass."""
        return self.answer([self.prepare(image) for image in images], top_k=top_k, min_confidence=min_confidence)

    def answer(
        self, prepared: list[Prepared], top_k: int | None = None, min_confidence: float | None = None
    ) -> list[dict]:
        """Classify prepared pictures (one forward pass) and build their answers."""
        ready = [p for p in prepared if p.image is not None]
        probabilities = iter(self.classify(np.stack([p.image for p in ready])) if ready else [])
        answers = []
        for p in prepared:
            result = {"path": p.path, "digit": None, "confidence": None, "probabilities": None,
                      "error": p.error, "note": p.note}
            if p.image is not None:
                probs = next(probabilities)
                digit = int(probs.argmax())
                result.update(digit=digit, confidence=round(float(probs[digit]), 6),
                              probabilities=[round(float(v), 6) for v in probs])
                if min_confidence is not None and probs[digit] < min_confidence:
                    result.update(digit=None, note=f"not sure: confidence {probs[digit]:.2f} < {min_confidence:g}")
                if top_k:
                    order = np.argsort(-probs, kind="stable")[:top_k]
                    result["top_k"] = [{"digit": int(d), "probability": round(float(probs[d]), 6)} for d in order]
            elif top_k:
                result["top_k"] = []
            answers.append(result)
        return answers

    def read(self, image: ImageSource) -> dict:
        """Read a written number: the fields of ``digitnet read --json``.

        ``text`` is the digits left to right; each digit has its ``box`` [x0, y0, x1, y1] in the picture's
        pixels (x1, y1 exclusive, after EXIF rotation). Bad pictures do not raise: ``error`` says why.
        """
        return read_answer(prepare_number(image, self.classify))

    def __repr__(self) -> str:
        path = Path(self.loaded.path) if self.loaded.path else None
        return f"Recognizer(arch={self.spec.name!r}, model={str(path)!r})"


def _scale_box(box: tuple[int, int, int, int], scale: float, width: int, height: int) -> list[int]:
    """A working-resolution box in the original picture's pixels."""
    x0, y0, x1, y1 = box
    return [max(0, int(x0 * scale)), max(0, int(y0 * scale)),
            min(width, int(np.ceil(x1 * scale))), min(height, int(np.ceil(y1 * scale)))]
