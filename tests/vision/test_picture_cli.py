"""`digitnet predict` and `digitnet read`: JSON lines, tables, debug output, bad files and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from photo_helpers import call_guarded, digit_photo, number_ink, on_paper
from PIL import Image
from typer.testing import CliRunner

from digitnet.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def pictures(tmp_path_factory, clean_digits) -> dict[str, Path]:
    """A few pictures on disk: three digits, a number, a blank page and some bad files."""
    folder = tmp_path_factory.mktemp("pictures")
    paths = {}
    for digit, fmt in ((3, "png"), (7, "jpg"), (0, "webp")):
        paths[f"digit-{digit}"] = folder / f"digit-{digit}.{fmt}"
        Image.fromarray(digit_photo(clean_digits[digit], height=80)).convert("RGB").save(paths[f"digit-{digit}"])
    ink = number_ink([clean_digits[d] for d in (2, 0, 2, 6)], height=60)
    paths["number"] = folder / "number-2026.png"
    Image.fromarray(on_paper(ink)).save(paths["number"])
    paths["blank"] = folder / "blank.png"
    Image.fromarray(np.full((90, 90), 235, np.uint8)).save(paths["blank"])
    paths["empty"] = folder / "empty.png"
    paths["empty"].write_bytes(b"")
    paths["text"] = folder / "text.jpg"
    paths["text"].write_text("not a picture")
    return paths


def json_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_predict_json_one_line_per_picture(pictures):
    result = runner.invoke(app, ["predict", "--json", str(pictures["digit-3"]), str(pictures["digit-7"]),
                                 str(pictures["digit-0"])])
    assert result.exit_code == 0, result.output
    answers = json_lines(result.stdout)
    assert [a["digit"] for a in answers] == [3, 7, 0]
    for answer, name in zip(answers, ("digit-3", "digit-7", "digit-0"), strict=True):
        assert answer["path"] == str(pictures[name]) and answer["error"] is None
        assert len(answer["probabilities"]) == 10 and abs(sum(answer["probabilities"]) - 1) < 1e-4
        assert answer["confidence"] == max(answer["probabilities"])
        assert "top_k" not in answer


def test_predict_bad_files_among_good(pictures):
    paths = [pictures["digit-3"], pictures["empty"], pictures["text"], pictures["digit-7"], "missing.png"]
    result = runner.invoke(app, ["predict", "--json", *map(str, paths)])
    assert result.exit_code == 1
    answers = json_lines(result.stdout)
    assert [a["digit"] for a in answers] == [3, None, None, 7, None]
    assert "empty" in answers[1]["error"] and "not an image" in answers[2]["error"]
    assert "no such file" in answers[4]["error"]
    assert "Traceback" not in result.output


def test_predict_blank_page_is_null_not_a_guess(pictures):
    result = runner.invoke(app, ["predict", "--json", str(pictures["blank"])])
    assert result.exit_code == 0  # a blank page is an answer, not a failure
    (answer,) = json_lines(result.stdout)
    assert answer["digit"] is None and answer["probabilities"] is None and answer["error"] is None
    assert answer["note"] == "no ink found"


def test_predict_top_k_and_min_confidence(pictures):
    result = runner.invoke(app, ["predict", "--json", "--top-k", "3", str(pictures["digit-3"])])
    (answer,) = json_lines(result.stdout)
    assert [t["digit"] for t in answer["top_k"]][0] == 3 and len(answer["top_k"]) == 3
    probabilities = [t["probability"] for t in answer["top_k"]]
    assert probabilities == sorted(probabilities, reverse=True)
    result = runner.invoke(app, ["predict", "--json", "--min-confidence", "1.0", str(pictures["digit-3"])])
    (answer,) = json_lines(result.stdout)
    assert answer["digit"] is None and "confidence" in answer["note"] and answer["confidence"] > 0.5


def test_predict_table_show_and_debug(pictures, tmp_path):
    debug = tmp_path / "debug"
    result = runner.invoke(app, ["predict", "--show", "--save-debug", str(debug), str(pictures["digit-7"]),
                                 str(pictures["number"]), str(pictures["empty"])])
    assert result.exit_code == 1
    assert "digit-7" in result.stdout and "4 digits found" in result.stdout and "empty" in result.stdout
    assert "█" in result.stdout  # the 28×28 drawn in the terminal
    saved = Image.open(debug / "digit-7.png")
    assert saved.size == (28, 28) and saved.mode == "L"
    assert sorted(p.name for p in debug.iterdir()) == ["digit-7.png"]  # nothing for unusable pictures


def test_predict_expands_folders_and_globs(pictures):
    folder = pictures["digit-3"].parent
    result = runner.invoke(app, ["predict", "--json", str(folder / "digit-*")])
    assert [Path(a["path"]).name for a in json_lines(result.stdout)] == ["digit-0.webp", "digit-3.png", "digit-7.jpg"]
    result = runner.invoke(app, ["predict", "--json", str(folder)])
    names = [Path(a["path"]).name for a in json_lines(result.stdout)]
    assert "blank.png" in names and "text.jpg" in names and len(names) == 7


def test_predict_unknown_model_dir(pictures, tmp_path):
    result = runner.invoke(app, ["predict", "--model", str(tmp_path / "nope"), str(pictures["digit-3"])])
    assert result.exit_code == 1 and "error" in result.stderr and "Traceback" not in result.output


def test_read_json(pictures):
    result = runner.invoke(app, ["read", "--json", str(pictures["number"]), str(pictures["blank"])])
    assert result.exit_code == 0
    number, blank = json_lines(result.stdout)
    assert number["text"] == "2026" and number["error"] is None
    assert [d["digit"] for d in number["digits"]] == [2, 0, 2, 6]
    assert all(len(d["box"]) == 4 and 0 < d["confidence"] <= 1 for d in number["digits"])
    assert blank["text"] == "" and blank["digits"] == [] and blank["note"] == "no ink found"


def test_read_table_and_bad_file(pictures):
    result = runner.invoke(app, ["read", str(pictures["number"]), str(pictures["text"])])
    assert result.exit_code == 1
    assert "2026" in result.stdout and "not an image" in result.stdout


def test_installed_command_exit_status(pictures):
    # The real entry point, as a user runs it: JSON lines on stdout, status 1 for the bad file.
    command = [sys.executable, "-m", "digitnet", "predict", "--json", str(pictures["digit-3"]), str(pictures["empty"])]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    answers = json_lines(done.stdout)
    assert [a["digit"] for a in answers] == [3, None] and "empty" in answers[1]["error"]
    assert "Traceback" not in done.stderr


def test_no_pictures_in_an_empty_folder(tmp_path):
    result = runner.invoke(app, ["read", str(tmp_path)])
    assert result.exit_code == 1 and "no pictures found" in result.stderr


# ------------------------------------------------------------------------- FIFOs and broken links

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this platform")


@needs_fifo
def test_predict_a_fifo_is_a_one_line_error_not_a_hang(tmp_path):
    """Regression: `digitnet predict pipe.png` on a FIFO waited forever for a writer."""
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    command = [sys.executable, "-m", "digitnet", "predict", "--json", str(fifo)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)  # a hang fails here, not CI
    assert done.returncode == 1
    (answer,) = json_lines(done.stdout)
    assert answer["error"] == f"{fifo}: is a named pipe (FIFO), not an image file"
    assert "Traceback" not in done.stderr


@needs_fifo
@pytest.mark.parametrize("command", ["predict", "read"])
def test_a_folder_with_a_fifo_and_a_broken_link_reports_them(tmp_path, pictures, command):
    """Regression: a folder silently skipped FIFOs and broken symbolic links; each now gets its error line."""
    (tmp_path / "a.png").write_bytes(pictures["digit-3"].read_bytes())
    os.mkfifo(tmp_path / "b.png")
    (tmp_path / "c.png").symlink_to(tmp_path / "deleted.png")
    result = call_guarded(lambda: runner.invoke(app, [command, "--json", str(tmp_path)]),
                          fifos=[tmp_path / "b.png"], timeout=60)
    assert result.exit_code == 1
    answers = json_lines(result.stdout)
    assert [Path(a["path"]).name for a in answers] == ["a.png", "b.png", "c.png"]
    assert answers[0]["error"] is None and (answers[0].get("digit") == 3 or answers[0].get("text") == "3")
    assert "named pipe (FIFO)" in answers[1]["error"] and "broken symbolic link" in answers[2]["error"]


def test_predict_never_saves_debug_images_into_a_model_folder(pictures, tmp_path):
    from digitnet.utils import DigitnetError

    run = tmp_path / "run"
    run.mkdir()
    (run / "model.json").write_text("{}")
    result = runner.invoke(app, ["predict", "--save-debug", str(run), str(pictures["digit-7"])])
    assert isinstance(result.exception, DigitnetError) and "is a model folder" in str(result.exception)
    assert [p.name for p in run.iterdir()] == ["model.json"]


@pytest.mark.parametrize("command", ["read", "predict"])
def test_a_fault_of_ours_on_one_picture_is_its_error_and_the_others_are_read(pictures, monkeypatch, command):
    """Where reading a picture hits a fault in digitnet itself (here finding the writing made to fail on the first
    picture), that picture gets a one-line error naming it and the fault, the next is still read, the exit status
    is 1, and no traceback is shown."""
    from digitnet.vision import pipeline

    real, calls = pipeline.find_writing, []

    def failing_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise IndexError("index 408 is out of bounds for axis 1 with size 405")
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "find_writing", failing_once)
    first, second = pictures["number"], pictures["digit-3"]
    result = runner.invoke(app, [command, "--json", "--workers", "0", str(first), str(second)])
    assert result.exit_code == 1, result.output
    failed, read = json_lines(result.stdout)
    assert failed["error"].startswith(f"{first}: could not be read: IndexError: index 408")
    assert "\n" not in failed["error"] and "fault in digitnet" in failed["error"]
    assert read["error"] is None and (read["text"] == "3" if command == "read" else read["digit"] == 3)
    assert "Traceback" not in result.output
