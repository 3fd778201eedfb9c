import pytest

from repvae.config import ConfigError, apply_overrides, from_dict, load_config, parse_override


def test_defaults_are_valid():
    cfg = from_dict({})
    assert cfg.model.beta == 1.0 and cfg.data.name == "digits"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"model": {"beta": -1}}, "model.beta"),
        ({"model": {"likelihood": "poisson"}}, "model.likelihood"),
        ({"model": {"latent_dim": "big"}}, "model.latent_dim"),
        ({"train": {"epochs": 0}}, "train.epochs"),
        ({"train": {"precision": "fp8"}}, "train.precision"),
        ({"train": {"lerning_rate": 0.1}}, "train.lerning_rate"),
        ({"data": {"name": "imagenet"}}, "data.name"),
        ({"model": {"latent_dim": 8, "vae": {"nesting": [2, 16]}}}, "model.vae.nesting"),
        ({"model": {"family": "vq"}}, "model.family"),
        ({"model": {"head": {"kind": "local"}}}, "model.likelihood"),
        ({"model": {"head": {"kind": "causal"}}}, "model.head.kind"),
        ({"model": {"vae": {"alpha": "x"}}}, "model.vae.alpha"),
        ({"model": {"family": "m2", "vae": {"alpha": 1.0}}}, "model.vae"),
        ({"model": {"family": "ae", "beta": 4.0}}, "model.beta"),
        ({"model": {"family": "ppca"}}, "model.likelihood"),
        ({"train": {"lr": float("inf")}}, "train.lr"),
        ({"train": {"lr": float("nan")}}, "train.lr"),
        (
            {"model": {"vae": {"mmd_bandwidths": [1.0, float("inf")]}}},
            r"model.vae.mmd_bandwidths\[1\]",
        ),
        ({"optimiser": {}}, "optimiser"),
    ],
)
def test_invalid_value_names_the_field(raw, field):
    with pytest.raises(ConfigError, match=rf"^{field}"):
        from_dict(raw)


def test_overrides_and_yaml_values(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  latent_dim: 32\ntrain:\n  lr: 3e-4\n")
    cfg = load_config(path)
    assert cfg.model.latent_dim == 32 and cfg.train.lr == pytest.approx(3e-4)
    cfg = apply_overrides(cfg, dict([parse_override("model.vae.nesting=[2, 8, 32]")]))
    assert cfg.model.options.nesting == [2, 8, 32]
    with pytest.raises(ConfigError, match=r"^model\.vae\.nesting"):
        apply_overrides(cfg, {"model.vae.nesting": [8, 2]})
    with pytest.raises(ConfigError, match=r"^model\.latent_dim: is a value"):
        apply_overrides(cfg, {"model.latent_dim.x": 1})


def test_bad_yaml_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model: [unclosed")
    with pytest.raises(ConfigError, match=r"bad\.yaml"):
        load_config(path)


def test_the_first_formats_flat_model_fields_move_to_their_sections():
    # config.yaml of run folders and study files written before families had sections
    flat = {
        "family": "vae",
        "latent_dim": 8,
        "alpha": 1.0,
        "lam": 100.0,
        "nesting": [2, 8],
        "classifier_weight": None,  # an m2 setting every family had: its default is dropped
        "likelihood": "logistic_mixture",
        "decoder_head": "local",
        "horizon": 2,
        "head_channels": 8,
    }
    model = from_dict({"model": flat}).model
    assert (model.options.alpha, model.options.lam, model.options.nesting) == (1.0, 100.0, [2, 8])
    assert (model.head.kind, model.head.horizon, model.head.channels) == ("local", 2, 8)
    m2 = from_dict({"model": {"family": "m2", "alpha": 0.0, "classifier_weight": 5.0}}).model
    assert m2.options.classifier_weight == 5.0
    with pytest.raises(ConfigError, match=r"^model\.alpha: not a setting of the m2 family"):
        from_dict({"model": {"family": "m2", "alpha": 1.0}})


def test_flat_overrides_of_the_first_format_still_apply():
    cfg = apply_overrides(
        from_dict({}), {"model.nesting_weights": [4, 1], "model.nesting": [2, 16]}
    )
    assert cfg.model.options.nesting_weights == [4, 1]


def test_a_preset_switching_family_leaves_no_settings_behind():
    vae = from_dict({})
    m2 = apply_overrides(vae, {"model.family": "m2"})
    assert "vae" not in m2.to_dict()["model"] and "m2" in m2.to_dict()["model"]
    assert from_dict(m2.to_dict()).to_dict() == m2.to_dict()


def test_option_names_come_from_the_registries():
    from repvae.config import ARCHITECTURES, FAMILIES, HEADS, LIKELIHOODS, PRESETS

    with pytest.raises(ConfigError) as err:
        from_dict({"model": {"likelihood": "poisson"}})
    assert all(name in str(err.value) for name in LIKELIHOODS.names())
    assert {"vae", "m2", "ae", "ppca"} <= set(FAMILIES.names())
    assert {"mlp", "conv", "conv4"} <= set(ARCHITECTURES.names())
    assert set(HEADS.names()) == {"local", "full"}
    assert all(PRESETS.get(p).family in FAMILIES for p in PRESETS.names())


def test_a_binary_config_file_is_named_in_the_error(tmp_path):
    path = tmp_path / "weights.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    with pytest.raises(ConfigError, match=r"weights\.yaml"):
        load_config(path)
