"""The API's requests and answers as pydantic models: FastAPI builds ``/openapi.json`` (and ``/docs``) from them.

The query parameters are validated through their models (``PredictOptions``, ``ReadOptions``) and multipart
uploads are FastAPI's ``UploadFile``. JSON bodies are parsed by :mod:`digitnet.serve.requests`, which answers
each malformed image with its own 400/413/415/422 (one bad image in a batch fails alone), and documented from
``PredictRequest`` / ``ReadRequest``. Answers are the pipeline's plain dicts, sent as JSON directly: the tests
check that every answer validates against these models, so the schema cannot drift.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, model_validator
from pydantic_core import PydanticCustomError

# ---------------------------------------------------------------------------------------------- requests

Pixels = list[float] | list[list[float]]
PIXELS_FIELD = Field(description="28×28 rows, or 784 numbers; 0..255, or 0..1 when none exceeds 1. A digit "
                                 "as MNIST draws it (white on black) or dark on light: it is inverted first.",
                     examples=[[0.0] * 784])
BASE64_FIELD = Field(description="PNG/JPEG/... bytes as base64 (a data: URL is fine)", examples=["iVBORw0KGgo..."])


class PixelsImage(BaseModel):
    """A 28×28 digit as numbers."""

    pixels: Pixels = PIXELS_FIELD
    name: str | None = Field(None, description="in a batch: returned as the result's path")


class EncodedImage(BaseModel):
    """An encoded picture (PNG, JPEG, BMP, GIF, TIFF, WebP) as base64."""

    image_base64: str = BASE64_FIELD
    name: str | None = Field(None, description="in a batch: returned as the result's path")


class BatchRequest(BaseModel):
    """Several images, answered as ``{"results": [...]}``; a bad image fails alone."""

    images: list[PixelsImage | EncodedImage | str | Pixels] = Field(
        min_length=1, max_length=64, description="objects, base64 strings or pixel lists")


class PredictRequest(RootModel[PixelsImage | EncodedImage | BatchRequest]):
    """The JSON body of ``POST /api/predict``."""


class ReadRequest(RootModel[EncodedImage | BatchRequest]):
    """The JSON body of ``POST /api/read`` (a picture, not pixels)."""


class QueryOptions(BaseModel):
    """Query parameters: a bare ``?debug`` (or ``?debug=``) is on, any other blank one as if not given, an unknown one
    refused (422), as the CLI refuses an unknown option: ``/api/read?top_k=3`` would otherwise be silently ignored."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _blank_values(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        unknown = [name for name in values if name not in cls.model_fields]
        if unknown:  # named with the endpoint's own, rather than pydantic's "Extra inputs are not permitted"
            raise PydanticCustomError(
                "unknown_parameter", "unknown parameter{s} {names}: this endpoint takes {known}",
                {"s": "s" if len(unknown) > 1 else "", "names": ", ".join(map(repr, unknown)),
                 "known": ", ".join(cls.model_fields)})
        options = {}
        for name, value in values.items():
            if value == "":
                field = cls.model_fields.get(name)
                if field is not None and field.annotation is bool:
                    options[name] = True
                continue
            options[name] = value
        return options


class PredictOptions(QueryOptions):
    """The query parameters of ``POST /api/predict``."""

    debug: bool = Field(False, description="add input_png: the 28×28 the model saw, as a base64 PNG")
    top_k: int | None = Field(None, ge=1, le=10, description="add top_k: the K most likely digits")
    min_confidence: float | None = Field(None, ge=0, le=1, allow_inf_nan=False,
                                         description="answer digit null (with a note) below this confidence")


class ReadOptions(QueryOptions):
    """The query parameters of ``POST /api/read``."""

    debug: bool = Field(False, description="add each digit's input_png (the 28×28 the model saw) and probabilities")


# ----------------------------------------------------------------------------------------------- answers


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an answer field missing here fails the tests


class TopK(Answer):
    digit: int = Field(ge=0, le=9)
    probability: float


class PredictResult(Answer):
    """One digit's answer: the fields of ``digitnet predict --json``."""

    path: str | None = Field(description="file name, batch index, or null")
    digit: int | None = Field(ge=0, le=9, description="null when there is no (sure) digit: see note/error")
    confidence: float | None = Field(description="calibrated probability of the digit")
    probabilities: list[float] | None = Field(min_length=10, max_length=10)
    top_k: list[TopK] | None = Field(None, description="with ?top_k=K")
    input_png: str | None = Field(None, description="with ?debug=1: the 28×28 the model saw, base64 PNG")
    error: str | None = Field(description="why the picture could not be used")
    note: str | None = Field(description="why there is no digit (no ink, a number, unsure); beside a digit, that only "
                                         "the first page of a multi-page file was read")
    status: int | None = Field(None, description="in a batch, for a failed image: its error's HTTP status")


