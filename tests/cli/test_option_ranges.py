"""Options with a range are checked before any work: ``bench`` and ``serve`` answer a value out of it with
Typer's usage error (exit status 2), never a traceback, and start nothing."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from digitnet.cli import app


def usage_error(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 2, (args, result.output, result.exception)
    return " ".join(result.output.split())  # the box Typer draws, unwrapped


@pytest.mark.parametrize(("args", "option"), [
    (["--seeds", "0"], "--seeds"), (["--seeds", "-2"], "--seeds"),
    (["--eval-every", "0"], "--eval-every"), (["--eval-every", "-1"], "--eval-every"),
    (["--eval-every", "nan"], "--eval-every"), (["--eval-every", "inf"], "--eval-every"),
    (["--target", "2"], "--target"), (["--target", "0"], "--target"), (["--target", "nan"], "--target"),
])
def test_bench_refuses_an_option_out_of_range_before_benchmarking(args, option, tmp_path, monkeypatch):
    import digitnet.bench.run

    monkeypatch.setattr(digitnet.bench.run, "run_benchmark", lambda *a, **k: pytest.fail("benchmarked"))
    out = tmp_path / "sub" / "bench.json"
    assert option in usage_error("bench", "--quick", "--out", str(out), *args)
    assert not (tmp_path / "sub").exists()


@pytest.mark.parametrize(("args", "option"), [
    (["--port", "70000"], "--port"), (["--port", "-1"], "--port"), (["--port", "0"], "--port"),
    (["--max-upload-mb", "nan"], "--max-upload-mb"), (["--max-upload-mb", "-1"], "--max-upload-mb"),
    (["--max-upload-mb", "0"], "--max-upload-mb"), (["--max-upload-mb", "inf"], "--max-upload-mb"),
])
def test_serve_refuses_an_option_out_of_range_before_serving(args, option, monkeypatch):
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("served"))
    assert option in usage_error("serve", *args)
