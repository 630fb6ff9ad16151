"""Convolutional networks: the Keras 99.35% CNN from the tutorials, and digitnet's own recipes.

``fastnet`` is built for time-to-accuracy on a CPU: few channels early (where the image is large),
BatchNorm everywhere so a high one-cycle learning rate is stable, and no large dense layer.
``fastnet-s`` goes further for the time-to-99% record: a stride-2 first conv, pooling before BatchNorm,
and no stage at 4×4 (about 2× fastnet's training throughput on a 2-core CPU, at 99.2–99.3% after one epoch).
``bestnet`` is a wider VGG-style net for the high-accuracy recipe (augmentation, long schedule).
"""

from torch import nn

from digitnet.models.registry import register_model


def conv_bn(c_in: int, c_out: int, k: int = 3, padding: int | None = None) -> nn.Sequential:
    """Conv → BatchNorm → ReLU; the conv has no bias because BatchNorm supplies one."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, k, padding=k // 2 if padding is None else padding, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


@register_model(
    "cnn-bn",
    "Keras CNN (99.35%): conv32 → pool → conv48+BN → pool → conv2×2 64+BN → pool → 3168 → 10",
    normalization="unit",
    source="Keras tutorial that reported 99.35% on CPU. It applied BatchNormalization to the height axis "
    "by mistake (axis=1 with channels-last data); here BatchNorm normalizes channels, as intended.",
    defaults={"optimizer": "rmsprop", "lr": 1e-3, "epochs": 12, "batch_size": 64},
)
def cnn_bn(dropout: float = 0.25) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(inplace=True), nn.MaxPool2d(2),  # 28 → 26 → 13
        nn.ZeroPad2d(1), nn.Conv2d(32, 48, 3), nn.ReLU(inplace=True), nn.BatchNorm2d(48),
        nn.MaxPool2d(2),  # 15 → 13 → 6
        nn.ZeroPad2d(1), nn.Conv2d(48, 64, 2), nn.ReLU(inplace=True), nn.BatchNorm2d(64),
        nn.MaxPool2d(2),  # 8 → 7 → 3
        nn.Dropout(dropout),
        nn.Flatten(),  # 3 * 3 * 64 = 576
        nn.Linear(576, 3168), nn.ReLU(inplace=True),
        nn.Linear(3168, 10),
    )


@register_model(
    "fastnet",
    "digitnet's fast recipe: 4 BN conv stages (16/32/64/128) → global max pool → 10",
    normalization="mnist",
    source="digitnet: sized for time-to-99% on a 2-core CPU (one-cycle LR, label smoothing, large batch)",
    defaults={"optimizer": "sgd", "lr": 0.2, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4,
              "epochs": 2, "batch_size": 128, "schedule": "onecycle", "label_smoothing": 0.1},
)
def fastnet(width: int = 16) -> nn.Module:
    w = width
    return nn.Sequential(
        conv_bn(1, w, 5), nn.MaxPool2d(2),  # 28 → 14
        conv_bn(w, 2 * w), nn.MaxPool2d(2),  # 14 → 7
        conv_bn(2 * w, 4 * w), nn.MaxPool2d(2, ceil_mode=True),  # 7 → 4
        conv_bn(4 * w, 8 * w),
        nn.AdaptiveMaxPool2d(1), nn.Flatten(),
        nn.Linear(8 * w, 10),
    )


def conv_pool_bn(c_in: int, c_out: int, k: int = 3, ceil_mode: bool = False) -> nn.Sequential:
    """Conv → MaxPool → BatchNorm → ReLU: normalizing and activating after the pool touches 4× fewer values.

    (Max-pooling commutes with ReLU, so this differs from conv → BN → ReLU → pool only through BatchNorm's
    statistics; on a CPU the element-wise passes at full resolution cost about as much as the conv.)
    """
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False),
        nn.MaxPool2d(2, ceil_mode=ceil_mode),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


@register_model(
    "fastnet-s",
    "digitnet's speed-record recipe: stride-2 5×5 conv 16 → conv 32 → conv 64 (pool, BN) → 1024 → 128 → 10",
    normalization="mnist",
    source="digitnet: the fastest net to 99.0% we found on a 2-core CPU (see benchmarks/README.md); "
    "one epoch of one-cycle SGD with label smoothing",
    defaults={"optimizer": "sgd", "lr": 0.3, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4,
              "epochs": 1, "batch_size": 128, "schedule": "onecycle", "label_smoothing": 0.1},
)
def fastnet_s(width: int = 16) -> nn.Module:
    w = width
    return nn.Sequential(
        nn.Conv2d(1, w, 5, stride=2, padding=2, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),  # 28 → 14
        conv_pool_bn(w, 2 * w),  # 14 → 7
        conv_pool_bn(2 * w, 4 * w, ceil_mode=True),  # 7 → 4
        nn.Flatten(),  # 4 × 4 × 64: no 4×4 conv stage, whose backward pass is the slowest op on a CPU
        nn.Linear(4 * w * 16, 128), nn.ReLU(inplace=True),
        nn.Linear(128, 10),
    )


@register_model(
    "bestnet",
    "digitnet's high-accuracy recipe: VGG-style 32-32-64-64-128 BN CNN with dropout",
    normalization="mnist",
    source="digitnet: the classic ~99.7% MNIST CNN shape, trained with affine+elastic augmentation",
    defaults={"optimizer": "adamw", "lr": 3e-3, "weight_decay": 5e-4, "epochs": 30, "batch_size": 128,
              "schedule": "onecycle", "label_smoothing": 0.1, "augment": "strong"},
)
def bestnet(width: int = 32, dropout: float = 0.3) -> nn.Module:
    w = width
    return nn.Sequential(
        conv_bn(1, w), conv_bn(w, w), conv_bn(w, w, 5, padding=2), nn.MaxPool2d(2), nn.Dropout(0.1),  # → 14
        conv_bn(w, 2 * w), conv_bn(2 * w, 2 * w), conv_bn(2 * w, 2 * w, 5, padding=2), nn.MaxPool2d(2),
        nn.Dropout(0.1),  # → 7
        conv_bn(2 * w, 4 * w, 4, padding=0),  # → 4
        nn.Flatten(), nn.Dropout(dropout),
        nn.Linear(4 * w * 16, 10),
    )
