"""benchmarks/pipeline_speed.py times the steps the chosen reader really takes."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import pipeline_speed  # noqa: E402


@pytest.mark.parametrize("reader, line_model_runs", [("line", True), ("segment", False)])
def test_the_line_readers_steps_are_timed_only_when_it_reads(mnist, reader, line_model_runs):
    result = pipeline_speed.measure(n=2, numbers=3, seed=0, reader=reader)
    number = result["number"]["primitives"]
    assert result["reader"] == reader and result["number"]["total_ms"] > 0
    assert ("recognize_lines" in number) == line_model_runs and ("line_image" in number) == line_model_runs
    if line_model_runs:
        assert number["recognize_lines"]["calls"] == 1.0  # one pass over each picture's lines
    assert number["find_writing"]["calls"] == 1.0 and result["digit"]["primitives"]["find_writing"]["calls"] == 1.0


def test_the_timers_are_taken_away_afterwards(mnist):
    from digitnet.vision import line_reader, lines, preprocess, segment

    before = preprocess.find_ink, segment.stroke_width, lines.find_lines, line_reader.find_lines
    pipeline_speed.measure(n=1, numbers=1, seed=0, reader="line")
    # also where one function was imported into several modules
    after = preprocess.find_ink, segment.stroke_width, lines.find_lines, line_reader.find_lines
    assert all(a is b for a, b in zip(after, before, strict=True))
