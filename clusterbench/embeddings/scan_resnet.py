"""SCAN's SimCLR networks (Van Gansbeke et al., ECCV 2020), so their released pretext
checkpoints load unchanged.

SCAN trains SimCLR with a ResNet-18 adapted to small images and an MLP projection head:

* CIFAR variant (CIFAR-10, CIFAR-100-20; 32x32 input): the ImageNet stem (7x7 stride-2 conv +
  max-pool) is replaced by a 3x3 stride-1 conv without pooling; global average pooling at the end.
* STL variant (96x96 input): the same 3x3 stride-1 stem followed by a 2x2 stride-2 max-pool
  (padding 1), and a fixed 7x7 average pool at the end (so the input must be 96x96).
* Both: BasicBlock stages of 64, 128, 256, 512 channels (2 blocks each), 512-d output;
  the contrastive head is Linear(512, 512) -> ReLU -> Linear(512, 128), L2-normalised.

Parameter names follow the checkpoints' keys (``backbone.layer1.0.conv1.weight``,
``backbone.layer2.0.shortcut.0.weight``, ``contrastive_head.0.weight``, ...).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

BACKBONE_DIM = 512
HEAD_DIM = 128


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()  # identity when shapes agree
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ScanResNet18(nn.Module):
    """ResNet-18 backbone as SCAN defines it for ``variant`` "cifar" or "stl"; 512-d output."""

    def __init__(self, variant: str = "cifar"):
        super().__init__()
        if variant not in ("cifar", "stl"):
            raise ValueError(f"variant must be 'cifar' or 'stl', got {variant!r}")
        self.variant = variant
        self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(2, stride=2, padding=1) if variant == "stl" else nn.Identity()
        planes, layers = 64, []
        for width, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers.append(nn.Sequential(BasicBlock(planes, width, stride), BasicBlock(width, width, 1)))
            planes = width
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AvgPool2d(7, stride=1) if variant == "stl" else nn.AdaptiveAvgPool2d(1)
        for m in self.modules():  # SCAN's initialisation (matters only for random-init tests)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = torch.flatten(self.avgpool(out), 1)
        if out.shape[1] != BACKBONE_DIM:
            raise ValueError(f"the {self.variant} ResNet-18 expects {'96x96' if self.variant == 'stl' else '32x32'} "
                             f"inputs; got {tuple(x.shape[-2:])}")
        return out


class ContrastiveModel(nn.Module):
    """SCAN's SimCLR model: backbone + MLP projection head (L2-normalised output)."""

    def __init__(self, variant: str = "cifar"):
        super().__init__()
        self.backbone = ScanResNet18(variant)
        self.contrastive_head = nn.Sequential(nn.Linear(BACKBONE_DIM, BACKBONE_DIM), nn.ReLU(),
                                              nn.Linear(BACKBONE_DIM, HEAD_DIM))

    def forward(self, x: torch.Tensor, features: str = "head") -> torch.Tensor:
        h = self.backbone(x)
        if features == "backbone":
            return h
        return F.normalize(self.contrastive_head(h), dim=1)
