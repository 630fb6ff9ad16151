"""``ensemble``: several trained digit models saved and read as one.

Models trained apart (another seed) misread different digits, so the mean of their calibrated probabilities is
right more often than any one of them (the average ``digitnet ensemble`` scores, see
:mod:`digitnet.evaluate.ensemble`). Saved as one model — the members' weights in one safetensors file, their
architectures, input contracts and calibration temperatures in ``model.json`` — an ensemble loads, serves and
exports like any other model: the pipeline, the server and ONNX see one forward pass. Its own input is the
image in 0..1 (normalization ``unit``); each member prepares it as it was trained to read it.
``digitnet ensemble --models A,B --out DIR`` makes one from trained models.
"""

from __future__ import annotations

import torch
from torch import nn

from digitnet.models.registry import (
    ModelSpec,
    create_model,
    get_spec,
    input_size_problem,
    normalization_problem,
    register_model,
    temperature_problem,
)
from digitnet.utils import DigitnetError


class Ensemble(nn.Module):
    """Members whose calibrated probabilities are averaged; the output is the log of that mean, so its softmax is
    the mean probability and it works wherever logits are expected."""

    def __init__(self, members: list[nn.Module], specs: list[ModelSpec], temperatures: list[float]):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.specs = specs
        self.temperatures = [float(t) for t in temperatures]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = None
        for member, spec, temperature in zip(self.members, self.specs, self.temperatures, strict=True):
            p = torch.softmax(member(spec.prepare(x)).float() / temperature, 1)
            total = p if total is None else total + p
        # The floor keeps a probability that underflowed to 0 from becoming -inf (and NaN after calibration).
        return torch.log((total / len(self.members)).clamp_min(1e-30))


@register_model(
    "ensemble",
    "trained digit models averaged as one (made by `digitnet ensemble --models A,B --out DIR`, not trained)",
    normalization="unit",
    composite=True,
    source="digitnet: the mean of the members' calibrated probabilities, as `digitnet ensemble` scores it",
)
def ensemble(members: list[dict] | None = None) -> nn.Module:
    """An ensemble of ``members``, each ``{"arch", "arch_kwargs", "temperature", "contract"}`` (the contract as
    ``ModelSpec.contract()`` gives it)."""
    if not members:
        raise DigitnetError("an ensemble is made from trained models, not trained itself: "
                            "digitnet ensemble --models A,B --out DIR")
    specs = []
    for k, member in enumerate(members):
        try:
            arch, contract = member["arch"], member["contract"]
            size, norm, channels_last = contract["input_size"], contract["normalization"], contract["channels_last"]
            mean, std = norm["mean"], norm["std"]
        except (KeyError, TypeError):
            raise DigitnetError(f"ensemble member {k} needs an arch and an input contract (input_size, "
                                "normalization with mean and std, channels_last)") from None
        if get_spec(arch).composite:
            raise DigitnetError("an ensemble's members are single models, not ensembles")
        problem = (input_size_problem(size) or normalization_problem(mean, std)
                   or temperature_problem(member.get("temperature", 1.0)))
        if problem:  # the checks load_model makes of a single model's contract and temperature
            raise DigitnetError(f"ensemble member {k}: {problem}")
        specs.append(get_spec(arch).with_contract(size, mean, std, bool(channels_last)))
    return Ensemble([create_model(m["arch"], **m.get("arch_kwargs", {})) for m in members], specs,
                    [m.get("temperature", 1.0) for m in members])
