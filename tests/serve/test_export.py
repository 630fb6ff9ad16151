"""``digitnet export``: the ONNX / TorchScript files run without digitnet and answer as PyTorch does."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from digitnet.cli import app
from digitnet.models.registry import preprocess
from digitnet.recognizer import Recognizer
from digitnet.serve.export import export_model
from digitnet.utils import DigitnetError

PARITY_IMAGES = 2000  # all 10,000 pass too (see the export notes); 2000 keep the test quick


@pytest.fixture(scope="module")
def reference(mnist):
    """PyTorch's logits and calibrated probabilities for the first test images."""
    recognizer = Recognizer.from_pretrained()
    images = mnist.test_images[:PARITY_IMAGES]
    with torch.inference_mode():
        logits = recognizer.model(preprocess(torch.from_numpy(images), recognizer.spec)).numpy()
    return images, logits, recognizer.classify(images)


def run_cli(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def test_export_says_what_the_file_takes_for_a_digit_model_and_for_a_line_model(tmp_path):
    pytest.importorskip("onnx")
    from digitnet.assets import bundled_model_dir

    digits = run_cli("export", "--out", str(tmp_path / "d.onnx"), "--input-type", "float").output
    assert "input image: float32 0..1, shape (N, 1, 28, 28)" in digits and "(N, 10)" in digits
    lines = run_cli("export", "--model", str(bundled_model_dir("line")), "--out", str(tmp_path / "l.onnx")).output
    assert "input line: float32 (N, 1, 32, W)" in lines and "(N, W/4, 15)" in lines and "28, 28" not in lines


def test_onnx_export_runs_in_onnxruntime_like_pytorch(tmp_path, reference, mnist):
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    out = tmp_path / "digits.onnx"
    run_cli("export", "--format", "onnx", "--out", str(out))

    model = onnx.load(str(out))
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["digitnet.input_type"] == "uint8" and "(N, 1, 28, 28)" in meta["digitnet.input"]
    bundled = Recognizer.from_pretrained().metadata
    assert meta["digitnet.arch"] == bundled["arch"]
    assert float(meta["digitnet.test_accuracy"]) == bundled["metrics"]["test_accuracy"]
    normalization = json.loads(meta["digitnet.normalization"])
    assert (normalization["mean"], normalization["std"]) == (bundled["normalization"]["mean"],
                                                             bundled["normalization"]["std"])
    assert json.loads(meta["digitnet.model_json"]) == bundled

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # the machine is shared; one thread is also the fastest here
    session = ort.InferenceSession(str(out), options, providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.name == "image" and inp.type == "tensor(uint8)" and inp.shape[1:] == [1, 28, 28]
    assert isinstance(inp.shape[0], str)  # the dynamic batch axis
    assert [o.name for o in session.get_outputs()] == ["logits", "probabilities"]

    images, logits, probs = reference
    got_logits, got_probs = session.run(None, {"image": images[:, None]})
    assert np.abs(got_logits - logits).max() < 1e-4
    assert np.abs(got_probs - probs).max() < 1e-4
    assert np.array_equal(got_probs.argmax(1), probs.argmax(1))
    assert np.mean(got_probs.argmax(1) == mnist.test_labels[:PARITY_IMAGES]) > 0.99
    for n in (1, 7):  # any batch size
        one = session.run(["probabilities"], {"image": images[:n, None]})[0]
        assert one.shape == (n, 10) and np.abs(one - probs[:n]).max() < 1e-4


def test_onnx_float_input(tmp_path, reference):
    ort = pytest.importorskip("onnxruntime")
    out = export_model(None, tmp_path / "float.onnx", input_type="float")
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].type == "tensor(float)"
    images, _, probs = reference
    got = session.run(["probabilities"], {"image": images[:500, None].astype(np.float32) / 255})[0]
    assert np.abs(got - probs[:500]).max() < 1e-4


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_torchscript_export(tmp_path, reference):
    out = tmp_path / "digits.pt"
    run_cli("export", "--format", "torchscript", "--out", str(out))
    extra = {"digitnet.json": ""}
    module = torch.jit.load(str(out), _extra_files=extra)
    assert json.loads(extra["digitnet.json"])["digitnet.arch"] == Recognizer.from_pretrained().metadata["arch"]
    images, logits, probs = reference
    with torch.inference_mode():
        got_logits, got_probs = module(torch.from_numpy(images[:500, None]))
    assert np.abs(got_logits.numpy() - logits[:500]).max() < 1e-4
    assert np.abs(got_probs.numpy() - probs[:500]).max() < 1e-4


def test_export_refuses_unknown_format_and_input(tmp_path):
    with pytest.raises(DigitnetError, match="onnx or torchscript"):
        export_model(None, tmp_path / "x", fmt="tflite")
    with pytest.raises(DigitnetError, match="uint8 or float"):
        export_model(None, tmp_path / "x.onnx", input_type="int16")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_export_uses_the_saved_contract_not_todays_registry(tmp_path, mnist, monkeypatch):
    """The wrapper prepares with the loaded spec (the contract in model.json), like Recognizer.classify."""
    from dataclasses import replace

    from digitnet.models import registry
    from digitnet.saved_model import ModelContractWarning

    images = mnist.test_images[:200]
    expected = Recognizer.from_pretrained().classify(images)
    builder, spec = registry._REGISTRY["fastnet"]
    changed = replace(spec, input_size=32, normalization="unit")
    monkeypatch.setitem(registry._REGISTRY, "fastnet", (builder, changed))
    out = tmp_path / "digits.pt"
    with pytest.warns(ModelContractWarning):
        export_model(None, out, fmt="torchscript")
    with torch.inference_mode():
        _, probs = torch.jit.load(str(out))(torch.from_numpy(images[:, None]))
    assert np.abs(probs.numpy() - expected).max() < 1e-4


def test_export_refuses_a_folder_and_never_leaves_a_half_written_file(tmp_path, monkeypatch):
    from digitnet.serve import export

    model_dir = tmp_path / "run"
    model_dir.mkdir()
    (model_dir / "model.json").write_text("{}")
    with pytest.raises(DigitnetError, match=rf"--out {model_dir} is a folder"):
        export_model(None, model_dir, fmt="torchscript")
    assert [p.name for p in model_dir.iterdir()] == ["model.json"]

    out = tmp_path / "digits.pt"
    out.write_bytes(b"the previous export")

    def disk_full_half_way(wrapper, example, path, metadata):
        path.write_bytes(b"half a model")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export, "_export_torchscript", disk_full_half_way)
    with pytest.raises(OSError):
        export_model(None, out, fmt="torchscript", overwrite=True)
    assert out.read_bytes() == b"the previous export"  # untouched, not half-replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits.pt", "run"]  # no temporary file left


def test_two_exports_to_one_file_at_once_do_not_trip_over_each_other(tmp_path, monkeypatch):
    from digitnet.serve import export

    real = export._export_torchscript
    out = tmp_path / "digits.pt"

    def second_export_meanwhile(wrapper, example, path, metadata):
        real(wrapper, example, path, metadata)
        if not (tmp_path / "second.done").exists():  # while this one's file waits to be renamed into place
            (tmp_path / "second.done").touch()
            export_model(None, out, fmt="torchscript")

    monkeypatch.setattr(export, "_export_torchscript", second_export_meanwhile)
    export_model(None, out, fmt="torchscript")
    torch.jit.load(str(out))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits.pt", "second.done"]
