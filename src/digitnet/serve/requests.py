"""Request bodies and limits: everything a client can send becomes :class:`Images`, a list of :class:`Item`.

A request is JSON (``pixels``, ``image_base64`` or a batch of ``images``), multipart (fields named ``file``, as
FastAPI's ``UploadFile``), or a raw ``image/*`` body; :func:`request_images` is the routes' dependency for it.
Each malformed image gets its own :class:`ApiError` (400, 413, 415 or 422), so one bad image in a batch fails
alone: JSON is parsed here rather than validated by FastAPI, which would refuse the whole request for it.
Pictures are checked (their size from the header, before any pixel is decoded) by
:func:`digitnet.vision.io.load_picture`, under ``ServeSettings.max_pixels``. The body size limit itself is
:class:`~digitnet.serve.middleware.BodyLimitMiddleware`'s.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from fastapi import File, Request, UploadFile

from digitnet.serve.settings import ServeSettings

try:
    import orjson
except ImportError:  # optional (the serve extra installs it)
    orjson = None

# Content types that are not images but that browsers and tools use for any uploaded file.
GENERIC_CONTENT_TYPES = {"", "application/octet-stream", "binary/octet-stream"}
# A form part named "file" without a filename is a text field to the form parser, not an upload (curl -F file=x.png
# rather than file=@x.png): FastAPI refuses it before request_images runs, with pydantic's words.
NOT_A_FILE = ("the form field 'file' is text, not a file upload (its part has no filename): send the picture as a "
              "file, e.g. curl -F file=@digit.png")


class ApiError(Exception):
    """A client error: answered as ``{"error": message, "status": status}``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def json_loads(data: bytes) -> Any:
    """Strict JSON (no NaN or Infinity), with orjson when it is installed: it parses pixel lists ~5× faster."""
    if orjson is not None:
        return orjson.loads(data)
    return json.loads(data, parse_constant=_reject_constant)


@dataclass
class Item:
    """One image of a request: 28×28 pixels, an encoded picture, or the reason it is unusable."""

    name: str | None = None
    pixels: np.ndarray | None = None
    data: bytes | None = None
    error: ApiError | None = None


