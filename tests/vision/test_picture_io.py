"""Reading pictures: every format and mode, EXIF orientation, transparency, and every kind of bad input."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from photo_helpers import call_guarded, digit_photo
from PIL import Image

from digitnet.vision.io import MAX_BYTES, ImageError, expand_inputs, load_picture

FORMATS = {"PNG": ".png", "JPEG": ".jpg", "BMP": ".bmp", "GIF": ".gif", "TIFF": ".tif", "WEBP": ".webp"}


@pytest.fixture(scope="module")
def seven(clean_digits) -> np.ndarray:
    """A photo-like 7: dark ink on light paper, uint8 gray (H, W)."""
    return digit_photo(clean_digits[7], height=70)


def save(image: Image.Image, path: Path, fmt: str | None = None, **kwargs) -> Path:
    image.save(path, fmt, **kwargs)
    return path


# ------------------------------------------------------------------------------------- formats, modes


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_is_read(tmp_path, recognizer, seven, fmt):
    path = save(Image.fromarray(seven).convert("RGB"), tmp_path / f"seven{FORMATS[fmt]}", fmt)
    answer = recognizer.predict(path)
    assert answer["error"] is None and answer["digit"] == 7


def mode_image(seven: np.ndarray, mode: str) -> Image.Image:
    gray = Image.fromarray(seven)
    if mode == "I;16":
        return Image.fromarray(seven.astype(np.uint16) * 257)
    if mode == "I":
        return Image.fromarray(seven.astype(np.int32) * 257)
    if mode == "F":
        return Image.fromarray(seven.astype(np.float32) / 255)
    if mode == "P-transparent":
        image = gray.convert("P")
        image.info["transparency"] = int(np.asarray(image)[0, 0])  # the paper's palette entry
        return image
    if mode == "RGBA-dark":  # black strokes on a transparent canvas (a drawing app's export)
        rgba = np.zeros((*seven.shape, 4), np.uint8)
        rgba[..., 3] = 255 - seven
        return Image.fromarray(rgba, "RGBA")
    if mode == "RGBA-light":  # white strokes on a transparent canvas
        rgba = np.full((*seven.shape, 4), 255, np.uint8)
        rgba[..., 3] = 255 - seven
        return Image.fromarray(rgba, "RGBA")
    if mode == "LA":
        return Image.merge("LA", (gray, Image.new("L", gray.size, 255)))
    if mode == "1":
        return gray.point(lambda v: 255 if v > 128 else 0).convert("1")
    if mode == "blue-ink":
        ink = (255 - seven).astype(np.float32)[..., None] / 255
        paper, pen = np.array([245, 240, 225], np.float32), np.array([30, 50, 160], np.float32)
        return Image.fromarray((paper * (1 - ink) + pen * ink).astype(np.uint8), "RGB")
    return gray.convert(mode)


@pytest.mark.parametrize(("mode", "fmt", "stored"), [
    ("L", "PNG", "L"), ("RGB", "PNG", "RGB"), ("RGBA-dark", "PNG", "RGBA"), ("RGBA-light", "PNG", "RGBA"),
    ("LA", "PNG", "LA"), ("P", "PNG", "P"), ("P-transparent", "PNG", "P"), ("P", "GIF", "P"),
    ("I;16", "PNG", "I;16"), ("I;16", "TIFF", "I;16"), ("I", "TIFF", "I"), ("F", "TIFF", "F"),
    ("CMYK", "JPEG", "CMYK"), ("CMYK", "TIFF", "CMYK"), ("1", "PNG", "1"), ("1", "BMP", "1"),
    ("blue-ink", "JPEG", "RGB"), ("RGBA-dark", "WEBP", "RGBA"),
])
def test_every_mode_is_read(tmp_path, recognizer, seven, mode, fmt, stored):
    path = save(mode_image(seven, mode), tmp_path / f"seven-{mode}{FORMATS[fmt]}", fmt)
    assert Image.open(path).mode == stored  # the file really holds that kind of pixels
    answer = recognizer.predict(path)
    assert answer["error"] is None, answer["error"]
    assert answer["digit"] == 7


def test_transparency_becomes_paper():
    # Dark strokes on transparency land on white; light strokes on black: the ink stays visible.
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[5:15, 9:11] = (0, 0, 0, 255)
    pixels = load_picture(Image.fromarray(rgba, "RGBA")).pixels
    assert pixels[0, 0].min() > 0.99 and pixels[10, 10].max() < 0.01
    rgba[..., :3] = 255
    pixels = load_picture(Image.fromarray(rgba, "RGBA")).pixels
    assert pixels[0, 0].max() < 0.01 and pixels[10, 10].min() > 0.99


def test_sixteen_bit_keeps_its_depth(tmp_path, seven):
    path = save(mode_image(seven, "I;16"), tmp_path / "deep.png")
    pixels = load_picture(path).pixels
    assert pixels.dtype == np.uint16 and pixels.max() > 255


def test_gif_first_frame_is_the_picture(tmp_path, recognizer, clean_digits):
    frames = [Image.fromarray(digit_photo(clean_digits[d], height=60)).convert("P") for d in (3, 8)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(path).n_frames == 2
    answer = recognizer.predict(path)
    assert answer["digit"] == 3
    # The frame left unread is not left unsaid.
    assert answer["note"] == "only page 1 of 2 was read: save each page as a picture of its own to read it"
    assert load_picture(path).pages == 2


def test_a_multi_page_tiff_reads_its_first_page_and_says_so(tmp_path, recognizer, clean_digits):
    pages = [Image.fromarray(digit_photo(clean_digits[d], height=60)) for d in (4, 1, 6)]
    path = tmp_path / "scan.tif"
    pages[0].save(path, save_all=True, append_images=pages[1:])
    answer = recognizer.read(path)
    assert answer["text"] == "4"
    assert "page 1 of 3" in answer["note"]
    # A one-page picture has no such note, and its answer's note stays what it was.
    single = save(pages[0], tmp_path / "one.tif")
    assert load_picture(single).pages == 1
    assert recognizer.read(single)["note"] is None
    # A note that says why there is no answer comes first: an empty first page is "no ink found".
    blank = [Image.new("L", (60, 60), 255), pages[1]]
    blank[0].save(tmp_path / "blank.tif", save_all=True, append_images=blank[1:])
    assert recognizer.predict(tmp_path / "blank.tif")["note"] == "no ink found"


def test_exif_orientation_is_honoured(tmp_path, recognizer, clean_digits):
    upright = digit_photo(clean_digits[7], height=70, shape=(150, 110))
    # Stored lying on its side, with the EXIF tag (6: rotate 90° clockwise to view) that phones write.
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = save(stored, tmp_path / "phone.jpg", "JPEG", exif=exif.tobytes(), quality=95)
    pixels = load_picture(path).pixels
    assert pixels.shape == upright.shape
    assert np.abs(pixels.astype(int) - upright).mean() < 3
    assert recognizer.predict(path)["digit"] == 7
    # Without the tag the same pixels are a 7 lying down, which is not read as a 7.
    plain = save(stored, tmp_path / "plain.jpg", "JPEG", quality=95)
    assert load_picture(plain).pixels.shape == upright.shape[::-1]


@pytest.mark.parametrize("kind", ["path", "str", "bytes", "pil", "array", "rgb-array", "float-array"])
def test_sources(tmp_path, recognizer, seven, kind):
    path = save(Image.fromarray(seven), tmp_path / "seven.png")
    source = {
        "path": path, "str": str(path), "bytes": path.read_bytes(), "pil": Image.open(path),
        "array": seven, "rgb-array": np.repeat(seven[..., None], 3, 2), "float-array": seven / 255.0,
    }[kind]
    answer = recognizer.predict(source)
    assert answer["digit"] == 7
    assert answer["path"] == (str(path) if kind in ("path", "str") else None)


def test_wrong_type_is_a_programming_error(recognizer):
    with pytest.raises(TypeError):
        recognizer.predict(12345)


# ------------------------------------------------------------------------------------------ bad input


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares a huge image: a decompression bomb's opening move."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\0" * (width + 1) * 4)  # a few rows of data; the rest would inflate on load
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def truncated(seven: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(seven).save(buffer, fmt)
    data = buffer.getvalue()
    return data[: len(data) // 2]


@pytest.mark.parametrize(("name", "make", "expected"), [
    ("empty.png", lambda s: b"", "empty"),
    ("notes.png", lambda s: b"these are not the pixels you are looking for\n" * 20, "not an image"),
    ("half.png", lambda s: truncated(s, "PNG"), "damaged or truncated"),
    ("half.jpg", lambda s: truncated(s, "JPEG"), "damaged or truncated"),
    ("bomb.png", lambda s: png_declaring(30000, 30000), "limit"),
    ("big.png", lambda s: png_declaring(8000, 8000), "40 MP limit"),  # 64 MP: past our cap, under Pillow's
    ("dot.png", lambda s: png_declaring(1, 1), "too small"),
])
def test_bad_files_give_one_line_errors(tmp_path, recognizer, seven, name, make, expected):
    path = tmp_path / name
    path.write_bytes(make(seven))
    with pytest.raises(ImageError) as caught:
        load_picture(path)
    message = str(caught.value)
    assert expected in message and name in message and "\n" not in message
    assert len(path.read_bytes()) < 100_000  # the bomb is small on disk
    answer = recognizer.predict(path)
    assert answer["digit"] is None and answer["error"] == message


def test_real_1x1_image(tmp_path):
    path = save(Image.new("L", (1, 1), 0), tmp_path / "one.png")
    with pytest.raises(ImageError, match="1×1 pixels is too small"):
        load_picture(path)


def test_file_over_the_byte_limit(tmp_path):
    path = tmp_path / "huge.png"
    with open(path, "wb") as handle:
        handle.truncate(MAX_BYTES + 1)  # sparse: nothing is written to disk
    with pytest.raises(ImageError, match="huge.png: .*MB limit"):
        load_picture(path)
    with pytest.raises(ImageError, match="MB limit"):
        load_picture(b"\0" * (MAX_BYTES + 1))


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageError, match="nope.png: no such file"):
        load_picture(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="is a folder"):
        load_picture(tmp_path)


@pytest.mark.parametrize("array", [np.zeros((4, 4), np.uint8), np.zeros((30, 30, 2), np.uint8),
                                   np.array([["a"] * 10] * 10)])
def test_bad_arrays(array):
    with pytest.raises(ImageError):
        load_picture(array)


def test_predict_batch_keeps_going_past_bad_input(recognizer, seven):
    answers = recognizer.predict_batch([b"", seven, b"junk" * 100, np.full((50, 50), 240, np.uint8)])
    assert [a["digit"] for a in answers] == [None, 7, None, None]
    assert answers[0]["error"] and answers[2]["error"] and answers[1]["error"] is None
    assert answers[3]["error"] is None and answers[3]["note"] == "no ink found"


# ---------------------------------------------------------------------------------------- expanding


def test_folders_and_globs_expand_to_images(tmp_path, seven):
    for name in ("b.png", "a.jpg", "c.webp"):
        Image.fromarray(seven).convert("RGB").save(tmp_path / name)
    (tmp_path / "readme.txt").write_text("not a picture")
    (tmp_path / "sub").mkdir()
    folder = [Path(p).name for p in expand_inputs([str(tmp_path)])]
    assert folder == ["a.jpg", "b.png", "c.webp"]
    assert [Path(p).name for p in expand_inputs([str(tmp_path / "*.png")])] == ["b.png"]
    assert expand_inputs([str(tmp_path / "none-*.png")]) == [str(tmp_path / "none-*.png")]  # reported later
    assert expand_inputs(["missing.png"]) == ["missing.png"]


# ------------------------------------------------------------------------- FIFOs, sockets, broken links

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this platform")


@needs_fifo
def test_a_fifo_is_refused_without_opening_it(tmp_path):
    """Regression: reading a FIFO blocked forever waiting for a writer."""
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(ImageError) as info:
        call_guarded(lambda: load_picture(fifo), fifos=[fifo], timeout=20)
    assert str(info.value) == f"{fifo}: is a named pipe (FIFO), not an image file"


def test_a_broken_symlink_names_its_target(tmp_path):
    link = tmp_path / "gone.png"
    link.symlink_to(tmp_path / "deleted.png")
    with pytest.raises(ImageError, match=r"gone.png: broken symbolic link \(to .*deleted.png, which does not exist\)"):
        load_picture(link)


def test_a_socket_is_refused(tmp_path):
    import socket

    path = tmp_path / "s.png"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        with pytest.raises(ImageError, match="s.png: is a socket, not an image file"):
            load_picture(path)


@needs_fifo
def test_folders_and_globs_list_fifos_and_broken_links(tmp_path, seven):
    """Regression: expand_inputs silently skipped FIFOs and broken symbolic links."""
    Image.fromarray(seven).save(tmp_path / "a.png")
    os.mkfifo(tmp_path / "b.png")
    (tmp_path / "c.png").symlink_to(tmp_path / "deleted.png")
    (tmp_path / "d.png").mkdir()  # a folder with an image's name is still not a picture
    expected = [str(tmp_path / n) for n in ("a.png", "b.png", "c.png")]
    assert expand_inputs([str(tmp_path)]) == expected
    assert expand_inputs([str(tmp_path / "*.png")]) == expected


# ------------------------------------------------------------------------------- big JPEGs at reduced scale


def big_jpeg(clean_digits, digit: int = 3, side: int = 4000, rotate: bool = False) -> bytes:
    """A phone-sized JPEG (``side`` px wide, 2:3) of one digit; with ``rotate``, stored sideways with EXIF rotation."""
    image = Image.fromarray(digit_photo(clean_digits[digit], height=side // 4, shape=(side * 2 // 3, side)))
    image = image.convert("RGB")
    exif = None
    if rotate:
        image = image.transpose(Image.Transpose.ROTATE_90)  # EXIF 6: the viewer turns it back
        exif = Image.Exif()
        exif[0x0112] = 6
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90, **({"exif": exif} if exif else {}))
    return buffer.getvalue()


def test_big_jpeg_decodes_at_reduced_scale_close_to_the_full_decode(clean_digits):
    data = big_jpeg(clean_digits)
    full = load_picture(data)
    reduced = load_picture(data, reduce_to=1024)
    # 4000 px shrunk to 1024 is a 4× reduction, all of it made by the decoder (DCT scale 1/4).
    assert full.pixels.shape == (2666, 4000, 3)
    assert reduced.pixels.shape == (667, 1000, 3)
    assert reduced.full_size == (4000, 2666) and full.full_size == (4000, 2666)  # what the file holds, either way
    by_area = np.asarray(Image.fromarray(full.pixels).reduce(4), np.float32)
    assert np.abs(reduced.pixels.astype(np.float32) - by_area).mean() < 2.0  # the same picture, a smaller size


@pytest.mark.parametrize(("side", "decoded"), [(2500, 2500), (4000, 1000), (6000, 3000)])
def test_a_reduced_decode_leaves_the_caller_the_same_working_size(clean_digits, side, decoded):
    """The decoder takes the part of the reduction a DCT scale can (the power of two dividing it): 2500 px (a 3×
    reduction) is decoded whole, 4000 px (4×) at 1/4 and 6000 px (6×) at 1/2; the caller reduces the rest."""
    from digitnet.vision.preprocess import WORK_SIDE, working_gray

    data = big_jpeg(clean_digits, side=side)
    reduced = load_picture(data, reduce_to=WORK_SIDE)
    assert reduced.pixels.shape[1] == decoded
    assert working_gray(reduced.pixels)[0].shape == working_gray(load_picture(data).pixels)[0].shape


def test_reduced_scale_keeps_exif_rotation(clean_digits):
    reduced = load_picture(big_jpeg(clean_digits, rotate=True), reduce_to=1024)
    assert reduced.pixels.shape[:2] == (667, 1000)
    assert reduced.full_size == (4000, 2666)  # stored 2666 wide and 4000 tall, shown turned a quarter


def test_reduced_scale_only_for_jpegs_larger_than_the_reduction(clean_digits, tmp_path):
    small = big_jpeg(clean_digits, side=900)
    assert load_picture(small, reduce_to=1024).pixels.shape == load_picture(small).pixels.shape  # none to make
    png = save(Image.open(io.BytesIO(big_jpeg(clean_digits))), tmp_path / "big.png")
    assert load_picture(png, reduce_to=1024).pixels.shape == (2666, 4000, 3)  # PNG has no cheap reduced decode


def test_reduced_scale_keeps_the_size_limit(clean_digits, monkeypatch):
    import digitnet.vision.io as picture_io

    monkeypatch.setattr(picture_io, "MAX_PIXELS", 5_000_000)  # the header's full size counts, not the reduced one
    with pytest.raises(ImageError, match="4000×2666 pixels is larger than the 5 MP limit"):
        load_picture(big_jpeg(clean_digits), reduce_to=1024)


def test_predict_on_a_big_jpeg_sees_the_same_digit_as_from_the_full_decode(clean_digits, recognizer):
    from digitnet.vision.pipeline import prepare_digit

    data = big_jpeg(clean_digits, digit=3)
    drafted = prepare_digit(data, recognizer.classify)
    full = prepare_digit(load_picture(data).pixels, recognizer.classify)  # an array: decoded in full
    assert drafted.image is not None and recognizer.predict(data)["digit"] == 3
    assert np.abs(drafted.image.astype(np.float32) - full.image.astype(np.float32)).mean() < 4.0


@pytest.mark.parametrize("rotate", [False, True])
def test_read_on_a_big_jpeg_gives_boxes_in_the_whole_pictures_pixels(clean_digits, recognizer, rotate):
    """read decodes a big JPEG at reduced scale too; its boxes are still where the digit is in the file as shown."""
    data = big_jpeg(clean_digits, digit=3, rotate=rotate)
    drafted = recognizer.read(data)
    full = recognizer.read(load_picture(data).pixels)  # an array: decoded in full
    assert drafted["text"] == full["text"] == "3"
    box, full_box = np.array(drafted["digits"][0]["box"]), np.array(full["digits"][0]["box"])
    assert np.abs(box - full_box).max() <= 8  # in 4000 × 2666 pixels, not the 1000 × 667 decoded
    width, height = 4000, 2666  # as shown (the sideways one turned back); the digit stands in the middle
    assert abs((box[0] + box[2]) / 2 - width / 2) < 0.1 * width
    assert abs((box[1] + box[3]) / 2 - height / 2) < 0.1 * height


def test_gray_decodes_a_colour_jpeg_to_the_luminance_it_stores(clean_digits, tmp_path):
    """The pipeline looks at luminance only: a colour JPEG is decoded straight to it (the Y the file stores, within a
    few levels of the luminance of the decoded colours), at reduced scale and turned upright as before."""
    from digitnet.vision.preprocess import to_gray

    photo = digit_photo(clean_digits[3], height=200, shape=(600, 900)).astype(np.float32)
    tinted = np.clip(photo[..., None] * np.array([1.0, 0.92, 0.7]) + np.array([0, 0, 30]), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(tinted).save(buffer, "JPEG", quality=90)  # blue-black ink on yellowish paper
    colour, gray = load_picture(buffer.getvalue()), load_picture(buffer.getvalue(), gray=True)
    assert colour.pixels.shape == (600, 900, 3) and gray.pixels.shape == (600, 900) and gray.pixels.dtype == np.uint8
    difference = np.abs(gray.pixels / 255 - to_gray(colour.pixels))
    assert difference.max() <= 4 / 255 and difference.mean() < 1 / 255
    png = save(Image.fromarray(tinted), tmp_path / "tinted.png")
    assert load_picture(png, gray=True).pixels.shape == (600, 900, 3)  # other formats come as they are
    turned = load_picture(big_jpeg(clean_digits, rotate=True), reduce_to=1024, gray=True)
    assert turned.pixels.shape == (667, 1000) and turned.full_size == (4000, 2666)


def test_a_small_colour_jpeg_keeps_its_colour_and_is_not_taken_for_an_mnist_digit(clean_digits, recognizer):
    """Decoded to luminance, a red 1 on black 28×28 would look like an MNIST digit and skip normalization."""
    from digitnet.vision.pipeline import prepare_digit
    from digitnet.vision.preprocess import mnist_like

    red = np.zeros((28, 28, 3), np.uint8)
    red[..., 0] = clean_digits[1]
    buffer = io.BytesIO()
    Image.fromarray(red).save(buffer, "JPEG", quality=95)
    picture = load_picture(buffer.getvalue(), gray=True)
    assert picture.pixels.shape == (28, 28, 3) and mnist_like(picture.pixels) is None
    prepared = prepare_digit(buffer.getvalue(), recognizer.classify)
    assert prepared.image is not None and prepared.image.max() == 255  # normalized: its strokes reach full white
