"""The LeNet family from the tutorials.

- ``lenet5``: LeCun et al. 1998 as the PyTorch tutorial built it: 32×32 input, two 5×5 convolutions
  with pooling, then 120 → 84 → 10. We pad MNIST by 2 pixels instead of resizing it (the tutorial
  resized 28→32, which blurs the strokes; the original paper padded).
- ``lenet5-bn``: the TensorFlow 2 variant for 28×28 input with BatchNorm after each convolution.
- ``lenet-500``: the Caffe / TF1 "LeNet" (20 and 50 filters, 500 hidden units).
"""

from torch import nn

from digitnet.models.registry import register_model


@register_model(
    "lenet5",
    "LeNet-5: conv5×5 6 → pool → conv5×5 16 → pool → 120 → 84 → 10 (32×32 input)",
    input_size=32,
    source="LeCun et al. 1998; PyTorch LeNet-5 tutorial (ReLU, max-pool, Adam, mean/std normalization)",
    defaults={"optimizer": "adam", "lr": 1e-3, "epochs": 10, "batch_size": 64},
)
def lenet5() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),  # 32 → 28 → 14
        nn.Conv2d(6, 16, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),  # 14 → 10 → 5
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(inplace=True),
        nn.Linear(120, 84), nn.ReLU(inplace=True),
        nn.Linear(84, 10),
    )


@register_model(
    "lenet5-bn",
    "LeNet-5 for 28×28 with BatchNorm: conv3×3 6 same → BN → pool → conv3×3 16 → BN → pool → 120 → 84 → 10",
    normalization="unit",
    channels_last=False,
    source="TF2 LeNet-5 + BN tutorial (Adam, reduce-on-plateau 0.2/3 on val accuracy, early stopping 6)",
    defaults={"optimizer": "adam", "lr": 1e-3, "epochs": 18, "batch_size": 64, "schedule": "plateau"},
)
def lenet5_bn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.MaxPool2d(2), nn.ReLU(inplace=True),  # 28 → 14
        nn.Conv2d(6, 16, 3), nn.BatchNorm2d(16), nn.MaxPool2d(2), nn.ReLU(inplace=True),  # 14 → 12 → 6
        nn.Flatten(),
        nn.Linear(16 * 6 * 6, 120), nn.ReLU(inplace=True),
        nn.Linear(120, 84), nn.ReLU(inplace=True),
        nn.Linear(84, 10),
    )


@register_model(
    "lenet-500",
    "Caffe/TF1 LeNet: conv5×5 20 same → pool → conv5×5 50 same → pool → 500 ReLU → 10",
    normalization="unit",
    source="Caffe MNIST example / TensorFlow 1 mnist_cnn demo (SGD with decaying LR in the original)",
    defaults={"optimizer": "adam", "lr": 1e-3, "epochs": 10, "batch_size": 64},
)
def lenet_500() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 20, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),  # 28 → 14
        nn.Conv2d(20, 50, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),  # 14 → 7
        nn.Flatten(),
        nn.Linear(50 * 7 * 7, 500), nn.ReLU(inplace=True),
        nn.Linear(500, 10),
    )
