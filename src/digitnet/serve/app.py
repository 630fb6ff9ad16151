"""The web server: a drawing page, a JSON API over :class:`~digitnet.recognizer.Recognizer`, offline API docs.

``create_app(model_dir)`` loads the model once per process. Every answer, errors included, is JSON:
``{"error": "...", "status": N}`` with 400 (malformed request), 413 (too large), 415 (unsupported content
type) or 422 (well-formed but unusable input); the server never shows a traceback.

Concurrent single-image ``pixels`` requests go through a :class:`MicroBatcher`: while one forward pass
runs, new requests queue up and the next pass takes them all at once. On a 2-core CPU under 16 clients
this halves the server's CPU time per request and adds no delay to a lone request
(see ``benchmarks/load_test.py``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import gc
import io
import json
import logging
import os
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image, UnidentifiedImageError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from digitnet.recognizer import Recognizer
from digitnet.vision.pipeline import NO_INK, prepare_number
from digitnet.vision.pipeline import number_answer as read_answer

try:
    import orjson
except ImportError:  # optional (the serve extra installs it)
    orjson = None

STATIC_DIR = Path(__file__).resolve().parent / "static"
log = logging.getLogger("digitnet.serve")

# Content types that are not images but that browsers and tools use for any uploaded file.
GENERIC_CONTENT_TYPES = {"", "application/octet-stream", "binary/octet-stream"}
# The page is self-contained: this policy makes the browser refuse anything not served by this app.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
                               "style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@dataclass
class ServeSettings:
    """Limits and tuning of one server process."""

    max_upload_bytes: int = 8 * 1024 * 1024  # request body; 413 above
    max_pixels: int = 40_000_000  # decoded width × height of one picture (a 40 MP photo); 413 above
    max_images: int = 64  # images in one batch request; 413 above
    batch: bool = True  # micro-batch concurrent pixel requests
    max_batch: int = 128  # images in one forward pass
    threads: int | None = 1  # torch threads; 1 measured fastest for small batches on a shared CPU
    image_workers: int = 2  # photos decoded and read at once (each may be large)

    @classmethod
    def from_env(cls) -> ServeSettings:
        """Settings passed by ``digitnet serve`` to its worker processes."""
        env = os.environ
        return cls(
            max_upload_bytes=int(env.get("DIGITNET_SERVE_MAX_UPLOAD") or cls.max_upload_bytes),
            max_pixels=int(env.get("DIGITNET_SERVE_MAX_PIXELS") or cls.max_pixels),
            batch=env.get("DIGITNET_SERVE_BATCH", "1") != "0",
            threads=int(env.get("DIGITNET_SERVE_THREADS") or 1),
        )


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


def json_dumps(obj: Any) -> bytes:
    if orjson is not None:
        return orjson.dumps(obj)
    return json.dumps(obj, separators=(",", ":")).encode()


def json_response(obj: Any, status: int = 200) -> Response:
    # Plain dicts serialized directly: no response-model validation or jsonable_encoder on the hot path.
    return Response(json_dumps(obj), status_code=status, media_type="application/json")


def error_response(status: int, message: str) -> Response:
    return json_response({"error": message, "status": status}, status)


# ---------------------------------------------------------------------------------------------------------
# Micro-batching


class MicroBatcher:
    """Gathers concurrent single-image classifications into one forward pass.

    No timer: the first request starts a pass at once; requests that arrive while a pass runs wait for it
    and then go together in the next one. A lone request is never delayed, and under load the batch grows
    with the queue. All passes run on one thread, so the model is never called concurrently.
    """

    def __init__(self, classify, max_batch: int = 128):
        self.classify = classify
        self.max_batch = max_batch
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="digitnet-model")
        self._queue: list[tuple[np.ndarray, asyncio.Future]] = []
        self._running = False
        self._task: asyncio.Task | None = None
        self.passes = 0
        self.images = 0

    async def submit(self, image: np.ndarray) -> np.ndarray:
        """Probabilities (10,) of one uint8 28×28 image."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.append((image, future))
        if not self._running:
            self._running = True
            self._task = loop.create_task(self._run())  # keep a reference: the loop holds tasks weakly
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                batch, self._queue = self._queue[:self.max_batch], self._queue[self.max_batch:]
                batch = [(x, f) for x, f in batch if not f.done()]  # drop requests whose client went away
                if not batch:
                    continue
                images = np.stack([x for x, _ in batch])
                try:
                    probs = await loop.run_in_executor(self.executor, self.classify, images)
                except Exception as exc:  # the same error for everyone in the pass
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                self.passes += 1
                self.images += len(batch)
                for (_, future), row in zip(batch, probs, strict=True):
                    if not future.done():
                        future.set_result(row)
        finally:
            self._running = False

    def stats(self) -> dict:
        return {"passes": self.passes, "images": self.images,
                "mean_batch": round(self.images / self.passes, 2) if self.passes else 0.0}

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


