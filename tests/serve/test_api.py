"""The JSON API over real HTTP: a ``digitnet serve`` process on 127.0.0.1, driven with httpx."""

from __future__ import annotations

import base64
import io
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import digitnet
from digitnet.recognizer import Recognizer
from digitnet.serve.app import STATIC_DIR
from digitnet.serve.schemas import (
    ErrorBody,
    Health,
    ModelInfo,
    PredictResult,
    PredictResults,
    ReadResult,
    ReadResults,
)

from .conftest import png_of_size

PREDICT_KEYS = {"path", "digit", "confidence", "probabilities", "error", "note"}
READ_KEYS = {"path", "text", "lines", "digits", "error", "note"}


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    return Recognizer.from_pretrained()


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def png_bomb(side: int = 10_000) -> bytes:
    """A valid ~100 KB PNG that inflates to side² (100 million) pixels."""
    return png_of_size(side, side)


def assert_error(response, status: int, *words: str) -> dict:
    """A JSON error with the expected status whose message names the problem."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status"] == status and isinstance(body["error"], str)
    for word in words:
        assert word.lower() in body["error"].lower(), body["error"]
    return body


# ----------------------------------------------------------------------------------------------- basics


def test_health_and_model(client, recognizer):
    meta = recognizer.metadata  # the bundled model, read here without the server
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["model"] == meta["arch"]
    assert health["requests_in_flight"] == 0  # the health request does not count itself
    model = client.get("/api/model").json()
    assert model["architecture"] == meta["arch"]
    assert model["accuracy"] == meta["metrics"]["test_accuracy"] > 0.99
    assert model["normalization"] == meta["normalization"]
    assert set(model["normalization"]) == {"name", "mean", "std"}
    assert model["version"] == digitnet.__version__ and model["input_size"] == 28 and model["parameters"] > 0


def test_requests_in_flight_are_counted_from_hand_over_to_answer():
    """The count /api/health reports: a request counts while the app handles it (its upload included, the middleware
    being outermost), and stops counting when it is answered or fails."""
    import asyncio
    from types import SimpleNamespace

    from digitnet.serve.middleware import InFlightMiddleware

    counter, seen = SimpleNamespace(requests_in_flight=0), []

    async def app(scope, receive, send):
        seen.append(counter.requests_in_flight)
        if scope.get("path") == "/fails":
            raise RuntimeError("boom")

    counted = InFlightMiddleware(app, counter)
    asyncio.run(counted({"type": "http", "path": "/"}, None, None))
    with pytest.raises(RuntimeError):
        asyncio.run(counted({"type": "http", "path": "/fails"}, None, None))
    asyncio.run(counted({"type": "lifespan"}, None, None))
    assert seen == [1, 1, 0] and counter.requests_in_flight == 0


def test_health_counts_a_request_still_uploading(recognizer):
    """In the app as served: a request counts from the moment the server hands it over, while its body is still on
    its way (the count's middleware sits outside the body limit, which reads the body), until it is answered, and
    also when the client gives up mid-upload."""
    import asyncio

    from digitnet.serve.app import create_app

    app = create_app(recognizer=recognizer)

    def scope(method: str, path: str, headers: list) -> dict:
        return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
                "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
                "headers": headers, "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1)}

    async def health() -> dict:
        sent = []

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict) -> None:
            sent.append(message)

        await app(scope("GET", "/api/health", []), receive, send)
        return json.loads(b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"))

    async def main() -> tuple[dict, dict, dict]:
        body_sent = asyncio.Event()

        async def slow_upload() -> dict:
            await body_sent.wait()
            return {"type": "http.request", "body": b"{}", "more_body": False}

        async def ignore(message: dict) -> None:
            pass

        post = scope("POST", "/api/predict", [(b"content-type", b"application/json"), (b"content-length", b"2")])
        task = asyncio.create_task(app(post, slow_upload, ignore))
        await asyncio.sleep(0.05)
        during = await health()
        body_sent.set()
        await task
        after = await health()

        async def gives_up() -> dict:
            return {"type": "http.disconnect"}

        await app(post, gives_up, ignore)
        return during, after, await health()

    during, after, after_disconnect = asyncio.run(main())
    assert during["requests_in_flight"] == 1
    assert after["requests_in_flight"] == 0 and after_disconnect["requests_in_flight"] == 0


def test_pages_docs_and_openapi_are_served_offline(client):
    page = client.get("/")
    assert page.status_code == 200 and 'name="viewport"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("/static/app.js", "/static/style.css", "/static/favicon.svg", "/docs"):
        assert client.get(asset).status_code == 200, asset
    # Nothing on the pages is fetched from elsewhere: no CDN, no web font, no external script.
    docs = client.get("/docs").text
    assert "SwaggerUIBundle" in docs
    for url in re.findall(r"""(?:src|href)=["']([^"']+)""", docs):
        assert url.startswith("/"), url
        assert client.get(url).status_code == 200, url  # Swagger UI's script and style come from this server
    external = re.compile(r"""(?:src|href|action)\s*=\s*["']?(?:https?:)?//|url\(\s*["']?(?:https?:)?//|@import"""
                          r"""|fetch\(\s*["'`](?:https?:)?//""", re.IGNORECASE)
    for path in STATIC_DIR.iterdir():
        assert not external.search(path.read_text(encoding="utf-8")), path.name
    assert not external.search(docs)


def test_openapi_schema_is_generated_from_the_models(client):
    spec = client.get("/openapi.json").json()
    components = spec["components"]["schemas"]
    predict = spec["paths"]["/api/predict"]["post"]
    content = predict["requestBody"]["content"]
    assert set(content) == {"multipart/form-data", "application/json", "image/*"}
    assert predict["requestBody"]["required"] is True
    assert {"200", "400", "413", "415", "422"} <= set(predict["responses"])
    assert {"/api/read", "/api/health", "/api/model"} <= set(spec["paths"])
    # The query parameters: FastAPI's, from the PredictOptions model.
    parameters = {p["name"]: p for p in predict["parameters"]}
    assert set(parameters) == {"debug", "top_k", "min_confidence"}
    assert all(p["in"] == "query" and not p["required"] for p in parameters.values())
    assert parameters["top_k"]["schema"]["anyOf"][0] == {"type": "integer", "minimum": 1, "maximum": 10}
    # The multipart form: FastAPI's, from the route's UploadFile parameter, files named "file".
    form = components[content["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]]
    assert set(form["properties"]) == {"file"} and form["properties"]["file"]["type"] == "array"
    # The JSON bodies: the request models' schemas, a digit's pixels, a picture or a batch (no pixels to read).
    alternatives = content["application/json"]["schema"]["anyOf"]
    assert [sorted(a["properties"]) for a in alternatives] == [["name", "pixels"], ["image_base64", "name"],
                                                               ["images"]]
    read = spec["paths"]["/api/read"]["post"]["requestBody"]["content"]["application/json"]["schema"]["anyOf"]
    assert [sorted(a["properties"]) for a in read] == [["image_base64", "name"], ["images"]]
    # Every $ref resolves.
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(spec)))
    assert {"PredictResult", "ReadResult", "ErrorBody"} <= refs
    assert refs <= set(components)


def test_query_parameters_keep_their_forms(client, mnist):
    """A bare ?debug is on, a blank parameter is as if not given, a bad one is a 422 naming it."""
    pixels = {"pixels": mnist.test_images[0].tolist()}
    assert "input_png" in client.post("/api/predict?debug", json=pixels).json()
    plain = client.post("/api/predict?top_k=&min_confidence=", json=pixels).json()
    assert "top_k" not in plain and plain["digit"] == int(mnist.test_labels[0])
    assert len(client.post("/api/predict?top_k=2&debug=0", json=pixels).json()["top_k"]) == 2
    assert_error(client.post("/api/predict?min_confidence=2", json=pixels), 422, "min_confidence")
    assert_error(client.post("/api/read?debug=maybe", json=pixels), 422, "debug")


def test_a_parameter_the_endpoint_does_not_take_is_refused_naming_it(client, mnist, number_photo):
    """/api/read has no top_k or min_confidence (nor has `digitnet read`): asked for them, it says so instead of
    ignoring them, and its schema never offers them; /api/predict likewise refuses a parameter it does not know."""
    photo, _ = number_photo
    upload = {"file": ("number.jpg", photo, "image/jpeg")}
    assert_error(client.post("/api/read?top_k=3", files=upload), 422, "unknown parameter 'top_k'", "takes debug")
    assert_error(client.post("/api/read?debug=1&min_confidence=0.5", files=upload), 422, "'min_confidence'")
    pixels = {"pixels": mnist.test_images[0].tolist()}
    assert_error(client.post("/api/predict?topk=3", json=pixels), 422, "'topk'", "debug, top_k, min_confidence")
    spec = client.get("/openapi.json").json()
    assert [p["name"] for p in spec["paths"]["/api/read"]["post"]["parameters"]] == ["debug"]


def test_answers_validate_against_the_schema_models(client, mnist, number_photo):
    """Answers are sent without response-model validation; the models they are documented by must still fit them."""
    photo, _ = number_photo
    pixels = mnist.test_images[0].tolist()
    PredictResult.model_validate(client.post("/api/predict?debug=1&top_k=3", json={"pixels": pixels}).json())
    PredictResults.model_validate(client.post("/api/predict", json={"images": [pixels, {"pixels": [1]}]}).json())
    ReadResult.model_validate(client.post("/api/read?debug=1", content=photo,
                                          headers={"content-type": "image/jpeg"}).json())
    ReadResults.model_validate(client.post("/api/read", files=[("file", ("a.jpg", photo, "image/jpeg"))] * 2).json())
    Health.model_validate(client.get("/api/health").json())
    ModelInfo.model_validate(client.get("/api/model").json())
    ErrorBody.model_validate(client.post("/api/predict", json={"pixels": [1]}).json())


# ------------------------------------------------------------------------------------------- predict


def test_predict_pixels_of_mnist_test_digits(client, mnist, recognizer):
    images, labels = mnist.test_images[:40], mnist.test_labels[:40]
    expected = recognizer.classify(images)
    digits = []
    for i, image in enumerate(images):
        # Alternate the accepted forms: 28 rows of 0..255, and a flat list of 0..1 floats.
        pixels = image.tolist() if i % 2 else (image.reshape(-1) / 255).tolist()
        answer = client.post("/api/predict", json={"pixels": pixels}).json()
        assert set(answer) == PREDICT_KEYS
        assert answer["digit"] == int(expected[i].argmax())  # exactly what the model says in-process
        assert answer["probabilities"] == pytest.approx(expected[i].tolist(), abs=1e-5)
        assert sum(answer["probabilities"]) == pytest.approx(1.0, abs=1e-4)
        digits.append(answer["digit"])
    assert np.mean(np.array(digits) == labels) >= 0.95


def test_concurrent_predictions_are_batched_and_correct(client, mnist):
    images, labels = mnist.test_images[100:228], mnist.test_labels[100:228]
    before = client.get("/api/health").json()["batcher"]

    def ask(image):
        return client.post("/api/predict", json={"pixels": image.tolist()}).json()["digit"]

    with ThreadPoolExecutor(16) as pool:
        digits = list(pool.map(ask, images))
    assert np.mean(np.array(digits) == labels) >= 0.98
    after = client.get("/api/health").json()["batcher"]
    assert after["images"] - before["images"] == len(images)  # each image classified once
    # 16 clients at once: requests that arrive during a pass share the next one (tests/serve/test_batching.py
    # shows it with a slowed-down model).
    assert after["passes"] - before["passes"] < len(images)


def test_predict_debug_and_top_k(client, mnist):
    answer = client.post("/api/predict?debug=1&top_k=3", json={"pixels": mnist.test_images[7].tolist()}).json()
    seen = np.asarray(Image.open(io.BytesIO(base64.b64decode(answer["input_png"]))))
    assert seen.shape == (28, 28) and np.array_equal(seen, mnist.test_images[7])
    assert [t["digit"] for t in answer["top_k"]][0] == answer["digit"] == int(mnist.test_labels[7])
    assert len(answer["top_k"]) == 3


def test_blank_pixels_answer_no_digit(client):
    answer = client.post("/api/predict", json={"pixels": [0] * 784}).json()
    assert answer["digit"] is None and answer["note"] == "no ink found"


def test_predict_png_upload(client, mnist):
    for index in (0, 1, 2):
        files = {"file": (f"digit{index}.png", png_bytes(mnist.test_images[index]), "image/png")}
        answer = client.post("/api/predict", files=files).json()
        assert set(answer) == PREDICT_KEYS
        assert answer["digit"] == int(mnist.test_labels[index]) and answer["path"] == f"digit{index}.png"


def test_predict_photo_in_every_form(client, digit_photo):
    photo, digit = digit_photo
    encoded = base64.b64encode(photo).decode()
    answers = [
        client.post("/api/predict?debug=1", files={"file": ("photo.jpg", photo, "image/jpeg")}).json(),
        client.post("/api/predict?debug=1", content=photo, headers={"content-type": "image/jpeg"}).json(),
        client.post("/api/predict?debug=1", json={"image_base64": encoded}).json(),
        client.post("/api/predict?debug=1", json={"image_base64": f"data:image/jpeg;base64,{encoded}"}).json(),
    ]
    for answer in answers:
        assert answer["digit"] == digit, answer
        seen = Image.open(io.BytesIO(base64.b64decode(answer["input_png"])))
        assert seen.size == (28, 28)


def test_answers_match_recognizer_predict(client, recognizer, mnist, digit_photo, number_photo):
    """The server batches classification itself; its answers must still be Recognizer.predict's, field by field."""
    pictures = [png_bytes(mnist.test_images[3]), digit_photo[0], number_photo[0], png_bytes(np.zeros((28, 28), "u1"))]
    for data in pictures:
        for query in ("", "?top_k=3", "?min_confidence=0.9999999"):
            got = client.post(f"/api/predict{query}", content=data, headers={"content-type": "image/png"}).json()
            params = {"top_k": 3} if "top_k" in query else {"min_confidence": 0.9999999} if query else {}
            want = recognizer.predict(data, **params)
            assert set(got) == set(want)
            for key in ("digit", "note", "error", "path"):
                assert got[key] == want[key], (key, query)
            for key in ("confidence", "probabilities"):
                assert got[key] == (pytest.approx(want[key], abs=2e-6) if want[key] is not None else None)
            assert [t["digit"] for t in got.get("top_k", [])] == [t["digit"] for t in want.get("top_k", [])]


def test_predict_batch_multipart_and_json(client, mnist, digit_photo):
    files = [("file", (f"{i}.png", png_bytes(mnist.test_images[i]), "image/png")) for i in range(5)]
    results = client.post("/api/predict", files=files).json()["results"]
    assert [r["digit"] for r in results] == mnist.test_labels[:5].tolist()
    assert [r["path"] for r in results] == [f"{i}.png" for i in range(5)]

    photo, digit = digit_photo
    images = [{"pixels": mnist.test_images[10].tolist()}, base64.b64encode(photo).decode(),
              mnist.test_images[11].tolist(), {"pixels": [1, 2, 3]}, "not base64!"]
    response = client.post("/api/predict", json={"images": images})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["digit"] for r in results[:3]] == [int(mnist.test_labels[10]), digit, int(mnist.test_labels[11])]
    # A bad image in a batch fails alone, saying why; the others are answered.
    assert results[3]["digit"] is None and "shape" in results[3]["error"] and results[3]["status"] == 422
    assert "base64" in results[4]["error"] and results[4]["status"] == 400


def test_photo_of_a_number_is_not_a_digit(client, number_photo):
    photo, _ = number_photo
    answer = client.post("/api/predict", files={"file": ("n.jpg", photo, "image/jpeg")}).json()
    assert answer["digit"] is None and "4 digits" in answer["note"] and "read" in answer["note"]


# ---------------------------------------------------------------------------------------------- read


def test_read_a_number(client, number_photo):
    photo, text = number_photo
    answer = client.post("/api/read", files={"file": ("number.jpg", photo, "image/jpeg")}).json()
    assert set(answer) == READ_KEYS
    assert answer["text"] == text and answer["path"] == "number.jpg"
    boxes = [d["box"] for d in answer["digits"]]
    assert all(x0 < x1 and y0 < y1 for x0, y0, x1, y1 in boxes)
    assert [b[0] for b in boxes] == sorted(b[0] for b in boxes)
    assert "input_png" not in answer["digits"][0]
    # One line of digits: one line holding the same items, each with its char.
    assert [d["char"] for d in answer["digits"]] == list(text)
    [line] = answer["lines"]
    assert line["text"] == text and line["digits"] == answer["digits"]
    x0, y0, x1, y1 = line["box"]
    assert all(x0 <= b[0] and y0 <= b[1] and b[2] <= x1 and b[3] <= y1 for b in boxes)

    debug = client.post("/api/read?debug=1", content=photo, headers={"content-type": "image/jpeg"}).json()
    assert debug["text"] == text
    for d in debug["digits"]:
        assert Image.open(io.BytesIO(base64.b64decode(d["input_png"]))).size == (28, 28)
        assert int(np.argmax(d["probabilities"])) == d["digit"]


def test_read_a_big_jpeg_answers_as_the_recognizer_does(client, number_photo):
    """Both decode a big JPEG at reduced scale and give boxes in the whole picture's pixels: the same answer."""
    photo, text = number_photo
    image = Image.open(io.BytesIO(photo))
    factor = -(-2200 // max(image.size))
    buffer = io.BytesIO()
    image.resize((image.width * factor, image.height * factor), Image.Resampling.BICUBIC).save(buffer, "JPEG")
    big = buffer.getvalue()
    answer = client.post("/api/read", files={"file": ("big.jpg", big, "image/jpeg")}).json()
    local = Recognizer.from_pretrained().read(big)
    assert answer["text"] == local["text"] == text
    assert [d["box"] for d in answer["digits"]] == [d["box"] for d in local["digits"]]
    assert max(d["box"][2] for d in answer["digits"]) > 1024  # in the whole picture's pixels


def test_read_a_blank_page_has_no_lines(client):
    blank = png_bytes(np.full((120, 200), 235, np.uint8))
    answer = client.post("/api/read", files={"file": ("blank.png", blank, "image/png")}).json()
    assert answer["lines"] == [] and answer["digits"] == [] and answer["text"] == ""
    assert answer["note"] == "no ink found"
    ReadResult.model_validate(answer)


def test_read_json_base64(client, number_photo):
    photo, text = number_photo
    answer = client.post("/api/read", json={"image_base64": base64.b64encode(photo).decode()}).json()
    assert answer["text"] == text


# -------------------------------------------------------------------------------------------- errors


def test_body_over_the_limit_is_413(client):
    big = b"\0" * (9 * 1024 * 1024)  # the default limit is 8 MiB
    assert_error(client.post("/api/predict", content=big, headers={"content-type": "image/png"}), 413, "limit")
    assert_error(client.post("/api/read", files={"file": ("big.png", big, "image/png")}), 413, "limit")

    def chunked():  # no Content-Length: the limit must hold while streaming too
        for _ in range(9):
            yield b"\0" * (1024 * 1024)

    assert_error(client.post("/api/predict", content=chunked(), headers={"content-type": "image/png"}), 413)


def test_decompression_bomb_is_413_without_decoding(client):
    bomb = png_bomb()
    assert len(bomb) < 1_000_000
    assert_error(client.post("/api/predict", files={"file": ("bomb.png", bomb, "image/png")}), 413, "pixels")
    assert_error(client.post("/api/read", content=bomb, headers={"content-type": "image/png"}), 413, "pixels")
    assert client.get("/api/health").status_code == 200  # and the server is fine


def test_too_many_images_is_413(client):
    assert_error(client.post("/api/predict", json={"images": [[0] * 784] * 65}), 413, "65 images")


@pytest.mark.parametrize(("content", "content_type", "words"), [
    (b"hello", "text/plain", ["text/plain"]),
    (b"a=1", "application/x-www-form-urlencoded", ["unsupported"]),
    (b"{}", None, ["none"]),
])
def test_wrong_content_type_is_415(client, content, content_type, words):
    headers = {"content-type": content_type} if content_type else {}
    assert_error(client.post("/api/predict", content=content, headers=headers), 415, *words)


def test_non_image_upload_is_415(client):
    assert_error(client.post("/api/predict", files={"file": ("notes.txt", b"hello", "text/plain")}), 415,
                 "notes.txt", "not an image")


@pytest.mark.parametrize(("body", "status", "words"), [
    (b"{not json", 400, ["invalid JSON"]),
    (b"[1, 2, 3]", 400, ["object"]),
    (b'{"foo": 1}', 400, ["pixels", "image_base64"]),
    (b'{"image_base64": "%%%"}', 400, ["base64"]),
    (b'{"image_base64": 42}', 400, ["string"]),
    (b'{"images": []}', 400, ["non-empty"]),
    (json.dumps({"pixels": [0] * 783}).encode(), 422, ["shape"]),
    (json.dumps({"pixels": [[0] * 28] * 27}).encode(), 422, ["shape"]),
    (json.dumps({"pixels": [[0] * 196] * 4}).encode(), 422, ["shape"]),
    (json.dumps({"pixels": [300] * 784}).encode(), 422, ["0..255"]),
    (json.dumps({"pixels": [-1] * 784}).encode(), 422, ["0..255"]),
    (json.dumps({"pixels": [float("nan")] * 784}).encode(), 400, ["invalid JSON"]),  # NaN is not JSON
    (json.dumps({"pixels": ["a"] * 784}).encode(), 422, ["numbers"]),
    (json.dumps({"pixels": {"a": 1}}).encode(), 422, ["28×28"]),
    (json.dumps({"image_base64": base64.b64encode(b"not an image").decode()}).encode(), 422, ["not an image"]),
    (b"[" * 100_000 + b"]" * 100_000, 400, ["invalid JSON"]),  # nesting bomb
    (b'{"pixels": ' + b"[" * 500 + b"0" + b"]" * 500 + b"}", 422, []),
])
def test_malformed_json_is_400_or_422(client, body, status, words):
    response = client.post("/api/predict", content=body, headers={"content-type": "application/json"})
    assert_error(response, status, *words)


def test_infinite_pixels_are_refused(client):
    body = b'{"pixels": [' + b"1e999," * 783 + b"0]}"  # valid JSON syntax; the number overflows to infinity
    response = client.post("/api/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code in (400, 422) and response.json()["error"]  # orjson: 400; json: 422 "finite"


def test_undecodable_and_damaged_images_are_422(client, mnist):
    png = png_bytes(mnist.test_images[0])
    cases = [b"\x89PNG\r\n\x1a\n garbage", png[: len(png) // 2], b"GIF89a" + bytes(20), bytes(1000)]
    for data in cases:
        assert_error(client.post("/api/predict", files={"file": ("x.png", data, "image/png")}), 422)
        assert_error(client.post("/api/read", content=data, headers={"content-type": "image/png"}), 422)
    tiny = png_bytes(np.zeros((3, 3), np.uint8))
    assert_error(client.post("/api/read", files={"file": ("tiny.png", tiny, "image/png")}), 422, "tiny.png", "small")


def test_a_fault_of_ours_on_a_picture_is_a_500_naming_it(recognizer, number_photo, monkeypatch):
    """A fault in digitnet while reading an uploaded picture (finding its writing made to fail) is the server's
    error, 500, not the picture's (422), with a message naming the file; the server goes on serving."""
    import httpx

    from digitnet.serve.app import create_app
    from digitnet.serve.settings import ServeSettings
    from digitnet.vision import pipeline

    from .conftest import serving

    real = pipeline.find_writing

    def failing(*args, **kwargs):
        raise IndexError("index 408 is out of bounds")

    photo, text = number_photo
    with serving(create_app(recognizer=recognizer, settings=ServeSettings())) as url, \
            httpx.Client(base_url=url, timeout=60) as http:
        monkeypatch.setattr(pipeline, "find_writing", failing)
        for route in ("read", "predict"):
            response = http.post(f"/api/{route}", files={"file": ("total.jpg", photo, "image/jpeg")})
            assert_error(response, 500, "total.jpg", "IndexError", "fault in digitnet")
        monkeypatch.setattr(pipeline, "find_writing", real)
        assert http.post("/api/read", files={"file": ("total.jpg", photo, "image/jpeg")}).json()["text"] == text


def test_other_request_errors_are_json(client):
    assert_error(client.post("/api/predict", files={"name": (None, "value")}), 400, "no file")
    assert_error(client.post("/api/predict", content=b"", headers={"content-type": "image/png"}), 400, "empty")
    assert_error(client.post("/api/predict", content=b"--x\r\n", headers={"content-type": "multipart/form-data"}),
                 400)
    assert_error(client.post("/api/read", json={"pixels": [0] * 784}), 422, "/api/predict")
    assert_error(client.post("/api/predict?top_k=abc", json={"pixels": [0] * 784}), 422, "top_k")
    assert_error(client.get("/api/nothing"), 404)
    assert_error(client.get("/api/predict"), 405)


def test_a_form_field_that_is_not_a_file_is_400_saying_what_to_send(client, number_photo):
    """`curl -F file=digit.png` (no @) sends the name as a text field: one line saying so and what to send, not
    pydantic's words about UploadFile, alone or beside a real file."""
    for files in ({"file": (None, "digit.png")},
                  [("file", ("number.jpg", number_photo[0], "image/jpeg")), ("file", (None, "digit.png"))]):
        for route in ("predict", "read"):
            body = assert_error(client.post(f"/api/{route}", files=files), 400, "'file'", "not a file upload",
                                "curl -F file=@")
            assert "UploadFile" not in body["error"] and "\n" not in body["error"]


def test_static_assets_exist():
    names = {p.name for p in Path(STATIC_DIR).iterdir()}
    assert {"index.html", "app.js", "style.css", "favicon.svg"} <= names


def test_dark_on_light_pixels_go_through_the_picture_pipeline(client, recognizer, mnist):
    """Regression: JSON pixels skipped ``mnist_like``, so a dark-on-light digit was classified un-inverted."""
    for index in (0, 1, 2, 3):
        white_on_black = mnist.test_images[index]
        dark_on_light = 255 - white_on_black
        want = recognizer.predict(dark_on_light)
        assert want == recognizer.predict(white_on_black)  # the pipeline inverts it: the same picture
        for pixels in (dark_on_light.tolist(), (dark_on_light.reshape(-1) / 255).tolist()):
            got = client.post("/api/predict", json={"pixels": pixels}).json()
            assert got["digit"] == want["digit"] == int(mnist.test_labels[index])
            assert got["probabilities"] == pytest.approx(want["probabilities"], abs=2e-6)
        debug = client.post("/api/predict?debug=1", json={"pixels": dark_on_light.tolist()}).json()
        seen = np.asarray(Image.open(io.BytesIO(base64.b64decode(debug["input_png"]))))
        assert np.array_equal(seen, white_on_black)  # the model saw the inverted picture
