import json
import math

import numpy as np
import pytest
import torch

from digitnet import create_model, load_model, save_model
from digitnet.models import get_spec
from digitnet.saved_model import ModelContractWarning, ModelLoadError
from digitnet.utils import DigitnetError


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = create_model("lenet5")
    save_model(model, tmp_path / "m", {"metrics": {"test_accuracy": 0.5}})
    return model, tmp_path / "m"


def test_roundtrip_preserves_weights_and_metadata(saved):
    model, path = saved
    loaded = load_model(path)
    x = torch.randn(4, 1, 32, 32)
    torch.testing.assert_close(loaded.model(x), model.eval()(x))
    assert loaded.metadata["arch"] == "lenet5" and loaded.metadata["input_size"] == 32
    assert loaded.metadata["normalization"] == {"name": "mnist", "mean": 0.1307, "std": 0.3081}
    assert loaded.metadata["metrics"]["test_accuracy"] == 0.5


def test_truncated_weights(saved):
    _, path = saved
    blob = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ModelLoadError, match="SHA-256 does not match"):
        load_model(path)
    meta = json.loads((path / "model.json").read_text())
    del meta["weights_sha256"]
    (path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="corrupt or truncated"):
        load_model(path)


@pytest.mark.filterwarnings("ignore::digitnet.saved_model.ModelContractWarning")  # fastnet's contract as lenet5
def test_wrong_shapes_are_named(saved, tmp_path):
    _, path = saved
    other = create_model("fastnet", width=8)
    save_model(other, tmp_path / "other")
    meta = json.loads((tmp_path / "other" / "model.json").read_text())
    meta["arch_kwargs"] = {"width": 16}
    (tmp_path / "other" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match=r"has shape \(8, 1, 5, 5\).*needs \(16, 1, 5, 5\)"):
        load_model(tmp_path / "other")
    meta["arch"] = "lenet5"
    (tmp_path / "other" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="arch_kwargs in model.json do not fit 'lenet5'"):
        load_model(tmp_path / "other")
    meta["arch_kwargs"] = {}
    (tmp_path / "other" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="do not fit architecture 'lenet5'"):
        load_model(tmp_path / "other")


