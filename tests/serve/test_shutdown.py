"""``digitnet serve`` on SIGTERM: no new connections, the requests in flight answered, then exit status 0; a request
still running when the grace ends gets a JSON 503, its work stops, and the server exits without a traceback."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from .conftest import free_port, photo_of

REQUESTS = 3  # concurrent /api/read requests, in flight when SIGTERM arrives
REQUEST_S = 0.8  # the server's time for each: enough to SIGTERM in the middle, all well under its 10 s grace


# `digitnet serve` with a slow digit model (every call 0.5 s) and a 1 s grace, so that a request outlasts the grace.
SLOW_SERVE = """
import sys, time

import digitnet.cli.serve as serve_command
from digitnet.cli import main
from digitnet.recognizer import Recognizer

serve_command.GRACEFUL_TIMEOUT_S = 1
classify = Recognizer.classify


def slow_classify(self, images, calibrated=True):
    print("model call", flush=True)
    time.sleep(0.5)
    return classify(self, images, calibrated)


Recognizer.classify = slow_classify
sys.argv = ["digitnet", "serve", *sys.argv[1:]]
main()
"""


def connection_refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


def wait_until_serving(proc: subprocess.Popen, url: str, log_path, timeout: float = 90) -> None:
    """Wait until the server at ``url`` answers /api/health (failing with its log if it exits or takes too long)."""
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, log_path.read_text()
        try:
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"the server did not start:\n{log_path.read_text()}"
        time.sleep(0.2)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_answers_requests_in_flight_then_exits(mnist, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "digitnet", "serve", "--host", "127.0.0.1", "--port", str(port)],
                                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        wait_until_serving(proc, url, log_path)

        photo = photo_of(mnist, tuple(range(128)), scale=4)  # 128 digits: ~0.1-0.4 s to read, 0.6 MB
        for _ in range(2):  # the second one timed: the first also warms the server up
            started = time.monotonic()
            single = httpx.post(f"{url}/api/read", content=photo, headers={"content-type": "image/jpeg"}, timeout=60)
            assert single.status_code == 200
        # As many pictures per request as make REQUEST_S seconds on this machine, whatever its speed (reading is
        # mostly Python, so the server's two reading threads barely overlap), and under the 8 MB body limit.
        count = min(12, max(2, math.ceil(REQUEST_S / (time.monotonic() - started))))
        files = [("file", (f"{i}.jpg", photo, "image/jpeg")) for i in range(count)]
        answers: dict[int, tuple[int, float, dict]] = {}

        def ask(k: int) -> None:
            with httpx.Client(timeout=60) as http:
                response = http.post(f"{url}/api/read", files=files)
            answers[k] = (response.status_code, time.monotonic(), response.json())

        threads = [threading.Thread(target=ask, args=(k,), daemon=True) for k in range(REQUESTS)]
        for thread in threads:
            thread.start()
        # SIGTERM once the server has taken all of them in (a request not yet handed over would be reset, not
        # answered: that is what a shutdown does to it). A fixed wait was too short now and then on a busy machine.
        deadline = time.monotonic() + 30
        while (held := httpx.get(f"{url}/api/health", timeout=5).json()["requests_in_flight"]) < REQUESTS:
            assert time.monotonic() < deadline and not answers, (
                f"the requests did not reach the server together: {held} held, answers {answers}\n"
                f"{log_path.read_text()}")
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)

        # The server stops taking connections at once, while it still works on the requests in flight.
        deadline = time.monotonic() + 5
        while not connection_refused(port):
            assert time.monotonic() < deadline, "the server still accepts connections after SIGTERM"
            time.sleep(0.05)
        refused_at = time.monotonic()

        for thread in threads:
            thread.join(60)
        assert proc.wait(30) == 0, log_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert len(answers) == REQUESTS, log_path.read_text()
    for status, finished, body in answers.values():
        assert status == 200, body
        assert [r["text"] for r in body["results"]] == [single.json()["text"]] * count
        assert finished > refused_at  # it was in flight when the server had stopped taking connections
    assert connection_refused(port)
    assert "Traceback" not in log_path.read_text(), log_path.read_text()


def test_a_request_the_server_cancels_is_answered_503_and_ends_there():
    """uvicorn cancels what still runs when the grace ends: the request ends in a JSON 503, not in a CancelledError
    that uvicorn would log with a traceback (answering a plain-text 500)."""
    from digitnet.serve.middleware import CancelledRequestMiddleware

    async def main() -> list[dict]:
        computing, sent = asyncio.Event(), []

        async def app(scope, receive, send) -> None:
            computing.set()
            await asyncio.Event().wait()  # a request that would never end

        async def send(message: dict) -> None:
            sent.append(message)

        task = asyncio.create_task(CancelledRequestMiddleware(app)({"type": "http"}, None, send))
        await computing.wait()
        task.cancel()
        await task  # ends: no CancelledError
        return sent

    start, body = asyncio.run(main())
    assert start["status"] == 503 and (b"content-type", b"application/json") in start["headers"]
    answer = json.loads(body["body"])
    assert answer["status"] == 503 and "shutting down" in answer["error"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_past_the_grace_answers_503_stops_the_work_and_exits_without_a_traceback(number_photo, tmp_path):
    """A request still being read when the grace ends (12 pictures, each model call 0.5 s, a 1 s grace): its client
    gets a JSON 503, and the server exits 0 without a traceback (it used to log a CancelledError, and the pictures'
    threads read on)."""
    script = tmp_path / "slow_serve.py"
    script.write_text(SLOW_SERVE)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, str(script), "--host", "127.0.0.1", "--port", str(port)],
                                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        wait_until_serving(proc, url, log_path)

        photo, _ = number_photo
        files = [("file", (f"{i}.jpg", photo, "image/jpeg")) for i in range(12)]
        answers = []

        def ask() -> None:
            with httpx.Client(timeout=120) as http:
                answers.append(http.post(f"{url}/api/read", files=files))

        client = threading.Thread(target=ask, daemon=True)
        client.start()
        deadline = time.monotonic() + 60
        while "model call" not in log_path.read_text():  # SIGTERM while the pictures are being read
            assert time.monotonic() < deadline and client.is_alive(), log_path.read_text()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        client.join(120)
        assert proc.wait(60) == 0, log_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = log_path.read_text()
    assert len(answers) == 1, log
    assert answers[0].status_code == 503 and answers[0].headers["content-type"] == "application/json", answers[0].text
    assert "shutting down" in answers[0].json()["error"], answers[0].text
    assert "Traceback" not in log and "CancelledError" not in log, log
