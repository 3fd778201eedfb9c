"""PixelVAE heads: exact dependency horizons, causal full heads, and a sampler equal to the
naive one (its window crops are exact)."""

import pytest
import torch
from torch import nn

from repvae.models.discretized import DiscretizedLogisticMixture
from repvae.models.likelihoods import Likelihood
from repvae.models.masked import receptive_field
from repvae.models.pixelcnn import FullHead, LocalHead, PixelHead, ancestral_sample, to_signed

SIZE = 10
FEATURES = 3


class OnImage(nn.Module):
    """The head as a function of the image alone (features fixed), for ``receptive_field``."""

    def __init__(self, head: PixelHead) -> None:
        super().__init__()
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = torch.ones(x.shape[0], FEATURES, *x.shape[2:], dtype=x.dtype)
        return self.head(features, x)


def horizon_window(i: int, j: int, h: int) -> torch.Tensor:
    rows = torch.arange(SIZE).view(-1, 1)
    cols = torch.arange(SIZE).view(1, -1)
    above = (rows < i) & (rows >= i - h) & ((cols - j).abs() <= h)
    left = (rows == i) & (cols < j) & (cols >= j - h)
    return above | left


@pytest.mark.parametrize("h", [0, 1, 2])
@pytest.mark.parametrize("pixel", [(5, 4), (0, 3), (9, 9), (4, 0)])
def test_local_head_sees_exactly_its_horizon(h, pixel):
    head = LocalHead(FEATURES, 1, 30, horizon=h, channels=4, blocks=2)
    field = receptive_field(OnImage(head), (1, SIZE, SIZE), pixel)
    assert torch.equal(field, horizon_window(*pixel, h))
    assert head.autoregressive == (h > 0)


def test_full_head_is_causal_and_reaches_far():
    head = FullHead(FEATURES, 3, 100, layers=4, channels=4)
    raster = torch.arange(SIZE * SIZE).view(SIZE, SIZE)
    for i, j in [(0, 0), (0, 5), (5, 0), (7, 6), (9, 9)]:
        field = receptive_field(OnImage(head), (3, SIZE, SIZE), (i, j))
        assert not field[raster >= i * SIZE + j].any(), (i, j)
    far = receptive_field(OnImage(head), (3, SIZE, SIZE), (9, 5))
    assert far[3:6].any()  # beyond a 7x7 kernel's 3 rows: depth extends the horizon


class Deterministic(Likelihood):
    """Draws a pixel as a fixed function of its parameters, so samplers can be compared."""

    def sample(self, params, generator=None):
        return torch.sigmoid(params[:, :1]).mul(255).round() / 255


def naive_sample(head: PixelHead, features: torch.Tensor) -> torch.Tensor:
    x = torch.zeros(features.shape[0], 1, *features.shape[2:])
    for i in range(x.shape[2]):
        for j in range(x.shape[3]):
            params = head(features, to_signed(x))
            x[:, :, i, j] = Deterministic().sample(params)[:, :, i, j]
    return x


@pytest.mark.parametrize(
    "head",
    [
        LocalHead(FEATURES, 1, 2, horizon=1, channels=4, blocks=1),
        LocalHead(FEATURES, 1, 2, horizon=2, channels=4, blocks=1),
        FullHead(FEATURES, 1, 2, layers=3, channels=4),
    ],
)
def test_windowed_ancestral_sampling_equals_the_naive_sampler(head):
    torch.manual_seed(0)
    features = torch.randn(2, FEATURES, 6, 7)
    fast = ancestral_sample(head, Deterministic(), features, 1)
    torch.testing.assert_close(fast, naive_sample(head, features))
    assert fast.std() > 0  # the comparison is not between two blank images


def test_pixel_vae_trains_and_samples_8bit_images(tiny_pixel_vae):
    torch.manual_seed(0)
    model = tiny_pixel_vae("local", 2)
    x = torch.randint(0, 256, (8, 1, 6, 6), dtype=torch.uint8)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = model.loss(x).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 20
    model.eval()
    draws = model.sample(3, torch.Generator().manual_seed(0))
    assert draws.shape == (3, 1, 6, 6)
    assert torch.equal(draws, (draws * 255).round() / 255)  # exact 8-bit values
    again = model.sample(3, torch.Generator().manual_seed(0))
    assert torch.equal(draws, again)  # seeded


def test_pixel_vae_decode_needs_the_image_and_heads_follow_matryoshka_decoders(tiny_pixel_vae):
    model = tiny_pixel_vae("full")
    with pytest.raises(ValueError, match="teacher forcing"):
        model.decode(torch.zeros(2, 3))
    nested = tiny_pixel_vae("local", 1, nesting=[1, 3])
    assert len(nested.heads) == 2 and isinstance(nested.likelihood, DiscretizedLogisticMixture)
    assert nested.loss(torch.zeros(4, 1, 6, 6, dtype=torch.uint8)).loss.isfinite()


def test_horizon_zero_is_conditionally_independent(tiny_pixel_vae):
    model = tiny_pixel_vae("local", 0).eval()
    assert not model.autoregressive
    z = torch.randn(2, 3)
    x1 = torch.rand(2, 1, 6, 6)
    torch.testing.assert_close(model.decode(z, None, x1), model.decode(z, None, 1 - x1))
