"""A faithful re-implementation of the PyTorch examples MNIST recipe, the yardstick of ``digitnet bench``.

pytorch/examples ``mnist/main.py``: two 3×3 convolutions (32, 64), max-pool, dropout 0.25, fc 128,
dropout 0.5, fc 10 with log-softmax; Adadelta lr 1.0; StepLR γ=0.7 stepped every epoch; batch 64.
Its data come through torchvision's ``MNIST`` dataset with ``ToTensor()`` and
``Normalize((0.1307,), (0.3081,))``: every image is turned into a PIL image, back into a tensor and
normalized *one at a time* in ``__getitem__``, then collated by a ``DataLoader``. torchvision is not a
dependency of digitnet, so :class:`PerSampleMNIST` does exactly those steps with PIL and torch.

One deliberate difference: the original shuffles only when a GPU is used (its ``cuda_kwargs``); on the
CPU it trains in file order. We always shuffle, which is what everyone runs and what the issue specifies.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

MEAN, STD = 0.1307, 0.3081


class ReferenceNet(nn.Module):
    """``Net`` from pytorch/examples mnist/main.py, layer for layer."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        return F.log_softmax(self.fc2(x), dim=1)


def to_tensor(picture: Image.Image) -> torch.Tensor:
    """torchvision's ``ToTensor`` for a mode-L PIL image: HWC uint8 → CHW float in [0, 1]."""
    array = np.array(picture, np.uint8, copy=True)
    tensor = torch.from_numpy(array).view(picture.size[1], picture.size[0], 1)
    return tensor.permute(2, 0, 1).contiguous().to(dtype=torch.get_default_dtype()).div(255)


def normalize(tensor: torch.Tensor, mean: tuple[float, ...] = (MEAN,), std: tuple[float, ...] = (STD,)) -> torch.Tensor:
    """torchvision's ``Normalize``: per-channel ``(x - mean) / std`` on a copy."""
    mean_t = torch.as_tensor(mean, dtype=tensor.dtype).view(-1, 1, 1)
    std_t = torch.as_tensor(std, dtype=tensor.dtype).view(-1, 1, 1)
    return tensor.clone().sub_(mean_t).div_(std_t)


class PerSampleMNIST(Dataset):
    """torchvision's ``MNIST`` + ``Compose([ToTensor(), Normalize(...)])``: one image per ``__getitem__``."""

    def __init__(self, images: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor) -> None:
        # torchvision keeps the data as uint8/int64 tensors and converts per item, as here.
        self.data = torch.as_tensor(np.asarray(images, dtype=np.uint8))
        self.targets = torch.as_tensor(np.asarray(labels, dtype=np.int64))
        self.calls = 0  # how many items were fetched: the tests check the pipeline is per-sample

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        self.calls += 1
        img, target = self.data[index], int(self.targets[index])
        picture = Image.fromarray(img.numpy(), mode="L")
        return normalize(to_tensor(picture)), target


def make_loader(dataset: Dataset, batch_size: int, device: torch.device, shuffle: bool = True,
                generator: torch.Generator | None = None) -> DataLoader:
    """The original's loader: in-process on CPU; one worker and pinned memory with an accelerator."""
    kwargs: dict = {"batch_size": batch_size, "shuffle": shuffle, "generator": generator}
    if device.type == "cuda":
        kwargs.update(num_workers=1, pin_memory=True, persistent_workers=True)
    return DataLoader(dataset, **kwargs)


def build(device: torch.device, lr: float = 1.0, gamma: float = 0.7):
    """The model, Adadelta and StepLR of the original."""
    model = ReferenceNet().to(device)
    optimizer = torch.optim.Adadelta(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=gamma)
    return model, optimizer, scheduler


@torch.inference_mode()
def evaluate(model: nn.Module, loader: DataLoader, device: torch.device) -> float:
    """Test accuracy as the original's ``test()`` computes it (batches of 1,000 through its loader)."""
    model.eval()
    correct = 0
    for data, target in loader:
        data, target = data.to(device), target.to(device)
        correct += int((model(data).argmax(dim=1) == target).sum())
    model.train()
    return correct / len(loader.dataset)
