"""Fréchet distances between generated and real images, in two feature spaces.

*Domain FID* embeds images with a small CNN trained on the dataset's own training split
(`DomainClassifier`). It always works, offline and for any image size, but its numbers depend on
that network: domain FID: not comparable with Inception FID, nor across datasets. Within one
dataset it is comparable across models because the trained classifier is cached and reused.

*Inception FID* is the standard metric (pool3 features of the TF-ported Inception v3). It needs
``torchmetrics`` + ``torch-fidelity`` or ``pytorch-fid`` and their weight files, which this module
never downloads (`InceptionUnavailable` says what to install and where to put the weights).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from scipy import linalg
from threadpoolctl import threadpool_limits
from torch import nn
from torch.nn import functional as F

from repvae.data import ImageData
from repvae.data.paths import data_root
from repvae.evaluate.metric import Context, Metric, Result, values_at
from repvae.evaluate.probes import _one_cpu_thread
from repvae.models import Model

DOMAIN_NOTE = "domain FID: not comparable with Inception FID"
FEATURE_DIM = 128
CLASSIFIER_SEED = 0  # fixed, so that fid_report's sampling seed never changes the feature space
CLASSIFIER_EPOCHS = 2
_BATCH = 500  # images per inference batch
_INCEPTION_BATCH = 50  # 299x299 activations are large
_ONE_THREAD_DIM = 512  # feature sizes up to which sqrtm runs on one BLAS thread

PYTORCH_FID_WEIGHTS = "pt_inception-2015-12-05-6726825d.pth"
PYTORCH_FID_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + PYTORCH_FID_WEIGHTS
)
FIDELITY_WEIGHTS = "weights-inception-2015-12-05-6726825d.pth"
FIDELITY_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + FIDELITY_WEIGHTS
)


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance of ``[N, D]`` features, in float64 as pytorch-fid keeps them."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"need [N, D] features with N >= 2, got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrt(S1 S2)): the Fréchet distance of two Gaussians.

    Follows pytorch-fid's ``calculate_frechet_distance`` (github.com/mseitzer/pytorch-fid,
    src/pytorch_fid/fid_score.py): if sqrtm of a near-singular product is not finite, ``eps`` is
    added to both diagonals; a small imaginary part from round-off is dropped, a large one raises.
    """
    mu1, mu2 = (np.atleast_1d(np.asarray(m, dtype=np.float64)) for m in (mu1, mu2))
    sigma1, sigma2 = (np.atleast_2d(np.asarray(s, dtype=np.float64)) for s in (sigma1, sigma2))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"shapes differ: {mu1.shape}/{sigma1.shape} vs {mu2.shape}/{sigma2.shape}")
    diff = mu1 - mu2
    # One BLAS thread for small matrices: on busy cores, spinning threads made a 128-d sqrtm
    # 70x slower (1.6 s vs 0.02 s). A singular product is expected (dead ReLU features); the
    # checks below, not scipy's LinAlgWarning, decide whether the result is usable.
    threads = 1 if len(sigma1) <= _ONE_THREAD_DIM else None
    with threadpool_limits(threads), warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(covmean).all():
            offset = np.eye(len(sigma1)) * eps
            covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"sqrtm has imaginary component {np.max(np.abs(covmean.imag))}")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def _to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Float images in [0, 1] -> uint8, so that samples pass the same 8-bit path as real data."""
    if images.dtype == torch.uint8:
        return images
    return images.detach().clamp(0, 1).mul(255).round().to(torch.uint8)


class DomainClassifier(nn.Module):
    """Two strided 5x5 convs, global average pool, a 128-d penultimate layer, a linear head.

    Global pooling makes it work for any image size >= 8x8; the strides keep two CPU epochs on
    MNIST near a minute. ``features`` (the penultimate layer) is what domain FID compares.
    """

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 32, 5, stride=2, padding=2),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.Conv2d(32, 64, 5, stride=2, padding=2),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(64, FEATURE_DIM),
            nn.ReLU(),
        )
        self.head = nn.Linear(FEATURE_DIM, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations; uint8 input is scaled to [0, 1], float is taken as [0, 1]."""
        return self.body(Model.preprocess(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _device(device: str | torch.device | None) -> torch.device:
    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


def train_domain_classifier(
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    *,
    epochs: int = CLASSIFIER_EPOCHS,
    seed: int = 0,
    num_classes: int | None = None,
    batch_size: int = 32,
    lr: float = 1e-3,
    device: str | torch.device | None = None,
) -> DomainClassifier:
    """Adam on cross-entropy over uint8 ``[N, C, H, W]`` images (``num_classes`` defaults to
    ``max(labels) + 1``).

    Runs under a forked RNG seeded by ``seed``, so the weights depend only on the data and the
    seed (bit-identical on CPU). Small batches train fastest per epoch here; on CPU they run on
    one thread (see ``probes._one_cpu_thread``).
    """
    if train_images.dtype != torch.uint8 or train_images.ndim != 4:
        raise ValueError(f"expected uint8 [N, C, H, W] images, got {train_images.dtype}")
    dev = _device(device)
    images, labels = train_images.to(dev), train_labels.to(dev)
    gen = torch.Generator().manual_seed(seed)
    rng_devices = []
    if dev.type == "cuda":
        rng_devices = [torch.cuda.current_device() if dev.index is None else dev.index]
    with _one_cpu_thread(dev), torch.random.fork_rng(devices=rng_devices):
        torch.manual_seed(seed)
        model = DomainClassifier(images.shape[1], num_classes or int(labels.max()) + 1).to(dev)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        model.train()
        for _ in range(epochs):
            # BatchNorm cannot train on a single image, so a trailing batch of one is skipped.
            perm = torch.randperm(len(images), generator=gen).to(dev)
            for start in range(0, len(perm) - 1, batch_size):
                batch = perm[start : start + batch_size]
                optimizer.zero_grad(set_to_none=True)
                F.cross_entropy(model(images[batch]), labels[batch]).backward()
                optimizer.step()
    return model.eval()


def domain_classifier_path(
    data: ImageData, cache_dir: str | os.PathLike[str], *, seed: int = CLASSIFIER_SEED
) -> Path:
    """Cache file of ``data``'s classifier: keyed by dataset name, image shape, number of
    training images, seed and epochs, so every run on one dataset finds the same network."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", data.name)
    c, h, w = data.shape
    key = f"{name}_{c}x{h}x{w}_n{len(data.train)}_seed{seed}_ep{CLASSIFIER_EPOCHS}"
    return Path(cache_dir) / f"domain-classifier_{key}.safetensors"


def load_or_train_domain_classifier(
    data: ImageData,
    cache_dir: str | os.PathLike[str],
    *,
    seed: int = CLASSIFIER_SEED,
    device: str | torch.device | None = None,
) -> DomainClassifier:
    """The cached classifier for ``data`` if there is one, else train it and cache it.

    Weights are safetensors (no pickle), written to a temporary file and renamed, so an
    interrupted run never leaves a truncated cache behind.
    """
    path = domain_classifier_path(data, cache_dir, seed=seed)
    dev = _device(device)
    if path.exists():
        model = DomainClassifier(data.shape[0], data.num_classes)
        model.load_state_dict(load_file(str(path)))
        return model.to(dev).eval()
    model = train_domain_classifier(
        data.train.images,
        data.train.labels,
        epochs=CLASSIFIER_EPOCHS,
        seed=seed,
        num_classes=data.num_classes,
        device=dev,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(tmp), metadata={"dataset": data.name, "shape": json.dumps(data.shape)})
    os.replace(tmp, path)
    return model


@torch.inference_mode()
def _batched(
    fn: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    dev: torch.device,
    batch_size: int = _BATCH,
) -> torch.Tensor:
    """``fn`` over uint8 batches on ``dev``, outputs gathered on the CPU."""
    return torch.cat([fn(b.to(dev)).float().cpu() for b in _to_uint8(images).split(batch_size)])


def domain_features(classifier: DomainClassifier, images: torch.Tensor) -> np.ndarray:
    """``[N, 128]`` penultimate features of uint8 images (float images in [0, 1] are quantised)."""
    classifier.eval()
    dev = next(classifier.parameters()).device
    with _one_cpu_thread(dev):
        return _batched(classifier.features, images, dev).numpy()


def classifier_accuracy(
    classifier: DomainClassifier, images: torch.Tensor, labels: torch.Tensor
) -> float:
    """Test accuracy, reported beside domain FIDs: a weak classifier makes weak features."""
    classifier.eval()
    dev = next(classifier.parameters()).device
    with _one_cpu_thread(dev):
        logits = _batched(classifier, images, dev)
    return float((logits.argmax(1) == labels.cpu()).float().mean())


def domain_fid(
    model_samples: torch.Tensor, test_images: torch.Tensor, classifier: DomainClassifier
) -> float:
    """Fréchet distance of the two image sets in ``classifier``'s feature space.

    domain FID: not comparable with Inception FID, nor across classifiers; float samples in
    [0, 1] are quantised to uint8 first, like the real images.
    """
    return frechet_distance(*_stats(classifier, model_samples), *_stats(classifier, test_images))


def _stats(classifier: DomainClassifier, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    return feature_statistics(domain_features(classifier, images))


class InceptionUnavailable(RuntimeError):
    """No Inception backend is usable; the message says what to install and where to put what."""


def _checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def _rgb(images: torch.Tensor) -> torch.Tensor:
    """Inception takes RGB: grayscale is repeated to 3 channels (both backends resize to 299)."""
    images = _to_uint8(images)
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def _missing_message(folder: Path, problems: list[str]) -> str:
    return (
        "Inception FID unavailable (" + "; ".join(problems) + "). To enable it, either\n"
        f"  pip install pytorch-fid, and save {PYTORCH_FID_URL}\n"
        f"  as {folder / PYTORCH_FID_WEIGHTS}\n"
        f"or pip install torchmetrics torch-fidelity, and save {FIDELITY_URL}\n"
        f"  as {folder / FIDELITY_WEIGHTS}\n"
        f"(the folder is torch.hub.get_dir()/checkpoints; repvae never downloads weights itself)."
    )


def _safe_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The weight files are torch pickles: refuse anything but tensors (``weights_only=True``)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def inception_fid(
    images1: torch.Tensor, images2: torch.Tensor, *, device: str | torch.device | None = None
) -> float:
    """Standard Inception FID (2048-d pool3) of two image sets, uint8 or float in [0, 1].

    Uses torchmetrics' ``FrechetInceptionDistance`` (with torch-fidelity) or pytorch-fid's
    ``InceptionV3``, whichever is installed with its weights in torch hub's checkpoint folder;
    raises `InceptionUnavailable` otherwise. Slow on CPU (minutes per thousand images).
    """
    dev = _device(device)
    folder, problems = _checkpoints(), []
    for package, weights in (
        ("torch_fidelity", FIDELITY_WEIGHTS),
        ("pytorch_fid", PYTORCH_FID_WEIGHTS),
    ):
        if importlib.util.find_spec(package) is None:
            problems.append(f"{package} is not installed")
        elif not (folder / weights).is_file():
            problems.append(f"{package} is installed but {folder / weights} is missing")
        elif package == "torch_fidelity" and importlib.util.find_spec("torchmetrics") is None:
            problems.append("torch_fidelity is installed but torchmetrics is not")
        else:
            break
    else:
        raise InceptionUnavailable(_missing_message(folder, problems))

    path = folder / weights
    if package == "torch_fidelity":
        from torchmetrics.image.fid import FrechetInceptionDistance

        _safe_state_dict(path)  # vet the pickle before torch-fidelity's own torch.load reads it
        metric = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=str(path))
        metric = metric.to(dev)
        with torch.inference_mode():
            for images, real in ((images1, True), (images2, False)):
                for batch in _rgb(images).split(_INCEPTION_BATCH):
                    metric.update(batch.to(dev), real=real)
        return float(metric.compute())

    import pytorch_fid.inception as pfi

    # pytorch-fid fetches its weights with load_state_dict_from_url, which unpickles without
    # weights_only and downloads when the file is missing; hand it the vetted state dict instead.
    state = _safe_state_dict(path)
    with mock.patch.object(pfi, "load_state_dict_from_url", lambda *_a, **_k: state):
        net = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).to(dev).eval()

    def pool3(batch: torch.Tensor) -> torch.Tensor:
        return net(Model.preprocess(batch))[0].flatten(1)

    stats = [
        feature_statistics(_batched(pool3, _rgb(images), dev, _INCEPTION_BATCH).numpy())
        for images in (images1, images2)
    ]
    return frechet_distance(*stats[0], *stats[1])


def _subset(images: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    return images if n >= len(images) else images[torch.randperm(len(images), generator=gen)[:n]]


def _generated(
    model: Model, test: torch.Tensor, n: int, seed: int
) -> tuple[dict[str, torch.Tensor], str | None]:
    """uint8 images of the model to compare with ``test``: ``n`` seeded prior samples (if the
    model generates; else the reason it does not) and the reconstructions of ``test``."""
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    was_training = model.training
    model.eval()
    images: dict[str, torch.Tensor] = {}
    if model.capabilities.generates:
        sizes = [min(_BATCH, n - i) for i in range(0, n, _BATCH)]
        images["samples"] = torch.cat(
            [_to_uint8(model.sample(b, generator=gen)).cpu() for b in sizes]
        )
    with torch.no_grad():
        images["reconstructions"] = torch.cat(
            [
                _to_uint8(model.reconstruct(b.to(device), generator=gen)).cpu()
                for b in test.split(_BATCH)
            ]
        )
    model.train(was_training)
    why_not = None if model.capabilities.generates else model.capabilities.why_not("generates")
    return images, why_not


def fid_report(
    model: Model,
    data: ImageData,
    *,
    n: int = 10_000,
    seed: int = 0,
    cache_dir: str | os.PathLike[str],
    device: str | torch.device | None = None,
    inception: bool = True,
) -> dict:
    """Domain FID of ``n`` seeded prior samples, and of the reconstructions of ``n`` test
    images, against those test images; JSON-ready.

    A model that does not generate (no prior: the deterministic autoencoder) gets the FID of
    its reconstructions alone; ``samples_missing`` says why. ``n`` is capped at the test-set size;
    test images are a seeded subset when ``n`` is smaller. ``domain_fid_reference`` (train vs
    test images, same ``n``) is the floor to read ``domain_fid`` against. domain FID: not
    comparable with Inception FID. The classifier is trained once per dataset with
    `CLASSIFIER_SEED` (cached in ``cache_dir``), independent of ``seed``. ``inception=False``
    skips Inception FID, which takes long on CPU.
    """
    start = time.perf_counter()
    n_used = min(n, len(data.test))
    weights = domain_classifier_path(data, cache_dir)
    from_cache = weights.exists()
    classifier = load_or_train_domain_classifier(data, cache_dir, device=device)

    subset_gen = torch.Generator().manual_seed(seed)
    test = _subset(data.test.images, n_used, subset_gen)
    train = _subset(data.train.images, n_used, subset_gen)
    images, samples_missing = _generated(model, test, n_used, seed)
    test_stats = _stats(classifier, test)
    domain = {
        name: frechet_distance(*_stats(classifier, x), *test_stats) for name, x in images.items()
    }
    report: dict = {
        "note": DOMAIN_NOTE,
        "domain_fid": domain.get("samples"),
        "domain_fid_reconstructions": domain["reconstructions"],
        "domain_fid_reference": frechet_distance(*_stats(classifier, train), *test_stats),
        "samples_missing": samples_missing,
        "n": n_used,
        "seed": seed,
        "classifier": {
            "test_accuracy": classifier_accuracy(classifier, data.test.images, data.test.labels),
            "weights": str(weights),
            "from_cache": from_cache,
            "seed": CLASSIFIER_SEED,
            "epochs": CLASSIFIER_EPOCHS,
        },
        "inception_fid": None,
        "inception_fid_reconstructions": None,
        "inception_fid_missing": "skipped (inception=False)",
    }
    if inception:
        try:
            for name, x in images.items():
                key = "inception_fid" if name == "samples" else f"inception_fid_{name}"
                report[key] = inception_fid(x, test, device=device)
            report["inception_fid_missing"] = None
        except InceptionUnavailable as exc:
            report["inception_fid_missing"] = str(exc)
    report["seconds"] = time.perf_counter() - start
    return report


def _fid(ctx: Context) -> Result:
    cache = data_root(ctx.run.config.data.root) / "fid-classifiers"
    return fid_report(
        ctx.run.model, ctx.data, n=ctx.settings.fid_samples, seed=ctx.settings.seed, cache_dir=cache
    )


def _summary(result: Result) -> list[str]:
    if "skipped" in result:  # written by an earlier version for a model without a prior
        return [f"  FID skipped: {result['skipped']}"]
    lines = [f"  {result['n']} images each; {result['note']}"]
    if result.get("samples_missing"):
        lines.append(f"  no samples: {result['samples_missing']}")
    for images, suffix in (("samples", ""), ("reconstructions", "_reconstructions")):
        domain, inception = result.get(f"domain_fid{suffix}"), result.get(f"inception_fid{suffix}")
        if domain is not None:
            line = f"  FID of {images}: domain {domain:.3f}"
            lines.append(line + ("" if inception is None else f", Inception {inception:.3f}"))
    lines.append(
        f"  domain FID of train vs test images: {result['domain_fid_reference']:.3f} (domain "
        f"classifier accuracy {100 * result['classifier']['test_accuracy']:.2f}%)"
    )
    if result.get("inception_fid_missing"):
        lines.append(f"  Inception FID: not computed: {result['inception_fid_missing']}")
    return lines


# domain FID: on the features of a classifier trained on the dataset itself, so it is not
# comparable with Inception FID; the reference is the FID of training vs test images. The
# samples' FIDs are absent for a model that does not generate.
METRIC = Metric(
    "fid",
    _fid,
    values_at(
        {
            "domain_fid": ("domain_fid",),
            "domain_fid_reconstructions": ("domain_fid_reconstructions",),
            "domain_fid_reference": ("domain_fid_reference",),
            "inception_fid": ("inception_fid",),
            "inception_fid_reconstructions": ("inception_fid_reconstructions",),
        }
    ),
    _summary,
)