# A two-line receipt, "12.50" over "-3": the example /docs shows for a read answer.
_RECEIPT_LINES = [
    {"text": "12.50", "box": [40, 30, 298, 98], "digits": [
        {"char": "1", "digit": 1, "confidence": 0.998, "box": [40, 32, 70, 96]},
        {"char": "2", "digit": 2, "confidence": 0.991, "box": [82, 30, 130, 98]},
        {"char": ".", "digit": None, "confidence": 0.93, "box": [140, 84, 152, 96]},
        {"char": "5", "digit": 5, "confidence": 0.987, "box": [164, 31, 222, 97]},
        {"char": "0", "digit": 0, "confidence": 0.995, "box": [236, 30, 298, 98]}]},
    {"text": "-3", "box": [44, 130, 150, 198], "digits": [
        {"char": "-", "digit": None, "confidence": 0.96, "box": [44, 158, 86, 168]},
        {"char": "3", "digit": 3, "confidence": 0.994, "box": [98, 130, 150, 198]}]},
]
READ_EXAMPLE = {"path": "receipt.jpg", "text": "12.50\n-3", "lines": _RECEIPT_LINES,
                "digits": [item for line in _RECEIPT_LINES for item in line["digits"]], "error": None, "note": None}
SEPARATORS = {".": "a decimal point or a date's dot", ",": "a decimal comma", "-": "a minus sign",
              " ": "a space between digit groups (its box is the gap, full line height)"}
Char = Literal["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", ".", ",", "-", " "]


class ReadDigit(Answer):
    """One item of a line, in reading order: a digit, or a separator ("." "," "-" or " ")."""

    model_config = ConfigDict(json_schema_extra={"examples": [READ_EXAMPLE["digits"][0], READ_EXAMPLE["digits"][2]]})
    char: Char = Field(description="what is written: a digit \"0\"-\"9\", or a separator: "
                                   + "; ".join(f'"{c}" {what}' for c, what in SEPARATORS.items()))
    digit: int | None = Field(ge=0, le=9, description="the digit (char as a number); null for a separator")
    confidence: float = Field(ge=0, le=1, description="how sure the reader is of char (0..1)")
    box: list[int] = Field(min_length=4, max_length=4, description="x0, y0, x1, y1 (exclusive) in the picture's "
                                                                   "pixels, after EXIF rotation")
    input_png: str | None = Field(None, description="with ?debug=1: the 28×28 the model saw")
    probabilities: list[float] | None = Field(None, description="with ?debug=1")

    @model_validator(mode="after")
    def _digit_is_char(self) -> ReadDigit:
        if self.digit != (int(self.char) if self.char.isdigit() else None):
            raise ValueError(f"digit {self.digit} does not match char {self.char!r} (null for a separator)")
        return self


class ReadLine(Answer):
    """One line of writing: its items left to right."""

    model_config = ConfigDict(json_schema_extra={"examples": [_RECEIPT_LINES[1]]})
    text: str = Field(description="the line as written: its items' chars joined, e.g. \"12.50\", \"-3\", "
                                  "\"23.11.2026\", \"12 345\"")
    box: list[int] = Field(min_length=4, max_length=4, description="x0, y0, x1, y1 (exclusive) around the line")
    digits: list[ReadDigit] = Field(description="the line's items (digits and separators), left to right")

    @model_validator(mode="after")
    def _text_is_chars(self) -> ReadLine:
        if self.text != "".join(item.char for item in self.digits):
            raise ValueError(f"line text {self.text!r} is not its items' chars joined")
        return self


