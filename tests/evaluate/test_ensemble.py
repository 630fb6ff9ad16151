"""Ensembles average probabilities; TTA is deterministic."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from digitnet import TrainConfig, train
from digitnet.cli import app
from digitnet.evaluate.ensemble import (
    TTA_VIEWS,
    ensemble_probabilities,
    evaluate_ensemble,
    load_members,
    shift,
    tta_views,
)

SUBSET = 1000


@pytest.fixture(scope="module")
def two_models(mnist, tmp_path_factory):
    root = tmp_path_factory.mktemp("ensemble")
    dirs = []
    for arch, seed in (("mlp", 0), ("lenet5", 1)):
        out = root / arch
        train(TrainConfig(arch=arch, epochs=1, train_subset=3000, val_size=500, test_subset=200, seed=seed,
                          out=str(out), plots=False), mnist=mnist, quiet=True)
        dirs.append(str(out))
    return dirs


def test_ensemble_is_at_least_as_good_as_the_worse_member(mnist, two_models):
    members = load_members(two_models)
    images, labels = mnist.test_images[:SUBSET], mnist.test_labels[:SUBSET]
    probs = ensemble_probabilities(members, images)
    assert probs.shape == (SUBSET, 10)
    torch.testing.assert_close(probs.sum(1), torch.ones(SUBSET))
    report = evaluate_ensemble(members, images, labels)
    worse = min(m["accuracy"] for m in report["members"])
    assert report["accuracy"] >= worse and report["num_samples"] == SUBSET
    assert report["errors"] == len(report["error_indices"]) == round((1 - report["accuracy"]) * SUBSET)


def test_tta_is_deterministic_and_sums_to_one(mnist, two_models):
    members = load_members(two_models)
    images = mnist.test_images[:200]
    a = ensemble_probabilities(members, images, tta=True)
    b = ensemble_probabilities(members, images, tta=True)
    assert torch.equal(a, b)
    torch.testing.assert_close(a.sum(1), torch.ones(200))
    assert not torch.equal(a, ensemble_probabilities(members, images, tta=False))  # the views do change the input


def test_views_shift_and_keep_the_original_first():
    img = torch.zeros(1, 28, 28, dtype=torch.uint8)
    img[0, 10, 12] = 255
    views = tta_views(img)
    assert len(views) == len(TTA_VIEWS) and torch.equal(views[0][0, 0], img[0].float() / 255)
    moved = shift(views[0], 1, -1)
    assert moved[0, 0, 9, 13] == 1.0 and moved.sum() == 1.0  # right by one, up by one
    assert all(v.shape == (1, 1, 28, 28) and v.min() >= 0 and v.max() <= 1 for v in views)


def test_ensemble_command_json(two_models):
    result = CliRunner().invoke(app, ["ensemble", "--models", ",".join(two_models), "--tta", "--json",
                                      "--subset", "300"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["tta"] and report["tta_views"] == len(TTA_VIEWS) and len(report["members"]) == 2
    assert 0.5 < report["accuracy"] <= 1 and report["num_samples"] == 300


def test_members_are_fed_their_saved_contract(mnist, monkeypatch):
    """Each member is prepared as its model.json says, whatever today's registry says (and agrees with classify)."""
    from dataclasses import replace

    from digitnet.models import registry
    from digitnet.recognizer import Recognizer
    from digitnet.saved_model import ModelContractWarning

    images = torch.from_numpy(mnist.test_images[:100])
    member = load_members([None])[0]  # the bundled default model: fastnet, saved with MNIST mean/std
    with torch.inference_mode():
        x = (images.float().unsqueeze(1) / 255 - 0.1307) / 0.3081
        expected = torch.softmax(member.model(x).float() / member.temperature, 1)
    builder, spec = registry._REGISTRY["fastnet"]
    monkeypatch.setitem(registry._REGISTRY, "fastnet", (builder, replace(spec, normalization="unit")))
    with pytest.warns(ModelContractWarning):
        (member,) = load_members([None])
    probs = ensemble_probabilities([member], images)
    torch.testing.assert_close(probs, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(probs, torch.from_numpy(Recognizer(member).classify(images)), atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def saved_ensemble(two_models, tmp_path_factory):
    from digitnet.evaluate.ensemble import save_ensemble

    out = tmp_path_factory.mktemp("saved") / "ensemble"
    return out, save_ensemble(two_models, out)


def test_a_saved_ensemble_reads_as_its_members_averaged(mnist, two_models, saved_ensemble):
    """One forward pass of the saved model gives the mean of the members' calibrated probabilities — members fed
    28×28 in 0..1 (mlp) and 32×32 padded (lenet5) alike — and it loads without a contract warning."""
    import warnings

    from digitnet.recognizer import Recognizer
    from digitnet.saved_model import load_model

    out, metrics = saved_ensemble
    images = mnist.test_images[:300]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_model(out)
    assert loaded.arch == "ensemble" and len(loaded.model.members) == 2
    # each member on its own, as a recognizer of it classifies (its own contract, its own temperature)
    expected = np.mean([Recognizer(m, engine="torch").classify(images) for m in load_members(two_models)], 0)
    got = Recognizer(loaded, engine="torch").classify(images, calibrated=False)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    torch.testing.assert_close(ensemble_probabilities(load_members(two_models), images), torch.from_numpy(got),
                               atol=1e-5, rtol=0)
    # calibrated on the validation split, its figures saved with it, each member's provenance too
    meta = loaded.metadata
    assert meta["temperature"] == metrics["temperature"] != 1.0 and meta["metrics"]["val_accuracy"] > 0.5
    assert [m["path"] for m in meta["members"]] == [str(load_members([d])[0].path) for d in two_models]
    assert all(len(m["weights_sha256"]) == 64 and m["training"]["arch"] in ("mlp", "lenet5") for m in meta["members"])


def test_a_saved_ensemble_runs_the_same_in_onnx_runtime(mnist, saved_ensemble):
    from digitnet.recognizer import Recognizer
    from digitnet.saved_model import load_model

    loaded = load_model(saved_ensemble[0])
    images = mnist.test_images[:64]
    fast = Recognizer(loaded, engine="onnxruntime")
    assert fast.engine == "onnxruntime"
    np.testing.assert_allclose(fast.classify(images), Recognizer(loaded, engine="torch").classify(images), atol=1e-5)


def test_ensemble_command_saves_one_model_and_refuses_what_it_cannot(two_models, saved_ensemble, tmp_path):
    runner = CliRunner()
    out = tmp_path / "pair"
    result = runner.invoke(app, ["ensemble", "--models", ",".join(two_models), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["out"] == str(out) and len(report["members"]) == 2 and (out / "model.safetensors").is_file()
    evaluated = runner.invoke(app, ["evaluate", "--model", str(out), "--json", "--subset", "200"])
    assert evaluated.exit_code == 0 and json.loads(evaluated.stdout)["arch"] == "ensemble"
    again = runner.invoke(app, ["ensemble", "--models", ",".join(two_models), "--out", str(out)])
    assert again.exit_code != 0 and "--overwrite" in again.output
    nested = runner.invoke(app, ["ensemble", "--models", f"{two_models[0]},{saved_ensemble[0]}", "--out",
                                 str(tmp_path / "nested")])
    assert nested.exit_code != 0 and "cannot be an ensemble's member" in str(nested.exception)


def test_an_ensemble_is_made_not_trained():
    from digitnet import TrainConfig
    from digitnet.utils import DigitnetError

    with pytest.raises(DigitnetError, match="digitnet ensemble --models"):
        TrainConfig(arch="ensemble").resolved()
