"""A trained model on disk: ``model.safetensors`` (weights only, no code) + ``model.json`` (metadata).

The metadata carries everything needed to use the weights: architecture and its arguments, the input
contract (``input_size``, ``normalization`` with its mean/std, ``channels_last``), calibration temperature,
metrics and the checksum of the data it was trained on. Loading checks the format version, the weights'
SHA-256, and every tensor name and shape against a freshly built model, so a truncated, corrupted or
mismatched file fails with one clear line instead of a traceback.

The saved input contract is what the weights were trained with, so it wins over today's registry: a
model saved before the registry changed is still fed as it was trained, and :class:`ModelContractWarning`
says so in one line (not an error: the model is usable, and exactly as it was).
"""

from __future__ import annotations

import json
import os
import platform
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from digitnet.models.registry import (
    NORMALIZATIONS,
    ModelSpec,
    create_model,
    get_spec,
    input_size_problem,
    normalization_problem,
    temperature_problem,
)
from digitnet.utils import DigitnetError, atomic_write_bytes, atomic_write_json, check_output_file, sha256_file

FORMAT = "digitnet-model"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
METADATA_FILE = "model.json"
# Files larger than this are not digit models; refuse before reading them into memory.
MAX_WEIGHTS_BYTES = 512 * 1024 * 1024


class ModelLoadError(DigitnetError):
    """A saved model is missing, corrupt, or does not match its declared architecture."""


class ModelContractWarning(UserWarning):
    """A saved model's input contract differs from today's registry; the saved one is used."""


@dataclass
class LoadedModel:
    """A model ready for inference, with the metadata that says how to feed it."""

    model: nn.Module
    spec: ModelSpec
    metadata: dict
    path: Path | None = None
    temperature: float = field(default=1.0)

    @property
    def arch(self) -> str:
        return self.spec.name


def environment_info() -> dict:
    import numpy

    from digitnet.version import __version__

    return {
        "digitnet": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
        "python": platform.python_version(), "platform": platform.platform(),
        "cpu_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def canonical_safetensors(blob: bytes) -> bytes:
    """The same safetensors file with its header's metadata keys sorted.

    safetensors writes the metadata from a hash map, so two saves of the same weights could order the keys
    differently from one process to the next; sorted, the same model is the same bytes (and the same SHA-256),
    which is what lets ``make default-model`` rebuild the shipped file exactly.
    """
    size = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + size])
    if "__metadata__" not in header:
        return blob
    header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":")).encode()
    if len(text) > size:  # never happens for the compact header safetensors writes; keep the file as it was
        return blob
    return blob[:8] + text.ljust(size) + blob[8 + size:]


def save_model(model: nn.Module, directory: str | os.PathLike, metadata: dict | None = None) -> Path:
    """Write ``model.safetensors`` and ``model.json`` into ``directory`` (atomically, weights first)."""
    directory = Path(directory)
    spec: ModelSpec = model.spec  # type: ignore[attr-defined]
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    blob = canonical_safetensors(st_save(state, metadata={"format": FORMAT, "arch": spec.name}))
    atomic_write_bytes(directory / WEIGHTS_FILE, blob)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "arch": spec.name,
        "arch_kwargs": getattr(model, "arch_kwargs", {}),
        **spec.contract(),
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "temperature": 1.0,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "environment": environment_info(),
        **(metadata or {}),
        "weights_sha256": sha256_file(directory / WEIGHTS_FILE),
    }
    atomic_write_json(directory / METADATA_FILE, meta)
    return directory


def read_metadata(directory: str | os.PathLike) -> dict:
    directory = Path(directory)
    path = directory / METADATA_FILE
    if not path.is_file():
        raise ModelLoadError(f"{directory}: not a digitnet model (no {METADATA_FILE})")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{path}: corrupt metadata ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelLoadError(f"{path}: not digitnet model metadata")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelLoadError(f"{path}: format version {version!r} is newer than this digitnet supports "
                             f"({FORMAT_VERSION}); upgrade digitnet")
    return meta


