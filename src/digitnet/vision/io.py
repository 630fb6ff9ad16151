"""Load pictures safely: any common format and mode, EXIF orientation, size caps, one-line errors.

Everything becomes a :class:`Picture`: a numpy array of plain gray (H, W) or RGB (H, W, 3) pixels with
transparency already flattened, so the preprocessing never sees a PIL mode.
"""

from __future__ import annotations

import glob
import io
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from digitnet.utils import DigitnetError

MAX_BYTES = 50 * 1024 * 1024  # a phone photo is 2-10 MB; anything past this is not a picture of a digit
MAX_PIXELS = 40_000_000  # the default limit, 40 MP decoded: about 160 MB as RGBA (load_picture's max_pixels)
GRAY_MIN_SIDE = 64  # load_picture(gray=True) decodes colour JPEGs larger than this to their luminance
MIN_SIDE = 8  # below this there is no room for a digit (MNIST digits are 20 px)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class ImageError(DigitnetError):
    """A picture that cannot be used: unreadable, too large, too small. The message names the file."""


class PictureTooLarge(ImageError):
    """A picture over a size limit (its bytes, or its declared width × height), refused before decoding.

    A subclass so that callers who answer for the size apart (the server's 413) can tell it from a bad picture.
    """


@dataclass
class Picture:
    """Decoded pixels ready for preprocessing."""

    pixels: np.ndarray  # (H, W) gray or (H, W, 3) RGB: uint8, uint16 or float32 in 0..1
    name: str  # what to call it in messages: the path, or "<bytes>", "<array>", ...
    path: str | None = None  # the path when it came from a file
    # (width, height) of the whole picture, upright, where ``pixels`` hold fewer: a JPEG decoded at reduced scale
    size: tuple[int, int] | None = None
    # Pages (a multi-page TIFF) or frames (an animated GIF or WebP) in the file: only the first is in ``pixels``.
    pages: int = 1

    @property
    def full_size(self) -> tuple[int, int]:
        """(width, height) of the picture as it is, whatever scale ``pixels`` were decoded at."""
        return self.size or (self.pixels.shape[1], self.pixels.shape[0])


ImageSource = str | os.PathLike | bytes | Image.Image | np.ndarray | Picture


def load_picture(source: ImageSource, name: str | None = None, reduce_to: int | None = None,
                 max_pixels: int | None = None, gray: bool = False) -> Picture:
    """Decode ``source`` (a path, encoded bytes, a PIL image, a numpy array or a Picture) into a :class:`Picture`.

    ``reduce_to``: the longest side the caller shrinks a larger picture to anyway (by a whole factor, as
    :func:`~digitnet.vision.preprocess.working_gray` does). A JPEG larger than that is then decoded straight
    at 1/2, 1/4 or 1/8 scale (``Image.draft``: almost free, and no larger than the caller's own reduction would
    give), which is several times faster for a phone photo.
    ``gray``: the caller uses the picture's luminance only. A colour JPEG larger than ``GRAY_MIN_SIDE`` is then
    decoded straight to the luminance it stores (no chroma, no colour conversion: a third of the time); other
    pictures come as they are.
    ``max_pixels``: the largest width × height accepted (None: :data:`MAX_PIXELS`), checked from the header
    before any pixel is decoded. A :class:`Picture` is returned as it is: it was checked when it was loaded.
    Raises :class:`ImageError` with a one-line message for anything that is not a usable picture,
    :class:`PictureTooLarge` (a subclass) for one over a size limit.
    """
    limit = MAX_PIXELS if max_pixels is None else max_pixels  # read here, not bound at import: tests lower it
    if isinstance(source, Picture):
        return source
    if isinstance(source, np.ndarray):
        name = name or "<array>"
        return Picture(_check_array(source, name, limit), name)
    if isinstance(source, Image.Image):
        name = name or "<PIL image>"
        _check_size(source.size, name, limit)
        return Picture(pil_to_array(_first_frame(source), name), name, pages=_pages(source))
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        name = name or "<bytes>"
        path = None
    elif isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        name = name or path
        data = _read_file(path, name)
    else:
        raise TypeError(f"expected a path, bytes, a PIL image or a numpy array, not {type(source).__name__}")
    if not data:
        raise ImageError(f"{name}: the file is empty")
    _check_bytes(len(data), name)
    pixels, size, pages = _decode(data, name, reduce_to, limit, gray)
    return Picture(pixels, name, path, size if size != (pixels.shape[1], pixels.shape[0]) else None, pages)


