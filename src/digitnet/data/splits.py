"""Train/validation/test splits and the in-memory tensors that training indexes into."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from digitnet.data.sources import MNIST
from digitnet.utils import DigitnetError

DEFAULT_VAL_SIZE = 5000  # the classic 55k/5k split: the last 5,000 training images


@dataclass
class Split:
    """uint8 images (N, 28, 28) and int64 labels (N,) as tensors on one device."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return self.labels.shape[0]

    def to(self, device) -> Split:
        return Split(self.images.to(device), self.labels.to(device))


@dataclass
class Splits:
    train: Split
    val: Split | None
    test: Split


def make_splits(
    mnist: MNIST, val_size: int = DEFAULT_VAL_SIZE, train_subset: int | None = None,
    test_subset: int | None = None, device: torch.device | str = "cpu",
) -> Splits:
    """Carve validation from the *end* of the training set; the test set stays untouched.

    ``train_subset``/``test_subset`` take the first N images (for quick tests), after the validation
    split is carved, so a subset never leaks validation images into training.
    """
    n = len(mnist.train_labels)
    if not 0 <= val_size < n:
        raise DigitnetError(f"--val-size must be between 0 and {n - 1}, got {val_size}")
    cut = n - val_size

    def split(images: np.ndarray, labels: np.ndarray, limit: int | None = None) -> Split:
        if limit is not None:
            images, labels = images[:limit], labels[:limit]
        return Split(torch.from_numpy(np.ascontiguousarray(images)).to(device),
                     torch.from_numpy(labels.astype(np.int64)).to(device))

    return Splits(
        train=split(mnist.train_images[:cut], mnist.train_labels[:cut], train_subset),
        val=split(mnist.train_images[cut:], mnist.train_labels[cut:]) if val_size else None,
        test=split(mnist.test_images, mnist.test_labels, test_subset),
    )