def load_model(directory: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a saved model directory; None or ``"default"``: the bundled default model, ``"best"``: the bundled
    most accurate on held-out clean digits (a folder of that name in the working directory wins)."""
    from digitnet.assets import BUNDLED_MODELS, bundled_model_dir

    if directory is None:
        directory = bundled_model_dir("default")
    elif os.fspath(directory) in BUNDLED_MODELS and not Path(directory).exists():
        directory = bundled_model_dir(os.fspath(directory))
    directory = Path(directory)
    if directory.is_file() and directory.name in (WEIGHTS_FILE, METADATA_FILE):
        directory = directory.parent
    if not directory.exists():
        raise ModelLoadError(f"{directory}: no such model directory")
    meta = read_metadata(directory)
    temperature = saved_temperature(meta, directory)
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelLoadError(f"{directory}: missing {WEIGHTS_FILE}")
    size = weights.stat().st_size
    if size > MAX_WEIGHTS_BYTES:
        raise ModelLoadError(f"{weights}: {size} bytes is larger than any digit model ({MAX_WEIGHTS_BYTES} max)")
    blob = weights.read_bytes()
    expected = meta.get("weights_sha256")
    if expected:
        import hashlib

        if hashlib.sha256(blob).hexdigest() != expected:
            raise ModelLoadError(f"{weights}: SHA-256 does not match {METADATA_FILE} (file corrupt or replaced)")
    try:
        state = st_load(blob)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(f"{weights}: corrupt or truncated safetensors file ({exc})") from None

    arch = meta.get("arch")
    try:
        registry_spec = get_spec(arch)
    except DigitnetError as exc:
        raise ModelLoadError(f"{directory}: {exc}") from None
    spec = saved_spec(meta, registry_spec, directory)
    if registry_spec.composite:  # an ensemble: each member's temperature divides its logits as a model's does
        for k, member in enumerate(_ensemble_members(meta)):
            if isinstance(member, dict):  # an entry that is not, the ensemble refuses itself
                saved_temperature(member, directory, member=k)
    try:
        model = create_model(arch, **meta.get("arch_kwargs", {}))
    except TypeError as exc:
        raise ModelLoadError(f"{directory}: arch_kwargs in {METADATA_FILE} do not fit {arch!r} ({exc})") from None
    except DigitnetError as exc:  # an ensemble's members described wrongly
        raise ModelLoadError(f"{directory}: {METADATA_FILE}: {exc}") from None
    model.spec = spec  # type: ignore[attr-defined]  # re-saving (fine-tuning) keeps the contract it was trained with
    _check_state(model, state, weights)
    model.load_state_dict(state)
    model.to(device).eval()
    if spec.channels_last and torch.device(device).type == "cpu":
        model.to(memory_format=torch.channels_last)
    return LoadedModel(model=model, spec=spec, metadata=meta, path=directory,
                       temperature=temperature)


def saved_temperature(meta: dict, directory: str | os.PathLike, member: int | None = None) -> float:
    """The calibration temperature in ``meta`` (1 where absent): a positive finite number, the logits' divisor.

    ``meta`` is a model.json, or with ``member`` the entry of that ensemble member in its ``arch_kwargs``."""
    temperature = meta.get("temperature", 1.0)
    problem = temperature_problem(temperature)
    if problem:
        where = "" if member is None else f"ensemble member {member}: "
        raise ModelLoadError(f"{Path(directory) / METADATA_FILE}: {where}{problem}")
    return float(temperature)


def _ensemble_members(meta: dict) -> list:
    """The member entries of an ensemble's model.json, in order ([] where there is no list of them)."""
    kwargs = meta.get("arch_kwargs")
    members = kwargs.get("members") if isinstance(kwargs, dict) else None
    return members if isinstance(members, list) else []


def saved_spec(meta: dict, registry_spec: ModelSpec, directory: str | os.PathLike) -> ModelSpec:
    """The spec to feed a saved model with: the input contract saved in ``meta``, the rest from the registry.

    A field that ``meta`` lacks (files older than the field) comes from the registry. Where the saved
    input size or normalization differs from the registry's, a :class:`ModelContractWarning` names the
    folder and the fields; the memory layout changes speed only, so its difference is used silently.
    """
    path = Path(directory) / METADATA_FILE
    input_size = meta.get("input_size", registry_spec.input_size)
    problem = input_size_problem(input_size)
    if problem:
        raise ModelLoadError(f"{path}: {problem}")
    norm = meta.get("normalization")
    if norm is None:
        mean, std = registry_spec.mean_std
    elif isinstance(norm, dict):
        name = norm.get("name")  # a label: the numbers are what the weights were trained with
        if "mean" in norm or "std" in norm:
            mean, std = norm.get("mean"), norm.get("std")
        elif isinstance(name, str) and name in NORMALIZATIONS:
            mean, std = NORMALIZATIONS[name]
        else:
            raise ModelLoadError(f"{path}: normalization {name!r} is unknown and gives no mean and std")
        problem = normalization_problem(mean, std)
        if problem:
            raise ModelLoadError(f"{path}: {problem}")
    else:
        raise ModelLoadError(f"{path}: normalization must be an object with name, mean and std, got {norm!r}")
    channels_last = meta.get("channels_last", registry_spec.channels_last)
    if not isinstance(channels_last, bool):
        raise ModelLoadError(f"{path}: channels_last must be true or false, got {channels_last!r}")
    spec = registry_spec.with_contract(int(input_size), float(mean), float(std), channels_last)
    saved, registry = [], []
    if spec.input_size != registry_spec.input_size:
        saved.append(f"input_size {spec.input_size}")
        registry.append(f"input_size {registry_spec.input_size}")
    if spec.mean_std != registry_spec.mean_std:
        saved.append(f"normalization {_describe(spec)}")
        registry.append(f"normalization {_describe(registry_spec)}")
    if saved:
        # Attributed to model.json at line 0 (no source line to print), so the warning shows as one line.
        warnings.warn_explicit(
            f"{directory}: model.json says {' and '.join(saved)}, today's registry for {registry_spec.name!r} says "
            f"{' and '.join(registry)}; using the saved contract, which the weights were trained with",
            ModelContractWarning, str(path), 0)
    return spec


def _describe(spec: ModelSpec) -> str:
    mean, std = spec.mean_std
    return f"{spec.normalization} (mean {mean:g}, std {std:g})"


def _check_state(model: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}{'…' if len(missing) > 3 else ''}")
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:3])}{'…' if len(unexpected) > 3 else ''}")
        raise ModelLoadError(f"{path}: weights do not fit architecture {model.spec.name!r}: {'; '.join(parts)}")
    for name, tensor in expected.items():
        if tuple(state[name].shape) != tuple(tensor.shape):
            raise ModelLoadError(f"{path}: tensor {name} has shape {tuple(state[name].shape)}, "
                                 f"architecture {model.spec.name!r} needs {tuple(tensor.shape)}")


