from dataclasses import replace

import pytest
import torch

from digitnet.models import count_parameters, create_model, get_spec, list_models, preprocess
from digitnet.models.summary import summarize
from digitnet.utils import DigitnetError

# Parameter counts worked out by hand from the layer lists in the issue (weights + biases + BN affine).
EXPECTED_PARAMS = {
    "mlp": 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10,
    "lenet5": (6 * 25 + 6) + (16 * 6 * 25 + 16) + (400 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10),
    "lenet5-bn": (6 * 9 + 6 + 12) + (16 * 6 * 9 + 16 + 32) + (576 * 120 + 120) + (120 * 84 + 84) + 850,
    "lenet-500": (20 * 25 + 20) + (50 * 20 * 25 + 50) + (2450 * 500 + 500) + (500 * 10 + 10),
    "cnn-bn": (32 * 9 + 32) + (48 * 32 * 9 + 48 + 96) + (64 * 48 * 4 + 64 + 128) + (576 * 3168 + 3168) + 31690,
    "resnet18": 11_172_810,  # torchvision's CIFAR-style ResNet-18 minus the 2 unused input channels of the stem
    "resnet34": 21_280_970,
}


def test_the_zoo_has_every_tutorial_family():
    assert set(EXPECTED_PARAMS) <= set(list_models())
    assert {"fastnet", "bestnet"} <= set(list_models())


@pytest.mark.parametrize("name", sorted(EXPECTED_PARAMS))
def test_parameter_counts(name):
    assert count_parameters(create_model(name)) == EXPECTED_PARAMS[name]


@pytest.mark.parametrize("name", ["mlp", "lenet5", "lenet5-bn", "lenet-500", "cnn-bn", "fastnet", "bestnet",
                                  "resnet18"])
def test_output_shape_and_docstring(name):
    model = create_model(name).eval()
    spec = model.spec
    x = preprocess(torch.randint(0, 256, (3, 28, 28), dtype=torch.uint8), spec)
    assert x.shape == (3, 1, spec.input_size, spec.input_size)
    assert model(x).shape == (3, 10)
    assert spec.description and spec.source  # each family says what it is and where it comes from


def test_lenet5_pads_instead_of_resizing():
    spec = get_spec("lenet5")
    img = torch.zeros(1, 28, 28, dtype=torch.uint8)
    img[0, 0, 0] = 255
    x = preprocess(img, spec)
    assert x.shape[-1] == 32
    mean, std = spec.mean_std
    assert x[0, 0, 2, 2] == pytest.approx((1 - mean) / std)  # the corner pixel moved by 2, unblurred
    assert x[0, 0, 0, 0] == pytest.approx(-mean / std)  # padding is black, normalized


def test_normalizations_follow_the_tutorials():
    assert get_spec("mlp").mean_std == (0.0, 1.0)
    assert get_spec("lenet5").mean_std == (0.1307, 0.3081)


def test_unknown_model_names_the_choices():
    with pytest.raises(DigitnetError, match="lenet5"):
        create_model("lenet7")


def test_summary_matches_the_model():
    info = summarize("lenet5")
    assert info["total_params"] == EXPECTED_PARAMS["lenet5"]
    assert sum(layer["params"] for layer in info["layers"]) == info["total_params"]
    assert info["layers"][-1]["output_shape"] == [None, 10]
    assert info["layers"][0]["output_shape"] == [None, 6, 28, 28]


# ------------------------------------------------------------------------------- spec.prepare: the one input path


def test_prepare_scales_uint8_and_takes_floats_as_unit():
    spec = get_spec("fastnet")
    images = torch.randint(0, 256, (4, 28, 28), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    x = spec.prepare(images)
    assert x.shape == (4, 1, 28, 28) and x.dtype == torch.float32
    torch.testing.assert_close(x, (images.float().unsqueeze(1) / 255 - 0.1307) / 0.3081)
    torch.testing.assert_close(spec.prepare(images.float() / 255), x)
    torch.testing.assert_close(spec.prepare(images.unsqueeze(1)), x)  # (N, 1, 28, 28) as well


def test_preprocess_is_prepare():
    images = torch.randint(0, 256, (2, 28, 28), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    torch.testing.assert_close(preprocess(images, get_spec("lenet5")), get_spec("lenet5").prepare(images))


def test_spec_contract_and_custom_normalization():
    spec = get_spec("lenet5").with_contract(32, 0.2, 0.4, False)
    assert spec.contract() == {"input_size": 32, "normalization": {"name": "custom", "mean": 0.2, "std": 0.4},
                               "channels_last": False}
    assert spec.defaults == get_spec("lenet5").defaults and spec.description == get_spec("lenet5").description
    x = spec.prepare(torch.full((1, 28, 28), 255, dtype=torch.uint8))
    assert x[0, 0, 0, 0] == pytest.approx(-0.2 / 0.4) and x[0, 0, 16, 16] == pytest.approx((1 - 0.2) / 0.4)
    assert get_spec("mlp").with_contract(28, 0.1307, 0.3081, True).normalization == "mnist"  # known numbers: named
    with pytest.raises(DigitnetError, match="unknown normalization 'nope'"):
        replace(get_spec("mlp"), normalization="nope")
    with pytest.raises(DigitnetError, match="give numbers only with normalization 'custom'"):
        replace(get_spec("mlp"), mean=0.5)
    assert replace(get_spec("fastnet"), normalization="unit").mean_std == (0.0, 1.0)  # a name means its numbers
