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
        ({"model": {"latent_dim": 8, "nesting": [2, 16]}}, "model.nesting"),
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
    cfg = apply_overrides(cfg, dict([parse_override("model.nesting=[2, 8, 32]")]))
    assert cfg.model.nesting == [2, 8, 32]
    with pytest.raises(ConfigError, match=r"^model\.nesting"):
        apply_overrides(cfg, {"model.nesting": [8, 2]})


def test_bad_yaml_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model: [unclosed")
    with pytest.raises(ConfigError, match=r"bad\.yaml"):
        load_config(path)
