"""A picture's size limit: one check in ``load_picture`` (``max_pixels``), and a ``PictureTooLarge`` error."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from digitnet.cli import app
from digitnet.vision.io import MAX_PIXELS, ImageError, PictureTooLarge, load_picture
from digitnet.vision.pipeline import prepare_digit


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height), 235).save(buffer, "PNG")
    return buffer.getvalue()


def test_max_pixels_sets_the_limit_for_every_kind_of_source():
    data = png(50, 40)  # 2,000 pixels
    for source in (data, Image.open(io.BytesIO(data)), np.full((40, 50), 235, np.uint8)):
        assert load_picture(source, max_pixels=2_000).pixels.shape == (40, 50)
        with pytest.raises(PictureTooLarge, match=r"50×40 pixels is larger than the 0.0019 MP limit"):
            load_picture(source, max_pixels=1_900)


def test_too_large_is_an_image_error_of_its_own_kind():
    with pytest.raises(PictureTooLarge) as too_large:
        load_picture(png(50, 40), name="page.png", max_pixels=1_000)
    assert isinstance(too_large.value, ImageError) and str(too_large.value).startswith("page.png: ")
    with pytest.raises(ImageError) as tiny:
        load_picture(png(4, 4))
    assert not isinstance(tiny.value, PictureTooLarge)  # too small is a bad picture, not a size limit


def test_a_loaded_picture_passes_through_as_it_is():
    picture = load_picture(png(50, 40), max_pixels=2_000)
    assert load_picture(picture) is picture  # checked under its own limit when it was loaded


def test_prepare_digit_says_when_the_error_is_the_size():
    prepared = prepare_digit(png(50, 40), max_pixels=1_000)
    assert prepared.image is None and prepared.too_large and "limit" in prepared.error
    bad = prepare_digit(b"not a picture")
    assert bad.error and not bad.too_large
    assert prepare_digit(png(50, 40), max_pixels=2_000).note == "no ink found"


def test_cli_predict_refuses_an_oversize_file_in_one_line(tmp_path):
    """Guard (it passed before the change too): the CLI keeps its one-line error for a picture over 40 MP."""
    side = int(MAX_PIXELS**0.5) + 10
    path = tmp_path / "huge.png"
    Image.new("1", (side, side), 1).save(path)  # 1-bit: 40 MP in a few KB, refused from its header
    result = CliRunner().invoke(app, ["predict", "--json", str(path)])
    assert result.exit_code == 1
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output
    answer = json.loads(lines[0])
    assert answer["digit"] is None and answer["error"] == f"{path}: {side}×{side} pixels is larger than the 40 MP limit"
    plain = CliRunner().invoke(app, ["predict", str(path)])  # the table: the error on the file's own line
    assert plain.exit_code == 1 and "Traceback" not in plain.output and "40 MP limit" in plain.output
