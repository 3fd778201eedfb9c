"""8-bit likelihoods: exact normalisation, quadrature agreement, stable edges, exact samples."""

import math

import pytest
import torch
from scipy import integrate
from torch import distributions as D

from repvae.models.discretized import Categorical256, DiscretizedLogisticMixture

VALUES = torch.arange(256) / 255


def random_params(lik, channels, pixels, dtype=torch.float32, seed=0):
    """Means partly outside [-1, 1] and log-scales from -5 to 0.5 to reach the edges and tails."""
    g = torch.Generator().manual_seed(seed)
    n = lik.n_mix
    logits = torch.randn(pixels, n, generator=g) * 2
    means = torch.rand(pixels, channels * n, generator=g) * 3 - 1.5
    log_scales = torch.rand(pixels, channels * n, generator=g) * 5.5 - 5
    coefs = torch.randn(pixels, lik.out_channels(channels) - (1 + 2 * channels) * n, generator=g)
    return torch.cat([logits, means, log_scales, coefs], 1).to(dtype).view(pixels, -1, 1, 1)


def prefix(params, n, channels, keep):
    """Parameters of the first ``keep`` channels: the marginal of the C-channel mixture."""
    logits, means, log_scales, coefs = params.split(
        [n, channels * n, channels * n, params.shape[1] - (1 + 2 * channels) * n], 1
    )
    pairs = keep * (keep - 1) // 2
    return torch.cat(
        [logits, means[:, : keep * n], log_scales[:, : keep * n], coefs[:, : pairs * n]], 1
    )


def image(*channels):
    """1x1 images from per-channel value tensors of equal length."""
    return torch.stack(channels, 1).view(-1, len(channels), 1, 1)


def test_gray_mixture_normalises_exactly():
    lik = DiscretizedLogisticMixture(n_mix=10)
    params = random_params(lik, 1, pixels=16)
    log_p = lik.log_prob(params.repeat_interleave(256, 0), image(VALUES.repeat(16))).view(16, 256)
    torch.testing.assert_close(log_p.exp().sum(1), torch.ones(16), rtol=0, atol=1e-5)


def test_rgb_mixture_normalises_exactly_through_its_chain_rule():
    """sum_{r,g,b} p(r,g,b) = 1 follows from: sum_b p(r,g,b) = p(r,g) (checked on random (r,g)),
    and sum_{r,g} p(r,g) = 1 (checked on all 65536), where p(r,g) is the 2-channel model on the
    same parameters; the 256^3 sum itself is too big to enumerate."""
    n = 10
    lik = DiscretizedLogisticMixture(n_mix=n)
    rgb = random_params(lik, 3, pixels=1, dtype=torch.float64)
    rg = prefix(rgb, n, 3, 2)
    r = VALUES.repeat_interleave(256).double()
    g = VALUES.repeat(256).double()
    log_rg = lik.log_prob(rg.expand(65536, -1, -1, -1), image(r, g))
    assert abs(log_rg.exp().sum().item() - 1) < 1e-5
    # marginal of R from the 1-channel model agrees with summing G out of the 2-channel model
    log_r = lik.log_prob(prefix(rgb, n, 3, 1).expand(256, -1, -1, -1), image(VALUES.double()))
    torch.testing.assert_close(log_rg.exp().view(256, 256).sum(1), log_r.exp(), rtol=0, atol=1e-6)
    picks = torch.randint(0, 65536, (24,), generator=torch.Generator().manual_seed(1))
    picks = torch.cat([picks, torch.tensor([0, 255, 65280, 65535])])  # corners in R and G
    rr, gg = r[picks].repeat_interleave(256), g[picks].repeat_interleave(256)
    bb = VALUES.double().repeat(len(picks))
    log_rgb = lik.log_prob(rgb.expand(len(bb), -1, -1, -1), image(rr, gg, bb)).view(-1, 256)
    torch.testing.assert_close(log_rgb.exp().sum(1), log_rg[picks].exp(), rtol=0, atol=1e-6)


def logistic_mass(lo: float, hi: float, mu: float, s: float) -> float:
    """Quadrature of the logistic density over [lo, hi]; an infinite end is cut 60 scales beyond
    both mu and the finite end, where the neglected mass is below e^-60."""
    lo = max(lo, min(mu, hi) - 60 * s)
    hi = min(hi, max(mu, lo) + 60 * s)

    def density(t: float) -> float:
        z = abs(t - mu) / s
        return math.exp(-z) / (s * (1 + math.exp(-z)) ** 2)

    points = [mu] if lo < mu < hi else None
    return integrate.quad(density, lo, hi, points=points, epsabs=1e-14, epsrel=1e-12, limit=200)[0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("mu", "log_s"), [(0.1, -3.0), (-0.97, -4.0), (1.3, -1.0), (0.5, -6.0)])
