"""Nothing a user does to a run folder loses their work: each defect of issue 25 as a test.

Every case checks the command's exit code and one-line message, and that the folder holds
exactly the bytes it held before (``_snapshot``), or that it can still be resumed.
"""

import hashlib
import importlib.util
import shutil
import warnings
from pathlib import Path

import pytest
import torch
import yaml

from repvae.cli import main
from repvae.run import load, primary_process, run_lock

BASE = ["--dataset", "digits", "--latent-dim", "4", "--set", "model.hidden=32", "--no-progress"]


def _train(run: Path, *extra: str) -> int:
    return main(["train", *BASE, "--epochs", "2", "--out", str(run), *extra])


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` (the lock file aside) -> SHA-256 of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("repvae: error: ") and "\n" not in err, err
    assert "Traceback" not in err
    return err


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("finished") / "run"
    assert _train(run) == 0
    return run


@pytest.fixture
def run(finished, tmp_path) -> Path:
    """A private copy of a finished two-epoch run."""
    return Path(shutil.copytree(finished, tmp_path / "run"))


def test_resume_with_an_incompatible_override_is_refused_and_changes_nothing(run, capsys):
    before = _snapshot(run)
    code = main(["train", "--resume", str(run), "--latent-dim", "8", "--epochs", "3"])
    assert code == 2
    err = _one_line_error(capsys)
    assert "model.latent_dim cannot change when a run resumes" in err and "latent_dim=4" in err
    assert _snapshot(run) == before
    assert main(["embed", str(run)]) == 0  # the run still works


def test_resume_may_change_how_long_it_trains(run):
    assert main(["train", "--resume", str(run), "--epochs", "3", "--lr", "5e-4"]) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())["train"]
    assert (saved["epochs"], saved["lr"]) == (3, 5e-4)


def test_training_into_an_interrupted_run_is_refused_without_resume_or_overwrite(run, capsys):
    (run / "model.safetensors").unlink()  # as if killed before the end
    (run / "summary.json").unlink()
    before = _snapshot(run)
    assert _train(run) == 2
    err = _one_line_error(capsys)
    assert "holds an unfinished run" in err and "--resume" in err and "--overwrite" in err
    assert _snapshot(run) == before
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0  # what it said to do


def test_overwrite_replaces_the_run_and_keeps_the_users_own_files(run):
    (run / "notes.txt").write_text("mine")
    (run / "embeddings").mkdir(exist_ok=True)
    assert _train(run, "--overwrite") == 0
    assert (run / "notes.txt").read_text() == "mine"
    assert not (run / "embeddings").exists()  # outputs of the replaced run go with it
    assert (run / "model.safetensors").exists()


def test_a_finished_run_is_not_trained_over(run, capsys):
    assert _train(run) == 2
    assert "already holds a trained model" in _one_line_error(capsys)


def test_divergence_keeps_the_last_good_checkpoint(run, capsys):
    # a run with good epochs, then a learning rate that blows it up
    good = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert main(["train", "--resume", str(run), "--epochs", "4", "--lr", "1e6"]) == 2
    err = _one_line_error(capsys)
    assert "The last good checkpoint" in err and "after epoch 2" in err, err
    kept = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    for name, weight in kept["state_dict"].items():
        torch.testing.assert_close(weight, good["state_dict"][name])
    # and the run resumes from it with a sane learning rate
    assert main(["train", "--resume", str(run), "--epochs", "3", "--lr", "1e-3"]) == 0


def test_divergence_in_the_first_epoch_leaves_no_checkpoint_and_says_so(tmp_path, capsys):
    assert _train(tmp_path / "run", "--lr", "1e6") == 2
    err = _one_line_error(capsys)
    assert "no checkpoint to resume" in err and "--overwrite" in err
    assert not (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()


@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
def test_non_finite_numbers_in_the_config_are_refused(tmp_path, capsys, value):
    assert _train(tmp_path / "run", "--set", f"train.lr={value}") == 2
    assert "train.lr: must be a finite number" in _one_line_error(capsys)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("damage", ["empty", "truncated", "bit_flip"])
def test_damaged_weights_are_named(run, capsys, damage):
    weights = run / "model.safetensors"
    data = bytearray(weights.read_bytes())
    if damage == "empty":
        data = bytearray()
    elif damage == "truncated":
        data = data[: len(data) // 2]
    else:
        data[-100] ^= 0x04  # a bit of a tensor: safetensors itself would not notice
    weights.write_bytes(bytes(data))
    assert main(["embed", str(run)]) == 2
    err = _one_line_error(capsys)
    assert "model.safetensors: damaged" in err


def test_an_edited_config_is_named(run, capsys):
    config = run / "config.yaml"
    raw = yaml.safe_load(config.read_text())
    raw["model"]["latent_dim"] = 8
    config.write_text(yaml.safe_dump(raw))
    assert main(["embed", str(run)]) == 2
    err = _one_line_error(capsys)
    assert "does not fit the model" in err and "config.yaml" in err
    config.write_text("model: [unclosed")
    assert main(["embed", str(run)]) == 2
    assert "config.yaml: not valid YAML" in _one_line_error(capsys)


@pytest.mark.parametrize("damage", ["truncated", "bit_flip"])
def test_a_damaged_checkpoint_is_named_on_resume_and_nothing_changes(run, capsys, damage):
    last = run / "checkpoints" / "last.ckpt"
    data = bytearray(last.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 3]
    else:
        data[len(data) // 2] ^= 0x10  # torch.load reads this without a word
    last.write_bytes(bytes(data))
    before = _snapshot(run)
    assert main(["train", "--resume", str(run), "--epochs", "3"]) == 2
    err = _one_line_error(capsys)
    assert "last.ckpt: damaged checkpoint" in err and "best.ckpt" in err
    assert _snapshot(run) == before


@pytest.mark.parametrize("damage", ["text", "truncated", "bit_flip"])
def test_a_damaged_embeddings_file_is_named(run, capsys, damage):
    assert main(["embed", str(run)]) == 0
    capsys.readouterr()
    path = run / "embeddings" / "map.npz"
    data = bytearray(path.read_bytes())
    if damage == "text":
        data = bytearray(b"this is not an npz file\n")
    elif damage == "truncated":
        data = data[: len(data) // 2]
    else:
        data[200] ^= 0x01  # inside the first array: the zip's CRC catches it
    path.write_bytes(bytes(data))
    assert main(["probe", str(path)]) == 2
    err = _one_line_error(capsys)
    assert "map.npz: not an embeddings file" in err or "map.npz: damaged embeddings" in err
    assert "pickled" not in err


def test_a_second_train_into_the_same_folder_is_refused(run, capsys):
    with run_lock(run):  # as a training process holds it
        assert main(["train", "--resume", str(run), "--epochs", "3"]) == 2
    assert "another repvae process is training into this folder" in _one_line_error(capsys)


def test_a_failed_data_load_leaves_no_folder(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--dataset", f"folder:{tmp_path / 'nowhere'}", "--out", str(out)])
    assert code == 2
    _one_line_error(capsys)
    assert not out.exists()


def test_a_lone_last_batch_does_not_reach_batch_norm(tmp_path):
    # 129 training images in batches of 128: the last batch would hold one image
    extra = ["--set", "model.architecture=mlp-bn", "--set", "train.train_subset=129"]
    assert _train(tmp_path / "run", "--batch-size", "128", *extra) == 0
    assert load(tmp_path / "run").summary["steps"] == 2  # one batch an epoch, two epochs


def test_resume_prints_no_checkpoint_directory_warning(run, recwarn):
    warnings.simplefilter("always")
    assert main(["train", "--resume", str(run), "--epochs", "3"]) == 0
    assert not [w for w in recwarn if "Checkpoint directory" in str(w.message)]


@pytest.mark.skipif(
    importlib.util.find_spec("tensorboard") is not None
    or importlib.util.find_spec("tensorboardX") is not None,
    reason="tensorboard is installed here",
)
def test_tensorboard_without_its_package_is_a_clear_error(tmp_path, capsys):
    assert _train(tmp_path / "run", "--set", "train.logger=tensorboard") == 2
    assert "pip install 'repvae[tensorboard]'" in _one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_resuming_to_fewer_epochs_than_done_says_how_many(run, capsys):
    assert main(["train", "--resume", str(run), "--epochs", "1"]) == 2
    assert "has trained 2 epochs already; resume with --epochs 3" in _one_line_error(capsys)


@pytest.mark.parametrize(
    ("env", "primary"),
    [
        ({}, True),
        ({"LOCAL_RANK": "1"}, False),  # Lightning's launcher, torchrun
        ({"RANK": "3"}, False),
        ({"SLURM_PROCID": "0"}, True),  # a Slurm job of one task (a submitit job)
        ({"SLURM_PROCID": "1"}, False),  # the second task of `srun repvae train` under DDP
    ],
)
def test_only_the_first_process_of_a_launch_checks_locks_and_writes_the_run(
    env, primary, monkeypatch
):
    """Every task of ``srun --ntasks-per-node N repvae train ...`` (docs/scaling.md) used to take
    itself for the first and ask for the run folder's lock: the second one was refused."""
    for key in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert primary_process() is primary
