"""``digitnet bench --quick --json``: runs end to end and reports sane figures."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from digitnet.cli import app


def test_bench_quick_json(tmp_path):
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(app, ["bench", "--quick", "--json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert json.loads(out.read_text()) == data
    assert {"time_to_99_s", "reference_time_to_99_s", "speedup", "runs", "reference_runs", "throughput",
            "peak_rss_mib", "environment", "notes"} <= set(data)
    # Ours reaches 99% on the full data in under an epoch (--quick keeps the full training and test sets and the
    # fastnet-s recipe, evaluating every 1/8 epoch); the capped reference cannot, and says so.
    assert isinstance(data["time_to_99_s"], float) and 0 < data["time_to_99_s"] < 300
    assert data["runs"][0]["reached"] and data["runs"][0]["epochs"] < 1
    assert data["runs"][0]["best_accuracy"] > 0.97
    assert data["reference_time_to_99_s"] is None and data["speedup"] is None
    ref = data["reference_runs"][0]
    assert ref["capped"] and not ref["reached"] and ref["steps"] == 100
    assert any("capped" in note for note in data["notes"])
    t = data["throughput"]
    assert all(rate > 0 for rate in t["train_images_per_s"].values())
    assert all(set(v) == {"1", "64", "1024"} and min(v.values()) > 0 for v in t["inference_images_per_s"].values())
    assert t["latency"]["median_ms"] > 0 and data["peak_rss_mib"] > 50


def test_bench_refuses_an_out_that_is_a_folder_before_benchmarking(tmp_path, monkeypatch):
    from digitnet.bench import run as bench_run
    from digitnet.utils import DigitnetError

    monkeypatch.setattr(bench_run, "run_benchmark", lambda *a, **k: pytest.fail("benchmarked before checking --out"))
    result = CliRunner().invoke(app, ["bench", "--quick", "--out", str(tmp_path)])
    assert isinstance(result.exception, DigitnetError) and f"--out {tmp_path} is a folder" in str(result.exception)


def test_bench_never_writes_over_a_models_own_files(tmp_path, monkeypatch):
    import shutil

    from digitnet.assets import bundled_model_dir
    from digitnet.bench import run as bench_run
    from digitnet.utils import DigitnetError

    model = tmp_path / "model"
    shutil.copytree(bundled_model_dir("default"), model)
    before = (model / "model.json").read_bytes()
    monkeypatch.setattr(bench_run, "run_benchmark", lambda *a, **k: pytest.fail("benchmarked before checking --out"))
    result = CliRunner().invoke(app, ["bench", "--quick", "--out", str(model / "model.json")])
    assert isinstance(result.exception, DigitnetError) and "a file of the model" in str(result.exception)
    assert (model / "model.json").read_bytes() == before