def test_single_logistic_matches_quadrature(dtype, mu, log_s):
    lik = DiscretizedLogisticMixture(n_mix=1)
    bins = torch.tensor([0, 1, 2, 60, 63, 64, 65, 128, 190, 191, 200, 253, 254, 255])
    params = torch.tensor([0.0, mu, log_s], dtype=dtype).view(1, 3, 1, 1)
    got = lik.log_prob(params.expand(len(bins), -1, -1, -1), image(bins / 255)).exp().double()
    for k, p in zip(bins.tolist(), got.tolist(), strict=True):
        v = k / 127.5 - 1
        lo = -math.inf if k == 0 else v - 1 / 255
        hi = math.inf if k == 255 else v + 1 / 255
        expected = logistic_mass(lo, hi, mu, math.exp(log_s))
        # float32 inputs alone carry ~1e-6 error once multiplied by 1/s = e^6
        assert abs(p - expected) < (1e-6 if dtype == torch.float64 else 5e-6), (k, p, expected)


def naive_float_mask_log_prob(mu, log_s, x):
    """The popular port's float-mask selection, with the unclamped log of the CDF difference."""
    inv_s = torch.exp(-log_s)
    plus, minus = inv_s * (x - mu + 1 / 255), inv_s * (x - mu - 1 / 255)
    delta = torch.sigmoid(plus) - torch.sigmoid(minus)
    interior = torch.log(delta)
    lower, upper = (x < -0.999).float(), (x > 0.999).float()
    edge_lo, edge_hi = -torch.nn.functional.softplus(-plus), -torch.nn.functional.softplus(minus)
    return lower * edge_lo + (1 - lower) * (upper * edge_hi + (1 - upper) * interior)


@pytest.mark.parametrize("channels", [1, 3])
def test_edges_with_extreme_means_and_tiny_scales_have_finite_values_and_gradients(channels):
    n = 10
    lik = DiscretizedLogisticMixture(n_mix=n)
    pixels = []
    for x in (0.0, 0.5, 1.0):  # 0.5: the interior falls back to the density at the bin centre
        for mu in (-5.0, 5.0):
            for log_s in (-7.0, -30.0):  # -30 checks the clamp at -7
                logits = torch.linspace(-3, 3, n)
                means = torch.full((channels * n,), mu)
                scales = torch.full((channels * n,), log_s)
                coefs = torch.full((lik.out_channels(channels) - (1 + 2 * channels) * n,), 5.0)
                pixels.append((torch.cat([logits, means, scales, coefs]), x))
    params = torch.stack([p for p, _ in pixels]).view(len(pixels), -1, 1, 1).requires_grad_()
    x = torch.tensor([v for _, v in pixels]).view(-1, 1, 1, 1).expand(-1, channels, -1, -1)
    log_p = lik.log_prob(params, x)
    assert torch.isfinite(log_p).all()
    log_p.sum().backward()
    assert torch.isfinite(params.grad).all()
    assert params.grad.abs().sum() > 0
    # the same inputs really are the hazard: the float mask turns an unused -inf into NaN
    naive = naive_float_mask_log_prob(torch.tensor(5.0), torch.tensor(-7.0), torch.tensor(-1.0))
    assert torch.isnan(naive)


def test_gray_mean_matches_enumeration():
    lik = DiscretizedLogisticMixture(n_mix=10)
    params = random_params(lik, 1, pixels=16, dtype=torch.float64)
    log_p = lik.log_prob(params.repeat_interleave(256, 0), image(VALUES.double().repeat(16)))
    exact = (log_p.exp().view(16, 256) * VALUES.double()).sum(1)
    mean = lik.mean(params).view(16)
    assert ((mean >= 0) & (mean <= 1)).all()
    torch.testing.assert_close(mean, exact, rtol=0, atol=1 / 255)


