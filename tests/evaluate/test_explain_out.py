"""``digitnet explain -o``: an existing file is replaced only with ``--overwrite``, a model's files never."""

from __future__ import annotations

import shutil

from PIL import Image
from typer.testing import CliRunner

from digitnet.assets import bundled_model_dir
from digitnet.cli import app
from digitnet.utils import DigitnetError


def explain(*args: str):
    return CliRunner().invoke(app, ["explain", *args])


def test_explain_keeps_an_existing_file_unless_told_to_replace_it(mnist, tmp_path):
    picture = tmp_path / "good.png"
    Image.fromarray(mnist.test_images[0]).save(picture)
    out = tmp_path / "why.png"
    out.write_bytes(b"an earlier figure")
    result = explain(str(picture), "-o", str(out))
    assert isinstance(result.exception, DigitnetError), result.output
    assert str(result.exception) == f"--out {out} already exists: choose another --out, or pass --overwrite to " \
                                    "replace it"
    assert out.read_bytes() == b"an earlier figure"
    result = explain(str(picture), "-o", str(out), "--overwrite")
    assert result.exit_code == 0, result.output
    with Image.open(out) as image:
        assert image.format == "PNG"


def test_explain_never_writes_a_png_over_a_models_files(mnist, tmp_path):
    picture = tmp_path / "good.png"
    Image.fromarray(mnist.test_images[0]).save(picture)
    model = tmp_path / "modelcopy"
    shutil.copytree(bundled_model_dir("default"), model)
    files = {p.name: p.read_bytes() for p in model.iterdir()}
    for args in (["-o", str(model / "model.json")],  # a model folder, not the one read
                 ["-m", str(model), "-o", str(model / "model.json")],  # the one read
                 ["-m", str(model), "-o", str(model / "good-explained.png")]):
        for extra in ([], ["--overwrite"]):
            result = explain(str(picture), *args, *extra)
            assert isinstance(result.exception, DigitnetError), result.output
            assert "write it elsewhere" in str(result.exception)
    assert {p.name: p.read_bytes() for p in model.iterdir()} == files
