"""Lines and separators through ``/api/read``: the server passes the pipeline's answer on unchanged, and the
schema models (which ``/docs`` is generated from) document it and refuse answers that break its rules.

Most tests replace the pipeline's answer by a two-line one ("72.1" over "-0", from the digits of the photo
"7210"), so they do not depend on how well lines are found: only on what the API does with them. The first one
reads a real page of two lines, end to end, over HTTP.
"""

from __future__ import annotations

import base64
import copy
import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pydantic import ValidationError

import digitnet.serve.service as service_module
from digitnet.recognizer import Recognizer
from digitnet.serve.app import create_app
from digitnet.serve.schemas import ReadResult, ReadResults
from digitnet.vision.pipeline import PreparedNumber

from .conftest import page_of_lines

TWO_LINES = [(0, 1, 2, 3), (4, 5, 6)]  # MNIST test digits read with confidence: "7210" over "414"


def test_a_page_of_two_lines_is_read_end_to_end(client, mnist):
    """The real pipeline and model behind a real ``digitnet serve``: two lines of clear, well-separated digits."""
    page = page_of_lines(mnist, TWO_LINES)
    answer = client.post("/api/read", files={"file": ("page.png", page, "image/png")}).json()
    ReadResult.model_validate(answer)
    expected = ["".join(str(mnist.test_labels[i]) for i in line) for line in TWO_LINES]
    assert answer["text"] == "\n".join(expected) and answer["path"] == "page.png"
    lines = answer["lines"]
    assert [line["text"] for line in lines] == expected
    # Top to bottom, each holding its own digits left to right, inside its box.
    (_, top0, _, bottom0), (_, top1, _, bottom1) = (line["box"] for line in lines)
    assert top0 < bottom0 < top1 < bottom1
    for line in lines:
        x0, y0, x1, y1 = line["box"]
        boxes = [item["box"] for item in line["digits"]]
        assert all(x0 <= b[0] < b[2] <= x1 and y0 <= b[1] < b[3] <= y1 for b in boxes)
        assert [b[0] for b in boxes] == sorted(b[0] for b in boxes)
    assert answer["digits"] == [item for line in lines for item in line["digits"]]


def two_lines(number: PreparedNumber) -> dict:
    """A two-line answer made from the photo's four digits: "72.1" and "-0", with a point and a minus."""
    boxes, probs = number.boxes, number.probabilities
    assert len(boxes) == 4, "the photo fixture holds the four digits 7210"

    def digit(k: int) -> dict:
        d = int(probs[k].argmax())
        return {"char": str(d), "digit": d, "confidence": round(float(probs[k].max()), 6), "box": list(boxes[k])}

    point = {"char": ".", "digit": None, "confidence": 0.91, "box": [boxes[1][2], boxes[1][3] - 8,
                                                                     boxes[1][2] + 8, boxes[1][3]]}
    minus = {"char": "-", "digit": None, "confidence": 0.88, "box": [boxes[2][0] - 30, 100, boxes[2][0] - 4, 110]}
    first = [digit(0), digit(1), point, digit(2)]
    second = [minus, digit(3)]
    lines = [{"text": "".join(d["char"] for d in items), "box": [items[0]["box"][0], 0, items[-1]["box"][2], 140],
              "digits": items} for items in (first, second)]
    return {"path": number.path, "text": "\n".join(line["text"] for line in lines), "lines": lines,
            "digits": copy.deepcopy(first + second), "error": None, "note": None}


@pytest.fixture(scope="module")
def app():
    return create_app(recognizer=Recognizer.from_pretrained())


@pytest.fixture
def api(app, monkeypatch):
    answers: list[dict] = []

    def number_answer(number: PreparedNumber) -> dict:
        answers.append(two_lines(number))
        return copy.deepcopy(answers[-1])

    monkeypatch.setattr(service_module, "number_answer", number_answer)
    with TestClient(app) as client:
        client.answers = answers  # what the pipeline answered, to compare with what the server sent
        yield client


