"""Ensembles and test-time augmentation: average the probabilities of several models and of shifted views.

Each member prepares the images its own way (input size, normalization come from its saved spec) and is
softened by its own calibration temperature, so members of different architectures mix fairly. TTA views
are a fixed set of one-pixel shifts and small rotations: deterministic, so the same images always get
the same answer.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from digitnet.data import DEFAULT_VAL_SIZE, load_mnist, make_splits
from digitnet.evaluate import require_digit_classifier
from digitnet.models.ensemble import Ensemble
from digitnet.models.registry import create_model, to_unit
from digitnet.saved_model import MAX_WEIGHTS_BYTES, METADATA_FILE, WEIGHTS_FILE, LoadedModel, load_model, save_model
from digitnet.train.metrics import classification_metrics, fit_temperature, predict_logits, saved_test_metrics
from digitnet.train.run_folder import clear_run
from digitnet.utils import DigitnetError, pick_device

# (dx, dy, degrees): the identity, four one-pixel shifts and two small rotations.
TTA_VIEWS: tuple[tuple[int, int, float], ...] = ((0, 0, 0.0), (1, 0, 0.0), (-1, 0, 0.0), (0, 1, 0.0), (0, -1, 0.0),
                                                  (0, 0, 8.0), (0, 0, -8.0))


def load_members(paths: Sequence[str | os.PathLike], device: str | torch.device = "cpu") -> list[LoadedModel]:
    """Load every model directory in ``paths`` onto ``device`` (``--device``: cpu, cuda or cuda:N)."""
    device = member_device(device)
    return [load_model(path, device=device) for path in paths]


def member_device(name: str | torch.device) -> torch.device:
    """``--device`` checked as for ``train`` (:func:`digitnet.utils.pick_device`); an ensemble runs on cpu or cuda."""
    device = pick_device(str(name))
    if device.type not in ("cpu", "cuda"):
        raise DigitnetError(f"--device {name}: choose cpu, cuda or cuda:N")
    return device


def shift(x: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """Move images (N, 1, H, W) right by ``dx`` and down by ``dy`` pixels, filling with zeros (background)."""
    if dx == 0 and dy == 0:
        return x
    h, w = x.shape[-2:]
    padded = F.pad(x, (max(dx, 0), max(-dx, 0), max(dy, 0), max(-dy, 0)))
    top, left = max(-dy, 0), max(-dx, 0)
    return padded[..., top:top + h, left:left + w]


def rotate(x: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate images (N, 1, H, W) about their centre, bilinear, zero background."""
    if degrees == 0:
        return x
    a = math.radians(degrees)
    theta = torch.tensor([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]],
                         dtype=x.dtype, device=x.device).expand(x.shape[0], 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def tta_views(images: torch.Tensor, views: Sequence[tuple[int, int, float]] = TTA_VIEWS) -> list[torch.Tensor]:
    """Float views in [0, 1], shape (N, 1, 28, 28), of uint8 images (N, 28, 28)."""
    x = to_unit(images.unsqueeze(1) if images.dim() == 3 else images)
    return [rotate(shift(x, dx, dy), degrees) for dx, dy, degrees in views]


@torch.inference_mode()
def ensemble_probabilities(members: Sequence[LoadedModel], images: torch.Tensor | np.ndarray, tta: bool = False,
                           batch_size: int = 1000, calibrated: bool = True) -> torch.Tensor:
    """The mean of the members' probabilities (N, 10) for uint8 images (N, 28, 28), over the TTA views too; rows
    sum to 1. The average is the one a saved ensemble computes (:class:`digitnet.models.ensemble.Ensemble`)."""
    images = torch.as_tensor(np.asarray(images)) if not isinstance(images, torch.Tensor) else images
    average = Ensemble([m.model.eval() for m in members], [m.spec for m in members],
                       [m.temperature if calibrated else 1.0 for m in members])
    device = next(members[0].model.parameters()).device
    views_spec = TTA_VIEWS if tta else TTA_VIEWS[:1]
    out = []
    for start in range(0, images.shape[0], batch_size):
        views = tta_views(images[start:start + batch_size], views_spec)
        out.append(torch.stack([average(view.to(device)).exp() for view in views]).mean(0).cpu())
    return torch.cat(out) if out else torch.zeros(0, 10)


def evaluate_ensemble(members: Sequence[LoadedModel], images: torch.Tensor | np.ndarray,
                      labels: torch.Tensor | np.ndarray, tta: bool = False, batch_size: int = 1000) -> dict:
    """Accuracy of each member and of their average, with or without TTA; the ensemble's errors."""
    labels = torch.as_tensor(np.asarray(labels)).long()
    images = torch.as_tensor(np.asarray(images))
    per_member = []
    probs_sum = None
    for member in members:
        probs = ensemble_probabilities([member], images, tta, batch_size)
        probs_sum = probs if probs_sum is None else probs_sum + probs
        per_member.append({"model": str(member.path), "arch": member.arch,
                           "accuracy": float((probs.argmax(1) == labels).float().mean())})
    probs = probs_sum / len(members)
    predictions = probs.argmax(1)
    wrong = (predictions != labels).nonzero().flatten()
    return {
        "accuracy": float((predictions == labels).float().mean()), "errors": len(wrong),
        "num_samples": len(labels), "tta": tta, "tta_views": len(TTA_VIEWS) if tta else 1, "members": per_member,
        "error_indices": wrong.tolist(),
    }


def save_ensemble(model_dirs: Sequence[str | os.PathLike], out: str | os.PathLike, data: str | None = None,
                  device: str | torch.device = "cpu", overwrite: bool = False) -> dict:
    """Save the models in ``model_dirs`` as one model (arch ``ensemble``) in ``out``: calibrated on the validation
    split as a trained model is, then scored once on the test set. Returns its metrics.

    ``out`` must be a new or empty folder (``overwrite``: a model or run folder whose files it replaces), and none of
    the members. Every member must have been trained with the validation split held out (the last
    :data:`DEFAULT_VAL_SIZE` training images, of the same MNIST), or the calibration would be fitted on digits a member
    learned.
    """
    out = Path(out)
    device = member_device(device)
    if out.exists() and not out.is_dir():
        raise DigitnetError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise DigitnetError(f"--out {out} is not empty: choose another folder, or pass --overwrite to replace the "
                            "model in it")
    members = load_members(model_dirs, device=device)
    if len(members) < 2:
        raise DigitnetError("an ensemble to save needs at least two model directories")
    mnist = load_mnist(data)
    for member in members:
        if member.spec.task != "digits" or member.spec.composite:
            raise DigitnetError(f"{member.path}: {member.arch!r} cannot be an ensemble's member (a single digit "
                                "classifier can)")
        if member.path is not None and out.resolve() == Path(member.path).resolve():
            raise DigitnetError(f"--out {out} is one of the members; choose another folder")
        trained_on = member.metadata.get("data") or {}
        if trained_on.get("val_size", DEFAULT_VAL_SIZE) != DEFAULT_VAL_SIZE or \
                trained_on.get("checksum", mnist.checksum) != mnist.checksum:
            raise DigitnetError(f"{member.path}: trained with --val-size {trained_on.get('val_size')} on data "
                                f"{trained_on.get('checksum', '?')[:12]}; an ensemble is calibrated on the last "
                                f"{DEFAULT_VAL_SIZE:,} training images of this MNIST, which every member must have "
                                "held out")
    # The same model twice (however its folder is spelled, or copied to another) would only count double.
    seen: dict[object, LoadedModel] = {}
    for member in members:
        keys = [Path(member.path).resolve()] if member.path is not None else []
        keys += [member.metadata["weights_sha256"]] if member.metadata.get("weights_sha256") else []
        for key in keys:
            if key in seen:
                raise DigitnetError(f"{member.path}: the same model as {seen[key].path}; an ensemble's members are "
                                    "different models")
            seen[key] = member
    size = sum(t.numel() * t.element_size() for m in members for t in m.model.state_dict().values())
    if size > MAX_WEIGHTS_BYTES:
        raise DigitnetError(f"these {len(members)} members hold {size:,} bytes of weights, more than a saved model may "
                            f"({MAX_WEIGHTS_BYTES:,}); choose fewer or smaller members")
    model = create_model("ensemble", members=[
        {"arch": m.arch, "arch_kwargs": m.metadata.get("arch_kwargs", {}), "temperature": m.temperature,
         "contract": m.spec.contract()} for m in members])
    for part, member in zip(model.members, members, strict=True):
        part.load_state_dict(member.model.state_dict())
    model.to(device).eval()
    if model.spec.channels_last and torch.device(device).type == "cpu":
        model.to(memory_format=torch.channels_last)
    splits = make_splits(mnist)
    # Calibrate on validation data, never on the test set (as the trainer does).
    val_logits = predict_logits(model, splits.val.images.to(device), model.spec)
    temperature = fit_temperature(val_logits, splits.val.labels)
    val = classification_metrics(val_logits, splits.val.labels)
    test_logits = predict_logits(model, splits.test.images.to(device), model.spec)
    test = classification_metrics(test_logits, splits.test.labels)
    metrics = {**saved_test_metrics(test, classification_metrics(test_logits, splits.test.labels, temperature)["loss"]),
               "val_accuracy": val["accuracy"], "temperature": temperature}
    metadata = {
        "temperature": temperature, "metrics": metrics,
        "data": {"checksum": mnist.checksum, "source": mnist.origin, "val_size": len(splits.val),
                 "test_size": len(splits.test)},
        # where each member came from and how it was trained: enough to make the ensemble again
        "members": [{"path": str(m.path), "weights_sha256": m.metadata.get("weights_sha256"),
                     "metrics": m.metadata.get("metrics"), "training": m.metadata.get("training")} for m in members],
    }
    # Written beside ``out`` first, then moved in: an interrupted save leaves ``out`` as it was.
    partial = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    save_model(model, partial, metadata)
    written = (partial / WEIGHTS_FILE).stat().st_size  # the tensors and their header: what load_model checks
    if written > MAX_WEIGHTS_BYTES:
        shutil.rmtree(partial, ignore_errors=True)
        raise DigitnetError(f"these {len(members)} members make a {written:,}-byte weights file, more than a saved "
                            f"model may ({MAX_WEIGHTS_BYTES:,}); choose fewer or smaller members")
    if out.is_dir():
        clear_run(out)  # the model or run it held (--overwrite): no old run's files beside the ensemble
        for name in (WEIGHTS_FILE, METADATA_FILE):
            os.replace(partial / name, out / name)
        partial.rmdir()
    else:
        os.replace(partial, out)
    return {**metrics, "members": [{"model": str(m.path), "arch": m.arch,
                                    "val_accuracy": (m.metadata.get("metrics") or {}).get("val_accuracy"),
                                    "test_accuracy": (m.metadata.get("metrics") or {}).get("test_accuracy")}
                                   for m in members]}


def evaluate_model_dirs(model_dirs: Sequence[str | os.PathLike], tta: bool = False, data: str | None = None,
                        subset: int | None = None, device: str | torch.device = "cpu") -> dict:
    """Load the models in ``model_dirs`` and score them, alone and as an ensemble, on the MNIST test set."""
    if not model_dirs:
        raise DigitnetError("an ensemble needs at least one model directory")
    if subset is not None and subset < 1:
        raise DigitnetError(f"--subset {subset}: give a number of test images, at least 1 (leave it out for all)")
    members = [require_digit_classifier(m) for m in load_members(model_dirs, device=device)]
    mnist = load_mnist(data)
    return evaluate_ensemble(members, mnist.test_images[:subset], mnist.test_labels[:subset], tta=tta)