def parse_pixels(value: Any) -> np.ndarray:
    """28×28 or 784 numbers, 0..255 (or 0..1 when none exceeds 1) → uint8 (28, 28)."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise ApiError(422, "pixels must be 28×28 (or 784) numbers: a list of 28 rows of 28, or a flat list") from None
    if arr.shape not in ((28, 28), (784,), (1, 28, 28)):
        raise ApiError(422, f"pixels has shape {list(arr.shape)}; expected 28×28 or 784 numbers")
    if not np.isfinite(arr).all():
        raise ApiError(422, "pixels must be finite numbers")
    low, high = arr.min(), arr.max()
    if low < 0 or high > 255:
        raise ApiError(422, f"pixel values must be within 0..255 (or 0..1); got {low:g}..{high:g}")
    if high <= 1.0:
        arr = arr * 255.0
    return np.rint(arr).astype(np.uint8).reshape(28, 28)


def decode_base64(value: Any, max_bytes: int) -> bytes:
    """Standard base64, optionally as a ``data:image/...;base64,`` URL."""
    if not isinstance(value, str):
        raise ApiError(400, "image_base64 must be a string")
    if value.startswith("data:"):
        value = value.partition(",")[2]
    if len(value) * 3 // 4 > max_bytes:
        raise ApiError(413, f"image is larger than {max_bytes:,} bytes")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "image_base64 is not valid base64") from None


def json_item(value: Any, max_bytes: int, name: str | None = None) -> Item:
    """One element of a JSON request: {"pixels"}, {"image_base64"}, a base64 string or a pixel list."""
    try:
        if isinstance(value, dict):
            name = value.get("name") if isinstance(value.get("name"), str) else name
            if "pixels" in value:
                return Item(name, pixels=parse_pixels(value["pixels"]))
            if "image_base64" in value:
                return Item(name, data=decode_base64(value["image_base64"], max_bytes))
            raise ApiError(400, "each image needs a 'pixels' or an 'image_base64' field")
        if isinstance(value, str):
            return Item(name, data=decode_base64(value, max_bytes))
        if isinstance(value, list):
            return Item(name, pixels=parse_pixels(value))
        raise ApiError(400, "an image is an object with 'pixels' or 'image_base64', a base64 string, or a list")
    except ApiError as exc:
        return Item(name, error=exc)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


@dataclass
class Images:
    """The images of a request, and whether the client sent a batch (answered as ``{"results": [...]}``)."""

    items: list[Item]
    batch: bool


async def request_images(
    request: Request,
    # A default of [] rather than None: the form's schema stays a plain array of files (Swagger UI shows file
    # pickers), and FastAPI copies it per request. Not default_factory=list: pydantic inspects the factory's
    # signature on every call, which cost 2 ms a request (measured).
    file: Annotated[list[UploadFile], File(description="one picture, or several: a batch")] = [],  # noqa: B006
) -> Images:
    """The dependency of the picture routes: a request's images, whatever form they came in.

    A multipart body is parsed by FastAPI (its ``file`` fields, as ``UploadFile``); a JSON or a raw ``image/*``
    body, which FastAPI cannot take beside a form, is read here (the routes document both from the models).
    """
    settings = request.app.state.service.settings
    kind = media_type(request)
    if kind == "multipart/form-data":
        return await multipart_images(file, settings)
    if kind == "application/json" or kind.endswith("+json"):
        return parse_json(await request.body(), settings)
    if kind.startswith("image/"):
        body = await request.body()
        if not body:
            raise ApiError(400, "empty request body")
        return Images([Item(data=body)], False)
    shown = kind or "none"
    raise ApiError(415, f"unsupported content type {shown!r}: send multipart/form-data (field 'file'), "
                        "application/json ({'pixels': ...} or {'image_base64': ...}) or an image/* body")


def parse_json(body: bytes, settings: ServeSettings) -> Images:
    try:
        payload = json_loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError (json, orjson), UnicodeDecodeError, NaN, [[[[…
        raise ApiError(400, f"invalid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ApiError(400, "the JSON body must be an object: {'pixels': ...}, {'image_base64': ...} "
                            "or {'images': [...]}")
    if "images" in payload:
        images = payload["images"]
        if not isinstance(images, list) or not images:
            raise ApiError(400, "'images' must be a non-empty list")
        if len(images) > settings.max_images:
            raise ApiError(413, f"{len(images)} images in one request; the limit is {settings.max_images}")
        return Images([json_item(v, settings.max_upload_bytes, name=str(i)) for i, v in enumerate(images)], True)
    if "pixels" not in payload and "image_base64" not in payload:
        raise ApiError(400, "the JSON body needs 'pixels', 'image_base64' or 'images'")
    item = json_item(payload, settings.max_upload_bytes)
    if item.error:
        raise item.error
    return Images([item], False)


async def multipart_images(files: list[UploadFile], settings: ServeSettings) -> Images:
    """The uploaded files of a multipart request (FastAPI closes them after the answer)."""
    if not files:
        raise ApiError(400, "no file in the form: send the image in a file field named 'file'")
    if len(files) > settings.max_images:
        raise ApiError(413, f"{len(files)} files in one request; the limit is {settings.max_images}")
    items = []
    for upload in files:
        declared = (upload.content_type or "").split(";", 1)[0].strip().lower()
        if declared not in GENERIC_CONTENT_TYPES and not declared.startswith("image/"):
            error = ApiError(415, f"{upload.filename or 'file'}: content type {declared!r} is not an image")
            items.append(Item(upload.filename, error=error))
            continue
        data = await upload.read()
        if not data:
            items.append(Item(upload.filename, error=ApiError(400, f"{upload.filename or 'file'}: empty file")))
            continue
        items.append(Item(upload.filename, data=data))
    return Images(items, len(files) > 1)