# ---------------------------------------------------------------------------------------------------------
# Request parsing: everything a client can send becomes a list of items, each pixels or encoded bytes.


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


TRUE_WORDS = {"1", "true", "yes", "on", ""}  # a bare ?debug counts as on
FALSE_WORDS = {"0", "false", "no", "off"}


def query_flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name)
    if value is None:
        return False
    if value.lower() in TRUE_WORDS | FALSE_WORDS:
        return value.lower() in TRUE_WORDS
    raise ApiError(422, f"query parameter {name}={value!r}: expected 1/0 or true/false")


def query_number(request: Request, name: str, kind: type, low: float, high: float) -> Any:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    try:
        number = kind(value)
    except ValueError:
        raise ApiError(422, f"query parameter {name}={value!r}: expected {'an integer' if kind is int else 'a number'}"
                       ) from None
    if not low <= number <= high:
        raise ApiError(422, f"query parameter {name}={value!r}: expected {low:g}..{high:g}")
    return number


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def parse_request(request: Request, settings: ServeSettings) -> tuple[list[Item], bool]:
    """The images of a request and whether the client sent a batch (answered as ``{"results": [...]}``)."""
    kind = media_type(request)
    if kind == "application/json" or kind.endswith("+json"):
        return parse_json(await request.body(), settings)
    if kind == "multipart/form-data":
        return await parse_multipart(request, settings)
    if kind.startswith("image/"):
        body = await request.body()
        if not body:
            raise ApiError(400, "empty request body")
        return [Item(data=body)], False
    shown = kind or "none"
    raise ApiError(415, f"unsupported content type {shown!r}: send multipart/form-data (field 'file'), "
                        "application/json ({'pixels': ...} or {'image_base64': ...}) or an image/* body")


def parse_json(body: bytes, settings: ServeSettings) -> tuple[list[Item], bool]:
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
        return [json_item(v, settings.max_upload_bytes, name=str(i)) for i, v in enumerate(images)], True
    if "pixels" not in payload and "image_base64" not in payload:
        raise ApiError(400, "the JSON body needs 'pixels', 'image_base64' or 'images'")
    item = json_item(payload, settings.max_upload_bytes)
    if item.error:
        raise item.error
    return [item], False


async def parse_multipart(request: Request, settings: ServeSettings) -> tuple[list[Item], bool]:
    form = await request.form(max_files=settings.max_images + 1, max_fields=settings.max_images + 16)
    try:
        files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
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
        return items, len(files) > 1
    finally:
        await form.close()


def check_image(data: bytes, max_pixels: int) -> None:
    """Refuse undecodable bytes and decompression bombs from the header alone, before any pixel is decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own cap is lower
            with Image.open(io.BytesIO(data)) as im:
                width, height = im.size
    except Image.DecompressionBombError:
        raise ApiError(413, f"image has more than {max_pixels:,} pixels (decompression bomb?)") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise ApiError(422, "cannot decode the image: not a picture, or a format that cannot be read "
                            "(PNG, JPEG, BMP, GIF, TIFF and WebP can)") from None
    if width * height > max_pixels:
        raise ApiError(413, f"image is {width}×{height} = {width * height:,} pixels; the limit is {max_pixels:,}")


def png_base64(image: np.ndarray) -> str:
    """A uint8 grayscale array as a base64 PNG (what the page shows as 'the model saw')."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), "L").save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


# ---------------------------------------------------------------------------------------------------------
# The service: turns items into the answers of `digitnet predict --json` / `digitnet read --json`.


def result_from_probabilities(probs: np.ndarray | None, top_k: int | None = None,
                              min_confidence: float | None = None, path: str | None = None,
                              note: str | None = None) -> dict:
    """The fields of ``digitnet predict --json``, built as ``Recognizer.answer`` builds them.

    ``probs`` is None when there is nothing to classify; ``note`` then says why.
    """
    result: dict[str, Any] = {"path": path, "digit": None, "confidence": None, "probabilities": None,
                              "error": None, "note": note}
    if probs is None:
        if top_k:
            result["top_k"] = []
        return result
    digit = int(np.argmax(probs))
    rounded = np.round(probs.astype(np.float64), 6).tolist()  # one numpy call, not ten round() calls
    result.update(digit=digit, confidence=rounded[digit], probabilities=rounded)
    if min_confidence is not None and probs[digit] < min_confidence:
        result.update(digit=None, note=f"not sure: confidence {probs[digit]:.2f} < {min_confidence:g}")
    if top_k:
        order = np.argsort(-probs, kind="stable")[:top_k]
        result["top_k"] = [{"digit": int(d), "probability": round(float(probs[d]), 6)} for d in order]
    return result


