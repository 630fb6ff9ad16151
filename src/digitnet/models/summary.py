"""The zoo at a glance (``describe_models``) and a Keras-style model summary: leaf layers with output shapes and
parameter counts (``summarize``)."""

from __future__ import annotations

from fractions import Fraction

import torch

from digitnet.models.registry import count_parameters, create_model, get_spec, list_models

LINE_EXAMPLE_WIDTH = 128  # a line recognizer's summary is measured on lines this wide, and twice as wide


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
    """Run a zero input through ``arch`` and record every leaf module's output shape and parameters.

    A digit classifier takes one (1, 1, S, S) image. A line recognizer (task ``lines``) takes lines of any width
    W: it is run on two widths, and a size that follows the width is written in terms of it (``"W/4"``), as its
    input is (``[None, 1, 32, "W"]``). A module that answers a tuple (an LSTM) is shown by its first output.
    """
    model = create_model(arch, **kwargs).eval()
    spec = model.spec
    size = spec.input_size
    if spec.task == "lines":
        width = LINE_EXAMPLE_WIDTH
        runs = [_run(model, (1, 1, size, w)) for w in (width, 2 * width)]
        layers = [{**one, "output_shape": [_width_dim(a, b, width) for a, b in zip(one["output_shape"],
                                                                                   two["output_shape"], strict=True)]}
                  for one, two in zip(*runs, strict=True)]
        input_shape: list = [None, 1, size, "W"]
    else:
        layers = _run(model, (1, 1, size, size))
        input_shape = [None, 1, size, size]
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"arch": arch, "task": spec.task, "input_shape": input_shape, "input_contract": spec.contract(),
            "layers": layers, "total_params": total, "trainable_params": trainable}


def _run(model: torch.nn.Module, shape: tuple[int, ...]) -> list[dict]:
    """Each leaf module's output shape (batch axis None) and parameters, in the order the forward pass runs them."""
    layers: list[dict] = []
    hooks = []
    for name, module in model.named_modules():
        if len(list(module.children())) == 0:
            def hook(mod, _inp, out, name=name):
                while isinstance(out, (tuple, list)):  # an LSTM: (output, (h, c))
                    out = out[0]
                layers.append({"name": f"{name} ({type(mod).__name__})", "output_shape": [None, *out.shape[1:]],
                               "params": sum(p.numel() for p in mod.parameters(recurse=False))})
            hooks.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(torch.zeros(shape))
    finally:
        for h in hooks:
            h.remove()
    return layers


def _width_dim(at_width: int | None, at_double: int | None, width: int) -> int | str | None:
    """A dimension measured at input width ``width`` and ``2 * width``: a number if it stays, else in terms of W."""
    if at_width == at_double:
        return at_width
    ratio = Fraction(at_width, width)
    if at_double != 2 * at_width or ratio == 0:
        return "?"  # not proportional to the width: no zoo model has one
    scale = "" if ratio.numerator == 1 else str(ratio.numerator)
    return f"{scale}W" if ratio.denominator == 1 else f"{scale}W/{ratio.denominator}"