def sharp_params(lik, channels, targets, coefs=()):
    """Component 3 has all the weight and tiny scales, centred so that channel c lands on its
    target bin given the earlier targets (through the tanh coefficients)."""
    n = lik.n_mix
    params = torch.zeros(lik.out_channels(channels))
    params[3] = 50.0
    v = [t / 127.5 - 1 for t in targets]
    raw = list(coefs)
    shifts = (
        [0.0, math.tanh(raw[0]) * v[0], math.tanh(raw[1]) * v[0] + math.tanh(raw[2]) * v[1]]
        if raw
        else [0.0]
    )
    for c in range(channels):
        params[n + c * n + 3] = v[c] - shifts[c]
        params[n + channels * n + c * n + 3] = -7.0
    for p, value in enumerate(raw):
        params[n + 2 * channels * n + p * n + 3] = value
    return params.view(1, -1, 1, 1).expand(4, -1, 10, 10)


@pytest.mark.parametrize(
    ("targets", "coefs"),
    [((37,), ()), ((0,), ()), ((255,), ()), ((200, 10, 128), (1.5, -0.7, 2.0))],
)
def test_sample_is_exact_8_bit_and_concentrates(targets, coefs):
    lik = DiscretizedLogisticMixture(n_mix=10)
    params = sharp_params(lik, len(targets), targets, coefs)
    sample = lik.sample(params, generator=torch.Generator().manual_seed(0))
    assert sample.shape == (4, len(targets), 10, 10)
    assert torch.equal(sample, (sample * 255).round() / 255)
    assert ((sample >= 0) & (sample <= 1)).all()
    # log-scale -7 leaves a logistic 4.3 scales wide per half-bin: ~97% of draws hit the bin of
    # their conditional mean (~99% at an open edge bin) and the rest its neighbours. Later channels
    # condition on the earlier channels' sampled bins, not on the targets.
    v = sample * 2 - 1
    t = [math.tanh(r) for r in coefs]
    centre = torch.tensor(targets, dtype=torch.float32).view(1, -1, 1, 1) / 127.5 - 1
    cond = centre.expand_as(v).clone()
    if coefs:
        cond[:, 1] += t[0] * (v[:, 0] - centre[:, 0])
        cond[:, 2] += t[1] * (v[:, 0] - centre[:, 0]) + t[2] * (v[:, 1] - centre[:, 1])
    off = (sample * 255).round() - ((cond.clamp(-1, 1) + 1) * 127.5).round()
    assert off.abs().max() <= 1
    assert (off == 0).float().mean(dim=(0, 2, 3)).min() > 0.9


def test_sample_histogram_matches_probabilities():
    lik = DiscretizedLogisticMixture(n_mix=3)
    params = random_params(lik, 1, pixels=1, seed=3)
    draws = lik.sample(params.expand(20000, -1, -1, -1), generator=torch.Generator().manual_seed(0))
    counts = torch.bincount((draws.flatten() * 255).round().long(), minlength=256).double()
    probs = lik.log_prob(params.expand(256, -1, -1, -1), image(VALUES)).exp().double()
    assert 0.5 * (counts / 20000 - probs).abs().sum() < 0.05


def test_categorical_normalises_and_matches_torch():
    lik = Categorical256()
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 256, 4, 5, generator=g) * 3
    params = logits.reshape(2, 3 * 256, 4, 5)
    x = torch.randint(0, 256, (2, 3, 4, 5), generator=g)
    expected = D.Categorical(logits=logits.movedim(2, -1)).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(lik.log_prob(params, x / 255), expected)
    single = params[:1, :256, :1, :1].expand(256, -1, -1, -1)
    total = lik.log_prob(single, image(VALUES)).exp().sum()
    torch.testing.assert_close(total, torch.tensor(1.0), rtol=0, atol=1e-5)
    mean = (torch.softmax(logits, 2) * VALUES.view(1, 1, 256, 1, 1)).sum(2)
    torch.testing.assert_close(lik.mean(params), mean)
    assert lik.out_channels(3) == 3 * 256


def test_categorical_sample_is_exact_and_follows_the_softmax():
    lik = Categorical256()
    logits = torch.randn(256, generator=torch.Generator().manual_seed(1))
    params = logits.view(1, 256, 1, 1).expand(20000, -1, -1, -1)
    draws = lik.sample(params, generator=torch.Generator().manual_seed(0))
    assert torch.equal(draws, (draws * 255).round() / 255)
    counts = torch.bincount((draws.flatten() * 255).round().long(), minlength=256).double()
    assert 0.5 * (counts / 20000 - torch.softmax(logits.double(), 0)).abs().sum() < 0.05


def test_mixture_sizes_the_decoder():
    lik = DiscretizedLogisticMixture(n_mix=10)
    assert lik.out_channels(1) == 30
    assert lik.out_channels(3) == 100
