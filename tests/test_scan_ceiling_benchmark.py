"""benchmarks/scan_ceiling.py: a model trained on one kind of coarse scan only, as a yardstick for that scan."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import real_world  # noqa: E402
import scan_ceiling  # noqa: E402


def test_the_yardstick_is_trained_on_the_scans_it_reads():
    rng = np.random.default_rng(0)
    digits = np.zeros((3, 28, 28), np.uint8)
    digits[:, 6:22, 12:16] = 255  # a 1
    x = scan_ceiling.scans(digits, 8, 2, False, 2, rng)
    assert x.shape == (6, 1, 8, 8) and set(np.unique(x.numpy())) <= {0.0, 1.0}
    again = real_world.scan_cells(digits[0], 8, 2, False, np.random.default_rng(0))
    assert np.array_equal(x[0, 0].numpy() * 255, again)  # real_world's rendering, not one of its own


def test_a_scan_that_keeps_more_of_the_digit_reads_better(mnist):
    fine = scan_ceiling.run(16, 17, True, digits="val", train_digits=1500, repeats=1, epochs=2)
    coarse = scan_ceiling.run(8, 2, False, digits="val", train_digits=1500, repeats=1, epochs=2)
    assert fine["n"] == coarse["n"] == 5000 and fine["trained_on"] == 1500
    assert fine["accuracy"] > 0.85 and fine["accuracy"] > coarse["accuracy"] + 0.05 and coarse["accuracy"] > 0.3


def test_main_prints_json_and_refuses_nonsense(capsys):
    with pytest.raises(SystemExit):
        scan_ceiling.main(["--epochs", "0"])
    assert "--epochs must be at least 1" in capsys.readouterr().err
    assert scan_ceiling.main(["--cell", "16", "--levels", "17", "--train-digits", "300", "--repeats", "1",
                              "--epochs", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["set"] == "scan 16×16 17 levels fill" and 0 <= result["accuracy"] <= 1
