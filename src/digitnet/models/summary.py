"""The zoo at a glance (``describe_models``) and a Keras-style model summary: leaf layers with output shapes and
parameter counts (``summarize``)."""

from __future__ import annotations

import torch

from digitnet.models.registry import count_parameters, create_model, get_spec, list_models


def describe_models() -> list[dict]:
    """One row per registered architecture: name, parameters, input size, normalization, description."""
    rows = []
    for name in list_models():
        spec = get_spec(name)
        parameters = None if spec.composite else count_parameters(create_model(name))  # an ensemble: its members'
        rows.append({"name": name, "parameters": parameters, "input_size": spec.input_size,
                     "normalization": spec.normalization, "description": spec.description, "task": spec.task})
    return rows


def summarize(arch: str, **kwargs) -> dict:
    """Run one zero image through ``arch`` and record every leaf module's output shape and parameters."""
    model = create_model(arch, **kwargs).eval()
    size = model.spec.input_size
    layers: list[dict] = []
    hooks = []
    for name, module in model.named_modules():
        if len(list(module.children())) == 0:
            def hook(mod, _inp, out, name=name):
                layers.append({"name": f"{name} ({type(mod).__name__})", "output_shape": [None, *out.shape[1:]],
                               "params": sum(p.numel() for p in mod.parameters(recurse=False))})
            hooks.append(module.register_forward_hook(hook))
    with torch.no_grad():
        model(torch.zeros(1, 1, size, size))
    for h in hooks:
        h.remove()
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"arch": arch, "input_shape": [None, 1, size, size], "layers": layers, "total_params": total,
            "trainable_params": trainable}
