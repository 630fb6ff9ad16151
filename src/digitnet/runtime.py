"""Where a loaded model's forward passes run: ONNX Runtime where it is installed, else PyTorch.

The recognizer's models are small and see a few images at a time, where PyTorch's cost per operator is most of
the time. On one thread of a 2-core CPU, ONNX Runtime classified five digits in 0.8 ms against PyTorch's 1.5 ms
and read a 160-px line in 0.6 ms against 2.3 ms: about a sixth of reading a photo of a number.

The graph is the one ``digitnet export`` writes (:func:`onnx_graph`: the model with its input preparation). It
is exported once per model, to a cache named by the weights' SHA-256 and the versions that made it (about a
second), and later processes only open the file (~10 ms). PyTorch runs the model where ONNX Runtime is not
installed (the ``export`` extra), on a GPU, for a model without a weights checksum (built in this process), where
the cache cannot be written, or where ``DIGITNET_ENGINE=torch`` says so.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from digitnet.saved_model import LoadedModel
from digitnet.utils import DigitnetError, atomic_write_bytes
from digitnet.version import __version__

ENGINES = ("auto", "torch", "onnxruntime")
INPUT_TYPES = ("uint8", "float")
INPUT_NAME = "image"  # a digit classifier's input
LINE_INPUT_NAME = "line"  # a line recognizer's input
OUTPUT_NAMES = ("logits", "probabilities")
ONNX_OPSET = 17


class ExportWrapper(nn.Module):
    """Model plus its preprocessing and calibration: images in, (logits, probabilities) out."""

    def __init__(self, loaded: LoadedModel, input_type: str = "uint8"):
        super().__init__()
        if input_type not in INPUT_TYPES:
            raise DigitnetError(f"input type {input_type!r}: choose uint8 or float")
        self.model = loaded.model.eval()
        self.spec = loaded.spec
        self.input_type = input_type
        self.register_buffer("inv_temperature", torch.tensor(1.0 / loaded.temperature, dtype=torch.float32))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # uint8 in, or float 0..1: spec.prepare tells them apart by dtype, as it does for every caller.
        x = self.spec.prepare(image if self.input_type == "uint8" else image.to(torch.float32))
        logits = self.model(x)
        return logits, torch.softmax(logits * self.inv_temperature, dim=1)


class LineExportWrapper(nn.Module):
    """A line recognizer: line images in, per-column (logits, probabilities) out."""

    def __init__(self, loaded: LoadedModel):
        super().__init__()
        self.model = loaded.model.eval()

    def forward(self, line: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model(line)
        return logits, torch.softmax(logits, dim=2)


def onnx_graph(loaded: LoadedModel, input_type: str = "uint8") -> tuple[nn.Module, torch.Tensor, str, dict]:
    """What is exported for ``loaded``: the wrapper, an example input, the input's name and the dynamic axes.

    A digit classifier takes MNIST-like images (N, 1, 28, 28) of ``input_type``; a line recognizer float lines
    (N, 1, height, W). Both give (logits, probabilities).
    """
    if loaded.spec.task == "lines":
        axes = {LINE_INPUT_NAME: {0: "N", 3: "W"}, OUTPUT_NAMES[0]: {0: "N", 1: "T"}, OUTPUT_NAMES[1]: {0: "N", 1: "T"}}
        return LineExportWrapper(loaded).eval(), torch.zeros(2, 1, loaded.spec.input_size, 64), LINE_INPUT_NAME, axes
    example = torch.zeros(2, 1, 28, 28, dtype=torch.uint8 if input_type == "uint8" else torch.float32)
    axes = {INPUT_NAME: {0: "N"}, OUTPUT_NAMES[0]: {0: "N"}, OUTPUT_NAMES[1]: {0: "N"}}
    return ExportWrapper(loaded, input_type).eval(), example, INPUT_NAME, axes


def onnx_bytes(wrapper: nn.Module, example: torch.Tensor, input_name: str, dynamic_axes: dict,
               opset: int = ONNX_OPSET) -> bytes:
    """``wrapper`` traced on ``example`` into an ONNX model (serialized, without metadata)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript-based exporter needs no onnxscript; its deprecation notice is not for users.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper, (example,), buffer, dynamo=False, opset_version=opset,
            input_names=[input_name], output_names=list(OUTPUT_NAMES), dynamic_axes=dynamic_axes,
        )
    return buffer.getvalue()


