"""Where a loaded model's forward passes run: ONNX Runtime where it is installed, else PyTorch.

The recognizer's models are small and see a few images at a time, where PyTorch's cost per operator is most of
the time. On one thread of a 2-core CPU, ONNX Runtime classified five digits in 0.8 ms against PyTorch's 1.5 ms
and read a 160-px line in 0.6 ms against 2.3 ms: about a sixth of reading a photo of a number.

The graph is the one ``digitnet export`` writes (:func:`onnx_graph`: the model with its input preparation). It
is exported once per model into a cache (about a second), named by a hash of the weights as they are in memory, the
code that draws the graph and the versions that export and run it, and later processes only open the file (~10 ms)
after checking it gives PyTorch's logits on a fixed input. PyTorch runs the model where ONNX Runtime is not
installed (the ``export`` extra), on a GPU, for a model without a weights checksum (built in this process), where
the cache cannot be written, or where ``DIGITNET_ENGINE=torch`` says so. ONNX Runtime runs on one thread.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import numpy as np
import torch
from torch import nn

from digitnet.saved_model import LoadedModel
from digitnet.utils import DigitnetError, atomic_write_bytes

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


def exportable(loaded: LoadedModel) -> LoadedModel:
    """A copy of ``loaded`` to trace, contiguous (not channels-last: tracing records plain NCHW ops that every runtime
    runs); the model in use stays as it is."""
    return LoadedModel(copy.deepcopy(loaded.model).to(memory_format=torch.contiguous_format), loaded.spec,
                       loaded.metadata, loaded.path, loaded.temperature)


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


def check_engine(engine: str | None) -> str:
    """``engine`` checked: one of :data:`ENGINES`; None takes ``DIGITNET_ENGINE`` (a value that is none of them is
    warned about and read as ``auto``), else ``auto``."""
    if engine is None:
        value = os.environ.get("DIGITNET_ENGINE", "").strip().lower()
        if value and value not in ENGINES:
            _warn(f"DIGITNET_ENGINE={value!r} is none of {', '.join(ENGINES)}; using auto", "DIGITNET_ENGINE")
        return value if value in ENGINES else "auto"
    if engine not in ENGINES:
        raise DigitnetError(f"engine {engine!r}: choose one of {', '.join(ENGINES)}")
    return engine


def onnx_model(loaded: LoadedModel, engine: str | None = None) -> OnnxModel | None:
    """``loaded`` in ONNX Runtime (exported to the cache the first time), or None where PyTorch runs it.

    ``engine``: ``auto`` (the default, or ``DIGITNET_ENGINE``), ``torch`` or ``onnxruntime``; either way a model
    ONNX Runtime cannot run (see the module docstring) runs in PyTorch, with a warning where ``onnxruntime`` was
    asked for or where the cache failed. A graph opened from the cache is checked against PyTorch on a fixed input
    first (a file from elsewhere, or damaged, is exported again).
    """
    engine = check_engine(engine)
    where = str(loaded.path or loaded.arch)
    if engine == "torch":
        return None
    if not loaded.metadata.get("weights_sha256") or next(loaded.model.parameters()).device.type != "cpu":
        if engine == "onnxruntime":
            _warn("running in PyTorch: ONNX Runtime runs saved models on the CPU only", where)
        return None
    try:
        import onnxruntime
    except ImportError:
        if engine == "onnxruntime":
            _warn("running in PyTorch: onnxruntime is not installed (pip install 'digitnet[export]')", where)
        return None
    path = cache_dir() / f"{loaded.arch}-{_graph_key(loaded, onnxruntime.__version__)[:24]}.onnx"
    try:
        if path.is_file():
            opened = _checked(path, loaded)
            if opened is not None:
                return opened
        with _exporting(path):
            # Another process (a folder's workers start together) may have exported it while this one waited.
            opened = _checked(path, loaded) if path.is_file() else None
            if opened is None:
                _export_to(loaded, path)  # none yet, or a file cut short, damaged, or not this model's
                opened = _checked(path, loaded)
        if opened is None:
            raise RuntimeError("the exported graph does not give PyTorch's logits")
        return opened
    except Exception as exc:  # a read-only cache, a model the exporter cannot trace: PyTorch reads as well
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        _warn(f"running in PyTorch, not ONNX Runtime ({detail})", where)
        return None


def _graph_key(loaded: LoadedModel, runtime_version: str) -> str:
    """What names a model's exported graph: everything that changes it. The weights as they are in memory, the
    input preparation and calibration, the source of the code that draws the graph (the model zoo and this
    module), and the versions of the exporter and of the runtime that reads it."""
    digest = hashlib.sha256()
    for name, tensor in sorted(loaded.model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu").contiguous().numpy().tobytes())
    for source in sorted(Path(__file__).parent.joinpath("models").glob("*.py")) + [Path(__file__)]:
        digest.update(source.read_bytes())
    for part in (loaded.arch, json.dumps(loaded.metadata.get("arch_kwargs", {}), sort_keys=True),
                 repr(loaded.spec.contract()), repr(loaded.temperature), torch.__version__, runtime_version,
                 str(ONNX_OPSET)):
        digest.update(part.encode())
    return digest.hexdigest()


def _checked(path: Path, loaded: LoadedModel) -> OnnxModel | None:
    """The graph at ``path`` opened, if it gives PyTorch's logits for a fixed input; None if not, or unreadable."""
    try:
        model = OnnxModel(path)
        wrapper, example, _, _ = onnx_graph(loaded)
        rng = np.random.default_rng(0)
        if example.dtype == torch.uint8:
            x = rng.integers(0, 256, example.shape, dtype=np.uint8)
        else:
            x = rng.random(example.shape, dtype=np.float32)
        with torch.inference_mode():
            expected = wrapper(torch.from_numpy(x))[0].float().numpy()
        return model if np.allclose(model(x), expected, rtol=1e-3, atol=1e-3) else None
    except Exception:
        return None


_warned: set[str] = set()


def _warn(message: str, where: str) -> None:
    """One line, once per process: ``where: message``."""
    if message + where not in _warned:
        _warned.add(message + where)
        # Attributed to ``where`` at line 0 (no source line to print), so the warning shows as one line.
        warnings.warn_explicit(message, UserWarning, where, 0)


@contextmanager
def _exporting(path: Path) -> Iterator[None]:
    """Held while one process exports the graph at ``path``: the others wait for it (then open its file) instead of
    each exporting the same model at once (see :func:`_lock_beside`)."""
    lock = _lock_beside(path)
    try:
        yield
    finally:
        if lock is not None:
            lock.close()  # closing the file releases its lock


def _lock_beside(path: Path) -> IO | None:
    """An open file beside ``path`` holding an exclusive advisory lock (waited for), or None where there can be none
    and the export goes unguarded, as before: no ``fcntl`` (Windows), a lock file this process cannot open (another
    user's, in a shared cache), a file system without locks (some network mounts)."""
    try:
        import fcntl
    except ImportError:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        lock = os.fdopen(os.open(path.with_suffix(".lock"), os.O_RDONLY | os.O_CREAT, 0o644))  # read-only suffices
    except OSError:
        return None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
    except OSError:
        lock.close()
        return None
    return lock


def _export_to(loaded: LoadedModel, path: Path) -> None:
    """Export ``loaded`` to ``path``, whole or not at all (two processes may export the same model at once)."""
    wrapper, example, input_name, axes = onnx_graph(exportable(loaded))
    atomic_write_bytes(path, onnx_bytes(wrapper, example, input_name, axes))