class ReadResult(Answer):
    """The answer for a picture of written numbers (lines of digits and separators): ``digitnet read --json``."""

    model_config = ConfigDict(json_schema_extra={"examples": [READ_EXAMPLE]})
    path: str | None
    text: str | None = Field(description="everything read: each line's text, lines joined with \"\\n\" "
                                         "(top to bottom), e.g. \"12.50\\n-3\"")
    lines: list[ReadLine] | None = Field(description="the lines of writing, top to bottom; [] when there is no ink, "
                                                     "null for a failed image in a batch")
    digits: list[ReadDigit] | None = Field(description="every item of every line, in reading order (digits "
                                                       "and separators: see char)")
    error: str | None
    note: str | None = Field(description="e.g. no ink found; beside a reading, that only the first page of a "
                                         "multi-page file was read")
    status: int | None = Field(None, description="in a batch, for a failed image: its error's HTTP status")

    @model_validator(mode="after")
    def _lines_make_the_answer(self) -> ReadResult:
        if self.lines is None:
            return self
        if self.text is not None and self.text != "\n".join(line.text for line in self.lines):
            raise ValueError("text is not the lines' texts joined with \\n")
        in_lines = [(d.char, d.box) for line in self.lines for d in line.digits]
        if self.digits is not None and in_lines != [(d.char, d.box) for d in self.digits]:
            raise ValueError("digits are not the lines' items in reading order")
        return self


class PredictResults(Answer):
    results: list[PredictResult]


class ReadResults(Answer):
    results: list[ReadResult]


class ErrorBody(Answer):
    """Every error: a 400, 413, 415, 422 (or 404/405), never a traceback."""

    error: str
    status: int


class BatcherStats(Answer):
    passes: int = Field(description="forward passes since start")
    images: int = Field(description="images classified through them")
    mean_batch: float


class Health(Answer):
    status: Literal["ok"]
    model: str = Field(description="architecture of the served model")
    version: str = Field(description="digitnet version")
    pid: int
    uptime_s: float
    requests_in_flight: int = Field(description="other requests this worker process is handling (uploads "
                                                "included) as this one is answered: what its shutdown waits for")
    batcher: BatcherStats | None = Field(description="null with --no-batch")


class Normalization(BaseModel):
    name: str
    mean: float
    std: float


class ModelInfo(Answer):
    architecture: str
    description: str
    arch_kwargs: dict[str, Any]
    parameters: int | None
    accuracy: float | None = Field(description="MNIST test accuracy")
    test_samples: int | None
    input_size: int
    normalization: Normalization
    temperature: float = Field(description="calibration: probabilities = softmax(logits / T)")
    created: str | None
    version: str = Field(description="digitnet version")
    format_version: int | None
    weights_sha256: str | None
    metrics: dict[str, Any]


# ------------------------------------------------------------------------------------------ OpenAPI glue

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "malformed request (bad JSON or base64, no file)"},
    413: {"model": ErrorBody, "description": "body, image or batch too large"},
    415: {"model": ErrorBody, "description": "unsupported content type"},
    422: {"model": ErrorBody, "description": "undecodable image, unusable pixels or a bad query parameter"},
}

# /docs shows this receipt as the example answer of /api/read (the schema itself stays the models').
READ_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "the lines read", "content": {"application/json": {"example": READ_EXAMPLE}}},
    **ERROR_RESPONSES,
}

EXAMPLE_MODELS = (ReadDigit, ReadLine, ReadResult)


def restore_examples(spec: dict) -> None:
    """Put the answer examples back whole into a generated ``/openapi.json``: FastAPI writes it with every null
    dropped, examples included, and a separator's ``"digit": null`` is the point of them."""
    components = spec.get("components", {}).get("schemas", {})
    for model in EXAMPLE_MODELS:
        if model.__name__ in components:
            components[model.__name__]["examples"] = model.model_config["json_schema_extra"]["examples"]
    for operation in (op for path in spec.get("paths", {}).values() for op in path.values()):
        for code, response in READ_RESPONSES.items():
            example = response.get("content", {}).get("application/json", {}).get("example")
            content = operation.get("responses", {}).get(str(code), {}).get("content", {}).get("application/json")
            if example is not None and content is not None and "example" in content:
                content["example"] = example


def _inline(schema: Any, defs: dict[str, Any]) -> Any:
    """``schema`` with its references to ``$defs`` replaced by the definitions (the request models hold no cycle)."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            return _inline(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
        return {key: _inline(value, defs) for key, value in schema.items() if key != "$defs"}
    if isinstance(schema, list):
        return [_inline(value, defs) for value in schema]
    return schema


def other_bodies(json_body: type[BaseModel]) -> dict:
    """``openapi_extra`` of a picture route: the request bodies beside the multipart form FastAPI documents itself,
    JSON (its schema generated from ``json_body``, definitions inline: ``openapi_extra`` adds no components) and a
    raw ``image/*`` body."""
    schema = json_body.model_json_schema()
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": _inline(schema, schema.get("$defs", {}))},
        "image/*": {"schema": {"type": "string", "format": "binary"}},
    }}}
