"""Values against closed forms and torch.distributions, not just shapes."""

import itertools
import math

import pytest
import torch
from torch import distributions as D

from repvae.config import ModelConfig
from repvae.models import VAE
from repvae.models.distributions import DiagonalGaussian
from repvae.models.likelihoods import Bernoulli, Gaussian, Laplace
from repvae.models.regularisers import mmd_unbiased
from repvae.models.vae import VAESection


def test_kl_matches_monte_carlo_and_torch():
    g = torch.Generator().manual_seed(0)
    mean = torch.randn(4, 3, generator=g)
    std = torch.rand(4, 3, generator=g) + 0.3
    q = DiagonalGaussian(mean, std)
    analytic = q.kl_standard_normal().sum(1)
    reference = D.kl_divergence(D.Normal(mean, std), D.Normal(0.0, 1.0)).sum(1)
    torch.testing.assert_close(analytic, reference)
    z = q.rsample(200_000, generator=g)  # [B, K, D]
    p = D.Normal(0.0, 1.0).log_prob(z).sum(-1)
    monte_carlo = (q.log_prob(z) - p).mean(1)
    torch.testing.assert_close(monte_carlo, analytic, atol=0.02, rtol=0.02)


def test_posterior_log_prob_and_entropy_match_torch():
    q = DiagonalGaussian(torch.tensor([[0.5, -1.0]]), torch.tensor([[0.2, 2.0]]))
    ref = D.Independent(D.Normal(q.mean, q.std), 1)
    z = torch.tensor([[0.1, 0.3]])
    torch.testing.assert_close(q.log_prob(z), ref.log_prob(z))
    torch.testing.assert_close(q.entropy(), ref.entropy())


def test_bernoulli_log_likelihood_matches_torch():
    logits = torch.randn(2, 1, 4, 4)
    x = torch.randint(0, 2, (2, 1, 4, 4)).float()
    expected = D.Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(Bernoulli().log_prob(logits, x), expected)


@pytest.mark.parametrize("learn", [False, True])
@pytest.mark.parametrize(("ours", "theirs"), [(Gaussian, D.Normal), (Laplace, D.Laplace)])
def test_scaled_log_likelihoods_match_torch(ours, theirs, learn):
    location = torch.rand(2, 3, 4, 4)
    x = torch.rand(2, 3, 4, 4)
    lik = ours(3, sigma=0.3, learn_sigma=learn)
    expected = theirs(location, 0.3).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(lik.log_prob(location, x), expected)
    assert lik.log_sigma.requires_grad is learn


def test_laplace_samples_have_the_laplace_mean_absolute_deviation():
    """E|x - location| = b for a Laplace; the location sits mid-range so clamping to [0, 1] is
    rare at b = 0.05."""
    lik = Laplace(1, sigma=0.05, learn_sigma=False)
    location = torch.full((1, 1, 200, 200), 0.5)
    draws = lik.sample(location, generator=torch.Generator().manual_seed(0))
    assert abs((draws - 0.5).abs().mean().item() - 0.05) < 0.002
    assert abs((draws - 0.5).mean().item()) < 0.002


def test_mmd_same_distribution_near_zero_shifted_positive():
    g = torch.Generator().manual_seed(1)
    same = [
        mmd_unbiased(torch.randn(200, 8, generator=g), torch.randn(200, 8, generator=g))
        for _ in range(20)
    ]
    shifted = [
        mmd_unbiased(torch.randn(200, 8, generator=g) + 1.0, torch.randn(200, 8, generator=g))
        for _ in range(20)
    ]
    same_t, shifted_t = torch.stack(same), torch.stack(shifted)
    assert abs(same_t.mean()) < 3 * same_t.std() / math.sqrt(20) + 1e-4
    assert shifted_t.min() > same_t.max()


@pytest.mark.parametrize("kind", ["rbf", "imq"])
def test_mmd_unbiased_expectation(kind):
    """E[unbiased MMD^2] is 0 when P = Q (a biased V-statistic would be clearly positive)."""
    g = torch.Generator().manual_seed(2)
    values = torch.stack(
        [
            mmd_unbiased(torch.randn(16, 2, generator=g), torch.randn(16, 2, generator=g), kind)
            for _ in range(2000)
        ]
    )
    stderr = values.std() / math.sqrt(len(values))
    assert abs(values.mean()) < 4 * stderr


def test_mmd_matches_closed_form_for_gaussians():
    """RBF MMD^2 between N(mu, I) and N(0, I) in 1-D has a closed form; the estimate
    converges to it."""
    s2 = 2.0  # kernel exp(-d^2 / (2 * dim * s^2)) with dim=1, s=1 -> exp(-d^2 / 2)
    mu = 1.5

    # E k(x,x') for x,x' ~ N(a,1), N(b,1): sqrt(s2/(s2+2)) exp(-(a-b)^2/(2(s2+2)))
    def ek(delta):
        return math.sqrt(s2 / (s2 + 2)) * math.exp(-(delta**2) / (2 * (s2 + 2)))

    exact = 2 * ek(0) - 2 * ek(mu)
    g = torch.Generator().manual_seed(3)
    est = mmd_unbiased(torch.randn(4000, 1, generator=g) + mu, torch.randn(4000, 1, generator=g))
    assert est.item() == pytest.approx(exact, abs=0.01)


