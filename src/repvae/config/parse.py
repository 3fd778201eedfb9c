"""Reading a configuration: YAML/JSON or nested dicts -> a validated ``Config``.

Every value is converted to its field's declared type or refused naming the field; unknown
fields are errors, not silently ignored. Run folders and study files written before families had
their own sections (flat ``model.alpha``, ``model.decoder_head``, ...) still load: their flat
fields are moved to where they live now (``_migrate_flat_model``).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml

from repvae.config.errors import ConfigError, fail, yaml_problem
from repvae.config.schema import (
    FAMILIES,
    DataConfig,
    HeadConfig,
    ModelConfig,
    Section,
    TrainConfig,
    check_finite,
)
from repvae.files import write_text


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return {
            "data": dataclasses.asdict(self.data),
            "model": self.model.to_dict(),
            "train": dataclasses.asdict(self.train),
        }

    def save(self, path: str | Path, **extra: Any) -> None:
        payload = {**self.to_dict(), **extra}
        write_text(path, yaml.safe_dump(payload, sort_keys=False))

    def validate(self) -> Config:
        # first: NaN fails no comparison and inf passes most, so ranges cannot catch them
        for name in ("data", "model", "train"):
            check_finite(name, getattr(self, name))
        check_finite(f"model.{self.model.family}", self.model.section)
        self.data.check()
        self.model.check()
        self.train.check()
        return self


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}
# Keys a run folder's config.yaml holds beside the sections (versions, the dataset's shape).
RUN_METADATA = ("repvae", "dataset")

# The flat model fields of the first format, and where each one lives now.
_FLAT_HEAD = {
    "decoder_head": "kind",
    "horizon": "horizon",
    "head_channels": "channels",
    "head_layers": "layers",
    "head_features": "features",
}
# family settings of the first format, with the values every family had by default
_FLAT_FAMILY_DEFAULTS: dict[str, Any] = {
    "alpha": 0.0,
    "lam": 1.0,
    "mmd_kernel": "rbf",
    "mmd_bandwidths": [1.0],
    "mmd_prior_samples": 200,
    "nesting": None,
    "nesting_weights": None,
    "shared_decoder": False,
    "classifier_weight": None,
}


def coerce(name: str, value: Any, annotation: Any) -> Any:
    """Convert a parsed YAML/CLI value to the field's declared type, or fail naming the field."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return coerce(name, value, inner[0])
    if origin is list:
        if isinstance(value, str):
            value = [v for v in value.replace(",", " ").split() if v]
        if not isinstance(value, list | tuple):
            fail(name, f"expected a list, got {value!r}")
        return [coerce(f"{name}[{i}]", v, args[0]) for i, v in enumerate(value)]
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        fail(name, f"expected true/false, got {value!r}")
    if annotation in (int, float):
        if isinstance(value, bool):
            fail(name, f"expected a number, got {value!r}")
        try:
            number = float(value) if annotation is float else int(str(value), 0)
        except (TypeError, ValueError, OverflowError):
            fail(name, f"expected {annotation.__name__}, got {value!r}")
        return number
    if annotation is str:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            fail(name, f"expected a string, got {value!r}")
        return str(value)
    return value


def _field_types(section: type) -> dict[str, Any]:
    hints = typing.get_type_hints(section)
    return {f.name: hints[f.name] for f in dataclasses.fields(section) if f.init}


