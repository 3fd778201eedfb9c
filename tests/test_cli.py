"""End-to-end runs of the command line on the embedded digits (seconds each)."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import repvae
from repvae.cli import main
from repvae.models import VAE, LossTerms
from repvae.training import LitVAE, TrainingDiverged


def _json(path) -> dict:
    return json.loads(Path(path).read_text())


def _yaml(path) -> dict:
    return yaml.safe_load(Path(path).read_text())


def _train(tmp_path, *extra: str) -> str:
    run = str(tmp_path / "run")
    code = main(
        [
            "train",
            "--dataset",
            "digits",
            "--epochs",
            "2",
            "--latent-dim",
            "4",
            "--out",
            run,
            "--no-progress",
            *extra,
        ]
    )
    assert code == 0
    return run


def test_train_embed_probe(tmp_path, capsys):
    run = _train(tmp_path, "--batch-size", "128", "--set", "model.hidden=32")
    config = _yaml(f"{run}/config.yaml")
    assert config["train"]["batch_size"] == 128 and config["model"]["hidden"] == 32
    assert config["repvae"]["torch"] and config["dataset"]["shape"] == [1, 8, 8]
    summary = _json(f"{run}/summary.json")
    assert summary["epochs"] == 2 and summary["steps"] > 0

    assert main(["embed", run, "--kind", "map", "sample", "samples:5", "dist"]) == 0
    emb = repvae.Embeddings.load(f"{run}/embeddings/samples-5.npz")
    assert emb.features["train"].shape[1:] == (1, 4)  # training images: one draw
    assert emb.features["test"].shape[1:] == (5, 4)  # evaluation images: K draws
    dist = repvae.Embeddings.load(f"{run}/embeddings/dist.npz")
    assert dist.features["test"].shape[1] == 8
    assert np.all(dist.features["test"][:, 4:] > 0)  # the std half is positive

    capsys.readouterr()
    assert (
        main(
            [
                "probe",
                run,
                "--kind",
                "map",
                "--probes",
                "linear",
                "--protocol",
                "cv",
                "--folds",
                "3",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "cv3" in out and "linear" in out
    records = _json(f"{run}/probes.json")
    assert records[0]["protocol"] == "cv3" and len(records[0]["folds"]) == 3
    assert records[0]["accuracy"] > 0.3  # 10 classes: well above chance even after 2 epochs

    assert main(["probe", f"{run}/embeddings/map.npz", "--probes", "knn"]) == 0

    assert main(["evaluate", run, "--iw-samples", "5"]) == 0
    out = capsys.readouterr().out
    assert "statistical efficiency" in out and "domain FID" in out and "-IWAE K=5" in out
    assert "disentanglement skipped" in out  # digits has no generative factors
    evaluation = tmp_path / "run" / "evaluation"
    for name in ("reconstructions", "samples", "traversals", "interpolations", "loss_curves"):
        assert (evaluation / f"{name}.png").stat().st_size > 0
    assert (evaluation / "latent_pca.png").exists() and (evaluation / "latent_tsne.png").exists()
    probes = _json(f"{run}/evaluation/probes.json")["results"]
    assert {(r["kind"], r["probe"]) for r in probes} == {
        (k, p) for k in ("map", "sample") for p in ("linear", "logistic", "mlp", "knn")
    }
    lik = _json(f"{run}/evaluation/likelihood.json")
    assert lik["iwae_samples"] == 5 and lik["negative_elbo"]["bits_per_dim"] is None
    assert all(_json(f"{run}/evaluation/{m}.json")["seconds"] >= 0 for m in ("fid", "probes"))
    cmp = tmp_path / "cmp"
    assert main(["compare", run, run, "--names", "a", "b", "--out", str(cmp)]) == 0
    table = (cmp / "comparison.md").read_text()
    mi = _json(f"{run}/evaluation/information.json")["mutual_information"]
    assert "| mutual_information " in table and f"{mi:.4g} | {mi:.4g}" in table
    assert "| domain_fid " in table and "| error_percent_100_labels " in table
    assert (cmp / "a_traversals.png").exists() and "![b samples](b_samples.png)" in table
    info = _json(f"{run}/evaluation/information.json")
    assert info["n"] == len(repvae.load_dataset("digits").test) and info["latent_dim"] == 4
    assert 0 <= info["active_units"] <= 4 and info["mutual_information"] > 0
    assert info["intrinsic_dimension"] == info["intrinsic_dimension_by_threshold"]["0.01"]
    assert (tmp_path / "run" / "evaluation" / "eigenvalue_spectrum.png").stat().st_size > 0


def test_sample_draws_the_prior_or_says_why_a_family_cannot(tmp_path, capsys):
    run = _train(tmp_path, "--set", "model.hidden=32")
    out = tmp_path / "samples.png"
    assert main(["sample", run, "-n", "6", "--seed", "1", "--out", str(out)]) == 0
    assert out.read_bytes().startswith(b"\x89PNG")
    assert "samples from the prior (mean of p(x|z))" in capsys.readouterr().out
    assert main(["sample", run, "--label", "3", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        "repvae: error: --label: the vae family does not generate by class (its decoder reads "
        "no label)"
    )
    ae = str(tmp_path / "ae")
    args = ["--model", "ae", "--epochs", "1", "--no-progress", "--set", "model.hidden=16"]
    assert main(["train", *args, "--out", ae]) == 0
    assert main(["sample", ae, "--out", str(tmp_path / "ae.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("repvae: error: the ae family: a deterministic autoencoder has no prior")
    assert err.count("\n") == 1 and not (tmp_path / "ae.png").exists()


def test_save_load_gives_identical_map_embeddings(tmp_path):
    run = _train(tmp_path)
    data = repvae.load_dataset("digits")
    first = repvae.load(run, device="cpu").model.encode(data.test.images).mean
    second = repvae.load(run, device="cpu").model.encode(data.test.images).mean
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    # The weights are safetensors: loading never unpickles.
    assert (tmp_path / "run" / "model.safetensors").read_bytes()[:8] != b"\x80\x04\x95"


def test_invalid_value_is_refused_with_field_name(tmp_path, capsys):
    code = main(["train", "--dataset", "digits", "--beta", "-1", "--out", str(tmp_path / "r")])
    assert code == 2
    assert "model.beta" in capsys.readouterr().err
    code = main(["train", "--set", "train.epoks=3", "--out", str(tmp_path / "r")])
    assert code == 2
    assert "train.epoks" in capsys.readouterr().err


def test_nan_loss_stops_with_step_and_checkpoint_then_resume(tmp_path, monkeypatch):
    calls = {"n": 0}
    original = VAE.loss

    def poisoned(self, x, beta_scale=1.0, *, labels=None):
        out = original(self, x, beta_scale, labels=labels)
        if self.training:
            calls["n"] += 1
            if calls["n"] == 15:
                return LossTerms(out.loss * float("nan"), out.terms)
        return out

    monkeypatch.setattr(VAE, "loss", poisoned)
    cfg = repvae.Config()
    cfg.train.epochs, cfg.train.progress = 3, False
    diverged = (
        r"at step 14 \(epoch 2\)\. The last good checkpoint, .*last\.ckpt, "
        r"holds the weights after epoch 1"
    )
    with pytest.raises(TrainingDiverged, match=diverged):
        repvae.train(cfg, tmp_path / "run")
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()
    monkeypatch.setattr(VAE, "loss", original)
    assert main(["train", "--resume", str(tmp_path / "run"), "--lr", "5e-4", "--no-progress"]) == 0
    summary = _json(tmp_path / "run" / "summary.json")
    assert summary["epochs"] == 3
    assert _yaml(tmp_path / "run" / "config.yaml")["train"]["lr"] == 5e-4


def test_resume_continues_a_finished_or_interrupted_run(tmp_path):
    run = _train(tmp_path)
    steps = _json(f"{run}/summary.json")["steps"]
    assert main(["train", "--resume", run, "--epochs", "4", "--no-progress"]) == 0
    summary = _json(f"{run}/summary.json")
    assert summary["epochs"] == 4 and summary["steps"] == 2 * steps
    # the loss curve keeps the epochs before the resume (Lightning's CSV writer deleted them)
    with open(f"{run}/logs/metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    val_epochs = [int(r["epoch"]) for r in rows if r["val/loss"]]
    assert val_epochs == [0, 1, 2, 3]
    train_steps = [int(r["step"]) for r in rows if r["loss"]]
    assert train_steps == sorted(set(train_steps)) and train_steps[0] < steps < train_steps[-1]


def test_training_time_counts_every_leg_even_one_stopped_before_its_summary(tmp_path):
    from repvae.training import TRAIN_SECONDS_KEY

    run = _train(tmp_path)
    last = Path(run) / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=False)
    assert 0 < checkpoint[TRAIN_SECONDS_KEY] <= _json(f"{run}/summary.json")["train_seconds"]
    # a run killed after this checkpoint (no summary written) that had trained for an hour
    checkpoint[TRAIN_SECONDS_KEY] = 3600.0
    torch.save(checkpoint, last)
    Path(run, "summary.json").unlink()
    assert main(["train", "--resume", run, "--epochs", "3", "--no-progress"]) == 0
    assert 3600.0 < _json(f"{run}/summary.json")["train_seconds"] < 3600.0 + 600


def _worsening_validation(monkeypatch) -> None:
    """Make every validation loss worse than the one before, so the best epoch is the first."""
    calls = {"n": 0}
    original = VAE.loss

    def worsening(self, x, beta_scale=1.0, *, labels=None):
        out = original(self, x, beta_scale, labels=labels)
        if self.training:
            return out
        calls["n"] += 1
        return LossTerms(out.loss + 1000.0 * calls["n"], out.terms)

    monkeypatch.setattr(VAE, "loss", worsening)


def test_last_checkpoint_follows_the_last_epoch_not_the_best(tmp_path, monkeypatch):
    # validation loss that worsens every epoch: the best stays at epoch 0, the last must move on
    _worsening_validation(monkeypatch)
    cfg = repvae.Config()
    cfg.train.epochs, cfg.train.progress = 3, False
    repvae.train(cfg, tmp_path / "run")
    checkpoints = tmp_path / "run" / "checkpoints"
    epoch = {
        n: torch.load(checkpoints / f"{n}.ckpt", weights_only=False)["epoch"]
        for n in ("best", "last")
    }
    assert epoch == {"best": 0, "last": 2}


def test_resume_without_checkpoint_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.yaml").write_text("{}")
    assert main(["train", "--resume", str(tmp_path / "empty")]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def _validation_curve(run: Path) -> list[float]:
    with open(run / "logs" / "metrics.csv", newline="") as f:
        return [float(r["val/loss"]) for r in csv.DictReader(f) if r.get("val/loss")]


@pytest.mark.parametrize(
    ("model", "tolerance"),
    [("ae", 1e-5), pytest.param("vae", 0.01, marks=pytest.mark.slow)],
)
def test_cpu_ddp_gives_the_loss_curve_of_one_process_at_the_same_global_batch(
    tmp_path, model, tolerance
):
    """Two DDP processes (gloo) at batch B (``train.batch_size`` is per process) against one
    process at 2B: each rank takes a stride of the same epoch permutation, so the two ranks' batch i
    together are the one process's batch i, and DDP averages the ranks' gradients of their
    batch means, which is the gradient of the 2B mean. The validation loss per epoch (every
    rank scores the whole validation split) is compared, relative difference <= tolerance.

    The deterministic autoencoder matches to float32 (measured: identical validation losses,
    weights within 5e-6: gradient sums in another order). The VAE does not, for a real reason:
    its reparameterisation noise comes from each process's generator, and every rank is seeded
    alike, so rank 1 repeats rank 0's draws for its half of the batch where one process draws
    2B independent ones; the validation ELBO is a one-sample estimate from the same streams.
    Measured over 3 epochs: 0.44, 0.28, 0.17 % apart, against 1.3, 0.39, 0.11 % between two
    seeds of the one-process run; hence 1 %, about the seed-to-seed spread of the first epoch.
    (No network here has BatchNorm, whose statistics would be per rank too.)"""
    common = ["train", "--dataset", "digits", "--model", model, "--epochs", "3"]
    # fp32: bf16 roundings differ between one 2B batch and two B halves
    common += ["--device", "cpu", "--no-progress", "--set", "train.precision=32-true"]
    ddp, one = tmp_path / "ddp", tmp_path / "one"
    ddp_args = ["--batch-size", "64", "--set", "train.devices=2", "--set", "train.strategy=ddp"]
    done = subprocess.run(
        [sys.executable, "-m", "repvae.cli", *common, *ddp_args, "--out", str(ddp)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert done.stdout.count('"run"') == 1  # rank 0 alone writes the summary and prints it
    assert main([*common, "--batch-size", "128", "--out", str(one)]) == 0
    # 1,294 training images: 11 batches of 128 an epoch alone, 11 of 64 per rank with two ranks
    assert _json(ddp / "summary.json")["steps"] == _json(one / "summary.json")["steps"] == 33
    curve, reference = _validation_curve(ddp), _validation_curve(one)
    assert len(curve) == len(reference) == 3
    assert all(abs(a - b) <= tolerance * abs(b) for a, b in zip(curve, reference, strict=True))


def test_matryoshka_run_is_probed_at_every_nested_size_by_default(tmp_path, capsys):
    run = str(tmp_path / "nested")
    args = [
        "train",
        "--dataset",
        "digits",
        "--model",
        "minfovae",
        "--latent-dim",
        "8",
        "--epochs",
        "1",
    ]
    assert main([*args, "--out", run, "--no-progress"]) == 0
    assert main(["probe", run, "--probes", "linear"]) == 0
    assert sorted(r["dims"] for r in _json(f"{run}/probes.json")) == [2, 8]
    assert main(["probe", run, "--probes", "linear", "--dims", "4"]) == 0  # any prefix on request
    assert sorted(r["dims"] for r in _json(f"{run}/probes.json")) == [2, 4, 8]


def test_paired_compares_two_runs_on_the_same_images(tmp_path, capsys):
    a = _train(tmp_path / "a")
    b = _train(tmp_path / "b", "--latent-dim", "2")
    capsys.readouterr()
    out = tmp_path / "paired.json"
    assert main(["paired", a, b, "--probe", "linear", "--out", str(out)]) == 0
    assert "McNemar exact p" in capsys.readouterr().out
    r = _json(out)
    assert r["protocol"]["probe"] == "linear" and r["protocol"]["kind"] == "map"
    assert r["n"] == r["both_right"] + r["only_a_right"] + r["only_b_right"] + r["both_wrong"]
    # The paired accuracies are the probes' own: the same fit as `repvae probe` makes.
    for run, key in ((a, "accuracy_a"), (b, "accuracy_b")):
        assert main(["probe", run, "--probes", "linear"]) == 0
        (record,) = _json(f"{run}/probes.json")
        assert r[key] == pytest.approx(record["accuracy"])
        assert record["n_test"] == r["n"]


def test_paired_refuses_runs_on_different_data(tmp_path, capsys):
    a = _train(tmp_path / "a")
    b = _train(tmp_path / "b", "--image-size", "6")
    capsys.readouterr()
    assert main(["paired", a, b]) == 2
    assert "data.image_size" in capsys.readouterr().err


def test_resume_of_a_moved_run_keeps_its_best_epoch(tmp_path, monkeypatch):
    # Lightning restores the best score only when the checkpoint folder's path is unchanged; a
    # moved run must still know its best epoch, and must not read the vanished old folder.
    _worsening_validation(monkeypatch)
    cfg = repvae.Config()
    cfg.train.epochs, cfg.train.patience, cfg.train.progress = 2, 10, False
    repvae.train(cfg, tmp_path / "old")
    best_before = _json(tmp_path / "old" / "summary.json")["best_val_loss"]
    (tmp_path / "old").rename(tmp_path / "moved")
    assert (
        main(["train", "--resume", str(tmp_path / "moved"), "--epochs", "3", "--no-progress"]) == 0
    )
    summary = _json(tmp_path / "moved" / "summary.json")
    assert summary["epochs"] == 3 and summary["best_val_loss"] == pytest.approx(best_before)
    best = torch.load(tmp_path / "moved" / "checkpoints" / "best.ckpt", weights_only=False)
    assert best["epoch"] == 0


def test_resume_with_more_patience_continues_a_run_that_stopped_early(tmp_path, monkeypatch):
    # Lightning restores the checkpoint's patience; the resumed run's --patience must win.
    _worsening_validation(monkeypatch)
    cfg = repvae.Config()
    cfg.train.epochs, cfg.train.patience, cfg.train.progress = 5, 1, False
    repvae.train(cfg, tmp_path / "run")
    assert _json(tmp_path / "run" / "summary.json")["epochs"] == 2  # stopped early
    args = ["--epochs", "4", "--patience", "5", "--no-progress"]
    assert main(["train", "--resume", str(tmp_path / "run"), *args]) == 0
    assert _json(tmp_path / "run" / "summary.json")["epochs"] == 4


def test_callbacks_keep_lightnings_state_keys():
    # Checkpoints file callback state under the class name: runs trained with Lightning's own
    # ModelCheckpoint and EarlyStopping must resume into ours with their state.
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    from repvae.training import _RunCheckpoint, _RunEarlyStopping

    options = {"dirpath": "ckpts", "filename": "best", "monitor": "val/loss"}
    assert _RunCheckpoint(**options).state_key == ModelCheckpoint(**options).state_key
    assert (
        _RunEarlyStopping(monitor="val/loss", patience=3).state_key
        == EarlyStopping(monitor="val/loss", patience=3).state_key
    )


def test_a_cosine_schedule_ends_at_a_learning_rate_of_zero(tmp_path):
    run = _train(tmp_path, "--set", "train.schedule=cosine", "--set", "train.warmup_steps=3")
    with open(Path(run) / "logs" / "metrics.csv", newline="") as f:
        rates = [float(r["lr-Adam"]) for r in csv.DictReader(f) if r.get("lr-Adam")]
    # 22 steps: logged every 11, so at steps 10 and 21 of the warm-up and cosine decay
    assert len(rates) == 2 and 1e-4 < rates[0] < 1e-3 and rates[-1] < 1e-5


def test_max_minutes_stops_training_on_time(tmp_path):
    run = _train(tmp_path, "--epochs", "100000", "--set", "train.max_minutes=0.05")
    summary = _json(f"{run}/summary.json")
    assert summary["train_seconds"] < 30 and 1 <= summary["epochs"] < 100000


def test_training_terms_are_logged_on_the_steps_the_logger_writes_and_only_there(
    tmp_path, monkeypatch
):
    calls: list[int] = []
    original = LitVAE.log

    def counting_log(self, name, *args, **kwargs):
        if name == "loss":
            calls.append(self.global_step)
        return original(self, name, *args, **kwargs)

    monkeypatch.setattr(LitVAE, "log", counting_log)
    run = _train(tmp_path, "--batch-size", "16")  # about 90 steps an epoch, 2 epochs
    with open(f"{run}/logs/metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["loss"]]
    steps = _json(f"{run}/summary.json")["steps"]
    assert [int(r["step"]) for r in rows] == list(range(49, steps, 50))
    assert all(float(r["train/kl"]) > 0 and float(r["train/recon"]) > 0 for r in rows)
    assert calls == list(range(49, steps, 50))  # not once a step