def _tiny_vae(beta: float = 1.0, **vae) -> VAE:
    cfg = ModelConfig(
        latent_dim=6, architecture="mlp", hidden=16, beta=beta, section=VAESection(**vae)
    )
    return VAE(cfg, (1, 4, 4))


def test_matryoshka_loss_is_sum_of_prefix_losses():
    torch.manual_seed(0)
    nested = _tiny_vae(nesting=[2, 4, 6], nesting_weights=[1.0, 0.5, 2.0])
    x = torch.rand(5, 1, 4, 4)
    torch.manual_seed(1)
    out = nested.loss(x)
    torch.manual_seed(1)
    q = nested.encode(x)
    z = q.rsample()
    expected = 0.0
    for m, w in zip([2, 4, 6], [1.0, 0.5, 2.0], strict=True):
        recon = -nested.likelihood.log_prob(nested.decode(z, m), x).mean()
        kl = q.prefix(m).kl_standard_normal().sum(1).mean()
        expected = expected + w * (recon + kl)
        torch.testing.assert_close(out.terms[f"recon/{m}"], recon.detach())
    torch.testing.assert_close(out.loss, expected)


@pytest.mark.parametrize("shared", [False, True])
def test_prefix_decoder_sees_only_its_prefix(shared):
    model = _tiny_vae(nesting=[2, 6], shared_decoder=shared)
    z = torch.randn(3, 6, requires_grad=True)
    model.decode(z, 2).sum().backward()
    assert z.grad[:, :2].abs().sum() > 0
    assert torch.all(z.grad[:, 2:] == 0)


def test_beta_one_loss_is_negative_elbo():
    torch.manual_seed(0)
    model = _tiny_vae()
    x = torch.rand(4, 1, 4, 4)
    torch.manual_seed(5)
    out = model.loss(x)
    torch.manual_seed(5)
    q = model.encode(x)
    z = q.rsample()
    elbo = model.likelihood.log_prob(model.decode(z), x) - q.kl_standard_normal().sum(1)
    torch.testing.assert_close(out.loss, -elbo.mean())


def test_infovae_weights():
    """alpha=1, lam=L: no KL in the loss, MMD weighted by L."""
    torch.manual_seed(0)
    model = _tiny_vae(alpha=1.0, lam=10.0)
    x = torch.rand(8, 1, 4, 4)
    out = model.loss(x)
    torch.testing.assert_close(out.loss, out.terms["recon"] + 10.0 * out.terms["mmd"])


def test_kl_warmup_scales_only_the_kl_term():
    from repvae.training import kl_warmup_scale

    assert [kl_warmup_scale(s, 4) for s in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert kl_warmup_scale(0, 0) == 1.0
    torch.manual_seed(0)
    model = _tiny_vae(beta=4.0)
    x = torch.rand(8, 1, 4, 4)
    torch.manual_seed(3)
    out = model.loss(x, beta_scale=0.5)
    torch.testing.assert_close(out.loss, out.terms["recon"] + 4.0 * 0.5 * out.terms["kl"])


def test_under_bf16_autocast_the_loss_terms_stay_fp32_and_close_to_fp32():
    """Autocast runs the networks in bf16; the posterior, likelihood, KL and MMD are computed in
    fp32 from their outputs, so the loss is the fp32 loss up to the networks' rounding."""
    torch.manual_seed(0)
    model = _tiny_vae(alpha=1.0, lam=10.0)
    x = torch.rand(16, 1, 4, 4)
    torch.manual_seed(1)
    exact = model.loss(x)
    torch.manual_seed(1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = model.loss(x)
        posterior = model.encode(x)
        params = model.decode(posterior.mean)
    assert posterior.mean.dtype == posterior.std.dtype == params.dtype == torch.float32
    assert all(t.dtype == torch.float32 for t in mixed.terms.values())
    assert mixed.loss.dtype == torch.float32
    torch.testing.assert_close(mixed.loss, exact.loss, rtol=0.02, atol=0.05)


def test_auto_precision_is_bf16_only_where_the_hardware_has_it(monkeypatch):
    from repvae.training import resolve_precision

    assert resolve_precision("32-true", "cpu") == "32-true"
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    assert resolve_precision("auto", "cpu") == "bf16-mixed"
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert resolve_precision("auto", "cpu") == "32-true"
    assert resolve_precision("auto", "mps") == "32-true"


def test_warmup_cosine_rises_linearly_then_falls_to_zero():
    from repvae.training import warmup_cosine

    factors = [warmup_cosine(step, warmup=4, total=12) for step in range(13)]
    assert factors[:4] == [0.25, 0.5, 0.75, 1.0]
    assert factors[4] == 1.0 and factors[8] == pytest.approx(0.5) and factors[12] == 0.0
    assert all(a >= b for a, b in itertools.pairwise(factors[3:]))
