"""Run configuration: one validated, serialisable description of a training run.

A run folder's ``config.yaml`` is this object written out; it is all that is needed to rebuild
the model (no pickle). Every user-facing value is checked here so that a bad value fails before
any work starts, with the dotted name of the field in the message.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """An invalid configuration value; the message starts with the dotted field name."""


@dataclass
class DataConfig:
    name: str = "digits"
    root: str | None = None
    val_size: float = 0.1
    image_size: int | None = None
    grayscale: bool = False
    seed: int = 0

    def load(self):
        """The dataset this section describes (an ``ImageData``), splits included."""
        from repvae.data import load_dataset  # local import: config stays light

        return load_dataset(
            self.name,
            self.root,
            val_size=self.val_size,
            seed=self.seed,
            image_size=self.image_size,
            grayscale=self.grayscale,
        )


@dataclass
class ModelConfig:
    # "vae": the composed VAE family below; "m2": Kingma et al.'s semi-supervised model.
    family: str = "vae"
    latent_dim: int = 16
    architecture: str = "auto"
    likelihood: str = "bernoulli"
    # Gaussian likelihood only: fixed observation std, or learned (one scalar per channel).
    sigma: float = 0.1
    learn_sigma: bool = False
    # Weight of the KL term; beta = 1 (with alpha = 0 and lam = 0) is the true negative ELBO.
    beta: float = 1.0
    # InfoVAE (Zhao et al.): loss = -E log p(x|z) + beta*(1-alpha)*KL + (alpha+lam-1)*MMD.
    # alpha=0, lam=1 is the plain VAE (MMD weight 0); alpha=1, lam=L is the MMD-VAE.
    alpha: float = 0.0
    lam: float = 1.0
    mmd_kernel: str = "rbf"
    mmd_bandwidths: list[float] = field(default_factory=lambda: [1.0])
    mmd_prior_samples: int = 200
    # Matryoshka nesting: every prefix z[:m] for m in the list is trained to stand alone.
    nesting: list[int] | None = None
    nesting_weights: list[float] | None = None
    shared_decoder: bool = False
    hidden: int = 256
    # 8-bit likelihoods: components of the discretised logistic mixture (logistic_mixture).
    n_mix: int = 10
    # PixelVAE decoders (Zhang et al.): a PixelCNN head on decoder feature maps. "local" sees the
    # causal pixels within `horizon` (h=0: conditionally independent), "full" stacks
    # `head_layers` masked convs; `head_features` maps come from the decoder, `head_channels`
    # is the head's width (the paper: 128).
    decoder_head: str = "none"
    horizon: int = 1
    head_channels: int = 32
    head_layers: int = 15
    head_features: int = 16
    # M2 only: alpha, the weight of the labelled images' classification loss (null: the
    # paper's 0.1 * number of training images).
    classifier_weight: float | None = None


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    device: str = "auto"
    devices: str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    patience: int = 5
    kl_warmup_steps: int = 0
    max_steps: int = -1
    train_subset: int | None = None
    # Semi-supervised models: how many training labels they may see (class-balanced, seeded
    # by train.seed; null: all). The other training images are used without their labels.
    labelled: int | None = None
    precision: str = "32-true"
    progress: bool = True
    logger: str = "csv"


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path, **extra: Any) -> None:
        payload = {**self.to_dict(), **extra}
        Path(path).write_text(yaml.safe_dump(payload, sort_keys=False))

    def validate(self) -> Config:
        _check(self)
        return self


FAMILIES = ("vae", "m2")
LIKELIHOODS = ("bernoulli", "gaussian", "logistic_mixture", "categorical256")
ARCHITECTURES = ("auto", "mlp", "mlp-bn", "conv", "resnet", "conv4")
HEADS = ("none", "local", "full")
MMD_KERNELS = ("rbf", "imq")
DEVICES = ("auto", "cpu", "cuda", "gpu", "mps")
LOGGERS = ("csv", "tensorboard", "none")
# Lightning's precision settings that need no extra package (transformer-engine does)
PRECISIONS = ("32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true")


def _check(cfg: Config) -> None:
    d, m, t = cfg.data, cfg.model, cfg.train
    from repvae.data import DATASETS  # local import: data layer is heavier than config

    if d.name not in DATASETS and not d.name.startswith("folder:"):
        _fail("data.name", f"unknown dataset {d.name!r}; choose from {DATASETS} or folder:PATH")
    _require("data.val_size", d.val_size > 0, "must be > 0 (a fraction < 1 or a count)")
    _require("data.image_size", d.image_size is None or d.image_size >= 4, "must be >= 4")
    _choice("model.family", m.family, FAMILIES)
    _require("model.latent_dim", m.latent_dim >= 1, "must be >= 1")
    _choice("model.architecture", m.architecture, ARCHITECTURES)
    _choice("model.likelihood", m.likelihood, LIKELIHOODS)
    _require("model.sigma", m.sigma > 0, "must be > 0")
    _require("model.beta", m.beta >= 0, "must be >= 0")
    _require("model.alpha", m.alpha <= 1, "must be <= 1 (the KL weight is 1 - alpha)")
    _require("model.lam", m.lam >= 0, "must be >= 0")
    _require(
        "model.lam", m.alpha + m.lam - 1 >= -1e-9, "alpha + lam must be >= 1 (MMD weight >= 0)"
    )
    _choice("model.mmd_kernel", m.mmd_kernel, MMD_KERNELS)
    _require("model.mmd_bandwidths", all(b > 0 for b in m.mmd_bandwidths), "must all be > 0")
    _require("model.mmd_bandwidths", len(m.mmd_bandwidths) > 0, "must not be empty")
    _require("model.mmd_prior_samples", m.mmd_prior_samples >= 2, "must be >= 2")
    _require("model.hidden", m.hidden >= 1, "must be >= 1")
    _require("model.n_mix", m.n_mix >= 1, "must be >= 1")
    _choice("model.decoder_head", m.decoder_head, HEADS)
    _require("model.horizon", m.horizon >= 0, "must be >= 0")
    _require("model.head_channels", m.head_channels >= 1, "must be >= 1")
    _require("model.head_layers", m.head_layers >= 1, "must be >= 1")
    _require("model.head_features", m.head_features >= 1, "must be >= 1")
    if m.decoder_head != "none":
        _require(
            "model.likelihood",
            m.likelihood in ("logistic_mixture", "categorical256"),
            "a PixelCNN decoder head needs an 8-bit likelihood (logistic_mixture, categorical256)",
        )
    if m.nesting is not None:
        _require("model.nesting", len(m.nesting) > 0, "must not be empty (use null for none)")
        _require(
            "model.nesting",
            all(0 < n <= m.latent_dim for n in m.nesting),
            f"sizes must be in 1..latent_dim={m.latent_dim}",
        )
        _require(
            "model.nesting", m.nesting == sorted(set(m.nesting)), "must be strictly increasing"
        )
        if m.nesting_weights is not None:
            _require(
                "model.nesting_weights",
                len(m.nesting_weights) == len(m.nesting),
                "must have one weight per nesting size",
            )
    if m.family == "m2":
        _require("model.nesting", m.nesting is None, "m2 has no Matryoshka nesting")
        _require("model.decoder_head", m.decoder_head == "none", "m2 has no PixelCNN head")
        _require("model.alpha", m.alpha == 0 and m.lam == 1, "m2 has no MMD term (alpha=0, lam=1)")
    _require(
        "model.classifier_weight",
        m.classifier_weight is None or m.classifier_weight >= 0,
        "must be >= 0 (or null for 0.1 * training images)",
    )
    _require("train.labelled", t.labelled is None or t.labelled >= 1, "must be >= 1")
    _require("train.epochs", t.epochs >= 1, "must be >= 1")
    _require("train.batch_size", t.batch_size >= 1, "must be >= 1")
    _require("train.lr", t.lr > 0, "must be > 0")
    _require("train.patience", t.patience >= 1, "must be >= 1")
    _require("train.kl_warmup_steps", t.kl_warmup_steps >= 0, "must be >= 0")
    _require("train.train_subset", t.train_subset is None or t.train_subset >= 1, "must be >= 1")
    _choice("train.device", t.device, DEVICES)
    _choice("train.logger", t.logger, LOGGERS)
    _choice("train.precision", t.precision, PRECISIONS)


def _fail(name: str, message: str) -> typing.NoReturn:
    raise ConfigError(f"{name}: {message}")


def _require(name: str, ok: bool, message: str) -> None:
    if not ok:
        _fail(name, message)


def _choice(name: str, value: str, options: tuple[str, ...]) -> None:
    _require(name, value in options, f"must be one of {options}, got {value!r}")


def _coerce(name: str, value: Any, annotation: Any) -> Any:
    """Convert a parsed YAML/CLI value to the field's declared type, or fail naming the field."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(name, value, inner[0])
    if origin is list:
        if isinstance(value, str):
            value = [v for v in value.replace(",", " ").split() if v]
        if not isinstance(value, list | tuple):
            _fail(name, f"expected a list, got {value!r}")
        return [_coerce(f"{name}[{i}]", v, args[0]) for i, v in enumerate(value)]
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        _fail(name, f"expected true/false, got {value!r}")
    if annotation in (int, float):
        if isinstance(value, bool):
            _fail(name, f"expected a number, got {value!r}")
        try:
            number = float(value) if annotation is float else int(str(value), 0)
        except (TypeError, ValueError):
            _fail(name, f"expected {annotation.__name__}, got {value!r}")
        return number
    if annotation is str:
        if not isinstance(value, str | int | float):
            _fail(name, f"expected a string, got {value!r}")
        return str(value)
    return value