class OnnxModel:
    """A loaded model's logits through ONNX Runtime, one thread: numpy input (the graph's), numpy logits out."""

    def __init__(self, path: Path):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # One thread: folders are read by one process per core, and a few small images gain nothing from more.
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self.path = path
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run([OUTPUT_NAMES[0]], {self.input_name: x})[0]


def cache_dir() -> Path:
    """Where exported graphs are kept: ``DIGITNET_CACHE``, else the user's cache folder."""
    if env := os.environ.get("DIGITNET_CACHE"):
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("digitnet")) / "onnx"


def engine_choice() -> str:
    """The engine ``DIGITNET_ENGINE`` asks for (``auto``: ONNX Runtime where it can run the model)."""
    engine = os.environ.get("DIGITNET_ENGINE", "auto").strip().lower() or "auto"
    return engine if engine in ENGINES else "auto"


def onnx_model(loaded: LoadedModel, engine: str | None = None) -> OnnxModel | None:
    """``loaded`` in ONNX Runtime (exported to the cache the first time), or None where PyTorch runs it.

    ``engine``: ``auto`` (the default, from ``DIGITNET_ENGINE``), ``torch`` or ``onnxruntime``; either way a model
    ONNX Runtime cannot run (see the module docstring) runs in PyTorch. Never raises for a cache it cannot use.
    """
    engine = engine or engine_choice()
    weights = loaded.metadata.get("weights_sha256")
    if engine == "torch" or not weights or next(loaded.model.parameters()).device.type != "cpu":
        return None
    try:
        import onnxruntime
    except ImportError:
        return None
    # Everything that changes the graph names it: the architecture and the weights, how the input is prepared, the
    # calibration (in the graph's probabilities), and the versions of the code that draws the graph (digitnet's),
    # of the exporter and of the runtime that reads it.
    key = "|".join([loaded.arch, json.dumps(loaded.metadata.get("arch_kwargs", {}), sort_keys=True), weights,
                    loaded.spec.task, repr(loaded.spec.contract()), repr(loaded.temperature), __version__,
                    torch.__version__, onnxruntime.__version__, str(ONNX_OPSET)])
    path = cache_dir() / f"{loaded.arch}-{hashlib.sha256(key.encode()).hexdigest()[:24]}.onnx"
    try:
        if path.is_file():
            try:
                return OnnxModel(path)
            except Exception:  # a file cut short (a full disk) or damaged: export it again
                pass
        _export_to(loaded, path)
        return OnnxModel(path)
    except Exception as exc:  # a read-only cache, a model the exporter cannot trace: PyTorch reads as well
        warnings.warn(f"{loaded.path or loaded.arch}: running in PyTorch, not ONNX Runtime ({exc})", stacklevel=2)
        return None


def _export_to(loaded: LoadedModel, path: Path) -> None:
    """Export ``loaded`` to ``path``, whole or not at all (two processes may export the same model at once)."""
    # A copy, contiguous (not channels-last: tracing records plain NCHW ops), so the model in use stays as it is.
    copied = LoadedModel(copy.deepcopy(loaded.model).to(memory_format=torch.contiguous_format), loaded.spec,
                         loaded.metadata, loaded.path, loaded.temperature)
    wrapper, example, input_name, axes = onnx_graph(copied)
    atomic_write_bytes(path, onnx_bytes(wrapper, example, input_name, axes))
