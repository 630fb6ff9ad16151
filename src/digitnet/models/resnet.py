"""ResNet-18 and ResNet-34 (He et al. 2016) adapted to 28×28×1 MNIST.

The ImageNet stem (7×7 stride-2 conv + max-pool) would shrink a 28×28 digit to 7×7 before the first
block, so the stem is a single 3×3 conv at full resolution, as in the CIFAR variants; stages 64/128/256/512
with strides 1/2/2/2 then take it 28 → 28 → 14 → 7 → 4 before global average pooling.
"""

from torch import nn

from digitnet.models.registry import register_model


class BasicBlock(nn.Module):
    """Two 3×3 convs with a residual connection (projected by a 1×1 conv when the shape changes)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, blocks: tuple[int, int, int, int], widths=(64, 128, 256, 512), num_classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, widths[0], 3, padding=1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        layers, c_in = [], widths[0]
        for i, (n, c_out) in enumerate(zip(blocks, widths, strict=True)):
            stride = 1 if i == 0 else 2
            for j in range(n):
                layers.append(BasicBlock(c_in, c_out, stride if j == 0 else 1))
                c_in = c_out
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x):
        return self.fc(self.pool(self.layers(self.stem(x))).flatten(1))


_RESNET_DEFAULTS = {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4, "epochs": 5,
                    "batch_size": 128, "schedule": "onecycle"}


@register_model("resnet18", "ResNet-18 (BasicBlock 2-2-2-2, 11.2M params), 3×3 stem for 28×28",
                source="He et al. 2016; the PyTorch ResNet-18 MNIST tutorial", defaults=_RESNET_DEFAULTS)
def resnet18(width: int = 64) -> nn.Module:
    return ResNet((2, 2, 2, 2), tuple(width * m for m in (1, 2, 4, 8)))


@register_model("resnet34", "ResNet-34 (BasicBlock 3-4-6-3, 21.3M params), 3×3 stem for 28×28",
                source="He et al. 2016", defaults=_RESNET_DEFAULTS)
def resnet34(width: int = 64) -> nn.Module:
    return ResNet((3, 4, 6, 3), tuple(width * m for m in (1, 2, 4, 8)))