def _section_types(section: type) -> dict[str, Any]:
    hints = typing.get_type_hints(section)
    return {f.name: hints[f.name] for f in dataclasses.fields(section)}


_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


def from_dict(raw: dict[str, Any]) -> Config:
    """Build a validated Config from nested dicts; unknown keys are errors, not silently ignored."""
    if not isinstance(raw, dict):
        raise ConfigError(f"config: expected a mapping with sections {tuple(_SECTIONS)}")
    sections = {}
    for key in raw:
        if key not in _SECTIONS and key not in ("repvae", "dataset"):
            _fail(key, f"unknown section; expected one of {tuple(_SECTIONS)}")
    for name, section in _SECTIONS.items():
        values = raw.get(name) or {}
        if not isinstance(values, dict):
            _fail(name, "expected a mapping")
        types_ = _section_types(section)
        kwargs = {}
        for key, value in values.items():
            if key not in types_:
                _fail(f"{name}.{key}", f"unknown field; valid fields: {sorted(types_)}")
            kwargs[key] = _coerce(f"{name}.{key}", value, types_[key])
        sections[name] = section(**kwargs)
    return Config(**sections).validate()


def apply_overrides(cfg: Config, overrides: dict[str, Any]) -> Config:
    """Return a new validated Config with dotted ``section.field`` overrides applied."""
    raw = cfg.to_dict()
    for dotted, value in overrides.items():
        section, _, key = dotted.partition(".")
        if section not in _SECTIONS or not key:
            _fail(dotted, f"overrides must be 'section.field' with section in {tuple(_SECTIONS)}")
        raw[section][key] = value
    return from_dict(raw)


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``section.field=value`` with the value read as YAML (numbers, lists, null)."""
    key, sep, value = text.partition("=")
    if not sep:
        raise ConfigError(f"{text}: expected section.field=value")
    return key.strip(), yaml.safe_load(value)


def load_config(path: str | Path) -> Config:
    """Read a YAML or JSON config file (never pickle)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config file ({err.strerror})") from err
    try:
        raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path}: not valid YAML/JSON: {err}") from err
    return from_dict(raw or {})
