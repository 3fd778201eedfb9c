"""Masked convolutions: exact receptive fields, causality of stacks, masks surviving training."""

import pytest
import torch
from torch import nn

from repvae.models.masked import MaskedConv2d, receptive_field

SIZE = 12


def causal_neighbourhood(i: int, j: int, h: int, centre: bool) -> torch.Tensor:
    expected = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    for a in range(SIZE):
        for b in range(SIZE):
            above = a < i and abs(a - i) <= h and abs(b - j) <= h
            left = a == i and j - h <= b < j
            expected[a, b] = above or left or (centre and (a, b) == (i, j))
    return expected


@pytest.mark.parametrize("h", [1, 2, 3])
@pytest.mark.parametrize("mask_type", ["A", "B"])
@pytest.mark.parametrize("pixel", [(6, 5), (0, 4), (5, 0), (SIZE - 1, SIZE - 1), (0, 0)])
def test_single_conv_receptive_field_is_the_causal_neighbourhood(h, mask_type, pixel):
    conv = MaskedConv2d(2, 3, 2 * h + 1, mask_type)
    field = receptive_field(conv, (2, SIZE, SIZE), pixel)
    expected = causal_neighbourhood(*pixel, h, centre=mask_type == "B")
    assert torch.equal(field, expected)


def test_spatial_size_preserved_and_bad_arguments_rejected():
    conv = MaskedConv2d(3, 5, 7, "A")
    assert conv(torch.randn(2, 3, 9, 11)).shape == (2, 5, 9, 11)
    with pytest.raises(ValueError):
        MaskedConv2d(1, 1, 4, "A")
    with pytest.raises(ValueError):
        MaskedConv2d(1, 1, 3, "C")


def pixelcnn(depth: int) -> nn.Sequential:
    layers: list[nn.Module] = [MaskedConv2d(1, 4, 7, "A")]
    for _ in range(depth - 1):
        layers += [nn.ReLU(), MaskedConv2d(4, 4, 3, "B")]
    return nn.Sequential(*layers)


def test_stack_is_causal_and_grows_with_depth():
    size = 14
    raster = torch.arange(size * size).view(size, size)
    for depth in (1, 4):
        net = pixelcnn(depth)
        for i, j in [(0, 0), (0, 7), (7, 0), (7, 7), (13, 13)]:
            field = receptive_field(net, (1, size, size), (i, j))
            assert not field[raster >= i * size + j].any(), (depth, i, j)
    counts = [int(receptive_field(pixelcnn(d), (1, size, size), (10, 7)).sum()) for d in (1, 2, 3)]
    assert counts[0] < counts[1] < counts[2], counts
    # 7x7 type A alone: 3 full rows of 7 above plus 3 to the left
    assert counts[0] == 3 * 7 + 3


def test_mask_survives_optimiser_step_and_weight_corruption():
    torch.manual_seed(0)
    conv = MaskedConv2d(3, 4, 5, "A")
    optimiser = torch.optim.AdamW(conv.parameters(), lr=0.5, weight_decay=0.5)
    x = torch.randn(2, 3, 8, 8)
    conv(x).square().mean().backward()
    optimiser.step()
    with torch.no_grad():
        conv.weight.add_(1.0)  # masked-out raw weights are now non-zero
    i, j = 4, 4
    before = conv(x)[:, :, i, j]
    for a, b in [(i, j), (i, j + 1), (i, j + 2), (i + 1, j - 2), (i + 2, j)]:
        poked = x.clone()
        poked[:, :, a, b] += 10.0
        torch.testing.assert_close(conv(poked)[:, :, i, j], before, rtol=0, atol=0)
    poked = x.clone()
    poked[:, :, i - 1, j] += 10.0
    assert not torch.allclose(conv(poked)[:, :, i, j], before)
