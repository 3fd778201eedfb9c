"""Property-based: any input to the config parser and to ``--set`` either gives a valid config or
raises the library's own ``ConfigError`` (a one-line message naming the field), never another
exception."""

import math

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repvae.config import (
    Config,
    ConfigError,
    apply_overrides,
    from_dict,
    load_config,
    parse_override,
)

# names the parser knows, so the search reaches past the first unknown key
KNOWN = [*Config().to_dict()["data"], *Config().to_dict()["model"], *Config().to_dict()["train"]]
KEYS = st.one_of(
    st.sampled_from(["data", "model", "train", "vae", "m2", "ae", "ppca", "head", *KNOWN]),
    st.text(max_size=12),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["vae", "m2", "ae", "ppca", "gaussian", "local", "mnist", "1e-3", "inf"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=12,
)
CONFIGS = st.dictionaries(
    st.sampled_from(["data", "model", "train", "repvae", "dataset", "other"]),
    st.one_of(st.dictionaries(KEYS, VALUES, max_size=6), SCALARS),
    max_size=4,
)
DOTTED = st.one_of(
    st.builds(
        lambda section, names: ".".join([section, *names]),
        st.sampled_from(["data", "model", "train", "optimiser"]),
        st.lists(KEYS, min_size=0, max_size=3),
    ),
    st.text(max_size=20),
)

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _valid_or_config_error(build) -> None:
    try:
        config = build()
    except ConfigError as err:
        assert "\n" not in str(err)
        return
    assert isinstance(config, Config)
    config.validate()
    assert all(math.isfinite(v) for v in (config.train.lr, config.model.beta, config.model.sigma))


@FAST
@given(CONFIGS)
def test_any_mapping_is_a_valid_config_or_a_config_error(raw):
    _valid_or_config_error(lambda: from_dict(raw))


@FAST
@given(VALUES)
def test_any_yaml_document_is_a_valid_config_or_a_config_error(document):
    _valid_or_config_error(lambda: from_dict(document))


@FAST
@given(st.dictionaries(DOTTED, VALUES, max_size=4))
def test_any_overrides_give_a_valid_config_or_a_config_error(overrides):
    _valid_or_config_error(lambda: apply_overrides(Config(), overrides))


@FAST
@given(st.text(max_size=40))
def test_any_set_argument_parses_or_is_a_config_error(text):
    def build() -> Config:
        key, value = parse_override(text)
        return apply_overrides(Config(), {key: value})

    _valid_or_config_error(build)


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_any_config_file_loads_or_is_a_config_error(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("config") / "c.yaml"
    if isinstance(content, str):
        path.write_text(content)
    else:
        path.write_bytes(content)
    _valid_or_config_error(lambda: load_config(path))


@FAST
@given(CONFIGS)
def test_a_valid_config_survives_a_round_trip_through_yaml(raw):
    try:
        config = from_dict(raw)
    except ConfigError:
        return
    again = from_dict(yaml.safe_load(yaml.safe_dump(config.to_dict())))
    assert again.to_dict() == config.to_dict()
