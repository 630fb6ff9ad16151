"""Resumable training checkpoints (``last.pt``/``best.pt`` in the run directory).

``last.pt`` holds what :meth:`digitnet.train.callbacks.Fit.checkpoint` gathers: weights, optimizer, schedule,
random states, history and every callback's state; the :class:`~digitnet.train.callbacks.Checkpoints` callback
writes it (atomically) after each epoch.

They hold only tensors, numbers, strings and dicts, so they load with ``torch.load(weights_only=True)``:
a checkpoint cannot run code when opened.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import torch

from digitnet.utils import DigitnetError, atomic_write_bytes


class CheckpointError(DigitnetError):
    """A checkpoint is missing, truncated or not a digitnet checkpoint."""


def save_checkpoint(path: str | os.PathLike, state: dict) -> Path:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint to resume from")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, foreign pickle, ...
        raise CheckpointError(f"{path}: unreadable checkpoint ({str(exc).splitlines()[0][:200]})") from None
    if not isinstance(state, dict) or state.get("format") != "digitnet-checkpoint":
        raise CheckpointError(f"{path}: not a digitnet checkpoint")
    return state
