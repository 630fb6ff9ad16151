"""A request whose client has gone away: its pictures' work stops between steps (each picture, each model call)
instead of reading the rest for nobody. A real uvicorn on 127.0.0.1 in this process, so the model can be watched."""

from __future__ import annotations

import socket
import threading
import time
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest

from digitnet.recognizer import Recognizer
from digitnet.serve.app import create_app
from digitnet.serve.service import Job
from digitnet.serve.settings import ServeSettings

from .conftest import serving

PICTURES = 8  # in the request; reading each calls the digit model at least once


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    return Recognizer.from_pretrained()


def raw_request(url: str, path: str, files: list) -> tuple[socket.socket, bytes]:
    """A connected socket and the bytes of a multipart POST (sent by hand, so the client can hang up mid-request)."""
    request = httpx.Request("POST", url + path, files=files)
    body = request.read()
    head = (f"POST {path} HTTP/1.1\r\nHost: {urlsplit(url).netloc}\r\n"
            f"Content-Type: {request.headers['content-type']}\r\nContent-Length: {len(body)}\r\n\r\n")
    split = urlsplit(url)
    return socket.create_connection((split.hostname, split.port), timeout=30), head.encode() + body


def test_a_read_whose_client_hung_up_stops_between_steps(recognizer, number_photo, monkeypatch):
    """The client hangs up during the first model call, which lasts until the server has noticed: each worker
    thread then makes at most the call it had already asked for, instead of reading all the pictures."""
    noticed = threading.Event()  # the request's job stopped: the server saw the client go
    stop = Job.stop

    def stop_and_tell(job: Job) -> None:
        stop(job)
        noticed.set()

    monkeypatch.setattr(Job, "stop", stop_and_tell)
    first_call = threading.Event()
    calls: list[int] = []

    def classify(images: np.ndarray, calibrated: bool = True) -> np.ndarray:
        calls.append(len(images))
        if len(calls) == 1:
            first_call.set()
            noticed.wait(30)  # (a bounded wait: without the watch nothing ends it, and the test fails below)
        return recognizer.classify(images, calibrated)

    watched = Recognizer(recognizer.loaded)
    watched.classify = classify  # the server's batcher and pipeline both use it
    settings = ServeSettings()
    app = create_app(recognizer=watched, settings=settings)
    service = app.state.service
    photo, _ = number_photo
    with serving(app) as url:
        sock, request = raw_request(url, "/api/read", [("file", (f"{i}.jpg", photo, "image/jpeg"))
                                                       for i in range(PICTURES)])
        with sock:
            sock.sendall(request)
            assert first_call.wait(60), "the server never called the model"
        deadline = time.monotonic() + 60  # the request over: answered to nobody, its threads back
        while service.requests_in_flight or service.busy_threads:
            assert time.monotonic() < deadline, "the request never ended"
            time.sleep(0.05)
    assert noticed.is_set(), "the server did not notice the client had gone"
    assert 1 <= len(calls) <= settings.image_workers < PICTURES, calls


def test_closing_stops_every_job_at_its_next_step_and_waits_for_the_threads(recognizer, number_photo):
    """What the server's shutdown does after the grace (``Service.close``): the pictures' threads stop at their next
    step, and close returns once they have, so no thread is left asking the event loop for a model call."""
    import asyncio

    first_call = threading.Event()
    calls: list[int] = []
    app = None

    def classify(images: np.ndarray, calibrated: bool = True) -> np.ndarray:
        calls.append(len(images))
        if len(calls) == 1:
            first_call.set()
            app.state.service.closing.wait(30)  # the shutdown comes during this call
        return recognizer.classify(images, calibrated)

    watched = Recognizer(recognizer.loaded)
    watched.classify = classify
    settings = ServeSettings()
    app = create_app(recognizer=watched, settings=settings)
    service = app.state.service
    photo, text = number_photo
    with serving(app) as url, httpx.Client(base_url=url, timeout=60) as http:
        answers = []
        client = threading.Thread(target=lambda: answers.append(http.post("/api/read", files=[
            ("file", (f"{i}.jpg", photo, "image/jpeg")) for i in range(PICTURES)])))
        client.start()
        assert first_call.wait(60), "the server never called the model"
        asyncio.run(service.close())
        assert service.busy_threads == 0
        client.join(60)
    assert 1 <= len(calls) <= settings.image_workers < PICTURES, calls
    # (uvicorn cancels the request before: its client gets a 503 instead.) A picture whose step was its last is read.
    results = answers[0].json()["results"]
    abandoned = [r for r in results if r.get("status") == 503]
    assert len(abandoned) >= PICTURES - settings.image_workers, results
    assert all("abandoned" in r["error"] for r in abandoned)
    assert all(r["text"] == text for r in results if r not in abandoned)