def build_section(name: str, cls: type, values: Any, skip: tuple[str, ...] = ()) -> Any:
    """A dataclass section from a mapping; ``name`` is its dotted name for errors."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        fail(name, f"expected a mapping, got {values!r}")
    types_ = {k: t for k, t in _field_types(cls).items() if k not in skip}
    kwargs = {}
    for key, value in values.items():
        if key not in types_:
            fail(f"{name}.{key}", f"unknown field; valid fields: {sorted(types_)}")
        kwargs[key] = coerce(f"{name}.{key}", value, types_[key])
    try:
        return cls(**kwargs)
    except TypeError as err:  # a field without a default left out
        fail(name, str(err))


def _migrate_flat_model(values: dict[str, Any]) -> dict[str, Any]:
    """Move the first format's flat model fields to the head section and the family's section.

    A family setting goes to the family's section when that family has it; otherwise it was
    ignored by that family, and is dropped when it holds the default every family had.
    """
    values = dict(values)
    family = values.get("family", ModelConfig.family)
    flat_head = {new: values.pop(old) for old, new in _FLAT_HEAD.items() if old in values}
    if flat_head:
        head = values.get("head") or {}
        if not isinstance(head, dict):
            fail("model.head", f"expected a mapping, got {head!r}")
        values["head"] = {**head, **flat_head}
    flat = {k: values.pop(k) for k in list(values) if k in _FLAT_FAMILY_DEFAULTS}
    if not flat:
        return values
    entry = FAMILIES.get(coerce("model.family", family, str))
    own = {f.name for f in dataclasses.fields(cast(Any, entry.section))}
    section = values.get(entry.name) or {}
    if not isinstance(section, dict):
        fail(f"model.{entry.name}", f"expected a mapping, got {section!r}")
    section = dict(section)
    for key, value in flat.items():
        if key in own:
            section[key] = value
        elif value != _FLAT_FAMILY_DEFAULTS[key]:
            fail(
                f"model.{key}",
                f"not a setting of the {family} family (its settings: {sorted(own) or 'none'})",
            )
    if section:
        values[entry.name] = section
    return values


def _model_from_dict(values: Any) -> ModelConfig:
    if values is None:
        values = {}
    if not isinstance(values, dict):
        fail("model", f"expected a mapping, got {values!r}")
    values = _migrate_flat_model(values)
    family = coerce("model.family", values.get("family", ModelConfig.family), str)
    entry = FAMILIES.get(family)
    sections: dict[str, Section] = {}
    for name in [k for k in values if k in FAMILIES]:
        sections[name] = build_section(
            f"model.{name}", FAMILIES.get(name).section, values.pop(name)
        )
    for name, section in sections.items():
        # a preset that switched family leaves the previous family's settings behind: only
        # their defaults may stay (and are dropped), anything set would be silently unused
        if name != family and section != FAMILIES.get(name).section():
            fail(f"model.{name}", f"settings of the {name} family, but model.family is {family!r}")
    head = build_section("model.head", HeadConfig, values.pop("head", None))
    shared = build_section("model", ModelConfig, values, skip=("head", "section"))
    shared.head = head
    shared.section = sections.get(family, entry.section())
    return shared


def from_dict(raw: dict[str, Any]) -> Config:
    """Build a validated Config from nested dicts; unknown keys are errors, not silently ignored."""
    if not isinstance(raw, dict):
        raise ConfigError(f"config: expected a mapping with sections {tuple(SECTIONS)}")
    for key in raw:
        if key not in SECTIONS and key not in RUN_METADATA:
            fail(str(key), f"unknown section; expected one of {tuple(SECTIONS)}")
    config = Config(
        data=build_section("data", DataConfig, raw.get("data")),
        model=_model_from_dict(raw.get("model")),
        train=build_section("train", TrainConfig, raw.get("train")),
    )
    return config.validate()


def apply_overrides(cfg: Config, overrides: dict[str, Any]) -> Config:
    """Return a new validated Config with dotted overrides applied (``train.lr``,
    ``model.vae.nesting``, ``model.head.kind``)."""
    raw = cfg.to_dict()
    for dotted, value in overrides.items():
        set_dotted(raw, str(dotted), value)
    return from_dict(raw)


def set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``raw[a][b][c] = value`` for ``dotted`` = "a.b.c" (a config section first)."""
    parts = dotted.split(".")
    if parts[0] not in SECTIONS or len(parts) < 2 or not all(parts):
        fail(dotted, f"overrides must be 'section.field' with section in {tuple(SECTIONS)}")
    node = raw
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            fail(".".join(parts[: depth + 1]), "is a value, not a section")
        node = child
    node[parts[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``section.field=value`` with the value read as YAML (numbers, lists, null)."""
    key, sep, value = text.partition("=")
    if not sep:
        fail(text, "expected section.field=value")
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError as err:
        fail(key.strip(), f"value {value!r} is not valid YAML: {yaml_problem(err)}")


def load_config(path: str | Path) -> Config:
    """Read a YAML or JSON config file (never pickle)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config file ({err.strerror})") from err
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (a YAML or JSON config is expected)") from None
    try:
        raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {yaml_problem(err)}") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: not valid JSON: {err}") from None
    try:
        return from_dict(raw or {})
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def differences(ours: dict[str, Any], theirs: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of the fields whose values differ between two ``Config.to_dict()``s."""
    changed = []
    for key in sorted(set(ours) | set(theirs)):
        name = f"{prefix}{key}"
        a, b = ours.get(key), theirs.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changed += differences(a, b, f"{name}.")
        elif a != b:
            changed.append(name)
    return changed
