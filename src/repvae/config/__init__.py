"""Run configuration: one validated, serialisable description of a training run.

A run folder's ``config.yaml`` is a ``Config`` written out; it is all that is needed to rebuild
the model (no pickle). Every user-facing value is checked here so that a bad value fails before
any work starts, with the dotted name of the field in the message. The names of families,
likelihoods, architectures and heads are read from the registries (``registry.py``), filled by
the modules of ``repvae.models`` that implement them.
"""

from repvae.config.errors import ConfigError
from repvae.config.parse import (
    Config,
    apply_overrides,
    build_section,
    differences,
    from_dict,
    load_config,
    parse_override,
    set_dotted,
)
from repvae.config.registry import Registry
from repvae.config.schema import (
    ARCHITECTURES,
    AUTO_ARCHITECTURE,
    FAMILIES,
    HEADS,
    LIKELIHOODS,
    NO_HEAD,
    PRESETS,
    DataConfig,
    HeadConfig,
    ModelConfig,
    Preset,
    Section,
    TrainConfig,
)

__all__ = [
    "ARCHITECTURES",
    "AUTO_ARCHITECTURE",
    "FAMILIES",
    "HEADS",
    "LIKELIHOODS",
    "NO_HEAD",
    "PRESETS",
    "Config",
    "ConfigError",
    "DataConfig",
    "HeadConfig",
    "ModelConfig",
    "Preset",
    "Registry",
    "Section",
    "TrainConfig",
    "apply_overrides",
    "build_section",
    "differences",
    "from_dict",
    "load_config",
    "parse_override",
    "set_dotted",
]
