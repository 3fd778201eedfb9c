"""Likelihoods on 8-bit pixels: PixelCNN++'s discretised logistic mixture and a 256-way softmax.

Both put probability mass on the 256 values k/255 exactly, so log p(x|z) is a true log-probability
(comparable in bits/dim with PixelCNN/PixelVAE papers), unlike a density on [0, 1].
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from repvae.models.likelihoods import Likelihood, register_likelihood

MIN_LOG_SCALE = -7.0
TINY_MASS = 1e-5
HALF_BIN = 1.0 / 255.0  # half the bin width on the [-1, 1] scale


def _bin_index(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] intensities -> integer bins 0..255 (robust to float error in k/255)."""
    return (x * 255).round().long().clamp(0, 255)


def _gumbel(
    shape: torch.Size, like: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    u = torch.rand(shape, generator=generator, dtype=like.dtype, device=like.device)
    return -torch.log(-torch.log(u))


class DiscretizedLogisticMixture(Likelihood):
    """Mixture of discretised logistics per pixel (Salimans et al. 2017, PixelCNN++).

    The mixture is over whole pixels: one component is chosen per pixel and, within it, channel c
    is a logistic whose mean is shifted by ``tanh(coef) * x_c'`` for every earlier channel c' (for
    RGB: G depends on R, B on R and G). This in-pixel autoregression is what lets a spatially
    masked PixelCNN decoder model correlated colours without channel masks.

    Decoder output layout along dim 1 (``n = n_mix``, C channels, P = C(C-1)/2 pairs):
    ``[logits (n) | means (C*n) | log_scales (C*n) | coefficients (P*n)]``, each block
    channel-major; coefficient pairs are ordered (1,0), (2,0), (2,1), ... as in PixelCNN++.
    Gray: 3n channels, RGB: 10n (not a multiple of 3: decoders are sized by ``out_channels``).
    """

    discrete = True

    def __init__(self, n_mix: int = 10) -> None:
        super().__init__()
        self.n_mix = n_mix

    def out_channels(self, channels: int) -> int:
        pairs = channels * (channels - 1) // 2
        return self.n_mix * (1 + 2 * channels + pairs)

    def _channels(self, params: torch.Tensor) -> int:
        m = params.shape[1] // self.n_mix
        channels = round((math.sqrt(1 + 8 * m) - 3) / 2)
        if channels < 1 or self.out_channels(channels) != params.shape[1]:
            raise ValueError(f"{params.shape[1]} parameter maps fit no channel count")
        return channels

    def _split(
        self, params: torch.Tensor, channels: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> logits [B,n,H,W]; means, log_scales [B,C,n,H,W]; tanh(coefficients) [B,P,n,H,W]."""
        if params.shape[1] != self.out_channels(channels):
            raise ValueError(
                f"expected {self.out_channels(channels)} parameter maps for {channels} channels, "
                f"got {params.shape[1]}"
            )
        b, _, h, w = params.shape
        n, c = self.n_mix, channels
        logits, means, log_scales, coefs = params.split(
            [n, c * n, c * n, params.shape[1] - (1 + 2 * c) * n], 1
        )
        means = means.reshape(b, c, n, h, w)
        log_scales = log_scales.reshape(b, c, n, h, w).clamp_min(MIN_LOG_SCALE)
        coefs = torch.tanh(coefs.reshape(b, -1, n, h, w))
        return logits, means, log_scales, coefs

    @staticmethod
    def _shift(
        mean: torch.Tensor, coefs: torch.Tensor, previous: list[torch.Tensor]
    ) -> torch.Tensor:
        """Mean of channel c = len(previous) given the earlier channels' values (in [-1, 1])."""
        first = len(previous) * (len(previous) - 1) // 2
        for k, value in enumerate(previous):
            mean = mean + coefs[:, first + k] * value
        return mean

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        logits, means, log_scales, coefs = self._split(params, channels)
        idx = _bin_index(x).unsqueeze(2)  # [B,C,1,H,W]
        v = idx.to(params.dtype) / 127.5 - 1
        means = torch.stack(
            [self._shift(means[:, c], coefs, list(v[:, :c].unbind(1))) for c in range(channels)], 1
        )
        centred = v - means
        inv_s = torch.exp(-log_scales)
        plus = inv_s * (centred + HALF_BIN)
        minus = inv_s * (centred - HALF_BIN)
        mid = inv_s * centred
        # Every branch below is finite with finite gradients, so torch.where cannot leak NaN
        # (a float mask, mask * a + (1 - mask) * b, gives 0 * inf = NaN when a branch is inf).
        log_cdf_plus = -F.softplus(-plus)  # bin 0: mass of (-inf, x + 1/255]
        log_sf_minus = -F.softplus(minus)  # bin 255: mass of [x - 1/255, inf)
        # sigmoid(a) - sigmoid(b) = sigmoid(-b) - sigmoid(-a): subtract in the tail that does not
        # cancel, so the fallback below triggers only for genuinely tiny mass.
        delta = torch.where(
            mid > 0,
            torch.sigmoid(-minus) - torch.sigmoid(-plus),
            torch.sigmoid(plus) - torch.sigmoid(minus),
        )
        log_delta = torch.log(delta.clamp_min(1e-12))
        log_pdf_mid = mid - log_scales - 2 * F.softplus(mid) + math.log(2 * HALF_BIN)
        interior = torch.where(delta > TINY_MASS, log_delta, log_pdf_mid)
        log_p = torch.where(idx == 0, log_cdf_plus, torch.where(idx == 255, log_sf_minus, interior))
        joint = log_p.sum(1) + F.log_softmax(logits, 1)  # [B,n,H,W]
        return torch.logsumexp(joint, 1).flatten(1).sum(1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """Mixture mean with E[clamp(X, -1, 1)] per logistic (exact up to the 8-bit rounding).

        For later channels the earlier channels' values are replaced by their component means,
        which is exact only where the clamp is inactive; good enough for reconstructions.
        """
        channels = self._channels(params)
        logits, means, log_scales, coefs = self._split(params, channels)
        scales = torch.exp(log_scales)
        expected: list[torch.Tensor] = []
        for c in range(channels):
            m = self._shift(means[:, c], coefs, expected)
            s = scales[:, c]
            expected.append(-1 + s * (F.softplus((m + 1) / s) - F.softplus((m - 1) / s)))
        weights = torch.softmax(logits, 1).unsqueeze(1)
        return ((torch.stack(expected, 1) * weights).sum(2) + 1) / 2

    def sample(
        self, params: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Exact draws on the 256 values: the continuous logistic draw is rounded to its bin, and
        later channels condition on the rounded value, exactly as ``log_prob`` does."""
        channels = self._channels(params)
        logits, means, log_scales, coefs = self._split(params, channels)
        k = (logits + _gumbel(logits.shape, logits, generator)).argmax(1, keepdim=True)

        def pick(t: torch.Tensor) -> torch.Tensor:
            return t.gather(2, k.unsqueeze(1).expand(-1, t.shape[1], -1, -1, -1)).squeeze(2)

        means, scales, coefs = pick(means), torch.exp(pick(log_scales)), pick(coefs)
        values: list[torch.Tensor] = []
        bins: list[torch.Tensor] = []
        for c in range(channels):
            m = self._shift(means[:, c], coefs, values)
            u = torch.rand(m.shape, generator=generator, dtype=m.dtype, device=m.device)
            draw = m + scales[:, c] * (torch.log(u) - torch.log1p(-u))
            idx = ((draw.clamp(-1, 1) + 1) * 127.5).round()
            bins.append(idx)
            values.append(idx / 127.5 - 1)
        return torch.stack(bins, 1) / 255


class Categorical256(Likelihood):
    """Independent 256-way softmax per pixel and channel (PixelRNN/PixelCNN's output layer).

    Layout: ``params.reshape(B, C, 256, H, W)``, i.e. 256 consecutive logits per channel.
    """

    discrete = True

    def out_channels(self, channels: int) -> int:
        return 256 * channels

    @staticmethod
    def _logits(params: torch.Tensor) -> torch.Tensor:
        b, m, h, w = params.shape
        return params.reshape(b, m // 256, 256, h, w)

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(self._logits(params), 2)
        return log_p.gather(2, _bin_index(x).unsqueeze(2)).flatten(1).sum(1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        p = torch.softmax(self._logits(params), 2)
        values = torch.arange(256, dtype=p.dtype, device=p.device) / 255
        return (p * values.view(1, 1, 256, 1, 1)).sum(2)

    def sample(
        self, params: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        logits = self._logits(params)
        idx = (logits + _gumbel(logits.shape, logits, generator)).argmax(2)
        return idx.to(params.dtype) / 255


register_likelihood(
    "logistic_mixture",
    DiscretizedLogisticMixture,
    lambda config, channels: DiscretizedLogisticMixture(config.n_mix),
)
register_likelihood("categorical256", Categorical256, lambda config, channels: Categorical256())
