"""The web server: a drawing page, a JSON API over the picture pipeline, and Swagger UI at ``/docs`` (offline).

``create_app(model_dir)`` wires the parts together and loads the model once per process:
:mod:`~digitnet.serve.settings` (limits), :mod:`~digitnet.serve.requests` (the request bodies' dependency),
:mod:`~digitnet.serve.batcher` (micro-batching), :mod:`~digitnet.serve.service` (answers through
:mod:`digitnet.vision.pipeline`), :mod:`~digitnet.serve.middleware` (the body limit, the requests in flight),
:mod:`~digitnet.serve.routes` and :mod:`~digitnet.serve.schemas` (the pydantic models ``/openapi.json`` is built
from). Every answer, errors included, is JSON: ``{"error": "...", "status": N}`` with 400 (malformed request),
413 (too large), 415 (unsupported content type), 422 (well-formed but unusable input, or an unknown query
parameter) or 503 (still running when a shutdown's grace ended); the server never shows a traceback.

Every model call is made through a :class:`~digitnet.serve.batcher.MicroBatcher`, on its one thread: while
one forward pass runs, new requests queue up and the next pass takes them all at once. On a 2-core CPU
under 16 clients this halves the server's CPU time per request and adds no delay to a lone request
(see ``benchmarks/load_test.py``).
"""

from __future__ import annotations

import gc
import logging
import os
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from digitnet.recognizer import Recognizer
from digitnet.serve.middleware import BodyLimitMiddleware, CancelledRequestMiddleware, InFlightMiddleware
from digitnet.serve.requests import NOT_A_FILE, ApiError
from digitnet.serve.routes import STATIC_DIR, error_response, router
from digitnet.serve.schemas import restore_examples
from digitnet.serve.service import Service, version
from digitnet.serve.settings import ServeSettings

__all__ = ["STATIC_DIR", "ServeSettings", "create_app", "create_app_from_env"]
log = logging.getLogger("digitnet.serve")

DESCRIPTION = ("Handwritten digit recognition. `POST /api/predict` classifies one digit (or a batch), "
               "`POST /api/read` reads a written number. Every error is JSON: `{\"error\", \"status\"}`.")


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
        service.closing.clear()  # a lifespan may run again (a TestClient per test)
        yield
        await service.close()

    # FastAPI's own /docs loads Swagger UI from a CDN; fastapi-offline serves the same Swagger UI from its
    # package (under /static-offline-docs), so "Try it out" works on a machine without network.
    app = FastAPIOffline(title="digitnet", version=version(), description=DESCRIPTION, lifespan=lifespan,
                         redoc_url=None, favicon_url="/static/favicon.svg",
                         swagger_ui_parameters={"validatorUrl": None})
    app.state.service = service
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes)
    app.add_middleware(CancelledRequestMiddleware)  # a request cancelled at shutdown, its upload too: a JSON 503
    app.add_middleware(InFlightMiddleware, counter=service)  # added last: outermost, counts uploads too
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(router)
    _add_error_handlers(app)
    _keep_examples_whole(app)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return error_response(exc.status, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return error_response(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        if any(tuple(e.get("loc", ()))[:2] == ("body", "file") for e in exc.errors()):
            return error_response(400, NOT_A_FILE)  # the only way the list of UploadFile fails validation
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()]
        return error_response(422, "; ".join(parts) or "invalid request")

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return error_response(500, "internal server error")


def _keep_examples_whole(app: FastAPI) -> None:
    """FastAPI writes ``/openapi.json`` with every null dropped, examples included (``jsonable_encoder`` with
    ``exclude_none``), and a separator's ``"digit": null`` is the point of the read examples: they go back whole.

    The schema is FastAPI's own, generated from the routes; this is FastAPI's documented way to extend it
    ("Extending OpenAPI": the app's ``openapi`` replaced by a function that calls the original) and does
    nothing else. (``FastAPIOffline`` is a function returning a plain ``FastAPI``: there is no class to subclass.)
    """
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            restore_examples(generate())
        return app.openapi_schema

    app.openapi = openapi


def create_app_from_env() -> FastAPI:
    """App factory for ``uvicorn --factory`` worker processes started by ``digitnet serve``."""
    return create_app(os.environ.get("DIGITNET_SERVE_MODEL") or None, settings=ServeSettings.from_env())
