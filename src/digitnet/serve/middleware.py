"""ASGI middleware: the body limit must act before any parser buffers a huge body; the count of requests in flight
must start before the body is read; a request the server cancels must still end in a JSON answer."""

from __future__ import annotations

import asyncio
import contextlib
import json

SHUTDOWN_MESSAGE = "the server is shutting down and could not finish this request in time: send it again"


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


class InFlightMiddleware:
    """Counts the HTTP requests the app is handling on ``counter.requests_in_flight`` (``/api/health`` reports it):
    from the moment the server hands a request over, body upload included, until the app has answered it (an
    unhandled error's 500 is sent just after, by Starlette's outermost error layer).

    Outside the body limit, which reads the body first: a request still uploading counts, as the server's shutdown
    waits for it.
    """

    def __init__(self, app, counter):
        self.app = app
        self.counter = counter

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        self.counter.requests_in_flight += 1  # one event loop: no lock needed
        try:
            await self.app(scope, receive, send)
        finally:
            self.counter.requests_in_flight -= 1


class CancelledRequestMiddleware:
    """Answers a request that the server cancels with a JSON 503, and ends it there.

    uvicorn cancels the requests still running when its graceful shutdown times out (``digitnet serve``: 10 s after
    SIGTERM). Let through, the ``CancelledError`` reaches uvicorn, which logs it with a traceback and answers a
    plain-text 500. The request's work in worker threads stops by itself (see :class:`~digitnet.serve.service.Job`).
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracked(message):
            nonlocal started
            started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except asyncio.CancelledError:
            # Ending here is what the cancellation asks for: the task is uvicorn's own, and nothing awaits it.
            if started:  # too late for an answer; uvicorn closes the connection
                return
            body = json.dumps({"error": SHUTDOWN_MESSAGE, "status": 503}).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                       (b"connection", b"close")]
            # Cancelled again (the event loop's own teardown) or the client gone: there is no one left to answer.
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await send({"type": "http.response.start", "status": 503, "headers": headers})
                await send({"type": "http.response.body", "body": body})
