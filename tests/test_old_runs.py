"""Run folders written before the model contract (the first config format: flat model fields)
still load and give bit-identical representations.

The fixtures were trained on the embedded digits by the last version with that format (commit
e489d18); ``expected_embeddings.npz`` holds what that version's ``embed`` gave for the test split
(kind|dims -> array), seed 0.
"""

from pathlib import Path

import numpy as np
import pytest
import yaml

from repvae.represent import embed
from repvae.run import load

FIXTURES = Path(__file__).parent / "fixtures" / "old_runs"
RUNS = sorted(p.name for p in FIXTURES.iterdir())


def test_the_fixtures_are_in_the_first_format():
    for name in RUNS:
        model = yaml.safe_load((FIXTURES / name / "config.yaml").read_text())["model"]
        assert "alpha" in model and "decoder_head" in model and "head" not in model


@pytest.mark.parametrize("name", RUNS)
def test_an_old_run_loads_and_embeds_bit_identically(name):
    run = load(FIXTURES / name, device="cpu")
    with np.load(FIXTURES / name / "expected_embeddings.npz") as f:
        expected = dict(f)
    got = embed(run, ["map", "sample", "dist", "samples:3"], splits=("test",), seed=0, save=False)
    assert {f"{kind}|{dims}" for kind, dims in got} == set(expected)
    for (kind, dims), emb in got.items():
        np.testing.assert_array_equal(emb.features["test"], expected[f"{kind}|{dims}"])


def test_an_old_run_is_written_back_in_the_new_format(tmp_path):
    run = load(FIXTURES / "lpvae-h1", device="cpu")
    model = run.config.to_dict()["model"]
    assert model["head"]["kind"] == "local" and model["head"]["horizon"] == 1
    assert model["vae"]["nesting"] is None and "decoder_head" not in model
