"""PolyMNIST-style multimodal digits (Sutter, Daunhawer and Vogt, "Generalized Multimodal ELBO",
ICLR 2021): M modalities of one digit class, each an MNIST image of that class drawn over a
random crop of the modality's own background.

As in the paper, each modality shows a *different* handwritten instance of the same class, so
what the modalities share is the digit's class, and each adds its own style (handwriting,
background crop). Where the digit's stroke is, the background's colours are inverted (the
paper's rule), so that the digit reads on any texture.

The backgrounds are procedural: one seeded texture per modality (smooth colour noise of its own
palette and scale, 64x64), so the data set needs nothing beyond MNIST and is the same on every
machine; the paper used five photographs. Images are ``[N, 3 M, H, W]`` uint8: the modalities
stacked along the channels, modality m in channels 3m..3m+2. Labels are the digit classes.

Names: ``polymnist`` (5 modalities, as the paper), ``polymnist-M`` for M = 2..5, and
``polydigits-M`` built the same way from the embedded 8x8 digits (tests, demos).

``mnist-svhn`` (Shi et al. 2019) pairs each MNIST image with an SVHN image of the same class
(one random partner each, seeded; Shi et al. drew 20 per image): MNIST resized to 32x32 and
repeated to 3 channels, so the two modalities stack as ``[N, 6, 32, 32]``. It needs the SVHN
files (``svhn.py`` names where they go).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .core import Arrays
from .transforms import resize

MODALITY_CHANNELS = 3
MAX_MODALITIES = 5
SEED = 0
TEXTURE = 64


def background(modality: int, size: int = TEXTURE) -> np.ndarray:
    """Modality ``modality``'s texture, uint8 [3, size, size]: noise at a modality-specific
    scale, smoothed by upsampling, mapped through a modality-specific palette."""
    rng = np.random.default_rng(1000 + modality)
    cells = 4 + 3 * modality  # coarse blobs for the first modality, finer for later ones
    noise = torch.from_numpy(rng.random((1, 3, cells, cells), dtype=np.float32))
    smooth = F.interpolate(noise, size=(size, size), mode="bicubic", align_corners=False)[0]
    smooth = (smooth - smooth.amin()) / (smooth.amax() - smooth.amin() + 1e-6)
    palette = rng.uniform(0.2, 1.0, size=(3, 1, 1)).astype(np.float32)
    return np.clip(255 * smooth.numpy() * palette, 0, 255).astype(np.uint8)


def _partners(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each image, a random other image of the same class (the next modality's digit)."""
    partners = np.empty_like(labels)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        partners[members] = rng.permutation(members)
    return partners


def compose(
    digits: np.ndarray, labels: np.ndarray, modalities: int, seed: int = SEED
) -> np.ndarray:
    """uint8 [N, 3 M, H, W]: modality 0 draws each digit itself, modality m > 0 a random
    same-class digit, each over a random crop of its background with the stroke inverted."""
    if not 1 <= modalities <= MAX_MODALITIES:
        raise ValueError(f"modalities must be 1..{MAX_MODALITIES}, got {modalities}")
    rng = np.random.default_rng(seed)
    n, _, h, w = digits.shape
    stroke = digits[:, 0].astype(np.float32) / 255.0  # [N, H, W]
    out = np.empty((n, MODALITY_CHANNELS * modalities, h, w), np.uint8)
    for m in range(modalities):
        which = np.arange(n) if m == 0 else _partners(labels, rng)
        texture = background(m, max(TEXTURE, h, w)).astype(np.float32)
        top = rng.integers(0, texture.shape[1] - h + 1, n)
        left = rng.integers(0, texture.shape[2] - w + 1, n)
        rows = top[:, None] + np.arange(h)  # [N, H]
        cols = left[:, None] + np.arange(w)  # [N, W]
        crops = texture[:, rows[:, :, None], cols[:, None, :]].transpose(1, 0, 2, 3)
        ink = stroke[which][:, None]  # [N, 1, H, W]
        mixed = crops * (1 - ink) + (255 - crops) * ink
        out[:, MODALITY_CHANNELS * m : MODALITY_CHANNELS * (m + 1)] = np.round(mixed)
    return out


def polymnist(base: Arrays, modalities: int) -> Arrays:
    """The multimodal version of a gray digits data set (its splits and classes kept)."""
    return Arrays(
        train_images=compose(base.train_images, base.train_labels, modalities, SEED),
        train_labels=base.train_labels,
        test_images=compose(base.test_images, base.test_labels, modalities, SEED + 1),
        test_labels=base.test_labels,
        class_names=base.class_names,
    )


def _pair(
    first: np.ndarray,
    first_labels: np.ndarray,
    second: np.ndarray,
    second_labels: np.ndarray,
    seed: int,
) -> np.ndarray:
    """For each image of ``first``, the index of a random ``second`` image of its class."""
    rng = np.random.default_rng(seed)
    partners = np.empty(len(first_labels), np.int64)
    for c in np.unique(first_labels):
        mine = np.flatnonzero(first_labels == c)
        theirs = np.flatnonzero(second_labels == c)
        if len(theirs) == 0:
            raise ValueError(f"class {c} has no partner image to pair with")
        partners[mine] = rng.choice(theirs, size=len(mine))
    return partners


def pair_by_class(gray: Arrays, rgb: Arrays, seed: int = SEED) -> Arrays:
    """Each image of the gray set (MNIST) with a same-class image of the RGB set (SVHN), the
    gray one resized to the RGB size and repeated to 3 channels: ``[N, 6, H, W]``."""
    size = rgb.train_images.shape[-1]

    def stacked(
        images: np.ndarray, labels: np.ndarray, other: np.ndarray, other_labels: np.ndarray, s: int
    ) -> np.ndarray:
        first = resize(torch.from_numpy(images), size).numpy().repeat(3, axis=1)
        return np.concatenate([first, other[_pair(images, labels, other, other_labels, s)]], axis=1)

    return Arrays(
        train_images=stacked(
            gray.train_images, gray.train_labels, rgb.train_images, rgb.train_labels, seed
        ),
        train_labels=gray.train_labels,
        test_images=stacked(
            gray.test_images, gray.test_labels, rgb.test_images, rgb.test_labels, seed + 1
        ),
        test_labels=gray.test_labels,
        class_names=gray.class_names,
    )
