"""Optimizers and learning-rate schedules by name."""

from __future__ import annotations

import math

import torch
from torch import nn

from digitnet.train.config import TrainConfig
from digitnet.utils import DigitnetError

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adadelta")
SCHEDULES = ("none", "plateau", "step", "cosine", "onecycle")
# Schedules stepped after every batch (the rest after every epoch); digitnet.train.setup.Run steps them all.
PER_STEP_SCHEDULES = ("cosine", "onecycle")


def parameter_groups(model: nn.Module, cfg: TrainConfig) -> list[dict]:
    """Weight matrices get weight decay / L2; biases and BatchNorm parameters never do.

    ``weight_decay`` is the optimizer's own (decoupled for AdamW, added to the gradient for the others);
    ``l2`` is Keras' penalty, applied by :func:`add_l2_gradient` whatever the optimizer.
    """
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.dim() > 1 else no_decay).append(p)
    return [{"params": decay, "weight_decay": cfg.weight_decay, "l2": cfg.l2},
            {"params": no_decay, "weight_decay": 0.0, "l2": 0.0}]


def add_l2_gradient(optimizer: torch.optim.Optimizer, *_) -> None:
    """Keras' l2(c) adds c·Σw² to the loss, i.e. 2c·w to the gradient: done here, before the optimizer's step.

    Folding it into ``weight_decay`` would be the same for Adam or SGD but not for AdamW, whose decay is
    decoupled from the gradient (and so never passes through Adam's moments, as an L2 loss term does).
    """
    with torch.no_grad():
        for group in optimizer.param_groups:
            c = group.get("l2", 0.0)
            for p in group["params"]:
                if c and p.grad is not None:
                    p.grad.add_(p, alpha=2 * c)


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer named by ``cfg.optimizer``, with ``cfg.l2`` applied to its gradients if set."""
    optimizer = _build_optimizer(parameter_groups(model, cfg), model, cfg)
    if cfg.l2:
        optimizer.register_step_pre_hook(add_l2_gradient)
    return optimizer


def _build_optimizer(groups: list[dict], model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    name = cfg.optimizer
    # The fused kernels update all parameters in one pass; they exist for CPU and CUDA in torch >= 2.4.
    device = next(model.parameters()).device
    fused = {"fused": True} if device.type in ("cpu", "cuda") else {}
    if name == "adam":
        return _with_fallback(torch.optim.Adam, groups, fused, lr=cfg.lr)
    if name == "adamw":
        return _with_fallback(torch.optim.AdamW, groups, fused, lr=cfg.lr)
    if name == "sgd":
        return _with_fallback(torch.optim.SGD, groups, fused, lr=cfg.lr, momentum=cfg.momentum,
                              nesterov=bool(cfg.nesterov and cfg.momentum > 0))
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=cfg.lr, momentum=0.0, alpha=0.9, eps=1e-7, foreach=True)
    if name == "adadelta":
        return torch.optim.Adadelta(groups, lr=cfg.lr, foreach=True)
    raise DigitnetError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")


def _with_fallback(cls, groups, fused: dict, **kwargs) -> torch.optim.Optimizer:
    try:
        return cls(groups, **kwargs, **fused)
    except (RuntimeError, TypeError, ValueError):  # an old torch without fused kernels for this device
        return cls(groups, **kwargs, foreach=True)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int,
                    monitor: str | None = None):
    """The schedule named by ``cfg.schedule``; per-step ones are sized for the whole run.

    ``monitor``: the metric ReduceLROnPlateau will be fed (default ``cfg.monitor``); its mode follows it, so a
    run without validation that monitors ``train_loss`` cuts the LR when the loss stops *falling*.
    """
    total = max(1, cfg.epochs * steps_per_epoch)
    warm = max(1, int(total * cfg.warmup))
    name = cfg.schedule
    if name == "none":
        return None
    if name == "plateau":
        mode = "min" if (monitor or cfg.monitor).endswith("loss") else "max"
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, factor=cfg.plateau_factor,
                                                          patience=cfg.plateau_patience)
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.step_gamma)
    if name == "onecycle":
        # Linear warm-up from lr/10 to lr, then linear decay to lr/100 (Smith's one-cycle, without the
        # momentum cycle). A LambdaLR clamps at the end and resumes from its state dict exactly.
        def one_cycle(step: int) -> float:
            if step < warm:
                return 0.1 + 0.9 * step / warm
            return max(0.01, 1.0 - 0.99 * (step - warm) / max(1, total - warm))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, one_cycle)
    if name == "cosine":
        def cosine(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, cosine)
    raise DigitnetError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")