def _read_file(path: str, name: str) -> bytes:
    """The bytes of a regular file; anything else (folder, FIFO, socket, device) is refused before opening,
    since opening a FIFO for reading blocks until a writer comes, which may be never."""
    try:
        info = os.stat(path)
        _check_regular(info.st_mode, name)
        _check_bytes(info.st_size, name)
        # O_NONBLOCK: should the path become a FIFO after the check, opening it still returns at once,
        # and the check on the opened file refuses it.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        with open(fd, "rb") as handle:
            _check_regular(os.fstat(fd).st_mode, name)
            return handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        if os.path.islink(path):
            raise ImageError(f"{name}: broken symbolic link (to {os.readlink(path)}, which does not exist)") from None
        raise ImageError(f"{name}: no such file") from None
    except OSError as exc:
        raise ImageError(f"{name}: cannot read the file ({exc.strerror or exc})") from None


def _check_regular(mode: int, name: str) -> None:
    if stat.S_ISDIR(mode):
        raise ImageError(f"{name}: is a folder, not an image")
    if not stat.S_ISREG(mode):
        kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
        raise ImageError(f"{name}: is {kind}, not an image file")


def _check_bytes(size: int, name: str) -> None:
    if size > MAX_BYTES:
        raise PictureTooLarge(f"{name}: {size / 2**20:.0f} MB is larger than the {MAX_BYTES // 2**20} MB limit")


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1_000_000:g} MP"


def _check_size(size: tuple[int, int], name: str, max_pixels: int) -> None:
    """The one size check of every picture, from its declared size: too large, or too small for a digit."""
    width, height = size
    if width * height > max_pixels:
        raise PictureTooLarge(f"{name}: {width}×{height} pixels is larger than the {_megapixels(max_pixels)} limit")
    if min(width, height) < MIN_SIDE:
        raise ImageError(f"{name}: {width}×{height} pixels is too small to hold a digit "
                         f"(at least {MIN_SIDE}×{MIN_SIDE} needed)")


def _decode(data: bytes, name: str, reduce_to: int | None, max_pixels: int,
            gray: bool = False) -> tuple[np.ndarray, tuple[int, int], int]:
    """Open, check the declared size from the header, then decode: a bomb is refused before it is inflated.

    Returns the pixels, upright, the (width, height) of the whole upright picture (more than the pixels'
    where a JPEG was decoded at reduced scale), and how many pages or frames the file holds (the first is read)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we enforce our own cap
            image = Image.open(io.BytesIO(data))
            _check_size(image.size, name, max_pixels)
            pages = _pages(image)
            image = _first_frame(image)
            size = image.size
            _draft(image, reduce_to, gray)
            image.load()
            decoded = image.size
            # In place: a picture without an EXIF turn (most) is not copied.
            ImageOps.exif_transpose(image, in_place=True)
            if image.size != decoded:  # turned a quarter: so is the whole picture
                size = size[::-1]
            return pil_to_array(image, name), size, pages
    except ImageError:
        raise
    except Image.DecompressionBombError:
        # Pillow's own cap (twice Image.MAX_IMAGE_PIXELS, ~179 MP) refused it before ours could: it stays in
        # force whatever max_pixels says, so the message names the lower of the two.
        cap = 2 * Image.MAX_IMAGE_PIXELS if Image.MAX_IMAGE_PIXELS else max_pixels
        raise PictureTooLarge(f"{name}: the image declares more than the {_megapixels(min(max_pixels, cap))} "
                              "limit (decompression bomb?)") from None
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image, or a format that cannot be read "
                         "(PNG, JPEG, BMP, GIF, TIFF and WebP can)") from None
    except Exception as exc:
        # Pillow reports truncated and corrupt data as OSError, SyntaxError or ValueError, and a malformed
        # EXIF block or palette can surface as almost anything; any of it is this one file's problem.
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageError(f"{name}: the image data is damaged or truncated ({detail})") from None


def _draft(image: Image.Image, reduce_to: int | None, gray: bool = False) -> None:
    """Have a JPEG decode at a DCT scale (1/2, 1/4, 1/8) that takes part of the caller's own reduction, and
    (``gray``) a colour JPEG decode its luminance alone."""
    width, height = image.size
    factor = -(-max(width, height) // reduce_to) if reduce_to else 1
    # The caller reduces by the whole factor `factor`; of it, the decoder takes the largest power of two that
    # divides it, and the caller's own reduction of the smaller picture (by factor / scale) does the rest: the
    # caller works at the same size as from a full decode. (For a factor of 3, a 1/2 decode would leave the caller
    # a 1500-px picture to halve: 750 px, where the full decode gave 1000.)
    scale = min(factor & -factor, 8)
    # A small picture is decoded in colour all the same: it costs nothing to decode, and a 28×28 colour picture must
    # not pass for an MNIST digit (preprocess.mnist_like tells them apart by their channels).
    mode = "L" if gray and image.mode == "RGB" and max(width, height) > GRAY_MIN_SIDE else image.mode
    if image.format != "JPEG" or (scale <= 1 and mode == image.mode):
        return
    # Asked for the floor: draft() takes the scale from the whole quotients original // requested. (One call:
    # draft() ignores a second.)
    image.draft(mode, (max(1, width // scale), max(1, height // scale)) if scale > 1 else None)


def _pages(image: Image.Image) -> int:
    """How many pages or frames ``image`` holds (1 for most formats)."""
    try:
        return max(1, int(getattr(image, "n_frames", 1)))
    except Exception:  # counting walks the file (TIFF, GIF): a damaged one still shows its first frame
        return 1


def _first_frame(image: Image.Image) -> Image.Image:
    if _pages(image) > 1:
        image.seek(0)  # animated GIF/WebP, multi-page TIFF: the first frame is the picture
    return image


def pil_to_array(image: Image.Image, name: str = "<PIL image>") -> np.ndarray:
    """Pixels of any PIL mode as gray (H, W) or RGB (H, W, 3); transparent areas become background."""
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return np.asarray(image, dtype=np.uint16).copy()
    if mode in ("I", "F"):
        return _scale_float(np.asarray(image, dtype=np.float64))
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("PA", "RGBa", "La"):
        image = image.convert("RGBA")
    elif mode == "LA":
        pass
    elif mode == "1":
        image = image.convert("L")
    elif mode not in ("L", "RGB", "RGBA"):
        image = image.convert("RGB")  # CMYK, YCbCr, LAB, HSV, ...
    pixels = np.asarray(image)
    if pixels.ndim == 3 and pixels.shape[2] in (2, 4):
        return _flatten_alpha(pixels[..., :-1].astype(np.float32) / 255, pixels[..., -1].astype(np.float32) / 255)
    return pixels.copy()


def _scale_float(values: np.ndarray) -> np.ndarray:
    """32-bit int or float pixels to 0..1: their range says whether they are 8-bit, 16-bit or already unit."""
    values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    top = float(values.max()) if values.size else 0.0
    scale = 1.0 if top <= 1.0 else 255.0 if top <= 255 else 65535.0 if top <= 65535 else top
    return np.clip(values / scale, 0.0, 1.0).astype(np.float32)


def _flatten_alpha(color: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composite over a background that contrasts with the visible pixels, so transparency reads as paper.

    Dark strokes on a transparent canvas go onto white, light strokes onto black: a fixed colour would
    make one of the two invisible.
    """
    if color.shape[2] == 1:
        color = color[..., 0]
        gray = color
    else:
        gray = color @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    if alpha.min() >= 1.0:
        return color
    weight = alpha.sum()
    visible = float((gray * alpha).sum() / weight) if weight > 0 else 0.0
    paper = 1.0 if visible < 0.5 else 0.0
    a = alpha if color.ndim == 2 else alpha[..., None]
    return (color * a + paper * (1 - a)).astype(np.float32)


