"""Test log-likelihood: the negative ELBO and the importance-weighted bound, in nats and bits/dim.

    ELBO_1   = log p(x|z) - KL(q(z|x) || N(0, I)),   z ~ q(z|x), one draw (the training objective,
               and what Zhang et al. print as "BPD"); -log p(x|z) alone is the reconstruction
    IWAE_K   = log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x),   z_k ~ q(z|x)   (Burda et al. 2016)

IWAE_K <= log p(x) for every K and tightens as K grows; ELBO_1 is looser. Bits/dim is
-bound / (C*H*W*ln 2). It is a code length only for likelihoods whose mass sits on the 256 pixel
values (``discrete``), so no dequantisation is involved; for Bernoulli (a mass on intensities in
[0, 1] treated as probabilities) and Gaussian (a density on [0, 1] without dequantisation noise)
the nats are reported but are not comparable with published bits/dim.
"""

from __future__ import annotations

import math
import time
from typing import Any, cast

import torch

from repvae.evaluate.metric import Context, Metric, Result, skipped, values_at
from repvae.models import DiagonalGaussian, Model

_ROWS_PER_PASS = 512  # images x draws decoded per forward pass (bounds the head's activations)


@torch.no_grad()
def _image_bounds(
    model: Model, x: torch.Tensor, samples: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ELBO_1, IWAE_K, log p(x|z_1)) per image, K draws decoded ``_ROWS_PER_PASS`` rows at a
    time."""
    target = model.preprocess(x)
    posterior = cast(DiagonalGaussian, model.encode(target))  # likelihood_bound: a Gaussian
    b = x.shape[0]
    per_pass = max(1, _ROWS_PER_PASS // b)
    log_w: list[torch.Tensor] = []
    for start in range(0, samples, per_pass):
        k = min(per_pass, samples - start)
        z = posterior.rsample(k, generator)  # [B, k, D]
        flat_x = target.repeat_interleave(k, 0)
        log_px = model.log_likelihood(flat_x, z.flatten(0, 1)).view(b, k)
        if not log_w:
            recon = log_px[:, 0]
            elbo = recon - posterior.kl_standard_normal().sum(-1)
        log_w.append(log_px + model.prior_log_prob(z) - posterior.log_prob(z))
    iwae = torch.logsumexp(torch.cat(log_w, 1), 1) - math.log(samples)
    return elbo, iwae, recon


def likelihood_report(
    model: Model,
    images: torch.Tensor,
    *,
    samples: int = 1000,
    batch_size: int = 100,
    seed: int = 0,
) -> dict[str, Any]:
    """Mean bounds over ``images`` (uint8 [N, C, H, W]), JSON-ready, with the protocol stated."""
    if not model.capabilities.likelihood_bound:
        raise model.unsupported("likelihood_bound")
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    started = time.perf_counter()
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    parts: list[tuple[torch.Tensor, ...]] = []
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size].to(device)
        parts.append(tuple(t.double().cpu() for t in _image_bounds(model, x, samples, generator)))
    elbo_all, iwae_all, recon_all = (torch.cat(ts) for ts in zip(*parts, strict=True))
    dims = math.prod(images.shape[1:])
    discrete = model.discrete_likelihood

    def summary(values: torch.Tensor) -> dict[str, float | None]:
        nats = float(-values.mean())
        return {
            "nats": nats,
            "nats_std": float(values.std()) if len(values) > 1 else 0.0,
            "bits_per_dim": nats / (dims * math.log(2)) if discrete else None,
        }

    return {
        "likelihood": model.config.likelihood,
        "comparable_bits_per_dim": discrete,
        "note": (
            "discrete likelihood on the 256 pixel values: bits/dim is a code length, no "
            "dequantisation"
            if discrete
            else f"{model.config.likelihood} likelihood: not a distribution over 8-bit pixels, "
            "so bits/dim is not comparable with published values (nats reported only)"
        ),
        "negative_elbo": summary(elbo_all),
        "negative_iwae": summary(iwae_all),
        "reconstruction": summary(recon_all),
        "iwae_samples": samples,
        "elbo_samples": 1,
        "n_images": len(images),
        "dims": dims,
        "seed": seed,
        "seconds": round(time.perf_counter() - started, 3),
    }


def _likelihood(ctx: Context) -> Result:
    model = ctx.run.model
    if not model.capabilities.likelihood_bound:
        return skipped(
            f"the {model.family} family: {model.capabilities.why_not('likelihood_bound')}"
        )
    s = ctx.settings
    images = ctx.images()
    if s.likelihood_images is not None and s.likelihood_images < len(images):
        keep = torch.randperm(len(images), generator=torch.Generator().manual_seed(s.seed))
        images = images[keep[: s.likelihood_images].sort().values]
    report = likelihood_report(model, images, samples=s.iw_samples, seed=s.seed)
    return {"split": ctx.split, **report}


def _summary(result: Result) -> list[str]:
    if "skipped" in result:
        return [f"  likelihood skipped: {result['skipped']}"]
    lines = []
    for name, label in (("negative_elbo", "-ELBO (1 sample)"), ("negative_iwae", "-IWAE")):
        b = result[name]
        bpd = f", {b['bits_per_dim']:.4f} bits/dim" if b["bits_per_dim"] is not None else ""
        k = f" K={result['iwae_samples']}" if name == "negative_iwae" else ""
        lines.append(f"  {label}{k}: {b['nats']:.2f} nats{bpd}")
    lines.append(f"  ({result['note']}; {result['n_images']} images)")
    return lines


METRIC = Metric(
    "likelihood",
    _likelihood,
    values_at(
        {
            "bpd_elbo": ("negative_elbo", "bits_per_dim"),
            "bpd_iwae": ("negative_iwae", "bits_per_dim"),
            "nats_elbo": ("negative_elbo", "nats"),
            "nats_iwae": ("negative_iwae", "nats"),
            "reconstruction_nats": ("reconstruction", "nats"),
        }
    ),
    _summary,
)
