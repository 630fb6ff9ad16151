"""Export a saved model to ONNX or TorchScript as a self-contained digit classifier.

The exported graph includes the preprocessing, so a consumer needs no digitnet code and no knowledge of
the training normalization. It takes MNIST-like images, white ink on black, shape (N, 1, 28, 28) with a
dynamic batch axis N:

* ``input_type="uint8"`` (the default): uint8 pixels 0..255, exactly as the MNIST files and
  ``np.asarray(PIL.Image.open(...).convert("L"))`` give them;
* ``input_type="float"``: float32 pixels 0..1.

Inside, the wrapper prepares the images with the model's own ``spec.prepare`` (the one preparation every
digitnet caller uses, with the input contract saved in ``model.json``): it scales to 0..1, applies the
normalization ``(x - mean) / std`` and pads to the model's input size (LeNet-5 takes 32×32), then runs the
network. It has two outputs:
``logits`` (N, 10), the network's raw scores, and ``probabilities`` (N, 10), the softmax of the logits
divided by the model's calibration temperature (what ``Recognizer.classify`` returns).

A line recognizer (``crnn-digits``) exports as a line reader instead: input ``line``, float32 (N, 1, 32, W) in
0..1, ink bright (the line levelled and scaled as ``digitnet read`` makes it), with dynamic N and W; outputs
``logits`` and ``probabilities`` (N, W/4, 15): per column of 4 pixels, the CTC blank (index 0) and the alphabet
stored in the metadata (``digitnet.alphabet``). Greedy decoding: argmax per column, merge repeats, drop blanks;
a character's place is its columns' centre less ``digitnet.ctc_offset`` (pixels, measured when it was trained).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from digitnet.runtime import (
    INPUT_NAME,
    LINE_INPUT_NAME,
    ONNX_OPSET,
    exportable,
    onnx_bytes,
    onnx_graph,
)
from digitnet.saved_model import LoadedModel, check_new_output_file, load_model
from digitnet.utils import DigitnetError

FORMATS = ("onnx", "torchscript")


def _opset_range() -> tuple[int, int]:
    """The ONNX opsets the installed torch's TorchScript-based exporter (``dynamo=False``, what
    :func:`digitnet.runtime.onnx_bytes` uses) writes: above its maximum it only warns that it is unsupported."""
    try:
        from torch.onnx import _constants

        return _constants.ONNX_MIN_OPSET, _constants.ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET
    except (ImportError, AttributeError):  # a torch that moved them: those of torch 2.5 to 2.13
        return 7, 20


OPSETS = _opset_range()


def line_export_metadata(loaded: LoadedModel) -> dict[str, str]:
    """Key/value description of an exported line recognizer."""
    from digitnet.models.crnn import ALPHABET, REDUCTION
    from digitnet.version import __version__

    meta = loaded.metadata
    return {
        "digitnet.input": f"{LINE_INPUT_NAME}: float32 (N, 1, {loaded.spec.input_size}, W) in 0..1, ink bright on "
                          "black; W a multiple of 4; N and W are dynamic",
        "digitnet.outputs": f"logits, probabilities: float32 (N, W/{REDUCTION}, {len(ALPHABET) + 1}) per column; "
                            "index 0 = CTC blank, index k = alphabet[k-1]",
        "digitnet.alphabet": ALPHABET,
        # input pixels by which a character's columns sit right of its ink (negative: it fires early): take it off
        # the columns' centres before parting a line between characters
        "digitnet.ctc_offset": str(float(meta.get("ctc_offset", 0.0))),
        "digitnet.arch": loaded.arch,
        "digitnet.test_accuracy": str(meta.get("metrics", {}).get("test_accuracy", "")),
        "digitnet.version": __version__,
        "digitnet.weights_sha256": str(meta.get("weights_sha256", "")),
        "digitnet.model_json": json.dumps(meta, sort_keys=True),
    }


def export_metadata(loaded: LoadedModel, input_type: str) -> dict[str, str]:
    """Key/value description written into the exported file (ONNX ``metadata_props``)."""
    from digitnet.version import __version__

    mean, std = loaded.spec.mean_std
    meta = loaded.metadata
    dtype = "uint8 0..255" if input_type == "uint8" else "float32 0..1"
    preprocessing = f"inside the graph: x/255 (uint8 only), (x - {mean}) / {std}" + (
        f", zero-pad to {loaded.spec.input_size}x{loaded.spec.input_size}" if loaded.spec.input_size != 28 else "")
    scores = "raw scores"
    if loaded.spec.composite:  # an ensemble: each member normalizes (and pads) the 0..1 image its own way
        preprocessing = "inside the graph: x/255 (uint8 only), then each member's own normalization and padding " \
                        "(arch_kwargs.members in digitnet.model_json)"
        scores = "log of the members' mean calibrated probability"
    return {
        "digitnet.input": f"{INPUT_NAME}: {dtype}, shape (N, 1, 28, 28), white ink on black background "
                          "(MNIST-like: digit scaled to fit 20x20 and centred by mass in 28x28); N is dynamic",
        "digitnet.input_type": input_type,
        "digitnet.outputs": f"logits: float32 (N, 10) {scores}; probabilities: float32 (N, 10) "
                            "softmax(logits / temperature), calibrated; index = digit",
        "digitnet.preprocessing": preprocessing,
        "digitnet.labels": ",".join(str(d) for d in range(10)),
        "digitnet.arch": loaded.arch,
        "digitnet.normalization": json.dumps({"name": loaded.spec.normalization, "mean": mean, "std": std}),
        "digitnet.temperature": repr(loaded.temperature),
        "digitnet.test_accuracy": str(meta.get("metrics", {}).get("test_accuracy", "")),
        "digitnet.version": __version__,
        "digitnet.weights_sha256": str(meta.get("weights_sha256", "")),
        "digitnet.model_json": json.dumps(meta, sort_keys=True),
    }


def export_model(model_dir: str | os.PathLike | None, out: str | os.PathLike, fmt: str = "onnx",
                 input_type: str = "uint8", opset: int = ONNX_OPSET, overwrite: bool = False) -> Path:
    """Export the model in ``model_dir`` (default: the bundled model) to ``out``; returns the path written.

    The file appears whole or not at all: it is written next to ``out`` under a temporary name, then renamed.
    ``out`` must not be a folder, nor a file that exists unless ``overwrite``, nor in a model folder (see
    :func:`digitnet.saved_model.check_new_output_file`).
    """
    check_export_request(fmt, out, opset, overwrite)
    return export_loaded(load_model(model_dir), out, fmt, input_type, opset, overwrite)


def check_export_request(fmt: str, out: str | os.PathLike, opset: int = ONNX_OPSET, overwrite: bool = False) -> Path:
    """The file an export in ``fmt`` would write (checked before a model is loaded for it)."""
    if fmt not in FORMATS:
        raise DigitnetError(f"format {fmt!r}: choose onnx or torchscript")
    low, high = OPSETS
    if fmt == "onnx" and not low <= opset <= high:
        raise DigitnetError(f"--opset {opset}: the installed torch exports ONNX opsets {low} to {high} "
                            f"(default {ONNX_OPSET})")
    return check_new_output_file(out, overwrite)


def export_loaded(loaded: LoadedModel, out: str | os.PathLike, fmt: str = "onnx", input_type: str = "uint8",
                  opset: int = ONNX_OPSET, overwrite: bool = False) -> Path:
    """:func:`export_model` of a model already loaded (traced from a contiguous copy: the model stays as it is)."""
    check_export_request(fmt, out, opset, overwrite)
    out = check_new_output_file(out, overwrite, loaded.path)
    wrapper, example, input_name, axes = onnx_graph(exportable(loaded), input_type)
    metadata = line_export_metadata(loaded) if loaded.spec.task == "lines" else export_metadata(loaded, input_type)
    fd, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")  # unique: two exports at once
    os.close(fd)
    tmp = Path(name)
    try:
        if fmt == "onnx":
            _export_onnx(wrapper, example, tmp, metadata, opset, input_name, axes)
        else:
            _export_torchscript(wrapper, example, tmp, metadata)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; an exported model is for others to read
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def signature(loaded: LoadedModel, input_type: str = "uint8") -> str:
    """What an exported file of this model takes and gives, in a line (for the one who exported it)."""
    meta = line_export_metadata(loaded) if loaded.spec.task == "lines" else export_metadata(loaded, input_type)
    return f"input {meta['digitnet.input']}; outputs {meta['digitnet.outputs']}"


def _export_onnx(wrapper: nn.Module, example: torch.Tensor, path: Path, metadata: dict[str, str],
                 opset: int, input_name: str, dynamic_axes: dict) -> None:
    try:
        import onnx
    except ImportError:
        raise DigitnetError("ONNX export needs the onnx package: pip install 'digitnet[export]'") from None
    try:
        with _native_output_kept_on_success():
            blob = onnx_bytes(wrapper, example, input_name, dynamic_axes, opset)
    except torch.onnx.OnnxExporterError as exc:  # an operator the opset lacks (adaptive pooling below opset 8)
        raise DigitnetError(f"--opset {opset}: {str(exc).splitlines()[0]} (the default is {ONNX_OPSET})") from None
    proto = onnx.load_from_string(blob)
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "digitnet"
    kind = "line recognizer" if "digitnet.alphabet" in metadata else "digit classifier"
    proto.doc_string = f"digitnet {metadata['digitnet.arch']} {kind}. {metadata['digitnet.input']}. " \
                       f"{metadata['digitnet.outputs']}."
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def _export_torchscript(wrapper: nn.Module, example: torch.Tensor, path: Path, metadata: dict[str, str]) -> None:
    with warnings.catch_warnings(), torch.no_grad():
        # torch.jit is deprecated in favour of torch.export, but TorchScript is what C++/mobile runtimes load.
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(wrapper, (example,), check_trace=False)
        # TorchScript has no metadata table; ship the same description as an extra file inside the archive.
        torch.jit.save(traced, str(path), _extra_files={"digitnet.json": json.dumps(metadata)})


@contextlib.contextmanager
def _native_output_kept_on_success() -> Iterator[None]:
    """Hold back what native code writes to stdout and stderr (file descriptors 1 and 2) meanwhile, and pass it on
    unless an exception ends the block: the ONNX exporter prints its whole graph before it fails, noise above the
    one-line error."""
    with contextlib.ExitStack() as stack:
        for fd, stream in ((1, sys.stdout), (2, sys.stderr)):
            stack.enter_context(_held_on_failure(fd, stream))
        yield


@contextlib.contextmanager
def _held_on_failure(fd: int, stream) -> Iterator[None]:
    with contextlib.suppress(Exception):
        stream.flush()
    try:
        saved = os.dup(fd)
    except OSError:  # no such descriptor: nothing to hold back
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), fd)
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            with contextlib.suppress(Exception):
                stream.flush()
            os.dup2(saved, fd)
            os.close(saved)
            if not failed:
                held.seek(0)
                text = held.read()
                while text:
                    text = text[os.write(fd, text):]