def test_future_format_and_garbage_metadata(saved):
    _, path = saved
    meta = json.loads((path / "model.json").read_text())
    meta["format_version"] = 99
    (path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="newer than this digitnet supports"):
        load_model(path)
    (path / "model.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="corrupt metadata"):
        load_model(path)


def test_missing_directory(tmp_path):
    with pytest.raises(ModelLoadError, match="no such model directory"):
        load_model(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="not a digitnet model"):
        load_model(tmp_path / "empty")


def test_bundled_default_model_meets_its_bar(mnist):
    loaded = load_model()
    meta = loaded.metadata
    assert meta["metrics"]["test_accuracy"] >= 0.993
    from digitnet.evaluate import evaluate_model

    metrics = evaluate_model(loaded.model, torch.from_numpy(mnist.test_images),
                             torch.from_numpy(mnist.test_labels.astype("int64")), loaded.spec)
    assert metrics["accuracy"] == pytest.approx(meta["metrics"]["test_accuracy"], abs=1e-4)
    assert meta["data"]["checksum"] == mnist.checksum  # trained on exactly this data
    assert "/" not in meta["data"]["source"]  # no path of the machine that trained it


def test_bundled_best_model_is_the_more_accurate_one(mnist):
    """More accurate on the held-out training digits, by which models are chosen (on the test set the two are within
    a few digits of 10,000 of each other: 30 errors against the default's 25, since the default's stage 2)."""
    best, default = load_model("best"), load_model("default")
    assert best.path.name == "best-model" and default.path.name == "default-model"
    assert best.metadata["metrics"]["val_accuracy"] > default.metadata["metrics"]["val_accuracy"]
    from digitnet.evaluate import evaluate_model

    metrics = evaluate_model(best.model, torch.from_numpy(mnist.test_images),
                             torch.from_numpy(mnist.test_labels.astype("int64")), best.spec)
    assert metrics["accuracy"] == pytest.approx(best.metadata["metrics"]["test_accuracy"], abs=1e-4)
    assert best.metadata["data"]["checksum"] == mnist.checksum


def test_a_folder_named_like_a_bundled_model_wins(tmp_path, monkeypatch, saved):
    import shutil

    shutil.copytree(saved[1], tmp_path / "best")
    monkeypatch.chdir(tmp_path)
    assert load_model("best").path.resolve() == (tmp_path / "best").resolve()
    with pytest.raises(DigitnetError, match="no bundled model 'fastest'"):
        from digitnet.assets import bundled_model_dir

        bundled_model_dir("fastest")


# ------------------------------------------------------------------ the input contract travels with the weights


@pytest.fixture
def small_fastnet(tmp_path):
    torch.manual_seed(0)
    model = create_model("fastnet", width=8).eval()
    save_model(model, tmp_path / "fastnet")
    return model, tmp_path / "fastnet"


def _edit_metadata(path, **fields):
    meta = json.loads((path / "model.json").read_text())
    meta.update(fields)
    (path / "model.json").write_text(json.dumps(meta))


def _digits(n: int = 16) -> torch.Tensor:
    return torch.randint(0, 256, (n, 28, 28), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)


def _logits_as_trained(model, images: torch.Tensor, size: int, mean: float, std: float) -> torch.Tensor:
    """The logits for ``images`` fed by hand exactly as the saved contract says."""
    x = (images.float().unsqueeze(1) / 255 - mean) / std
    pad = (size - 28) // 2
    x = torch.nn.functional.pad(x, (pad,) * 4, value=-mean / std)
    with torch.inference_mode():
        return model(x)


def test_saved_model_json_holds_the_input_contract(small_fastnet):
    _, path = small_fastnet
    meta = json.loads((path / "model.json").read_text())
    assert meta["input_size"] == 28 and meta["channels_last"] is True
    assert meta["normalization"] == {"name": "mnist", "mean": 0.1307, "std": 0.3081}
    assert "defaults" not in meta and "lr" not in json.dumps(meta)  # the training recipe stays in the registry


def test_saved_normalization_wins_over_a_changed_registry(small_fastnet, monkeypatch):
    """Regression: load_model rebuilt the spec from today's registry, so a registry change fed old weights wrongly."""
    from dataclasses import replace

    from digitnet.models import registry
    from digitnet.recognizer import Recognizer

    model, path = small_fastnet
    builder, spec = registry._REGISTRY["fastnet"]
    monkeypatch.setitem(registry._REGISTRY, "fastnet", (builder, replace(spec, normalization="unit")))
    with pytest.warns(ModelContractWarning) as caught:
        loaded = load_model(path)
    (warning,) = caught
    message = str(warning.message)
    assert "\n" not in message and str(path) in message and "normalization mnist" in message
    assert "registry for 'fastnet' says normalization unit" in message and warning.filename.endswith("model.json")
    assert loaded.spec.mean_std == (0.1307, 0.3081) and loaded.model.spec.mean_std == (0.1307, 0.3081)
    images = _digits()
    expected = torch.softmax(_logits_as_trained(model, images, 28, 0.1307, 0.3081), 1).numpy()
    np.testing.assert_allclose(Recognizer(loaded).classify(images, calibrated=False), expected, atol=1e-5)
    registry_fed = torch.softmax(_logits_as_trained(model, images, 28, 0.0, 1.0), 1).numpy()
    assert not np.allclose(registry_fed, expected, atol=1e-3)  # the test tells the two contracts apart


def test_saved_input_size_wins_over_the_registry(small_fastnet):
    from digitnet.recognizer import Recognizer

    model, path = small_fastnet
    _edit_metadata(path, input_size=32, normalization={"name": "symmetric", "mean": 0.5, "std": 0.5})
    with pytest.warns(ModelContractWarning, match=r"model.json says input_size 32 and normalization symmetric"):
        loaded = load_model(path)
    assert loaded.spec.input_size == 32 and loaded.spec.mean_std == (0.5, 0.5)
    assert loaded.spec.defaults == get_spec("fastnet").defaults  # the recipe still comes from the registry
    images = _digits()
    expected = torch.softmax(_logits_as_trained(model, images, 32, 0.5, 0.5), 1).numpy()
    np.testing.assert_allclose(Recognizer(loaded).classify(images, calibrated=False), expected, atol=1e-5)


def test_old_model_json_without_the_contract_loads_with_the_registry_spec(small_fastnet, recwarn):
    _, path = small_fastnet
    meta = json.loads((path / "model.json").read_text())
    for key in ("input_size", "normalization", "channels_last"):
        del meta[key]
    (path / "model.json").write_text(json.dumps(meta))
    loaded = load_model(path)
    assert loaded.spec == get_spec("fastnet")
    assert not [w for w in recwarn if issubclass(w.category, ModelContractWarning)]


@pytest.mark.parametrize("fields, problem", [
    ({"input_size": 29}, "input_size 29 is not an even number"),
    ({"input_size": "28"}, "input_size '28' is not an even number"),
    ({"normalization": {"name": "mnist", "mean": 0.1, "std": 0}}, "positive std"),
    ({"normalization": {"name": "nope"}}, "normalization 'nope' is unknown"),
    ({"normalization": "mnist"}, "normalization must be an object"),
    ({"channels_last": "yes"}, "channels_last must be true or false"),
    ({"input_size": 100000}, "input_size 100000 is larger than any digit model's"),  # would pad to 80 GB a batch
    ({"input_size": 66}, "input_size 66 is larger than any digit model's"),
    ({"temperature": 0}, "temperature must be a positive number, got 0"),
    ({"temperature": -1.5}, "temperature must be a positive number, got -1.5"),
    ({"temperature": math.nan}, "temperature must be a positive number, got nan"),  # json writes NaN, reads it back
    ({"temperature": math.inf}, "temperature must be a positive number, got inf"),
    ({"temperature": "hot"}, "temperature must be a positive number, got 'hot'"),
    ({"temperature": None}, "temperature must be a positive number, got None"),
    ({"temperature": True}, "temperature must be a positive number, got True"),
])
def test_a_bad_contract_is_one_line_naming_the_file(small_fastnet, fields, problem):
    _, path = small_fastnet
    _edit_metadata(path, **fields)
    with pytest.raises(ModelLoadError, match=problem) as info:
        load_model(path)
    assert str(path / "model.json") in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["default", "best"])
