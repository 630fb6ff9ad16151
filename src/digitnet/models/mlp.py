"""A multilayer perceptron, as in the TensorFlow 2 tutorial (TensorBoard + OpenCV prediction)."""

from torch import nn

from digitnet.models.registry import register_model


@register_model(
    "mlp",
    "flatten → 256 ReLU → dropout 0.2 → 128 ReLU → 10",
    normalization="unit",
    channels_last=False,
    source="TF2 Keras tutorial MNISTClassifier: Dense 256/128 with L2 1e-3 on the kernels, Adam 1e-3",
    # The tutorial put L2 1e-3 on the dense kernels; the trainer applies it as `l2` on weight matrices.
    defaults={"optimizer": "adam", "lr": 1e-3, "l2": 1e-3, "epochs": 10, "batch_size": 128},
)
def mlp(hidden: tuple[int, int] = (256, 128), dropout: float = 0.2) -> nn.Module:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(28 * 28, hidden[0]), nn.ReLU(inplace=True), nn.Dropout(dropout),
        nn.Linear(hidden[0], hidden[1]), nn.ReLU(inplace=True),
        nn.Linear(hidden[1], 10),
    )
