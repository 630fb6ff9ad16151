"""Ensembles average probabilities; TTA is deterministic."""

from __future__ import annotations

import json
import re
from pathlib import Path

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
        train(TrainConfig(arch=arch, epochs=1, train_subset=3000, test_subset=200, seed=seed,
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
    models = ",".join(two_models)
    out = tmp_path / "pair"
    result = runner.invoke(app, ["ensemble", "--models", models, "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["out"] == str(out) and len(report["members"]) == 2 and (out / "model.safetensors").is_file()
    assert not any(p.name.startswith(".pair.partial") for p in tmp_path.iterdir())  # written beside, then moved
    evaluated = runner.invoke(app, ["evaluate", "--model", str(out), "--json", "--subset", "200"])
    assert evaluated.exit_code == 0 and json.loads(evaluated.stdout)["arch"] == "ensemble"

    def refused(args: list[str], why: str) -> None:
        result = runner.invoke(app, ["ensemble", *args])
        assert result.exit_code != 0 and why in (result.output + str(result.exception)), (args, result.output)

    refused(["--models", models, "--out", str(out)], "--overwrite")
    refused(["--models", models, "--out", str(out), "--tta"], "leave out --tta")
    refused(["--models", two_models[0], "--out", str(tmp_path / "one")], "at least two")
    refused(["--models", f"{two_models[0]},{saved_ensemble[0]}", "--out", str(tmp_path / "n")],
            "cannot be an ensemble's member")
    refused(["--models", f"{two_models[0]},line", "--out", str(tmp_path / "l")], "cannot be an ensemble's member")
    refused(["--models", models, "--out", two_models[1], "--overwrite"], "is one of the members")
    (tmp_path / "afile").write_text("x")
    refused(["--models", models, "--out", str(tmp_path / "afile"), "--overwrite"], "not a folder")
    assert (tmp_path / "afile").read_text() == "x"
    # the same folder spelled two ways is still one model
    refused(["--models", f"{two_models[0]},{two_models[0]}/../{Path(two_models[0]).name}", "--out",
             str(tmp_path / "twice")], "the same model as")
    import shutil

    shutil.copytree(two_models[0], tmp_path / "copy")  # the same weights in another folder
    refused(["--models", f"{two_models[0]},{tmp_path / 'copy'}", "--out", str(tmp_path / "twice")], "the same model as")
    assert not (tmp_path / "twice").exists()


def test_an_ensemble_too_big_to_load_is_refused_before_it_is_written(two_models, tmp_path, monkeypatch):
    from digitnet import saved_model
    from digitnet.evaluate import ensemble
    from digitnet.utils import DigitnetError

    members = ensemble.load_members(two_models)
    size = sum(t.numel() * t.element_size() for m in members for t in m.model.state_dict().values())
    monkeypatch.setattr(ensemble, "MAX_WEIGHTS_BYTES", size - 1)  # the tensors alone are too many
    with pytest.raises(DigitnetError, match="more than a saved model may"):
        ensemble.save_ensemble(two_models, tmp_path / "big")
    monkeypatch.setattr(ensemble, "MAX_WEIGHTS_BYTES", size + 1)  # the tensors fit, not with the file's header
    with pytest.raises(DigitnetError, match="weights file, more than a saved model may"):
        ensemble.save_ensemble(two_models, tmp_path / "big")
    assert not (tmp_path / "big").exists() and not list(tmp_path.glob(".big.partial*"))
    limit = size + 64 * 1024
    monkeypatch.setattr(ensemble, "MAX_WEIGHTS_BYTES", limit)
    monkeypatch.setattr(saved_model, "MAX_WEIGHTS_BYTES", limit)
    ensemble.save_ensemble(two_models, tmp_path / "fits")
    assert saved_model.load_model(tmp_path / "fits").arch == "ensemble"  # what is saved loads under the same limit


def test_overwriting_a_run_folder_leaves_only_the_ensemble(two_models, tmp_path):
    import shutil

    from digitnet.saved_model import load_model

    run = tmp_path / "run"
    shutil.copytree(two_models[0], run)  # a training run: config.json, history.csv, metrics.json ...
    assert (run / "config.json").is_file() and (run / "history.csv").is_file()
    result = CliRunner().invoke(app, ["ensemble", "--models", ",".join(two_models), "--out", str(run),
                                      "--overwrite", "--json"])
    assert result.exit_code == 0, result.output
    assert load_model(run).arch == "ensemble"
    assert not (run / "config.json").exists() and not (run / "history.csv").exists()  # no resume of the old run


def test_members_held_out_the_validation_digits_the_ensemble_is_calibrated_on(mnist, two_models, tmp_path):
    from digitnet.evaluate.ensemble import save_ensemble
    from digitnet.utils import DigitnetError

    leaky = tmp_path / "leaky"
    train(TrainConfig(arch="mlp", epochs=1, train_subset=500, val_size=500, test_subset=100, out=str(leaky),
                      plots=False), mnist=mnist, quiet=True)
    with pytest.raises(DigitnetError, match="--val-size 500 .*every member must have held out"):
        save_ensemble([two_models[0], str(leaky)], tmp_path / "e")


def test_the_temperature_is_fitted_on_validation_digits(mnist, saved_ensemble):
    from digitnet.saved_model import load_model
    from digitnet.train.metrics import fit_temperature, predict_logits

    loaded = load_model(saved_ensemble[0])
    val_images, val_labels = torch.from_numpy(mnist.train_images[-5000:]), torch.from_numpy(mnist.train_labels[-5000:])
    logits = predict_logits(loaded.model, val_images, loaded.spec)
    assert loaded.temperature == pytest.approx(fit_temperature(logits, val_labels.long()), rel=1e-4)


def test_each_member_is_fed_its_own_saved_contract(mnist, tmp_path, unit_best):
    """A member whose model.json says "unit" (not the registry's "mnist") is fed 0..1 pixels inside the ensemble."""
    import warnings

    from digitnet.evaluate.ensemble import save_ensemble
    from digitnet.recognizer import Recognizer
    from digitnet.saved_model import ModelContractWarning, load_model

    odd = unit_best
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelContractWarning)
        save_ensemble([str(odd), "default"], tmp_path / "e")
        members = load_members([str(odd), "default"])
    images = mnist.test_images[:100]
    expected = np.mean([Recognizer(m, engine="torch").classify(images) for m in members], 0)
    got = Recognizer(load_model(tmp_path / "e"), engine="torch").classify(images, calibrated=False)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_a_member_described_wrongly_is_a_one_line_load_error(saved_ensemble, tmp_path):
    import shutil

    from digitnet.saved_model import ModelLoadError, load_model

    broken = tmp_path / "broken"
    shutil.copytree(saved_ensemble[0], broken)
    meta = json.loads((broken / "model.json").read_text())
    del meta["arch_kwargs"]["members"][1]["contract"]
    (broken / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="broken: model.json: ensemble member 1 needs .*input contract"):
        load_model(broken)
    meta["arch_kwargs"]["members"][1]["contract"] = {"input_size": 27, "channels_last": True,
                                                     "normalization": {"name": "unit", "mean": 0.0, "std": 1.0}}
    (broken / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="input_size 27"):
        load_model(broken)


def test_an_ensemble_is_made_not_trained():
    from digitnet import TrainConfig
    from digitnet.utils import DigitnetError

    with pytest.raises(DigitnetError, match="digitnet ensemble --models"):
        TrainConfig(arch="ensemble").resolved()


def test_an_exported_ensemble_says_what_its_graph_computes(mnist, saved_ensemble, tmp_path):
    import onnx
    import onnxruntime as ort

    from digitnet.recognizer import Recognizer
    from digitnet.saved_model import load_model
    from digitnet.serve.export import export_loaded

    loaded = load_model(saved_ensemble[0])
    path = export_loaded(loaded, tmp_path / "ensemble.onnx")
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert "each member's own normalization" in meta["digitnet.preprocessing"]
    assert "log of the members' mean calibrated probability" in meta["digitnet.outputs"]
    images = mnist.test_images[:32]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outputs = dict(zip([o.name for o in session.get_outputs()],
                       session.run(None, {session.get_inputs()[0].name: images[:, None]}), strict=True))
    np.testing.assert_allclose(outputs["probabilities"], Recognizer(loaded, engine="torch").classify(images),
                               atol=1e-5)


@pytest.fixture
def untrained_ensemble(tmp_path) -> Path:
    """A saved ensemble of two untrained members (mlp, lenet5): enough to load, no training."""
    from digitnet import create_model, save_model
    from digitnet.models import get_spec

    model = create_model("ensemble", members=[
        {"arch": arch, "arch_kwargs": {}, "temperature": t, "contract": get_spec(arch).contract()}
        for arch, t in (("mlp", 0.7), ("lenet5", 0.9))])
    return save_model(model, tmp_path / "ensemble", {"temperature": 1.0})


@pytest.mark.parametrize("temperature", [0, -1.5, float("nan"), float("inf"), "hot", "0.5", None, True])
def test_a_member_with_a_bad_temperature_is_refused_as_a_model_is(untrained_ensemble, temperature, tmp_path):
    """A member's temperature divides its logits as model.json's does: the same check, one line naming the file
    (0 gave infinite logits, a negative one inverted the member's answers, a string was a traceback)."""
    from digitnet import create_model, save_model
    from digitnet.saved_model import ModelLoadError, load_model

    path = untrained_ensemble / "model.json"
    assert load_members([untrained_ensemble])[0].model.temperatures == [0.7, 0.9]
    meta = json.loads(path.read_text())
    meta["arch_kwargs"]["members"][1]["temperature"] = temperature
    path.write_text(json.dumps(meta))
    problem = f"{path}: ensemble member 1: temperature must be a positive number, got {temperature!r}"
    for load in (lambda: load_members([untrained_ensemble]), lambda: load_model(untrained_ensemble)):
        with pytest.raises(ModelLoadError) as info:
            load()
        assert str(info.value) == problem

    # A member given as a folder of its own is checked by the same code, naming its model.json.
    member = save_model(create_model("mlp"), tmp_path / "member", {"temperature": temperature})
    with pytest.raises(ModelLoadError, match=r"member/model.json: temperature must be a positive number"):
        load_members([member])


@pytest.mark.parametrize("temperature", [0, float("nan"), "hot", None])
def test_an_ensemble_built_in_python_checks_its_members_temperatures(temperature):
    """``create_model("ensemble", members=...)`` refuses a member's bad temperature as loading one does (it divided the
    member's logits unchecked: NaN probabilities, or a TypeError deep in forward)."""
    from digitnet import create_model
    from digitnet.models import get_spec
    from digitnet.utils import DigitnetError

    members = [{"arch": "mlp", "arch_kwargs": {}, "temperature": t, "contract": get_spec("mlp").contract()}
               for t in (0.7, temperature)]
    with pytest.raises(DigitnetError, match=rf"^ensemble member 1: temperature must be a positive number, got "
                                            rf"{re.escape(repr(temperature))}$"):
        create_model("ensemble", members=members)
