"""The ``coherence`` metric of multimodal models (Shi et al. 2019; Sutter et al. 2021): do
generated modalities show the digit they should?

- cross-modal coherence, source i -> target j (i != j): encode the test images from modality i
  alone, decode modality j, and count how often a digit classifier trained on modality j's real
  images labels the result as the test image's class;
- joint coherence: decode every modality from the same prior draw z ~ N(0, I) and count how
  often the M classifiers agree on one class.

The classifiers are small CNNs, one per modality, trained here on the run's training images for
500 Adam steps (seeded), and scored on the real test images too (their accuracy bounds what
the coherences can show). This short auxiliary fit is a plain loop, not a Lightning run: the
trainer's start-up would cost more than the fit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from repvae.evaluate.metric import Context, Metric, Result, skipped, values_at

CLASSIFIER_STEPS = 500  # Adam steps of batch 256 (about 6 epochs of 20,000 images)
CLASSIFIER_IMAGES = 20_000  # training images per modality classifier (a seeded subset)
TEST_IMAGES = 2_000
BATCH = 256


def digit_classifier(channels: int, classes: int) -> nn.Module:
    """Two stride-2 convs and a linear layer (a digit classifier, not a benchmark)."""
    return nn.Sequential(
        nn.Conv2d(channels, 32, 3, 2, 1),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3, 2, 1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(64 * 16, classes),
    )


def train_classifier(
    images: torch.Tensor, labels: torch.Tensor, classes: int, seed: int = 0
) -> nn.Module:
    """A digit classifier of one modality's images (uint8 [N, C, H, W])."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = digit_classifier(images.shape[1], classes)
    optimiser = torch.optim.Adam(net.parameters(), 1e-3)
    steps = 0
    while steps < CLASSIFIER_STEPS:
        for index in torch.randperm(len(images), generator=generator).split(BATCH):
            loss = nn.functional.cross_entropy(net(images[index].float() / 255), labels[index])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            steps += 1
            if steps == CLASSIFIER_STEPS:
                break
    return net.eval()


@torch.no_grad()
def predict(net: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Classes of images in [0, 1] (or uint8)."""
    x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    return torch.cat([net(part).argmax(1) for part in x.split(1024)])


@dataclass(frozen=True)
class Coherence:
    cross: np.ndarray  # [M, M]: source i -> target j (diagonal: reconstruction from i alone)
    joint: float
    classifier_accuracy: list[float]  # per modality, on the real test images

    @property
    def cross_mean(self) -> float:
        """Mean over the ordered pairs i != j."""
        off = ~np.eye(len(self.cross), dtype=bool)
        return float(self.cross[off].mean())


def coherence(
    cross_generate: Callable[[torch.Tensor, int], torch.Tensor],
    joint_samples: torch.Tensor,
    classifiers: list[nn.Module],
    images: torch.Tensor,
    labels: torch.Tensor,
) -> Coherence:
    """Coherences from a model's cross-generation (images [N, M C, H, W] uint8, source
    modality) -> all modalities in [0, 1]) and its joint samples [S, M C, H, W]."""
    m = len(classifiers)
    c = images.shape[1] // m

    def modality(x: torch.Tensor, j: int) -> torch.Tensor:
        return x[:, j * c : (j + 1) * c]

    cross = np.zeros((m, m))
    for i in range(m):
        generated = cross_generate(images, i)
        for j, net in enumerate(classifiers):
            cross[i, j] = float((predict(net, modality(generated, j)) == labels).float().mean())
    votes = torch.stack(
        [predict(net, modality(joint_samples, j)) for j, net in enumerate(classifiers)]
    )
    joint = float((votes == votes[:1]).all(0).float().mean())
    accuracy = [
        float((predict(net, modality(images, j)) == labels).float().mean())
        for j, net in enumerate(classifiers)
    ]
    return Coherence(cross, joint, accuracy)


def _coherence(ctx: Context) -> Result:
    model = ctx.run.model
    m = model.capabilities.modalities
    if m < 2:
        return skipped(
            f"the {model.family} family reads one modality: coherence compares modalities"
        )
    seed = ctx.settings.seed
    train, test = ctx.data.train, getattr(ctx.data, ctx.split)
    rng = np.random.default_rng(seed)
    pick = torch.from_numpy(np.sort(rng.permutation(len(train.labels))[:CLASSIFIER_IMAGES]))
    c = train.images.shape[1] // m
    classes = ctx.data.num_classes
    classifiers = [
        train_classifier(train.images[pick, j * c : (j + 1) * c], train.labels[pick], classes, seed)
        for j in range(m)
    ]
    keep = torch.from_numpy(np.sort(rng.permutation(len(test.labels))[:TEST_IMAGES]))
    images, labels = test.images[keep], test.labels[keep]
    model.eval()
    device = next(model.parameters()).device

    @torch.no_grad()
    def cross_generate(x: torch.Tensor, source: int) -> torch.Tensor:
        parts = [
            model.generate(model.encode_subset(part.to(device), [source]).mean).cpu()
            for part in x.split(1024)
        ]
        return torch.cat(parts)

    generator = torch.Generator(device=device).manual_seed(seed)
    joint_samples = model.sample(len(labels), generator=generator).cpu()
    result = coherence(cross_generate, joint_samples, classifiers, images, labels)
    return {
        "split": ctx.split,
        "n": len(labels),
        "modalities": m,
        "cross_coherence": result.cross_mean,
        "cross_coherence_matrix": result.cross.tolist(),
        "cross_matrix_note": "row: source modality (alone), column: generated modality; the "
        "diagonal is each modality reconstructed from itself alone",
        "joint_coherence": result.joint,
        "classifier_accuracy": result.classifier_accuracy,
        "classifier": f"a small CNN per modality, {CLASSIFIER_STEPS} Adam steps of batch "
        f"{BATCH} on up to {CLASSIFIER_IMAGES} training images (seed {seed})",
    }


def _summary(result: Result) -> list[str]:
    if "skipped" in result:
        return [f"  coherence skipped: {result['skipped']}"]
    accuracy = ", ".join(f"{100 * a:.1f}" for a in result["classifier_accuracy"])
    return [
        f"  coherence: cross-modal {100 * result['cross_coherence']:.2f}%, joint "
        f"{100 * result['joint_coherence']:.2f}% ({result['n']} {result['split']} images; "
        f"modality classifiers {accuracy}% on real images)"
    ]


METRIC = Metric(
    "coherence",
    _coherence,
    values_at({"cross_coherence": ("cross_coherence",), "joint_coherence": ("joint_coherence",)}),
    _summary,
)