def test_lines_and_separators_pass_through_unchanged(api, number_photo):
    photo, text = number_photo
    answer = api.post("/api/read", files={"file": ("receipt.jpg", photo, "image/jpeg")}).json()
    expected = {**api.answers[-1], "path": "receipt.jpg"}
    assert answer == expected
    assert answer["text"] == f"{text[:2]}.{text[2]}\n-{text[3]}"
    assert [line["text"] for line in answer["lines"]] == answer["text"].split("\n")
    assert [d["char"] for d in answer["digits"]] == list(answer["text"].replace("\n", ""))
    assert [d["digit"] for d in answer["digits"] if d["char"] in ".-"] == [None, None]
    ReadResult.model_validate(answer)


def test_debug_gives_each_digit_its_crop_and_no_separator_one(api, number_photo):
    photo, _ = number_photo
    answer = api.post("/api/read?debug=1", content=photo, headers={"content-type": "image/jpeg"}).json()
    ReadResult.model_validate(answer)
    for item in answer["digits"]:
        if item["digit"] is None:  # the point and the minus were not classified as digits: no 28×28 of their own
            assert "input_png" not in item and "probabilities" not in item, item["char"]
        else:
            assert max(range(10), key=item["probabilities"].__getitem__) == item["digit"]
            assert Image.open(io.BytesIO(base64.b64decode(item["input_png"]))).size == (28, 28)


def test_a_failed_image_in_a_batch_has_every_field(api, number_photo):
    photo, _ = number_photo
    answer = api.post("/api/read", files=[("file", ("a.jpg", photo, "image/jpeg")),
                                          ("file", ("bad.png", b"not a picture", "image/png"))]).json()
    ReadResults.model_validate(answer)
    good, bad = answer["results"]
    assert len(good["lines"]) == 2
    assert bad["lines"] is None and bad["digits"] is None and bad["text"] is None and bad["status"] == 422


def _receipt(api, number_photo) -> dict:
    photo, _ = number_photo
    return api.post("/api/read", content=photo, headers={"content-type": "image/jpeg"}).json()


def _drop_char(a):
    del a["lines"][0]["digits"][2]["char"]


def _point_with_a_digit(a):
    a["lines"][0]["digits"][2]["digit"] = 1


def _char_not_its_digit(a):
    a["lines"][0]["digits"][0]["char"] = "9" if a["lines"][0]["digits"][0]["digit"] != 9 else "8"


def _unknown_char(a):
    a["lines"][0]["digits"][2]["char"] = "/"


def _line_text_not_its_chars(a):
    a["lines"][0]["text"] = a["lines"][0]["text"].replace(".", "")


def _lines_joined_without_newline(a):
    a["text"] = a["text"].replace("\n", "")


def _digits_out_of_order(a):
    a["digits"].reverse()


def _no_lines(a):
    del a["lines"]


@pytest.mark.parametrize("break_it", [_drop_char, _point_with_a_digit, _char_not_its_digit, _unknown_char,
                                      _line_text_not_its_chars, _lines_joined_without_newline, _digits_out_of_order,
                                      _no_lines])
def test_the_schema_refuses_answers_that_break_the_format(api, number_photo, break_it):
    answer = _receipt(api, number_photo)
    ReadResult.model_validate(answer)
    break_it(answer)
    with pytest.raises(ValidationError):
        ReadResult.model_validate(answer)


def test_openapi_documents_lines_and_separators_with_an_example(api):
    spec = api.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    result, line, item = schemas["ReadResult"], schemas["ReadLine"], schemas["ReadDigit"]
    assert "lines" in result["required"] and "char" in item["required"]
    assert '"\\n"' in result["properties"]["text"]["description"]
    assert "top to bottom" in result["properties"]["lines"]["description"]
    char = item["properties"]["char"]
    assert set(char["enum"]) == set("0123456789.,- ")
    for words in ("decimal point", "decimal comma", "minus", "space between digit groups"):
        assert words in char["description"], words
    assert "null for a separator" in item["properties"]["digit"]["description"]
    assert {"text", "box", "digits"} <= set(line["required"]) and line["properties"]["text"]["description"]
    # The examples /docs shows: a two-line receipt, and they are valid answers.
    example = result["examples"][0]
    assert example["text"] == "12.50\n-3" and [ln["text"] for ln in example["lines"]] == ["12.50", "-3"]
    ReadResult.model_validate(example)
    shown = spec["paths"]["/api/read"]["post"]["responses"]["200"]["content"]["application/json"]["example"]
    assert shown == example
    assert "lines" in spec["paths"]["/api/read"]["post"]["description"]
