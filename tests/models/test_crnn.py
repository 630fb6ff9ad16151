"""The line recognizer: its shapes, CTC encoding and greedy decoding (on hand-made posteriors), and that a saved
model reads the same after loading and after ONNX export."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from digitnet.models import create_model, get_spec
from digitnet.models.crnn import ALPHABET, BLANK, REDUCTION, encode, greedy_decode, output_lengths


def posteriors(path: str, confident: float = 0.9) -> np.ndarray:
    """Posteriors (T, classes) whose best path is ``path``: one column per character, "_" for the blank."""
    classes = len(ALPHABET) + 1
    out = np.full((len(path), classes), (1 - confident) / (classes - 1), np.float32)
    for t, c in enumerate(path):
        out[t, BLANK if c == "_" else ALPHABET.index(c) + 1] = confident
    return out


def test_decode_merges_repeats_and_drops_blanks() -> None:
    decoded = greedy_decode(posteriors("__11_1__2.22__5"))
    # "11" then "_1" is a second 1 (a blank parts repeats); "2.22" gives 2 . 2 (the 22 merges)
    assert decoded.text == "112.25"
    assert decoded.spans == [(2, 3), (5, 5), (8, 8), (9, 9), (10, 11), (14, 14)]


def test_decode_without_blanks_between_repeats_reads_one() -> None:
    assert greedy_decode(posteriors("7777")).text == "7"
    assert greedy_decode(posteriors("7_7")).text == "77"
    assert greedy_decode(posteriors("____")).text == ""


def test_decode_confidence_and_digit_probabilities_come_from_the_peak_column() -> None:
    p = posteriors("_33_", confident=0.6)
    p[2] = 0.0
    p[2, ALPHABET.index("3") + 1] = 0.8  # the peak of the run of 3s
    p[2, ALPHABET.index("8") + 1] = 0.2
    decoded = greedy_decode(p)
    assert decoded.text == "3"
    assert decoded.confidences == [pytest.approx(0.8)]
    digits = decoded.digit_probabilities[0]
    assert digits.shape == (10,) and digits.sum() == pytest.approx(1.0)
    assert digits[3] == pytest.approx(0.8) and digits[8] == pytest.approx(0.2)


def test_separators_have_no_digit_probabilities() -> None:
    decoded = greedy_decode(posteriors("1_,_- 2"))
    assert decoded.text == "1,- 2"
    assert [p is None for p in decoded.digit_probabilities] == [False, True, True, True, False]


def test_encode_is_the_inverse_of_the_alphabet() -> None:
    flat, lengths = encode(["12.5", "-3 4"])
    assert lengths.tolist() == [4, 4]
    assert "".join(ALPHABET[k - 1] for k in flat.tolist()) == "12.5-3 4"
    with pytest.raises(ValueError, match="alphabet"):
        encode(["1a"])


def test_output_columns_follow_the_width() -> None:
    model = create_model("crnn-digits").eval()
    assert get_spec("crnn-digits").task == "lines"
    for width in (4, 64, 200):
        with torch.no_grad():
            out = model(torch.zeros(2, 1, 32, width))
        assert out.shape == (2, width // REDUCTION, len(ALPHABET) + 1)
        assert output_lengths(torch.tensor([width])).item() == width // REDUCTION


def test_saved_model_reads_the_same_after_load_and_onnx_export(tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    from digitnet.saved_model import load_model, save_model
    from digitnet.serve.export import export_model

    torch.manual_seed(0)
    model = create_model("crnn-digits").eval()
    # Untrained weights read random text; a strong bias per column makes the text non-trivial and deterministic.
    with torch.no_grad():
        model.head.bias.copy_(torch.linspace(-1, 1, len(ALPHABET) + 1))
    save_model(model, tmp_path / "line", {"ctc_offset": -1.5})
    loaded = load_model(tmp_path / "line")
    lines = torch.rand(3, 1, 32, 96)
    with torch.no_grad():
        before = torch.softmax(model(lines), 2).numpy()
        after = torch.softmax(loaded.model(lines), 2).numpy()
    texts = [greedy_decode(p).text for p in before]
    assert [greedy_decode(p).text for p in after] == texts
    onnx_path = export_model(tmp_path / "line", tmp_path / "line.onnx")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].name == "line"
    # another width than the export's example: the width axis is dynamic
    probabilities = session.run(["probabilities"], {"line": lines.numpy()})[0]
    assert probabilities.shape == before.shape
    assert np.abs(probabilities - before).max() < 1e-4
    assert [greedy_decode(p).text for p in probabilities] == texts
    meta = {p.key: p.value for p in __import__("onnx").load(str(onnx_path)).metadata_props}
    assert meta["digitnet.alphabet"] == ALPHABET and float(meta["digitnet.ctc_offset"]) == -1.5
