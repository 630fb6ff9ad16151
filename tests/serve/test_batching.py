"""The model of a server process: called through the micro-batcher alone, never concurrently, and concurrent
requests share its forward passes. A real uvicorn on 127.0.0.1 in this process, so the model can be watched."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from digitnet.recognizer import Recognizer
from digitnet.serve.app import create_app
from digitnet.serve.settings import ServeSettings

from .conftest import serving


class WatchedModel:
    """The recognizer's classify step, slowed down by ``delay`` s a call, counting the calls in progress."""

    def __init__(self, classify, delay: float):
        self.classify, self.delay = classify, delay
        self.lock = threading.Lock()
        self.running = self.most_at_once = 0
        self.batch_sizes: list[int] = []

    def __call__(self, images: np.ndarray) -> np.ndarray:
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            self.batch_sizes.append(len(images))
        try:
            time.sleep(self.delay)  # long enough for concurrent callers to overlap, if any may
            return self.classify(images)
        finally:
            with self.lock:
                self.running -= 1


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    return Recognizer.from_pretrained()


def watched_server(recognizer: Recognizer, delay: float):
    model = WatchedModel(recognizer.classify, delay)
    watched = Recognizer(recognizer.loaded)
    watched.classify = model  # the instance's classify step: the server's batcher and pipeline both use it
    return model, serving(create_app(recognizer=watched, settings=ServeSettings()))


def test_concurrent_requests_never_call_the_model_concurrently(recognizer, mnist, number_photo, digit_photo):
    """Reads (segmentation asks the model as it goes), pictures of a number (counted by segmentation) and digits,
    all at once: every model call goes through the batcher's one thread."""
    photo, text = number_photo
    model, server = watched_server(recognizer, delay=0.01)
    requests = ([("read", photo)] * 4 + [("predict", photo)] * 3 + [("predict", digit_photo[0])] * 3
                + [("pixels", mnist.test_images[i]) for i in range(8)])
    with server as url, httpx.Client(base_url=url, timeout=120) as http:
        def ask(request):
            kind, data = request
            if kind == "pixels":
                return http.post("/api/predict", json={"pixels": data.tolist()}).json()
            return http.post(f"/api/{kind}", content=data, headers={"content-type": "image/jpeg"}).json()

        with ThreadPoolExecutor(len(requests)) as pool:
            answers = list(pool.map(ask, requests))
    assert model.most_at_once == 1, f"the model ran {model.most_at_once} calls at once"
    assert [a["text"] for a in answers[:4]] == [text] * 4
    assert all("4 digits" in a["note"] for a in answers[4:7])
    assert [a["digit"] for a in answers[7:10]] == [digit_photo[1]] * 3
    assert [a["digit"] for a in answers[10:]] == mnist.test_labels[:8].tolist()


def test_concurrent_requests_share_forward_passes(recognizer, mnist):
    """N requests sent together while the model is slow: those that arrive during a pass go in the next one."""
    n = 12
    model, server = watched_server(recognizer, delay=0.2)
    images = mnist.test_images[200:200 + n]
    start = threading.Barrier(n)
    with server as url, httpx.Client(base_url=url, timeout=60) as http:
        http.get("/api/health")  # connections set up before the clock starts

        def ask(image):
            start.wait()
            return http.post("/api/predict", json={"pixels": image.tolist()}).json()

        with ThreadPoolExecutor(n) as pool:
            answers = list(pool.map(ask, images))
        batcher = http.get("/api/health").json()["batcher"]
    assert [a["digit"] for a in answers] == recognizer.classify(images).argmax(1).tolist()
    assert sum(model.batch_sizes) == batcher["images"] == n  # each image classified once
    assert len(model.batch_sizes) == batcher["passes"] < n  # fewer forward passes than requests ...
    assert max(model.batch_sizes) > 1  # ... because some pass took several requests at once