def _check_array(array: np.ndarray, name: str, max_pixels: int) -> np.ndarray:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImageError(f"{name}: expected an array of shape (H, W), (H, W, 3) or (H, W, 4), got {array.shape}")
    _check_size((array.shape[1], array.shape[0]), name, max_pixels)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    elif array.dtype.kind == "f" or array.dtype not in (np.uint8, np.uint16):
        if array.dtype.kind not in "fiu":
            raise ImageError(f"{name}: expected numeric pixels, got dtype {array.dtype}")
        array = _scale_float(array.astype(np.float64))
    if array.ndim == 3 and array.shape[2] == 4:
        unit = array.astype(np.float32) / (255 if array.dtype == np.uint8 else 65535 if array.dtype == np.uint16 else 1)
        return _flatten_alpha(unit[..., :3], unit[..., 3])
    return array


def expand_inputs(inputs: list[str], notes: list[str] | None = None) -> list[str]:
    """Folders become their image files and globs their matches (sorted); anything else stays as given.

    A folder lists every entry with an image extension that is not itself a folder: a FIFO, a broken
    symbolic link or a socket named ``x.png`` is listed too, so that it gets its error line like any bad
    file instead of vanishing. A path that does not exist is kept, so that it is reported as an error.
    A folder's subfolders are not read; ``notes`` (if given) gets a line saying so, and how to read them.
    """
    paths: list[str] = []
    for item in inputs:
        if os.path.isdir(item):
            entries = list(Path(item).iterdir())
            found = sorted(str(p) for p in entries if not p.is_dir() and p.suffix.lower() in IMAGE_EXTENSIONS)
            paths.extend(found)
            folders = sum(p.is_dir() for p in entries)
            if folders and notes is not None:
                pattern = os.path.join(item, "**", "*.jpg")
                notes.append(f"{item}: {folders} subfolder{'s' if folders > 1 else ''} not read (a pattern such as "
                             f"'{pattern}' reads the pictures in them too)")
        elif not os.path.lexists(item) and glob.has_magic(item):
            matches = [m for m in sorted(glob.glob(item, recursive=True)) if not os.path.isdir(m)]
            if matches:
                paths.extend(matches)
            else:
                paths.append(item)  # reported as "no such file"
        else:
            paths.append(item)
    return paths
