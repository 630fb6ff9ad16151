"""The model registry: builder functions registered by name, each with the input it expects.

Modelled on timm: ``@register_model("lenet5", ...)`` records a builder and its :class:`ModelSpec`
(the input contract: input size, normalization, memory layout; a description and the family's training
recipe), ``create_model(name)`` builds it. The input contract is saved with the weights (as timm's
``pretrained_cfg``) and a loaded model uses the saved one, so inference prepares images exactly as
training did even after the registry changes; the training recipe stays here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import torch
from torch import nn

from digitnet.utils import DigitnetError

MNIST_SIDE = 28  # every caller's images are MNIST-like: 28×28

# Named pixel normalizations used by the tutorials: x in [0,1] is mapped to (x - mean) / std.
NORMALIZATIONS: dict[str, tuple[float, float]] = {
    "unit": (0.0, 1.0),  # 0..1, as the Keras tutorials
    "mnist": (0.1307, 0.3081),  # mean/std of the training pixels, as the PyTorch examples
    "symmetric": (0.5, 0.5),  # -1..1
}


@dataclass(frozen=True)
class ModelSpec:
    """How to feed a model (its input contract, saved with the weights) plus its registry description.

    The contract is ``input_size``, ``normalization`` (a name and its ``mean``/``std``) and ``channels_last``;
    ``defaults`` is the family's training recipe and is never saved with the weights.
    """

    name: str
    description: str
    input_size: int = 28  # 28, or 32 for LeNet-5 (MNIST zero-padded by 2, never resized)
    normalization: str = "mnist"  # a name from NORMALIZATIONS, or "custom" with ``mean`` and ``std``
    source: str = ""
    channels_last: bool = True  # the weights' memory layout on CPU: measured faster for most convnets
    task: str = "digits"  # "digits": one 28×28 digit → 10 classes; "lines": a line image → CTC posteriors
    defaults: dict = field(default_factory=dict)  # training recipe that suits this family (not saved)
    composite: bool = False  # made from trained models (``digitnet ensemble``), never built empty or trained
    mean: float | None = None  # only for "custom": pixels in 0..1 are fed as (x - mean) / std
    std: float | None = None

    def __post_init__(self) -> None:
        # A name always means its numbers (so replace(spec, normalization="unit") is all of "unit").
        if self.normalization == "custom":
            if self.mean is None or self.std is None or not self.std > 0:
                raise DigitnetError(f"a custom normalization needs a mean and a positive std, "
                                    f"got {self.mean!r}, {self.std!r}")
        elif self.normalization not in NORMALIZATIONS:
            raise DigitnetError(f"unknown normalization {self.normalization!r}; "
                                f"choose one of: {', '.join(NORMALIZATIONS)}, or custom with a mean and std")
        elif self.mean is not None or self.std is not None:
            raise DigitnetError(f"normalization {self.normalization!r} has its own mean and std; "
                                "give numbers only with normalization 'custom'")

    @property
    def mean_std(self) -> tuple[float, float]:
        if self.normalization == "custom":
            return float(self.mean), float(self.std)  # type: ignore[arg-type]
        return NORMALIZATIONS[self.normalization]

    def to_dict(self) -> dict:
        return asdict(self)

    def contract(self) -> dict:
        """The input contract as ``model.json`` stores it."""
        mean, std = self.mean_std
        return {"input_size": self.input_size, "normalization": {"name": self.normalization, "mean": mean, "std": std},
                "channels_last": self.channels_last}

    def with_contract(self, input_size: int, mean: float, std: float, channels_last: bool) -> ModelSpec:
        """This spec with another input contract (a saved model's), the description and recipe kept.

        ``mean``/``std`` that are those of a named normalization get its name; other numbers are "custom".
        """
        name = next((n for n, (m, s) in NORMALIZATIONS.items()
                     if math.isclose(m, mean, abs_tol=1e-9) and math.isclose(s, std, rel_tol=1e-6)), None)
        return replace(self, input_size=input_size, normalization=name or "custom",
                       mean=None if name else mean, std=None if name else std, channels_last=channels_last)

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """MNIST-like images → this model's float input (N, 1, S, S): the one preparation every caller uses.

        ``images``: uint8 (N, 28, 28) or (N, 1, 28, 28) white on black, or float pixels already in 0..1
        (explanations, TTA views). Scales to 0..1, normalizes, and pads to ``input_size`` with the normalized
        value of a black pixel. Works on whatever device ``images`` lives on. No memory-format step: a
        one-channel image is the same memory in both layouts, and the first convolution follows the layout
        of its weights (``channels_last``, applied when a model is loaded or trained).
        """
        x = to_unit(images)
        if x.dim() == 3:
            x = x.unsqueeze(1)
        mean, std = self.mean_std
        if mean != 0.0 or std != 1.0:
            x = (x - mean) / std
        pad = (self.input_size - MNIST_SIDE) // 2  # a constant, so that an exported (traced) graph keeps it
        if pad > 0:
            # Pad with the normalized value of a black pixel, as if the canvas were larger.
            x = torch.nn.functional.pad(x, (pad, pad, pad, pad), value=(0.0 - mean) / std)
        return x


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels → float in 0..1; float pixels are taken as already in 0..1."""
    return images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()


# The registry's models take 28 px (32 for LeNet-5 and the line recognizer's rows); a larger saved input_size would
# pad every image to it (100000 would ask for 80 GB a batch).
MAX_INPUT_SIZE = 64


def input_size_problem(input_size: object) -> str | None:
    """What is wrong with a saved contract's ``input_size`` (None: nothing)."""
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < MNIST_SIDE or input_size % 2:
        return f"input_size {input_size!r} is not an even number of pixels ≥ 28"
    if input_size > MAX_INPUT_SIZE:
        return f"input_size {input_size!r} is larger than any digit model's ({MAX_INPUT_SIZE} pixels at most)"
    return None


def normalization_problem(mean: object, std: object) -> str | None:
    """What is wrong with a saved contract's normalization numbers (None: nothing)."""
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (mean, std)) \
            or std <= 0:  # type: ignore[operator]
        return f"normalization needs a finite mean and a positive std, got mean {mean!r}, std {std!r}"
    return None


def temperature_problem(temperature: object) -> str | None:
    """What is wrong with a saved calibration temperature, the logits' divisor (None: nothing)."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not math.isfinite(temperature) \
            or temperature <= 0:
        return f"temperature must be a positive number, got {temperature!r}"
    return None


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
    return list(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of a registered architecture."""
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


def preprocess(images: torch.Tensor, spec: ModelSpec) -> torch.Tensor:
    """``spec.prepare(images)``, under the name the training code calls it by."""
    return spec.prepare(images)