def test_bundled_models_carry_their_contract_and_match_the_registry(name, recwarn):
    loaded = load_model(name)  # also checks the weights' SHA-256
    meta = loaded.metadata
    assert {"input_size", "normalization", "channels_last"} <= set(meta)
    assert (loaded.spec.input_size, loaded.spec.mean_std, loaded.spec.channels_last) == (
        meta["input_size"], (meta["normalization"]["mean"], meta["normalization"]["std"]), meta["channels_last"])
    assert not [w for w in recwarn if issubclass(w.category, ModelContractWarning)]


@pytest.mark.parametrize("channels_last", [True, False])
def test_saved_memory_layout_is_used_on_cpu(small_fastnet, channels_last):
    _, path = small_fastnet
    _edit_metadata(path, channels_last=channels_last)
    loaded = load_model(path)
    assert loaded.spec.channels_last is channels_last
    # A weight with several input channels tells the layouts apart (a one-channel one is the same memory).
    weight = next(p for p in loaded.model.parameters() if p.dim() == 4 and p.shape[1] > 1)
    assert weight.is_contiguous(memory_format=torch.channels_last) is channels_last


def test_saving_the_same_weights_gives_the_same_bytes_whatever_the_metadata_order(saved):
    """safetensors orders its metadata by a hash map; the file we write is sorted, so rebuilds match byte for byte."""
    import json as _json

    from safetensors.torch import save as st_save

    from digitnet.saved_model import canonical_safetensors

    model, _ = saved
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    blobs = {canonical_safetensors(st_save(state, metadata=meta))
             for meta in ({"format": "x", "arch": "y"}, {"arch": "y", "format": "x"})}
    assert len(blobs) == 1
    blob = blobs.pop()
    header = _json.loads(blob[8:8 + int.from_bytes(blob[:8], "little")])
    assert list(header["__metadata__"]) == ["arch", "format"]
    from safetensors.torch import load

    loaded = load(blob)
    assert all(torch.equal(loaded[k], state[k]) for k in state)