def check_new_output_file(path: str | os.PathLike, overwrite: bool = False, model_dir: str | os.PathLike | None = None,
                          option: str = "--out") -> Path:
    """:func:`digitnet.utils.check_output_file`, and: a file that exists is replaced only with ``overwrite``
    (``--overwrite``), and never, even so, a model's own ``model.json`` or ``model.safetensors``; nothing is
    written inside ``model_dir``, the model being read. (An export beside a run's model, ``runs/x/digits.onnx``,
    is fine, and replaced with ``--overwrite``.)"""
    path = check_output_file(path, option)
    resolved = path.resolve()  # a link or `..` leading into a model folder leads there
    if model_dir is not None and resolved.is_relative_to(Path(model_dir).resolve()):
        raise DigitnetError(f"{option} {path} is inside {model_dir}, the model being read; write it elsewhere")
    exists = path.exists() or path.is_symlink()
    for target in dict.fromkeys((path, resolved)):
        if target.name in (METADATA_FILE, WEIGHTS_FILE) and (target.parent / METADATA_FILE).is_file():
            raise DigitnetError(f"{option} {path} is a file of the model in {target.parent}; write it elsewhere")
    if exists and not overwrite:
        raise DigitnetError(f"{option} {path} already exists: choose another {option}, or pass --overwrite to "
                            "replace it")
    return path
