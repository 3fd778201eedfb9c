"""Encoder and decoder networks: shapes for every architecture, and the size checks."""

import pytest
import torch

from repvae.models.networks import build_networks, resolve_architecture

CASES = [
    ("mlp", (1, 8, 8)),
    ("mlp-bn", (1, 28, 28)),
    ("conv", (1, 28, 28)),
    ("resnet", (3, 32, 32)),
    ("conv4", (1, 64, 64)),
    ("conv4", (3, 32, 48)),
]


@pytest.mark.parametrize(("architecture", "shape"), CASES)
def test_encoder_gives_two_numbers_per_latent_and_decoders_give_the_image_size(architecture, shape):
    encoder, decoders = build_networks(architecture, shape, 6, [2, 6], out_channels=5, hidden=32)
    x = torch.rand(3, *shape)
    assert encoder(x).shape == (3, 12)
    for decoder, d in zip(decoders, (2, 6), strict=True):
        assert decoder(torch.randn(3, d)).shape == (3, 5, *shape[1:])


def test_conv4_is_disentanglement_libs_network():
    encoder, (decoder,) = build_networks("conv4", (1, 64, 64), 10, [10], 1, hidden=256)
    convs = [m for m in encoder if isinstance(m, torch.nn.Conv2d)]
    assert [m.out_channels for m in convs] == [32, 32, 64, 64]
    assert all(m.kernel_size == (4, 4) and m.stride == (2, 2) for m in convs)
    # 64x64 -> a 4x4 map of 64 channels -> 256 units -> mean and log-variance of 10 latents
    assert [m.in_features for m in encoder if isinstance(m, torch.nn.Linear)] == [1024, 256]
    deconvs = [m for m in decoder if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [m.out_channels for m in deconvs] == [64, 32, 32, 1]
    # the likelihood's parameters (logits) come out of the last layer unclipped
    assert isinstance(decoder[-1], torch.nn.ConvTranspose2d)
    n_params = sum(p.numel() for p in [*encoder.parameters(), *decoder.parameters()])
    conv_encoder, (conv_decoder,) = build_networks("conv", (1, 64, 64), 10, [10], 1, hidden=256)
    n_conv = sum(p.numel() for p in [*conv_encoder.parameters(), *conv_decoder.parameters()])
    assert n_params < n_conv / 8  # conv's 16x16x64 <-> 256 layers dominate at 64x64


@pytest.mark.parametrize(
    ("architecture", "shape", "factor"),
    [("conv", (1, 30, 30), 4), ("resnet", (3, 30, 32), 4), ("conv4", (1, 28, 28), 16)],
)
def test_sizes_a_network_cannot_take_name_the_field_and_the_divisor(architecture, shape, factor):
    with pytest.raises(ValueError, match=f"model.architecture.*divisible by {factor}"):
        resolve_architecture(architecture, shape)


# The index of every layer with weights, as the runs saved so far name them in their
# safetensors files: a change here stops earlier runs' weights from loading.
SAVED_LAYER_INDICES = {
    ("conv", (1, 28, 28)): ([0, 2, 5, 7], [0, 2, 5, 7]),
    ("conv4", (1, 64, 64)): ([0, 2, 4, 6, 9, 11], [0, 2, 5, 7, 9, 11]),
    ("resnet", (3, 32, 32)): ([0, 1, 2, 3, 4, 5, 8, 10], [0, 2, 4, 5, 6, 7, 8, 10]),
}


@pytest.mark.parametrize(("architecture", "shape"), list(SAVED_LAYER_INDICES))
def test_parameter_names_stay_those_of_saved_runs(architecture, shape):
    encoder, (decoder,) = build_networks(architecture, shape, 6, [6], 2, hidden=32)

    def layers_with_weights(net: torch.nn.Module) -> list[int]:
        return sorted({int(k.split(".")[0]) for k in net.state_dict() if k.endswith("weight")})

    expected = SAVED_LAYER_INDICES[architecture, shape]
    assert (layers_with_weights(encoder), layers_with_weights(decoder)) == expected
