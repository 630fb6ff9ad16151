"""The model registry: builder functions registered by name, each with the preprocessing it expects.

Modelled on timm: ``@register_model("lenet5", ...)`` records a builder and its :class:`ModelSpec`
(input size, normalization, a one-line description), ``create_model(name)`` builds it, and the spec is
saved with the weights so that inference always prepares images exactly as training did.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from digitnet.utils import DigitnetError

# Named pixel normalizations used by the tutorials: x in [0,1] is mapped to (x - mean) / std.
NORMALIZATIONS: dict[str, tuple[float, float]] = {
    "unit": (0.0, 1.0),  # 0..1, as the Keras tutorials
    "mnist": (0.1307, 0.3081),  # mean/std of the training pixels, as the PyTorch examples
    "symmetric": (0.5, 0.5),  # -1..1
}


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to feed a model: travels with the weights in the metadata."""

    name: str
    description: str
    input_size: int = 28  # 28, or 32 for LeNet-5 (MNIST zero-padded by 2, never resized)
    normalization: str = "mnist"
    source: str = ""
    channels_last: bool = True  # measured faster on CPU for most convnets; off where it is not
    defaults: dict = field(default_factory=dict)  # training defaults that suit this family

    @property
    def mean_std(self) -> tuple[float, float]:
        return NORMALIZATIONS[self.normalization]

    def to_dict(self) -> dict:
        return asdict(self)


_REGISTRY: dict[str, tuple[Callable[..., nn.Module], ModelSpec]] = {}


def register_model(name: str, description: str, **spec_kwargs) -> Callable:
    """Decorator: register ``builder`` under ``name`` with its :class:`ModelSpec`."""

    def decorator(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = (builder, ModelSpec(name=name, description=description, **spec_kwargs))
        return builder

    return decorator


def list_models() -> list[str]:
    """Names of all registered architectures, in registration order."""
    _import_families()
    return list(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of a registered architecture."""
    _import_families()
    if name not in _REGISTRY:
        raise DigitnetError(f"unknown architecture {name!r}; choose one of: {', '.join(_REGISTRY)}")
    return _REGISTRY[name][1]


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a fresh, randomly initialized model of architecture ``name``.

    The returned module carries its spec as ``model.spec`` so trainers and savers need only the model.
    """
    spec = get_spec(name)
    model = _REGISTRY[name][0](**kwargs)
    model.spec = spec  # type: ignore[attr-defined]
    model.arch_kwargs = dict(kwargs)  # type: ignore[attr-defined]
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _import_families() -> None:
    # Importing the family modules runs their @register_model decorators.
    from digitnet.models import mlp, lenet, cnn, resnet  # noqa: F401, I001 (this order = listing order)


def preprocess(images: torch.Tensor, spec: ModelSpec) -> torch.Tensor:
    """uint8 (N, 28, 28) or (N, 1, 28, 28) → normalized float (N, 1, S, S) for ``spec``.

    Works on whatever device ``images`` lives on, so training batches are prepared on the GPU.
    """
    if images.dim() == 3:
        images = images.unsqueeze(1)
    x = images.float() if images.dtype != torch.uint8 else images.float().div_(255.0)
    mean, std = spec.mean_std
    if mean != 0.0 or std != 1.0:
        x = (x - mean) / std
    pad = (spec.input_size - x.shape[-1]) // 2
    if pad > 0:
        # Pad with the normalized value of a black pixel, as if the canvas were larger.
        x = torch.nn.functional.pad(x, (pad, pad, pad, pad), value=(0.0 - mean) / std)
    return x
