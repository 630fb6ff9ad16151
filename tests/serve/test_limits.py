"""The picture size limit: one check (``load_picture``'s), the limit ``digitnet serve --max-pixels`` sets, 413 above.

A server started with a limit above the default (40 MP) must accept what lies between the two: before, the
picture pipeline refused anything over 40 MP with its own 422, whatever the server's limit said.
"""

from __future__ import annotations

import base64
import io

import httpx
import pytest
from PIL import Image

from .conftest import png_of_size, running_server

LIMIT = 50_000_000


@pytest.fixture(scope="module")
def big_server(tmp_path_factory) -> str:
    with running_server(tmp_path_factory.mktemp("limits") / "server.log", "--max-pixels", str(LIMIT)) as url:
        yield url


@pytest.fixture(scope="module")
def picture_45mp() -> bytes:
    """A blank 45 MP page: over the default limit, under ``LIMIT``; 45 MB decoded (gray), ~50 KB as a PNG."""
    buffer = io.BytesIO()
    Image.new("L", (7500, 6000), 235).save(buffer, "PNG")
    return buffer.getvalue()


def one_line_error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status and "\n" not in body["error"] and "Traceback" not in body["error"]
    return body["error"]


def test_a_picture_above_the_default_limit_is_read_under_a_higher_one(big_server, picture_45mp):
    with httpx.Client(base_url=big_server, timeout=120) as http:
        predicted = http.post("/api/predict", files={"file": ("page.png", picture_45mp, "image/png")})
        assert predicted.status_code == 200, predicted.text
        assert predicted.json()["digit"] is None and predicted.json()["note"] == "no ink found"
        read = http.post("/api/read", content=picture_45mp, headers={"content-type": "image/png"})
        assert read.status_code == 200, read.text
        assert read.json()["lines"] == [] and read.json()["note"] == "no ink found"


def test_a_picture_over_the_configured_limit_is_413_in_one_line(big_server, mnist):
    over = png_of_size(8000, 7000, pixels=False)  # 56 MP: refused from its header, never decoded
    with httpx.Client(base_url=big_server, timeout=60) as http:
        for response in (http.post("/api/predict", files={"file": ("big.png", over, "image/png")}),
                         http.post("/api/read", files={"file": ("big.png", over, "image/png")})):
            error = one_line_error(response, 413)
            assert error.startswith("big.png: 8000×7000 pixels") and "50 MP limit" in error
        one_line_error(http.post("/api/read", content=over, headers={"content-type": "image/png"}), 413)
        # In a batch, the picture fails alone with its 413; the digit beside it is answered.
        images = [{"pixels": mnist.test_images[0].tolist()}, {"image_base64": base64.b64encode(over).decode()}]
        digit, big = http.post("/api/predict", json={"images": images}).json()["results"]
        assert digit["digit"] == int(mnist.test_labels[0])
        assert big["status"] == 413 and "50 MP limit" in big["error"]


def test_the_default_server_refuses_the_same_picture_with_413(client, picture_45mp):
    for response in (client.post("/api/predict", files={"file": ("page.png", picture_45mp, "image/png")}),
                     client.post("/api/read", content=picture_45mp, headers={"content-type": "image/png"})):
        assert "40 MP limit" in one_line_error(response, 413)
