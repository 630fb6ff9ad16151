"""``digitnet export`` refuses, in one line and before writing anything, what it must not do: replace a file
without ``--overwrite``, write into a model folder (ever), or export to an ONNX opset the installed torch lacks."""

from __future__ import annotations

import shutil

import pytest
from typer.testing import CliRunner

from digitnet.assets import bundled_model_dir
from digitnet.cli import app
from digitnet.saved_model import check_new_output_file
from digitnet.serve.export import OPSETS, export_model
from digitnet.utils import DigitnetError


def refused(*args: str) -> str:
    """The one-line error of a command that must fail (main() prints it as ``error: ...``)."""
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code != 0 and isinstance(result.exception, DigitnetError), result.output
    return str(result.exception)


@pytest.fixture
def victim(tmp_path):
    """A copy of the bundled default model, and its files' bytes."""
    model = tmp_path / "victim"
    shutil.copytree(bundled_model_dir("default"), model)
    return model, {p.name: p.read_bytes() for p in model.iterdir()}


def test_export_never_writes_into_the_model_it_reads_even_with_overwrite(victim, tmp_path):
    model, files = victim
    for out in (model / "model.safetensors", model / "model.json", model / "new.pt",
                tmp_path / "elsewhere" / ".." / "victim" / "model.json"):
        for extra in ([], ["--overwrite"]):
            message = refused("export", "-m", str(model), "-f", "torchscript", "-o", str(out), *extra)
            assert message.startswith(f"--out {out} ") and "write it elsewhere" in message
    link = tmp_path / "link.pt"
    link.symlink_to(model / "model.safetensors")
    with pytest.raises(DigitnetError, match="inside .*the model being read"):
        check_new_output_file(link, overwrite=True, model_dir=model)
    assert {p.name: p.read_bytes() for p in model.iterdir()} == files


def test_export_keeps_an_existing_file_unless_told_to_replace_it(tmp_path):
    picture = tmp_path / "in" / "good.jpg"
    picture.parent.mkdir()
    picture.write_bytes(b"a photo")
    message = refused("export", "-f", "torchscript", "-o", str(picture))
    assert message == f"--out {picture} already exists: choose another --out, or pass --overwrite to replace it"
    assert picture.read_bytes() == b"a photo"
    with pytest.raises(DigitnetError, match="already exists"):
        export_model(None, picture, fmt="torchscript")  # the Python API keeps it too
    result = CliRunner().invoke(app, ["export", "-f", "torchscript", "-o", str(picture), "--overwrite"])
    assert result.exit_code == 0, result.output
    assert picture.read_bytes() != b"a photo"


def test_export_refuses_a_file_in_another_model_folder(victim, tmp_path):
    model, files = victim
    assert "a file of the model" in refused("export", "-f", "torchscript", "-o", str(model / "model.json"),
                                            "--overwrite")
    assert {p.name: p.read_bytes() for p in model.iterdir()} == files
    # A new file beside a model (a run's folder) is fine.
    result = CliRunner().invoke(app, ["export", "-f", "torchscript", "-o", str(model / "digits.pt")])
    assert result.exit_code == 0, result.output
    assert (model / "digits.pt").is_file()


@pytest.mark.parametrize("opset", [0, -1, 6, 999, OPSETS[1] + 1])
def test_an_opset_out_of_the_exporters_range_is_one_line_before_the_model_loads(tmp_path, opset, monkeypatch):
    from digitnet.serve import export

    monkeypatch.setattr(export, "load_model", lambda *a: pytest.fail("loaded the model for a refused request"))
    message = refused("export", "-o", str(tmp_path / "x.onnx"), "--opset", str(opset))
    assert message == f"--opset {opset}: the installed torch exports ONNX opsets {OPSETS[0]} to {OPSETS[1]} " \
                      "(default 17)"
    assert not list(tmp_path.iterdir())


def test_an_opset_without_an_operator_the_model_needs_is_one_line_without_the_graph(tmp_path, capfd):
    pytest.importorskip("onnx")
    # The default model's adaptive max pooling has no ONNX form before opset 8.
    message = refused("export", "-o", str(tmp_path / "x.onnx"), "--opset", str(OPSETS[0]))
    assert message.startswith(f"--opset {OPSETS[0]}: ONNX export failed on adaptive_max_pool2d") and "\n" not in message
    captured = capfd.readouterr()
    assert "Torch IR graph" not in captured.out + captured.err
    assert not list(tmp_path.iterdir())


def test_an_export_beside_a_model_can_be_replaced_but_never_the_models_own_files(victim, tmp_path):
    model, files = victim
    for _ in range(2):  # the second time over the first one's file, as asked
        result = CliRunner().invoke(app, ["export", "-f", "torchscript", "-o", str(model / "digits.pt"), "--overwrite"])
        assert result.exit_code == 0, result.output
    for own in ("model.json", "model.safetensors"):
        assert "a file of the model" in refused("export", "-f", "torchscript", "-o", str(model / own), "--overwrite")
    assert {p.name: p.read_bytes() for p in model.iterdir() if p.name != "digits.pt"} == files
