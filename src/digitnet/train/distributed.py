"""Data-parallel training across processes, GPUs and machines with PyTorch DDP.

Launch the ordinary ``digitnet train`` command under ``torchrun``; it sets ``RANK``/``WORLD_SIZE``/
``LOCAL_RANK`` and the rendezvous address, and :func:`setup` picks them up:

    torchrun --nproc-per-node 4 -m digitnet train --arch bestnet --batch-size 512

Every rank holds the whole data set in memory and draws the same per-epoch permutation (same seed);
rank ``r`` trains on positions ``r, r + W, r + 2W, ...`` of it in batches of ``batch_size / W``, so one
step of all ranks together covers exactly the global batch that a single process would take, and DDP
averages the gradients. ``--batch-size`` is therefore the *global* batch. Rank 0 alone writes
checkpoints, history, logs and the saved model; the other ranks print nothing on stdout.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from digitnet.utils import DigitnetError, pick_device

_initialized_here = False


def env_world_size() -> int:
    """The world size a launcher (torchrun) asked for; 1 when started as a single process."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """True on rank 0 (and in a single process): the one process that writes files and prints."""
    return rank() == 0


def setup(device_name: str = "auto") -> torch.device:
    """Join the process group when a launcher started several processes; return this rank's device.

    Backend: NCCL when the ranks train on CUDA GPUs (one GPU per rank, ``cuda:LOCAL_RANK``), else gloo.
    """
    global _initialized_here
    if env_world_size() <= 1:
        return pick_device(device_name)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device_name == "auto":
        device = torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    else:
        device = torch.device(device_name)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", local_rank)
        elif device.type not in ("cpu", "cuda"):
            raise DigitnetError(f"--device {device_name}: distributed training runs on cpu or cuda only")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DigitnetError(f"--device {device_name}: CUDA is not available on this machine; use --device cpu")
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        _initialized_here = True
    if dist.get_rank() != 0:
        sys.stdout = open(os.devnull, "w")  # one rank reports (--json included); open for the process's life
    return device


def cleanup(wait: bool = True) -> None:
    """Leave the process group if :func:`setup` joined it.

    ``wait``: meet the other ranks first (a run that ended normally). After an error, leave at once: the
    other ranks may be inside another collective, or never get here, and a barrier would hang this one.
    """
    global _initialized_here
    if _initialized_here and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()
    _initialized_here = False


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """The module to train: ``model`` itself, or a DDP wrapper that averages gradients across ranks.

    The wrapper shares ``model``'s parameters (checkpoints keep saving ``model``) and carries its ``spec``.
    """
    if not is_distributed():
        return model
    ddp = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    ddp.spec = model.spec  # type: ignore[attr-defined]
    return ddp


def shard_size(n: int) -> int:
    """How many of ``n`` training images each rank takes per epoch in :func:`shard_batches`."""
    return n // world_size()


def shard_batches(n: int, batch_size: int, generator: torch.Generator | None = None,
                  device: torch.device | str = "cpu") -> Iterator[torch.Tensor]:
    """Index batches of this rank's shard of a random permutation of 0..n-1.

    ``batch_size`` is the global batch. With one process: the whole permutation in batches of
    ``batch_size`` (the last one shorter). With W ranks the permutation (identical on every rank: same
    generator state) is cut to a multiple of W so all ranks take the same number of steps.
    """
    order = torch.randperm(n, generator=generator, device=device)
    world = world_size()
    if world > 1:
        if batch_size % world:
            raise DigitnetError(f"--batch-size {batch_size} must be a multiple of the {world} processes")
        order = order[: shard_size(n) * world][rank()::world]
        batch_size //= world
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


def all_reduce_sum(*values: torch.Tensor | int | float) -> list[Any]:
    """Sum each value over the ranks (tensors stay tensors, numbers stay numbers)."""
    if not is_distributed():
        return list(values)
    # gloo reduces CPU tensors, NCCL CUDA tensors on this rank's device.
    device = torch.device("cpu") if dist.get_backend() == "gloo" else torch.device("cuda", torch.cuda.current_device())
    out: list[Any] = []
    for value in values:
        t = value.detach() if isinstance(value, torch.Tensor) else torch.tensor(value, dtype=torch.float64)
        reduced = t.to(device, copy=True)
        dist.all_reduce(reduced)
        if isinstance(value, torch.Tensor):
            out.append(reduced.to(value.device))
        else:
            out.append(type(value)(reduced.item()))
    return out


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (a picklable object)."""
    if not is_distributed():
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]
