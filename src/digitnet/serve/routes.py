"""The HTTP routes: pages, ``/api/health``, ``/api/model``, ``/api/predict``, ``/api/read``.

The query parameters are pydantic models (``Query()``), the body comes from the
:func:`~digitnet.serve.requests.request_images` dependency (``UploadFile`` fields, or JSON, or an ``image/*``
body), so ``/openapi.json`` is FastAPI's own, from the models in :mod:`digitnet.serve.schemas`.
Answers are the pipeline's plain dicts serialized directly (orjson when installed): no response-model validation
or ``jsonable_encoder`` on the hot path; their schema comes from the models all the same.
The pictures of a request are one :class:`~digitnet.serve.service.Job`, stopped when its client disconnects.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, Response

from digitnet.serve.requests import Images, orjson, request_images
from digitnet.serve.schemas import (
    ERROR_RESPONSES,
    READ_RESPONSES,
    Health,
    ModelInfo,
    PredictOptions,
    PredictRequest,
    PredictResult,
    PredictResults,
    ReadOptions,
    ReadRequest,
    ReadResult,
    ReadResults,
    other_bodies,
)
from digitnet.serve.service import Job, Service

STATIC_DIR = Path(__file__).resolve().parent / "static"
# The page is self-contained: this policy makes the browser refuse anything not served by this app.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
                               "style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def json_dumps(obj: Any) -> bytes:
    if orjson is not None:
        return orjson.dumps(obj)
    return json.dumps(obj, separators=(",", ":")).encode()


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(json_dumps(obj), status_code=status, media_type="application/json")


def error_response(status: int, message: str) -> Response:
    """Every error the server gives: ``{"error": message, "status": status}``."""
    return json_response({"error": message, "status": status}, status)


def answer(results: list[dict], batch: bool) -> Response:
    """One result (an error status when it failed), or all of a batch with per-image errors."""
    if not batch:
        result = results[0]
        if result.get("error") is not None:
            return error_response(result.get("status", 422), result["error"])
        return json_response(result)
    return json_response({"results": results})


def service_of(request: Request) -> Service:
    return request.app.state.service


@asynccontextmanager
async def client_job(request: Request) -> AsyncIterator[Job]:
    """The job of a request's pictures: stopped as soon as its client disconnects, and when the request ends
    (answered, failed, or cancelled by a server shutdown), so that its worker threads skip what is left.

    A task waits for the disconnect rather than polling ``request.is_disconnected()``: the worker threads cannot
    await it, and a waiting task notices at once at no cost.
    """
    job = Job()

    async def watch() -> None:
        # The body has been read: the server's next message is the disconnect, whenever the client goes.
        while (await request.receive())["type"] != "http.disconnect":
            pass
        job.stop()

    watcher = asyncio.create_task(watch())
    try:
        yield job
    finally:
        watcher.cancel()
        job.stop()


router = APIRouter()


@router.get("/", include_in_schema=False)
async def index() -> Response:
    return FileResponse(STATIC_DIR / "index.html", headers=PAGE_HEADERS)


@router.get("/api/health", summary="Liveness and micro-batcher counters", response_model=Health)
async def health(request: Request) -> Response:
    return json_response(service_of(request).health())


@router.get("/api/model", summary="The served model's metadata: architecture, accuracy, normalization, version",
            response_model=ModelInfo)
async def model(request: Request) -> Response:
    return json_response(service_of(request).model_info())


@router.post("/api/predict", summary="Classify one digit, or a batch",
             description="Send a 28×28 digit as JSON `pixels`, or a picture (multipart `file`, JSON "
                         "`image_base64`, or a raw `image/*` body) that is turned into MNIST-like input "
                         "first. Several files, or JSON `images`, make a batch answered as `results`. "
                         "Fields as `digitnet predict --json`.",
             openapi_extra=other_bodies(PredictRequest),
             response_model=PredictResult | PredictResults, responses=ERROR_RESPONSES)
async def predict(request: Request, options: Annotated[PredictOptions, Query()],
                  images: Annotated[Images, Depends(request_images)]) -> Response:
    service = service_of(request)
    items = images.items
    if len(items) == 1 and items[0].data is None:  # the hot path, 28×28 pixels: no gather machinery, no watcher
        results = [await service.predict(items[0], options)]
    else:
        async with client_job(request) as job:
            results = await asyncio.gather(*(service.predict(item, options, job) for item in items))
    return answer(results, images.batch)


@router.post("/api/read", summary="Read written numbers from a picture: lines, decimal points, signs",
             description="A picture (multipart `file`, JSON `image_base64`, or a raw `image/*` body) of one "
                         "or more lines of writing. `lines` holds each line top to bottom with its `text`, "
                         "`box` and items left to right; `text` joins the lines with `\\n` (a receipt: "
                         "`\"12.50\\n-3\"`). Each item has a `char`: a digit, or a separator (`.` `,` `-` "
                         "or a space between digit groups, whose `digit` is null), as in `23.11.2026` or "
                         "`12 345`. `digits` lists every item of every line in reading order. Fields as "
                         "`digitnet read --json`; `?debug=1` adds each digit's 28×28 as `input_png`.",
             openapi_extra=other_bodies(ReadRequest),
             response_model=ReadResult | ReadResults, responses=READ_RESPONSES)
async def read(request: Request, options: Annotated[ReadOptions, Query()],
               images: Annotated[Images, Depends(request_images)]) -> Response:
    service = service_of(request)
    async with client_job(request) as job:
        results = await asyncio.gather(*(service.read(item, options, job) for item in images.items))
    return answer(results, images.batch)
