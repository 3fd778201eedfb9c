"""Encoder and decoder networks, chosen by input shape (overridable with model.architecture).

- ``mlp``: tiny images (the embedded 8x8 digits).
- ``mlp-bn``: the PixelVAE paper's MNIST networks, MLPs with BatchNorm (hidden 500 there).
- ``conv``: the reference slides' MNIST architecture, 2 conv + 2 linear layers each way; works
  for any size divisible by 4 (28x28 gray, 32x32).
- ``resnet``: a small residual conv pair for 32x32 RGB, with 64- and 128-channel residual
  blocks at full and half resolution: it learns, but costs about 5.7 GFLOP per image and step
  and trains at about 12 images/s per CPU thread.
- ``convnet`` (``auto`` for RGB and for gray images over 32x32): 4x4 stride-2 convs whose number
  follows the image size (one per halving down to a 4x4 map: 3 at 32x32, 5 at 128x128) and whose
  width doubles per stage from 32 up to 256, then a ``hidden``-unit layer; mirrored in the
  decoder. No full-resolution blocks: the cost per pixel stays small at any size.
- ``conv4``: the disentanglement literature's 64x64 networks (Higgins et al. 2017, Burgess et
  al. 2018; disentanglement_lib's ``conv_encoder`` / ``deconv_decoder``): four 4x4 stride-2
  convs (32, 32, 64, 64 channels) to a 4x4 map and a 256-unit layer, mirrored in the decoder.
  Sides divisible by 16. At 64x64 a training step costs 0.62x ``conv``'s FLOPs (97 against 156
  MFLOP per image, torch's FlopCounterMode) with 1/11 of its parameters, and it is the
  architecture the published beta-VAE disentanglement results were measured with.

Every encoder maps x [B, C, H, W] to 2 * latent_dim numbers; every decoder maps z [B, d] to
``out_channels`` maps of size H x W (the likelihood's parameters).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import cast

from torch import nn

from repvae.config import ARCHITECTURES, AUTO_ARCHITECTURE


def choose_architecture(shape: tuple[int, int, int]) -> str:
    """``auto``: an MLP for tiny images, ``conv`` for gray images up to 32x32 (MNIST), else
    ``convnet``, whose depth and width follow the image size."""
    c, h, w = shape
    if h * w <= 16 * 16 or h % 4 or w % 4:
        return "mlp"
    return "conv" if c == 1 and h * w <= 32 * 32 else "convnet"


def first_auto_architecture(shape: tuple[int, int, int]) -> str:
    """What ``auto`` meant before ``convnet``: run folders that saved ``auto`` were built so
    (training now saves the architecture ``auto`` chose)."""
    c, h, w = shape
    if h * w <= 16 * 16 or h % 4 or w % 4:
        return "mlp"
    return "conv" if c == 1 else "resnet"


def _mlp(inputs: int, hidden: int, out: int, batch_norm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for n_in in (inputs, hidden):
        layers += [nn.Linear(n_in, hidden), *([nn.BatchNorm1d(hidden)] if batch_norm else [])]
        layers.append(nn.ReLU())
    return [*layers, nn.Linear(hidden, out)]


def mlp_encoder(
    shape: tuple[int, int, int], out: int, hidden: int, batch_norm: bool = False
) -> nn.Module:
    c, h, w = shape
    return nn.Sequential(nn.Flatten(), *_mlp(c * h * w, hidden, out, batch_norm))


def mlp_decoder(
    latent: int,
    shape: tuple[int, int, int],
    out_channels: int,
    hidden: int,
    batch_norm: bool = False,
) -> nn.Module:
    _, h, w = shape
    return nn.Sequential(
        *_mlp(latent, hidden, out_channels * h * w, batch_norm),
        nn.Unflatten(1, (out_channels, h, w)),
    )


# The dense ends are spliced into each network's flat Sequential (not nested), so the
# parameter names, and with them every saved run's weights, stay as they were.
def _to_code(features: int, hidden: int, out: int) -> list[nn.Module]:
    """A conv feature map, flattened, through one hidden layer to the code's parameters."""
    return [nn.Flatten(), nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, out)]


