"""Small helpers shared across the package: atomic writes, hashing, devices, seeding."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import random
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any


class DigitnetError(Exception):
    """An error with a message fit to show a user as one line (no traceback)."""


def require_extra(module: str, extra: str, needed_by: str) -> ModuleType:
    """Import ``module`` from an optional extra, or fail with one line saying which extra to install.

    ``needed_by`` names what needs it (``digitnet serve``, ``--tensorboard``), as the user typed it.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise DigitnetError(f"{needed_by} needs the {module.split('.')[0]} package: "
                            f"pip install 'digitnet[{extra}]'") from None


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` so a reader sees either the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; saved models and data should be readable
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def check_output_file(path: str | os.PathLike, option: str = "--out") -> Path:
    """Fail now, in one line, if ``path`` cannot take an output file: it is a folder (a run or model folder is
    never replaced by a file), or its folder cannot be created or written (found before the work, not after)."""
    path = Path(path)
    if path.is_dir():
        raise DigitnetError(f"{option} {path} is a folder; give the file to write, e.g. {path / 'out'}{path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise DigitnetError(f"{option} {path}: cannot write into {path.parent} ({exc.strerror or exc})") from None
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch so a CPU run is repeatable."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def pick_device(name: str = "auto"):
    """Resolve ``auto`` to the best available device (cuda, then mps, then cpu); any other name is checked: cpu,
    cuda, cuda:N or mps, and there on this machine (else one line naming ``--device``)."""
    import torch

    if name != "auto":
        try:
            device = torch.device(name)
        except (RuntimeError, TypeError):
            device = None
        if device is None or device.type not in ("cpu", "cuda", "mps"):
            raise DigitnetError(f"--device {name}: not a device; choose auto, cpu, cuda, cuda:N or mps")
        if device.type == "cuda" and not torch.cuda.is_available():
            raise DigitnetError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
        if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
            count = torch.cuda.device_count()
            raise DigitnetError(f"--device {name}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
        if device.type == "mps" and not (getattr(torch.backends, "mps", None) is not None
                                         and torch.backends.mps.is_available()):
            raise DigitnetError(f"--device {name}: MPS (Apple GPUs) is not available on this machine; use --device cpu")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
