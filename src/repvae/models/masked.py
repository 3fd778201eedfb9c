"""Masked convolutions for PixelCNN decoders (van den Oord et al. 2016) and a causality probe."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.modules.utils import _pair


class MaskedConv2d(nn.Conv2d):
    """Conv2d that only sees pixels before the centre in raster order (rows above, left in row).

    ``mask_type="A"`` (first layer) also hides the centre pixel, so output (i, j) never depends on
    input (i, j); ``"B"`` (later layers) keeps the centre, which by then only carries information
    from earlier pixels. The mask is spatial only and hides all channels of the centre pixel alike:
    the autoregression between R, G and B within a pixel is left to the likelihood
    (``DiscretizedLogisticMixture``'s coefficients). Padding is kernel // 2 and stride 1, so the
    spatial size is preserved. The mask is a buffer applied in ``forward``, so optimiser steps or
    weight decay that move masked-out weights cannot break causality.
    """

    mask: torch.Tensor

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        mask_type: str,
        bias: bool = True,
    ) -> None:
        kh, kw = _pair(kernel_size)
        if kh % 2 == 0 or kw % 2 == 0:
            raise ValueError(f"MaskedConv2d needs odd kernel sizes, got {(kh, kw)}")
        if mask_type not in ("A", "B"):
            raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
        super().__init__(in_channels, out_channels, (kh, kw), padding=(kh // 2, kw // 2), bias=bias)
        self.mask_type = mask_type
        mask = torch.zeros(1, 1, kh, kw)
        mask[..., : kh // 2, :] = 1
        mask[..., kh // 2, : kw // 2 + (mask_type == "B")] = 1
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.mask, self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, mask_type={self.mask_type!r}"


def receptive_field(
    module: nn.Module, shape: tuple[int, int, int], pixel: tuple[int, int]
) -> torch.Tensor:
    """Boolean [H, W] map of the input pixels that output ``pixel`` (all channels) depends on.

    Structural, not value-dependent: autograd on a float64 copy of ``module`` whose parameters are
    all set to random positive values, with a positive input. Every path then contributes a positive
    product (ReLUs stay active, nothing cancels), so a gradient is non-zero iff a connection exists.
    ``module`` itself is left untouched.
    """
    probe = copy.deepcopy(module).double().eval()
    device = next(probe.parameters(), torch.empty(0)).device
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in probe.parameters():
            p.copy_(torch.rand(p.shape, generator=generator, dtype=p.dtype) + 0.1)
    x = torch.rand((1, *shape), generator=generator, dtype=torch.float64) + 0.1
    x = x.to(device).requires_grad_()
    i, j = pixel
    probe(x)[0, :, i, j].sum().backward()
    if x.grad is None:  # the output does not read the input at all
        return torch.zeros(shape[1:], dtype=torch.bool)
    return x.grad[0].ne(0).any(0)
