"""One training step: the batch (``make_batch``) and forward/backward/step (``train_step``).

:class:`digitnet.train.setup.Run` calls them for ``digitnet train`` and for every benchmark, so the benchmark
times exactly what users run: the same batch gathering, device-side augmentation, memory format, mixed
precision and optimizer step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
import torch.nn.functional as F

from digitnet.data.augment import augment_batch
from digitnet.models.registry import ModelSpec, preprocess


def make_batch(
    images: torch.Tensor,
    labels: torch.Tensor,
    idx: torch.Tensor,
    spec: ModelSpec,
    augment: str = "none",
    generator: torch.Generator | None = None,
    channels_last: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gather a batch of uint8 images by index, normalize and (optionally) augment it, all on their device."""
    x = preprocess(images[idx], spec)
    if augment != "none":
        # Only every-hand's strokes depend on the digit; the other presets keep the stream they were made with.
        x = augment_batch(x, augment, generator, labels[idx] if augment == "every-hand" else None)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, labels[idx]


def distillation_loss(
    logits: torch.Tensor,
    y: torch.Tensor,
    teacher_logits: torch.Tensor,
    weight: float,
    temperature: float,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Cross-entropy on the labels, mixed with the KL divergence to the teacher's softened answer (Hinton et al.
    2015) on the images the teacher reads right.

    Where the teacher is wrong (it never saw every-hand's flagged 1s or closed 4s) the label alone teaches: its
    soft answer would teach the student the teacher's mistake. The KL term is scaled by temperature² so that its
    gradients keep their size whatever the temperature.
    """
    ce = F.cross_entropy(logits, y, label_smoothing=label_smoothing, reduction="none")
    t = temperature
    kl = F.kl_div(F.log_softmax(logits.float() / t, 1), F.log_softmax(teacher_logits.float() / t, 1),
                  log_target=True, reduction="none").sum(1) * (t * t)
    share = weight * (teacher_logits.argmax(1) == y).float()
    return ((1 - share) * ce + share * kl).mean()


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast when ``enabled`` (worth it on GPUs with bf16 units; CPUs without them run it slower)."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    label_smoothing: float = 0.0,
    amp: bool = False,
    loss_function: Callable | None = None,
    max_grad_norm: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward, backward, optimizer step. Returns the detached loss and logits without a host sync.

    ``loss_function(logits, y)``: another loss than cross-entropy (a line recognizer's CTC); ``max_grad_norm``:
    clip the gradients' norm (an LSTM under CTC now and then meets a line whose gradient would throw it off).
    """
    with autocast(x.device, amp):
        logits = model(x)
        if loss_function is not None:
            loss = loss_function(logits, y)
        else:
            # autocast runs cross-entropy in float32 whatever the logits' dtype
            loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    return loss.detach(), logits.detach()


def use_amp(amp: bool | None, device: torch.device) -> bool:
    """Resolve the ``amp`` option: None means on for CUDA only."""
    return device.type == "cuda" if amp is None else amp