def error_result(item: Item, error: ApiError, fields: tuple[str, ...]) -> dict:
    """A failed image inside a batch: the usual fields, empty, with ``error`` set."""
    return {"path": item.name, **dict.fromkeys(fields), "error": error.message, "note": None,
            "status": error.status}


PREDICT_FIELDS = ("digit", "confidence", "probabilities")
READ_FIELDS = ("text", "digits")


class Service:
    """The shared model and the work queues of one server process."""

    def __init__(self, recognizer: Recognizer, settings: ServeSettings):
        self.recognizer = recognizer
        self.settings = settings
        self.batcher = MicroBatcher(recognizer.classify, settings.max_batch) if settings.batch else None
        self.image_limiter = anyio.CapacityLimiter(settings.image_workers)
        self.started = time.time()

    async def classify(self, pixels: np.ndarray) -> np.ndarray:
        if self.batcher is not None:
            return await self.batcher.submit(pixels)
        return (await anyio.to_thread.run_sync(self.recognizer.classify, pixels[None]))[0]

    async def predict(self, item: Item, debug: bool, top_k: int | None, min_confidence: float | None) -> dict:
        """``Recognizer.predict`` for one item, with the classification going through the micro-batcher."""
        if item.error:
            return error_result(item, item.error, PREDICT_FIELDS)
        try:
            if item.pixels is not None:
                image, note = (item.pixels, None) if item.pixels.any() else (None, NO_INK)
            else:  # decoding and normalizing a picture is slow: off the event loop, a few at a time
                image, note = await anyio.to_thread.run_sync(self._prepare_picture, item, limiter=self.image_limiter)
        except ApiError as exc:
            return error_result(item, exc, PREDICT_FIELDS)
        probs = await self.classify(image) if image is not None else None
        result = result_from_probabilities(probs, top_k, min_confidence, item.name, note)
        if debug and image is not None:
            result["input_png"] = png_base64(image)
        return result

    async def read(self, item: Item, debug: bool) -> dict:
        if item.error:
            return error_result(item, item.error, READ_FIELDS)
        try:
            if item.data is None:
                raise ApiError(422, "/api/read needs a picture (a file or image_base64), not pixels; "
                                    "use /api/predict for a 28×28 digit")
            return await anyio.to_thread.run_sync(self._read_picture, item, debug, limiter=self.image_limiter)
        except ApiError as exc:
            return error_result(item, exc, READ_FIELDS)

    def _prepare_picture(self, item: Item) -> tuple[np.ndarray | None, str | None]:
        """The 28×28 the model will see for a picture (``Recognizer.prepare``), or the note saying why none."""
        check_image(item.data, self.settings.max_pixels)
        prepared = self.recognizer.prepare(item.data)
        if prepared.error:
            raise ApiError(422, _named(prepared.error, item.name))
        return prepared.image, prepared.note

    def _read_picture(self, item: Item, debug: bool) -> dict:
        check_image(item.data, self.settings.max_pixels)
        number = prepare_number(item.data, self.recognizer.classify)
        result = read_answer(number)
        if result.get("error"):
            raise ApiError(422, _named(result["error"], item.name))
        result["path"] = item.name
        if debug:  # the very 28×28 inputs the answer came from
            for digit, crop, row in zip(result["digits"], number.images, number.probabilities, strict=True):
                digit["input_png"] = png_base64(crop)
                digit["probabilities"] = [round(float(p), 6) for p in row]
        return result

    def health(self) -> dict:
        return {"status": "ok", "model": self.recognizer.spec.name, "version": _version(), "pid": os.getpid(),
                "uptime_s": round(time.time() - self.started, 1),
                "batcher": self.batcher.stats() if self.batcher else None}

    def model_info(self) -> dict:
        meta = self.recognizer.metadata
        spec = self.recognizer.spec
        metrics = meta.get("metrics", {})
        return {
            "architecture": spec.name, "description": spec.description,
            "arch_kwargs": meta.get("arch_kwargs", {}), "parameters": meta.get("num_parameters"),
            "accuracy": metrics.get("test_accuracy"), "test_samples": metrics.get("test_samples"),
            "input_size": spec.input_size,
            "normalization": meta.get("normalization", {"name": spec.normalization, "mean": spec.mean_std[0],
                                                        "std": spec.mean_std[1]}),
            "temperature": self.recognizer.temperature, "created": meta.get("created"),
            "version": _version(), "format_version": meta.get("format_version"),
            "weights_sha256": meta.get("weights_sha256"), "metrics": metrics,
        }


