"""Representations from a trained encoder.

Kinds (``--kind``):
- ``map``: the posterior mean E_q[z|x] (deterministic; the usual representation);
- ``sample``: one reparameterised draw z ~ q(z|x) per image (seeded);
- ``samples:K``: ``[N, K, D]`` arrays; training images get one draw (K=1), evaluation
  images K; probes train on the single draws and average their predictions over the K draws
  (Monte-Carlo predictive, Zhang et al. Table 1);
- ``dist``: the distribution embedding ``[mean, std]`` (2D numbers).
Any kind can be truncated to a Matryoshka prefix ``dims=m`` (the first m coordinates; for
``dist``, the first m means and the first m stds). A family may declare kinds of its own
(``Capabilities.kinds``, e.g. a VQ-VAE's bag-of-codes histogram ``codes``).

A family whose encoder reads the class label (``Capabilities.label_encoder``) is encoded with
each image's label. A family's ``Capabilities.code_note`` (e.g. ``STYLE_NOTE``: the code is a
style code) travels with its embeddings, and probes repeat it with their results.

Files: ``RUN/embeddings/<kind>[-d<m>].npz`` (plain npz, no pickle) with arrays ``train``,
``train_labels``, ``test``, ``test_labels`` (and ``val``/``val_labels`` when asked), and
``meta``: a JSON string with kind, dims, seed, the run folder and the note (if any).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from repvae.data import ImageData
from repvae.data.splits import seeded_subset
from repvae.files import atomic_path
from repvae.models import Model, Posterior, Unsupported
from repvae.models.distributions import cat_posteriors, map_posterior
from repvae.run import Run

SPLITS = ("train", "val", "test")
NPZ_MAGIC = b"PK\x03\x04"  # an .npz file is a zip archive
BUILTIN_KINDS = ("map", "sample", "samples:K", "dist")


def parse_kind(kind: str) -> tuple[str, int]:
    """'map' -> ('map', 1); 'samples:100' -> ('samples', 100); a family's own kind 'codes' ->
    ('codes', 1) (``check_kind`` tells whether the model has it). Raises ValueError on bad
    input."""
    name, _, k = kind.partition(":")
    if name == "samples" and k.isdigit() and int(k) >= 1:
        return name, int(k)
    if name != "samples" and name.isidentifier() and not k:
        return name, 1
    raise ValueError(f"unknown representation kind {kind!r}; use map, sample, samples:K or dist")


def kind_tag(kind: str, dims: int | None = None) -> str:
    return kind.replace(":", "-") + (f"-d{dims}" if dims else "")


@dataclass
class Embeddings:
    """Features and labels per split; features are [N, D] or [N, K, D] (samples:K, eval splits)."""

    kind: str
    dims: int | None
    features: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    # what a probe on these features measures, where that is not the usual (``code_note``)
    note: str | None = None

    def save(self, path: str | Path, **meta) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = {}
        for split, x in self.features.items():
            arrays[split] = x
            arrays[f"{split}_labels"] = self.labels[split]
        info = {"kind": self.kind, "dims": self.dims, **meta}
        if self.note:
            info["note"] = self.note
        with atomic_path(path) as temporary, open(temporary, "wb") as f:
            np.savez(f, meta=np.array(json.dumps(info)), **arrays)
        return path

    def for_probing(
        self, test_split: str = "test", size: int | None = None, seed: int = 0
    ) -> Embeddings:
        """Train vs ``test_split`` as the probes' train/test pair, optionally on a seeded subset
        of ``size`` training and ``size // 6`` test images (the MNIST train:test ratio), for
        budgets where probing every image would dominate the cost."""
        features = {"train": self.features["train"], "test": self.features[test_split]}
        labels = {"train": self.labels["train"], "test": self.labels[test_split]}
        if size is not None:
            rng = np.random.default_rng(seed)
            for split, n in (("train", size), ("test", max(size // 6, 1))):
                keep = seeded_subset(len(labels[split]), n, rng)
                features[split], labels[split] = features[split][keep], labels[split][keep]
        return Embeddings(self.kind, self.dims, features, labels, self.note)

    @classmethod
    def load(cls, path: str | Path) -> Embeddings:
        path = Path(path)
        with open(path, "rb") as f:
            if f.read(4) != NPZ_MAGIC:  # np.load would blame pickled data for any other file
                raise ValueError(
                    f"{path}: not an embeddings file (a .npz archive written by repvae embed)"
                )
        try:
            return cls._read(path)
        except (zipfile.BadZipFile, EOFError, KeyError, OSError, ValueError) as err:
            raise ValueError(
                f"{path}: damaged embeddings file ({err}); write it again with repvae embed"
            ) from None

    @classmethod
    def _read(cls, path: Path) -> Embeddings:
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["meta"]))
            splits = [s for s in SPLITS if s in f.files]
            if "train" not in splits or "test" not in splits:
                raise ValueError(f"{path}: an embeddings file needs 'train' and 'test' arrays")
            return cls(
                meta["kind"],
                meta.get("dims"),
                {s: f[s] for s in splits},
                {s: f[f"{s}_labels"] for s in splits},
                meta.get("note"),
            )


@torch.no_grad()
def encode(
    model: Model,
    images: torch.Tensor,
    batch_size: int = 1024,
    labels: torch.Tensor | None = None,
) -> Posterior:
    """The posterior q(z|x) of a uint8 image tensor, on the CPU in float32; q(z|x, y) with the
    images' ``labels`` for a family whose encoder reads them (``label_encoder``)."""
    model.eval()
    device = next(model.parameters()).device
    labelled = labels is not None and model.capabilities.label_encoder
    parts = []
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size].to(device)
        x = x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x
        if labelled:
            y = cast(torch.Tensor, labels)[start : start + batch_size].to(device)
            posterior = model.encode_labelled(x, y)
        else:
            posterior = model.encode(x)
        parts.append(map_posterior(posterior, lambda t: t.float().cpu()))
    return cat_posteriors(parts)


