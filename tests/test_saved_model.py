import json

import pytest
import torch

from digitnet import create_model, load_model, save_model
from digitnet.saved_model import ModelLoadError
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


def test_bundled_best_model_is_the_more_accurate_one(mnist):
    best, default = load_model("best"), load_model("default")
    assert best.path.name == "best-model" and default.path.name == "default-model"
    assert best.metadata["metrics"]["test_accuracy"] > default.metadata["metrics"]["test_accuracy"]
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