def _from_code(
    latent: int, hidden: int, feature_map: tuple[int, int, int], relu: bool = True
) -> list[nn.Module]:
    """A code through one hidden layer to a conv feature map (the mirror of ``_to_code``)."""
    c, h, w = feature_map
    return [
        nn.Linear(latent, hidden),
        nn.ReLU(),
        nn.Linear(hidden, c * h * w),
        *([nn.ReLU()] if relu else []),
        nn.Unflatten(1, feature_map),
    ]


def conv_encoder(shape: tuple[int, int, int], out: int, hidden: int) -> nn.Module:
    c, h, w = shape
    return nn.Sequential(
        nn.Conv2d(c, 32, 4, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 64, 4, stride=2, padding=1),
        nn.ReLU(),
        *_to_code(64 * (h // 4) * (w // 4), hidden, out),
    )


def conv_decoder(
    latent: int, shape: tuple[int, int, int], out_channels: int, hidden: int
) -> nn.Module:
    _, h, w = shape
    return nn.Sequential(
        *_from_code(latent, hidden, (64, h // 4, w // 4)),
        nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1),
        nn.ReLU(),
        nn.ConvTranspose2d(32, out_channels, 4, stride=2, padding=1),
    )


_CONV4_CHANNELS = (32, 32, 64, 64)


def conv4_encoder(shape: tuple[int, int, int], out: int, hidden: int) -> nn.Module:
    c, h, w = shape
    layers: list[nn.Module] = []
    for n_in, n_out in zip((c, *_CONV4_CHANNELS[:-1]), _CONV4_CHANNELS, strict=True):
        layers += [nn.Conv2d(n_in, n_out, 4, stride=2, padding=1), nn.ReLU()]
    return nn.Sequential(
        *layers, *_to_code(_CONV4_CHANNELS[-1] * (h // 16) * (w // 16), hidden, out)
    )


def conv4_decoder(
    latent: int, shape: tuple[int, int, int], out_channels: int, hidden: int
) -> nn.Module:
    _, h, w = shape
    channels = _CONV4_CHANNELS[::-1]  # 64, 64, 32, 32
    layers: list[nn.Module] = []
    for n_in, n_out in zip(channels, (*channels[1:], out_channels), strict=True):
        layers += [nn.ConvTranspose2d(n_in, n_out, 4, stride=2, padding=1), nn.ReLU()]
    return nn.Sequential(
        *_from_code(latent, hidden, (channels[0], h // 16, w // 16)),
        *layers[:-1],  # no ReLU on the likelihood's parameters
    )


# convnet: the first stage's width, doubled at each stride-2 stage up to the cap
CONVNET_WIDTH = 32
CONVNET_MAX_WIDTH = 256
CONVNET_SMALLEST_MAP = 4


def convnet_widths(shape: tuple[int, int, int]) -> list[int]:
    """The channels of each stride-2 stage: as many stages as halve both sides exactly down to
    ``CONVNET_SMALLEST_MAP``, so 32x32 gets 3 (32, 64, 128) and 128x128 gets 5 (32 ... 256)."""
    _, h, w = shape
    widths: list[int] = []
    while h % 2 == 0 and w % 2 == 0 and min(h, w) > CONVNET_SMALLEST_MAP:
        widths.append(min(CONVNET_WIDTH * 2 ** len(widths), CONVNET_MAX_WIDTH))
        h, w = h // 2, w // 2
    return widths


def _convnet_map(shape: tuple[int, int, int]) -> tuple[int, int, int]:
    widths = convnet_widths(shape)
    _, h, w = shape
    return widths[-1], h >> len(widths), w >> len(widths)


def convnet_encoder(shape: tuple[int, int, int], out: int, hidden: int) -> nn.Module:
    c = shape[0]
    widths = convnet_widths(shape)
    layers: list[nn.Module] = []
    for n_in, n_out in zip((c, *widths[:-1]), widths, strict=True):
        layers += [nn.Conv2d(n_in, n_out, 4, stride=2, padding=1), nn.ReLU()]
    channels, h, w = _convnet_map(shape)
    return nn.Sequential(*layers, *_to_code(channels * h * w, hidden, out))


def convnet_decoder(
    latent: int, shape: tuple[int, int, int], out_channels: int, hidden: int
) -> nn.Module:
    widths = convnet_widths(shape)[::-1]
    layers: list[nn.Module] = []
    for n_in, n_out in zip(widths, (*widths[1:], out_channels), strict=True):
        layers += [nn.ConvTranspose2d(n_in, n_out, 4, stride=2, padding=1), nn.ReLU()]
    return nn.Sequential(
        *_from_code(latent, hidden, _convnet_map(shape)),
        *layers[:-1],  # no ReLU on the likelihood's parameters
    )


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x):
        return x + self.body(x)


def resnet_encoder(shape: tuple[int, int, int], out: int, hidden: int) -> nn.Module:
    c, h, w = shape
    return nn.Sequential(
        nn.Conv2d(c, 64, 3, padding=1),
        ResidualBlock(64),
        nn.Conv2d(64, 128, 4, stride=2, padding=1),
        ResidualBlock(128),
        nn.Conv2d(128, 128, 4, stride=2, padding=1),
        ResidualBlock(128),
        nn.ReLU(),
        *_to_code(128 * (h // 4) * (w // 4), hidden, out),
    )


def resnet_decoder(
    latent: int, shape: tuple[int, int, int], out_channels: int, hidden: int
) -> nn.Module:
    _, h, w = shape
    return nn.Sequential(
        # no ReLU here: the residual block that follows starts with BatchNorm and its own ReLU
        *_from_code(latent, hidden, (128, h // 4, w // 4), relu=False),
        ResidualBlock(128),
        nn.ConvTranspose2d(128, 128, 4, stride=2, padding=1),
        ResidualBlock(128),
        nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1),
        ResidualBlock(64),
        nn.ReLU(),
        nn.Conv2d(64, out_channels, 3, padding=1),
    )


EncoderBuilder = Callable[[tuple[int, int, int], int, int], nn.Module]
DecoderBuilder = Callable[[int, tuple[int, int, int], int, int], nn.Module]


@dataclass(frozen=True)
class Architecture:
    """A registered encoder/decoder pair. ``encoder(image shape, output size, hidden width)``,
    ``decoder(latent size, image shape, output channels, hidden width)``; image sides must be
    divisible by ``divisor``."""

    encoder: EncoderBuilder
    decoder: DecoderBuilder
    divisor: int = 1


def register_architecture(name: str, architecture: Architecture) -> None:
    ARCHITECTURES.add(name, architecture)


register_architecture("mlp", Architecture(mlp_encoder, mlp_decoder))
register_architecture(
    "mlp-bn",
    Architecture(partial(mlp_encoder, batch_norm=True), partial(mlp_decoder, batch_norm=True)),
)
register_architecture("conv", Architecture(conv_encoder, conv_decoder, divisor=4))
register_architecture("resnet", Architecture(resnet_encoder, resnet_decoder, divisor=4))
register_architecture("conv4", Architecture(conv4_encoder, conv4_decoder, divisor=16))
register_architecture("convnet", Architecture(convnet_encoder, convnet_decoder, divisor=4))


def architecture(name: str, shape: tuple[int, int, int]) -> Architecture:
    """The configured architecture (``auto``: chosen by shape), checked against the image size."""
    resolved = resolve_architecture(name, shape)
    return cast(Architecture, ARCHITECTURES.get(resolved))


def resolve_architecture(name: str, shape: tuple[int, int, int]) -> str:
    """The name of the configured architecture (``auto``: chosen by shape), checked against the
    image size."""
    resolved = choose_architecture(shape) if name == AUTO_ARCHITECTURE else name
    divisor = cast(Architecture, ARCHITECTURES.get(resolved)).divisor
    _, h, w = shape
    if h % divisor or w % divisor:
        raise ValueError(
            f"model.architecture: {resolved!r} needs image sides divisible by {divisor}, "
            f"got {h}x{w}"
        )
    return resolved


def build_networks(
    name: str,
    shape: tuple[int, int, int],
    latent: int,
    decoder_latents: list[int],
    out_channels: int,
    hidden: int,
) -> tuple[nn.Module, nn.ModuleList]:
    """The encoder (to 2*latent numbers) and one decoder per entry of ``decoder_latents``."""
    arch = architecture(name, shape)
    encoder = arch.encoder(shape, 2 * latent, hidden)
    decoders = nn.ModuleList(arch.decoder(d, shape, out_channels, hidden) for d in decoder_latents)
    return encoder, decoders
