"""A small ResNet for 1×28×28 MNIST: many parameter tensors of very different sizes, plus
BatchNorm buffers, so the compressors and the exchange meet a realistic layer mix."""
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    # no bias: the BatchNorm that follows has its own shift
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3×3 conv + BatchNorm layers around a shortcut (He et al., 2016).

    The shortcut is the identity when shape is kept, else a strided 1×1 conv + BatchNorm.
    """

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1, self.bn1 = _conv3x3(cin, cout, stride), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = _conv3x3(cout, cout), nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False),
                                          nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class MnistResNet(nn.Module):
    """Stem, three stages at widths w, 2w, 4w (strides 1, 2, 2: 28→28→14→7), pooling, head."""

    def __init__(self, width: int = 16, blocks: Sequence[int] = (2, 1, 1), classes: int = 10):
        super().__init__()
        if len(blocks) != 3 or min(blocks) < 1:
            raise ValueError(f"blocks must give three stages of at least one block, got {tuple(blocks)}")
        self.stem = nn.Sequential(_conv3x3(1, width), nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        stages, cin = [], width
        for stage, (count, stride) in enumerate(zip(blocks, (1, 2, 2))):
            cout = width * 2 ** stage
            stage_blocks = [BasicBlock(cin, cout, stride)] + [BasicBlock(cout, cout) for _ in range(count - 1)]
            stages.append(nn.Sequential(*stage_blocks))
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(cin, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.stages(self.stem(x))
        return self.head(features.mean(dim=(2, 3)))  # global average pooling


def mnist_resnet(seed: int = 0, width: int = 16, blocks: Sequence[int] = (2, 1, 1)) -> nn.Module:
    """The seeded MNIST ResNet.

    At ``width=16`` with the default ``blocks=(2, 1, 1)``: 35 parameter tensors, 82,426
    parameters, and 11 BatchNorms with 3 buffers each. Forward + backward of 32 images takes
    about 30–45 ms on one CPU core.

    Args:
        seed: seeds torch's global generator before the layers are built, as ``digits_mlp`` does.
        width: channels of the first stage (then 2×, 4×).
        blocks: residual blocks per stage.
    """
    torch.manual_seed(seed)
    return MnistResNet(width=width, blocks=blocks)