def _named(message: str, name: str | None) -> str:
    """Vision errors call uploaded bytes "<bytes>"; name the uploaded file instead."""
    return message.replace("<bytes>", name) if name else message.replace("<bytes>: ", "")


def _version() -> str:
    from digitnet import __version__

    return __version__


# ---------------------------------------------------------------------------------------------------------
# Middleware: the body limit must act before any parser buffers a huge body.


class BodyLimitMiddleware:
    """Reads request bodies up to ``max_bytes`` and answers 413 beyond, before the app sees them.

    An over-long body is still read to the end (up to ``drain_bytes``) so the client, still sending,
    receives the 413 instead of a reset connection.
    """

    def __init__(self, app, max_bytes: int, drain_bytes: int | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.drain_bytes = drain_bytes or max(4 * max_bytes, 64 * 1024 * 1024)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.drain_bytes):
            return await self._too_large(scope, send, close=True)
        chunks, total, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            total += len(body)
            more = message.get("more_body", False)
            if total > self.drain_bytes:
                return await self._too_large(scope, send, close=True)
            if total <= self.max_bytes:
                chunks.append(body)
        if total > self.max_bytes:
            return await self._too_large(scope, send)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope, send, close: bool = False) -> None:
        body = json.dumps({"error": f"request body is larger than the {self.max_bytes:,}-byte limit",
                           "status": 413}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if close:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


# ---------------------------------------------------------------------------------------------------------
# OpenAPI descriptions of the bodies the handlers parse themselves (for /openapi.json and /docs).

_PIXELS_SCHEMA = {
    "type": "array", "description": "28×28 rows, or 784 numbers; 0..255, or 0..1 when none exceeds 1; "
                                    "white ink on black, digit centred as in MNIST",
    "items": {"oneOf": [{"type": "number"}, {"type": "array", "items": {"type": "number"}}]},
}
_IMAGE_B64_SCHEMA = {"type": "string", "description": "PNG/JPEG/... bytes as base64 (a data: URL is fine)"}
_JSON_BODY = {
    "oneOf": [
        {"type": "object", "title": "Pixels", "required": ["pixels"], "properties": {"pixels": _PIXELS_SCHEMA}},
        {"type": "object", "title": "Encoded picture", "required": ["image_base64"],
         "properties": {"image_base64": _IMAGE_B64_SCHEMA}},
        {"type": "object", "title": "Batch", "required": ["images"], "properties": {"images": {
            "type": "array", "maxItems": 64, "description": "answered as {'results': [...]}", "items": {"oneOf": [
                {"type": "object", "properties": {"pixels": _PIXELS_SCHEMA, "image_base64": _IMAGE_B64_SCHEMA,
                                                  "name": {"type": "string"}}},
                _IMAGE_B64_SCHEMA, _PIXELS_SCHEMA]}}}},
    ],
}
_MULTIPART_BODY = {
    "type": "object", "properties": {
        "file": {"type": "array", "items": {"type": "string", "format": "binary"},
                 "description": "one picture, or several (answered as {'results': [...]})"}},
}


def _request_body(json_body: bool, parameters: list[dict]) -> dict:
    content: dict[str, Any] = {"multipart/form-data": {"schema": _MULTIPART_BODY}}
    if json_body:
        content["application/json"] = {"schema": _JSON_BODY, "example": {"image_base64": "iVBORw0KGgo..."}}
    content["image/*"] = {"schema": {"type": "string", "format": "binary"}}
    return {"requestBody": {"required": True, "content": content}, "parameters": parameters}


def _query(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


_DEBUG_PARAMETER = _query("debug", {"type": "boolean", "default": False},
                          "add input_png: the 28×28 the model saw, as a base64 PNG")
_PREDICT_PARAMETERS = [
    _DEBUG_PARAMETER,
    _query("top_k", {"type": "integer", "minimum": 1, "maximum": 10}, "add top_k: the K most likely digits"),
    _query("min_confidence", {"type": "number", "minimum": 0, "maximum": 1},
           "answer digit null (with a note) below this confidence"),
]
_READ_PARAMETERS = [_query("debug", {"type": "boolean", "default": False},
                           "add each digit's input_png (the 28×28 the model saw) and probabilities")]


_PREDICT_RESULT = {
    "type": "object", "title": "PredictResult",
    "properties": {
        "path": {"type": ["string", "null"], "description": "file name, batch index, or null"},
        "digit": {"type": ["integer", "null"], "minimum": 0, "maximum": 9},
        "confidence": {"type": ["number", "null"], "description": "calibrated probability of the digit"},
        "probabilities": {"type": ["array", "null"], "items": {"type": "number"}, "minItems": 10, "maxItems": 10},
        "top_k": {"type": "array", "items": {"type": "object", "properties": {
            "digit": {"type": "integer"}, "probability": {"type": "number"}}}, "description": "with ?top_k=K"},
        "input_png": {"type": "string", "description": "with ?debug=1: the 28×28 the model saw, base64 PNG"},
        "error": {"type": ["string", "null"], "description": "why the picture could not be used"},
        "note": {"type": ["string", "null"], "description": "why there is no digit (no ink, a number, unsure)"},
    },
}
_READ_RESULT = {
    "type": "object", "title": "ReadResult",
    "properties": {
        "path": {"type": ["string", "null"]},
        "text": {"type": ["string", "null"], "description": "the digits read, left to right"},
        "digits": {"type": ["array", "null"], "items": {"type": "object", "properties": {
            "digit": {"type": "integer"}, "confidence": {"type": "number"},
            "box": {"type": "array", "items": {"type": "integer"},
                    "description": "x0, y0, x1, y1 (exclusive) in the picture's pixels, after EXIF rotation"},
            "input_png": {"type": "string", "description": "with ?debug=1: the 28×28 the model saw"},
            "probabilities": {"type": "array", "items": {"type": "number"}, "description": "with ?debug=1"}}}},
        "error": {"type": ["string", "null"]},
        "note": {"type": ["string", "null"], "description": "e.g. no ink found"},
    },
}
_ERROR = {"description": "JSON error", "content": {"application/json": {"schema": {
    "type": "object", "properties": {"error": {"type": "string"}, "status": {"type": "integer"}}}}}}


_HEALTH = {"type": "object", "title": "Health", "properties": {
    "status": {"const": "ok"}, "model": {"type": "string"}, "version": {"type": "string"},
    "pid": {"type": "integer"}, "uptime_s": {"type": "number"},
    "batcher": {"type": ["object", "null"], "description": "forward passes and images since start",
                "properties": {"passes": {"type": "integer"}, "images": {"type": "integer"},
                               "mean_batch": {"type": "number"}}}}}
_MODEL = {"type": "object", "title": "ModelInfo", "properties": {
    "architecture": {"type": "string"}, "description": {"type": "string"}, "arch_kwargs": {"type": "object"},
    "parameters": {"type": "integer"}, "accuracy": {"type": ["number", "null"], "description": "MNIST test"},
    "test_samples": {"type": ["integer", "null"]}, "input_size": {"type": "integer"},
    "normalization": {"type": "object", "properties": {"name": {"type": "string"}, "mean": {"type": "number"},
                                                      "std": {"type": "number"}}},
    "temperature": {"type": "number", "description": "calibration: probabilities = softmax(logits / T)"},
    "created": {"type": ["string", "null"]}, "version": {"type": "string", "description": "digitnet version"},
    "format_version": {"type": ["integer", "null"]}, "weights_sha256": {"type": ["string", "null"]},
    "metrics": {"type": "object"}}}


def _json_ok(schema: dict, description: str) -> dict:
    return {200: {"description": description, "content": {"application/json": {"schema": schema}}}}


def _responses(result_schema: dict) -> dict:
    batch = {"type": "object", "properties": {"results": {"type": "array", "items": result_schema}}}
    ok = {"description": "one result, or {'results': [...]} for a batch",
          "content": {"application/json": {"schema": {"oneOf": [result_schema, batch]}}}}
    errors = {
        "400": {**_ERROR, "description": "malformed request (bad JSON or base64, no file)"},
        "413": {**_ERROR, "description": "body, image or batch too large"},
        "415": {**_ERROR, "description": "unsupported content type"},
        "422": {**_ERROR, "description": "undecodable image or unusable pixels"},
    }
    return {"200": ok, **errors}


# ---------------------------------------------------------------------------------------------------------
# The app


def create_app(model_dir: str | os.PathLike | None = None, *, recognizer: Recognizer | None = None,
               settings: ServeSettings | None = None) -> FastAPI:
    """The FastAPI app serving ``model_dir`` (default: the bundled model); loads the model once."""
    settings = settings or ServeSettings()
    if settings.threads:
        import torch

        torch.set_num_threads(settings.threads)
    service = Service(recognizer or Recognizer.from_pretrained(model_dir), settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # torch, numpy and the app leave ~200k long-lived objects that every full garbage collection scans:
        # ~150 ms during which no request is answered (measured as p99 spikes). Freezing them after start-up
        # takes them out of collection for good.
        gc.collect()
        gc.freeze()
        yield
        if service.batcher is not None:
            service.batcher.close()

    app = FastAPI(
        title="digitnet", version=_version(), lifespan=lifespan,
        description="Handwritten digit recognition. `POST /api/predict` classifies one digit (or a batch), "
                    "`POST /api/read` reads a written number. Every error is JSON: `{\"error\", \"status\"}`.",
        # FastAPI's default /docs loads Swagger UI from a CDN; this app serves its own offline page instead.
        docs_url=None, redoc_url=None,
    )
    app.state.service = service
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return error_response(exc.status, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return error_response(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()]
        return error_response(422, "; ".join(parts) or "invalid request")

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return error_response(500, "internal server error")

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        return FileResponse(STATIC_DIR / "index.html", headers=PAGE_HEADERS)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        return FileResponse(STATIC_DIR / "docs.html", headers=PAGE_HEADERS)

    @app.get("/api/health", summary="Liveness and micro-batcher counters", responses=_json_ok(_HEALTH, "alive"))
    async def health() -> Response:
        return json_response(service.health())

    @app.get("/api/model", summary="The served model's metadata: architecture, accuracy, normalization, version",
             responses=_json_ok(_MODEL, "the model's metadata"))
    async def model() -> Response:
        return json_response(service.model_info())

    @app.post("/api/predict", summary="Classify one digit, or a batch",
              description="Send a 28×28 digit as JSON `pixels`, or a picture (multipart `file`, JSON "
                          "`image_base64`, or a raw `image/*` body) that is turned into MNIST-like input "
                          "first. Several files, or JSON `images`, make a batch answered as `results`. "
                          "Fields as `digitnet predict --json`.",
              openapi_extra=_request_body(json_body=True, parameters=_PREDICT_PARAMETERS),
              responses=_responses(_PREDICT_RESULT))
    async def predict(request: Request) -> Response:
        # Query parameters are read by hand: FastAPI's per-request parameter solving cost a third of the
        # app's time per prediction (measured). They are documented in the OpenAPI schema all the same.
        debug = query_flag(request, "debug")
        top_k = query_number(request, "top_k", int, 1, 10)
        min_confidence = query_number(request, "min_confidence", float, 0.0, 1.0)
        items, batch = await parse_request(request, settings)
        if len(items) == 1:  # the hot path: no gather machinery for a single image
            results = [await service.predict(items[0], debug, top_k, min_confidence)]
        else:
            results = await asyncio.gather(*(service.predict(item, debug, top_k, min_confidence) for item in items))
        return _answer(results, batch)

    @app.post("/api/read", summary="Read a written number from a picture",
              description="A picture (multipart `file`, JSON `image_base64`, or a raw `image/*` body) of one "
                          "or more digits. Fields as `digitnet read --json`; `?debug=1` adds each digit's "
                          "28×28 as `input_png`.",
              openapi_extra=_request_body(json_body=True, parameters=_READ_PARAMETERS),
              responses=_responses(_READ_RESULT))
    async def read(request: Request) -> Response:
        debug = query_flag(request, "debug")
        items, batch = await parse_request(request, settings)
        results = await asyncio.gather(*(service.read(item, debug) for item in items))
        return _answer(results, batch)

    return app


def _answer(results: list[dict], batch: bool) -> Response:
    """One result (an error status when it failed), or all of a batch with per-image errors."""
    if not batch:
        result = results[0]
        if result.get("error") is not None:
            return error_response(result.get("status", 422), result["error"])
        return json_response(result)
    return json_response({"results": results})


def create_app_from_env() -> FastAPI:
    """App factory for ``uvicorn --factory`` worker processes started by ``digitnet serve``."""
    return create_app(os.environ.get("DIGITNET_SERVE_MODEL") or None, settings=ServeSettings.from_env())
