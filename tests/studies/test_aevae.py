"""The aevae study (autoencoder against VAE on any image folder) runs end to end at its quick
budget, and its report shows FIDs beside the published one, loss curves, reconstructions and
samples."""

import re
from pathlib import Path

import numpy as np
from PIL import Image

from repvae.cli import main
from repvae.studies.results import read_results
from repvae.studies.spec import builtin_study, load_study


def _image_folder(base: Path, per_class: int = 24) -> Path:
    """train/ and test/ folders of two classes of 20x20 RGB images: bright or dark squares."""
    rng = np.random.default_rng(0)
    for split, count in (("train", per_class), ("test", per_class // 3)):
        for label, (name, level) in enumerate((("bright", 200), ("dark", 60))):
            for i in range(count):
                pixels = rng.integers(0, 40, (20, 20, 3)) + level
                pixels[4 + label * 6 : 10 + label * 6, 5:15] = 255 - level
                path = base / split / name / f"{i:03d}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(path)
    return base


def test_the_study_file_pairs_an_autoencoder_with_a_vae_on_one_likelihood():
    study = load_study(builtin_study("aevae"))
    ae, vae = study.with_budget("quick").runs({"data.name": "digits"})
    assert (ae.method, vae.method) == ("AE", "VAE")
    assert (ae.config.model.family, vae.config.model.family) == ("ae", "vae")
    for spec in (ae, vae):
        model = spec.config.model
        assert (model.latent_dim, model.likelihood) == (64, "gaussian")
        assert abs(2 * model.sigma**2 - 1) < 1e-3  # -log p(x|z) = squared error + const
    assert vae.config.model.beta == 1.0 and study.evaluate.settings["fid_samples"] == 2000


def test_quick_budget_runs_end_to_end_on_a_small_image_folder(tmp_path, capsys):
    folder = _image_folder(tmp_path / "faces")
    out = tmp_path / "study"
    argv = ["reproduce", "aevae", "--dataset", f"folder:{folder}", "--image-size", "16"]
    assert main([*argv, "--budget", "quick", "--out", str(out)]) == 0
    capsys.readouterr()
    rows = read_results(out / "results.csv")
    values = {(r["method"], r["metric"]): r["value"] for r in rows}
    # the autoencoder has no prior: the FID of its reconstructions, none of samples
    assert ("AE", "domain_fid") not in values and values[("AE", "domain_fid_reconstructions")] > 0
    assert values[("VAE", "domain_fid")] > 0 and values[("VAE", "domain_fid_reconstructions")] > 0
    assert {(r["method"], r["probe"]) for r in rows if r["metric"] == "accuracy"} == {
        (m, p) for m in ("AE", "VAE") for p in ("linear", "mlp")
    }
    report = (out / "results.md").read_text()
    flat = re.sub(" +", " ", report)
    assert "| quantity | AE | VAE | source | protocol |" in flat
    # no Inception weights here: the published Inception FID stands beside a dash, and says why
    fid = next(line for line in flat.splitlines() if line.startswith("| inception_fid |"))
    assert "| — / 269.980 |" in fid and "aevae FID" in fid and "not comparable" in fid
    for name in ("loss_curves", "reconstructions"):
        for run in ("faces-ae-seed0", "faces-vae-seed0"):
            assert f"](runs/{run}/evaluation/{name}.png)" in report
    assert "](runs/faces-vae-seed0/evaluation/samples.png)" in report
    assert "runs/faces-ae-seed0/evaluation/samples.png" not in report
    page = (out / "results.html").read_text()
    # the pictures, and the MAP codes of each model in 2-D
    assert page.count('src="data:image/png;base64,') == 5 + 2 and "<details>" in page