def kind_names(model: Model) -> list[str]:
    """The representation kinds ``model`` offers."""
    caps = model.capabilities
    builtin = list(BUILTIN_KINDS) if caps.continuous_posterior else ["map"]
    return [*builtin, *caps.kinds]


LAYER_PREFIX = "layer"  # a hierarchical family's kinds: layer1 (bottom) ... layerL (top)


def layer_kinds(selectors: Sequence[str]) -> list[str]:
    """``--layer`` values as kinds: ``N`` is stochastic layer N (1 = bottom), ``all`` every
    layer concatenated (the ``map`` kind)."""
    kinds = []
    for selector in selectors:
        if selector != "all" and not (selector.isdigit() and int(selector) >= 1):
            raise ValueError(f"--layer: {selector!r} is not a layer number (1 = bottom) or all")
        kinds.append("map" if selector == "all" else f"{LAYER_PREFIX}{int(selector)}")
    return kinds


def check_kind(model: Model, kind: str) -> None:
    """Refuse, with the family's reason, a kind its posterior does not define."""
    name, _ = parse_kind(kind)
    caps = model.capabilities
    if name == "map" or name in caps.kinds:
        return
    layers = [k for k in caps.kinds if k.startswith(LAYER_PREFIX)]
    if name.startswith(LAYER_PREFIX) and name[len(LAYER_PREFIX) :].isdigit():
        raise ValueError(
            f"--layer {name[len(LAYER_PREFIX) :]}: the {model.family} family has "
            + (f"stochastic layers 1 to {len(layers)}" if layers else "one latent layer")
        )
    if name not in ("sample", "samples", "dist"):
        raise ValueError(
            f"unknown representation kind {kind!r}; the {model.family} family offers "
            f"{', '.join(kind_names(model))}"
        )
    if not caps.continuous_posterior:
        raise Unsupported(
            f"representation {kind!r}: the {model.family} family: "
            f"{caps.why_not('continuous_posterior')}"
        )


def derive(
    posterior: Posterior, kind: str, dims: int | None, *, draws: int, seed: int
) -> np.ndarray:
    """One representation kind from the posterior; ``draws`` samples for sampling kinds."""
    name, _ = parse_kind(kind)
    if dims is not None:
        posterior = posterior.prefix(dims)
    if name == "map":
        return posterior.mean.numpy()
    if name == "dist":
        return posterior.flat_parameters().numpy()
    if name not in ("sample", "samples"):
        # a family's own kind: the posterior field of that name (``Capabilities.kinds``)
        return cast(torch.Tensor, getattr(posterior, name)).numpy()
    generator = torch.Generator().manual_seed(seed)
    z = posterior.rsample(draws, generator)
    return (z[:, 0] if name == "sample" else z).numpy()


def embed(
    run: Run,
    kinds: list[str] | tuple[str, ...] = ("map",),
    *,
    splits: tuple[str, ...] = ("train", "test"),
    dims: Sequence[int | None] | None = None,
    data: ImageData | None = None,
    seed: int = 0,
    save: bool = True,
) -> dict[tuple[str, int | None], Embeddings]:
    """Embeddings of ``splits`` for every (kind, dims) pair; each image is encoded once.
    ``dims=None`` means the full latent, or every nested prefix of a Matryoshka model."""
    for kind in kinds:
        check_kind(run.model, kind)
    # A Matryoshka model is embedded at every trained prefix unless sizes are given.
    nested = run.model.prefixes if len(run.model.prefixes) > 1 else [None]
    dims_list = dims or nested
    for m in dims_list:
        if m is not None and not 0 < m <= run.model.representation_dim:
            raise ValueError(f"dims {m} out of range 1..{run.model.representation_dim}")
    if data is None:
        data = run.config.data.load()
    posterior = {
        s: encode(run.model, getattr(data, s).images, labels=getattr(data, s).labels)
        for s in splits
    }
    labels = {s: getattr(data, s).labels.numpy() for s in splits}
    note = run.model.capabilities.code_note or None
    results = {}
    for kind in kinds:
        _, k = parse_kind(kind)
        for m in dims_list:
            features = {}
            for i, split in enumerate(splits):
                draws = 1 if split == "train" else k
                features[split] = derive(
                    posterior[split], kind, m, draws=draws, seed=seed + 7919 * i
                )
            emb = Embeddings(kind, m, features, labels, note)
            if save:
                emb.save(
                    run.dir / "embeddings" / f"{kind_tag(kind, m)}.npz", seed=seed, run=str(run.dir)
                )
            results[(kind, m)] = emb
    return results
