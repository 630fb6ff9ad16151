"""``digitnet serve`` on SIGTERM: no new connections, the requests in flight answered, then exit status 0."""

from __future__ import annotations

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


def connection_refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_answers_requests_in_flight_then_exits(mnist, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "digitnet", "serve", "--host", "127.0.0.1", "--port", str(port)],
                                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, log_path.read_text()
            try:
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"digitnet serve did not start:\n{log_path.read_text()}"
            time.sleep(0.2)

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
