"""A run on disk: config + safetensors weights, loaded without pickle; and what keeps a run
folder from being damaged by the commands that write it (a lock, refusals, clear errors)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from repvae.config import (
    AUTO_ARCHITECTURE,
    Config,
    ConfigError,
    apply_overrides,
    differences,
    from_dict,
)
from repvae.config.errors import yaml_problem
from repvae.files import atomic_path
from repvae.models import Model, build_model
from repvae.models.contract import family_of
from repvae.models.networks import first_auto_architecture, resolve_architecture


class TrainingDiverged(RuntimeError):
    """The loss became NaN/inf; the message names the step and the checkpoint to resume from."""


class DamagedRun(ValueError):
    """A run folder's file is unreadable or does not fit the run; the message names it."""


@dataclass
class Run:
    dir: Path
    config: Config
    model: Model
    summary: dict = field(default_factory=dict)


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def environment() -> dict[str, str]:
    """Versions and hardware recorded beside every result."""
    return {
        "version": _version("repvae"),
        "torch": str(torch.__version__),
        "lightning": _version("lightning"),
        "scikit-learn": _version("scikit-learn"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
        "cpu_threads": str(torch.get_num_threads()),
    }


# Where a file's own record of its tensors' SHA-256 lives: safetensors metadata, a checkpoint key.
DIGEST_KEY = "repvae_sha256"


def tensor_digest(tree: Any) -> str:
    """SHA-256 over every tensor in a nested dict/list (names, dtypes, shapes and bytes), so a
    file's contents can be checked after reading: neither safetensors nor torch.load notices a
    flipped bit in tensor data."""
    digest = hashlib.sha256()

    def walk(node: Any, name: str) -> None:
        if isinstance(node, torch.Tensor):
            data = node.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
            digest.update(f"{name}|{node.dtype}|{tuple(node.shape)}|".encode())
            digest.update(data.numpy().tobytes())
        elif isinstance(node, dict):
            for key in sorted(node, key=str):
                walk(node[key], f"{name}/{key}")
        elif isinstance(node, list | tuple):
            for i, item in enumerate(node):
                walk(item, f"{name}/{i}")

    walk(tree, "")
    return digest.hexdigest()


def save_weights(model: Model, path: Path) -> None:
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as temporary:
        save_file(state, str(temporary), metadata={DIGEST_KEY: tensor_digest(state)})


def read_run_config(run_dir: Path) -> tuple[Config, tuple[int, int, int], int]:
    """A run folder's configuration with the image shape and class count it was trained on."""
    path = run_dir / "config.yaml"
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing; is {run_dir} a repvae run folder?")
    try:
        raw = yaml.safe_load(path.read_text())
    except UnicodeDecodeError:
        raise DamagedRun(f"{path}: not a text file; restore it or retrain the run") from None
    except yaml.YAMLError as err:
        raise DamagedRun(
            f"{path}: not valid YAML ({yaml_problem(err)}); restore it or retrain the run"
        ) from None
    try:
        config = from_dict(raw)
        dataset = raw["dataset"]
        shape = tuple(int(s) for s in dataset["shape"])
        num_classes = int(dataset["num_classes"])
    except ConfigError as err:
        raise DamagedRun(f"{path}: {err}") from None
    except (KeyError, TypeError, ValueError):
        raise DamagedRun(
            f"{path}: no 'dataset: {{shape, num_classes}}' entry; it was not written by "
            "repvae train (restore it or retrain the run)"
        ) from None
    if len(shape) != 3:
        raise DamagedRun(f"{path}: dataset.shape must be [channels, height, width]")
    shape3 = (shape[0], shape[1], shape[2])
    if config.model.architecture == AUTO_ARCHITECTURE:
        # training saves what `auto` chose; a saved `auto` is from before, when it chose so
        config.model.architecture = first_auto_architecture(shape3)
    return config, shape3, num_classes


def load_weights(model: Model, path: Path, config_path: Path) -> None:
    """``model``'s weights from a safetensors file, or an error naming what is wrong."""
    advice = (
        "retrain the run, or resume it (`repvae train --resume RUN`) if its checkpoints survive"
    )
    try:
        state = load_file(str(path))
        with safe_open(str(path), "pt") as f:
            recorded = (f.metadata() or {}).get(DIGEST_KEY)
    except (SafetensorError, OSError) as err:
        raise DamagedRun(f"{path}: damaged or not a safetensors file ({err}); {advice}") from None
    # files written before the digest was recorded cannot be checked; they load as they are
    if recorded is not None and recorded != tensor_digest(state):
        raise DamagedRun(f"{path}: damaged (its tensors changed since it was written); {advice}")
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[-1].strip()
        raise DamagedRun(
            f"{path} does not fit the model {config_path} describes ({first}); was config.yaml "
            "edited? restore it to the values the run was trained with"
        ) from None


def load(run_dir: str | Path, device: str | torch.device | None = None) -> Run:
    """Rebuild a trained model from its run folder (config.yaml + model.safetensors)."""
    run_dir = Path(run_dir)
    weights = run_dir / "model.safetensors"
    config, shape, num_classes = read_run_config(run_dir)
    if not weights.exists():
        raise FileNotFoundError(f"{weights}: missing; is {run_dir} a finished repvae run folder?")
    model = build_model(config.model, shape, num_classes)
    load_weights(model, weights, run_dir / "config.yaml")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    summary_path = run_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    return Run(run_dir, config, model.to(device).eval(), summary)


# What a run writes; a folder holding any of it holds (part of) a run.
RUN_STATE = ("config.yaml", "model.safetensors", "summary.json", "checkpoints", "logs")
# What a run's later commands add, removed with it by --overwrite.
RUN_OUTPUTS = ("embeddings", "evaluation", "probes.json")
# Settings a resumed run may change: how long and how it trains, not what it trains.
RESUMABLE = (
    "train.epochs",
    "train.patience",
    "train.lr",
    "train.max_steps",
    "train.max_minutes",
    "train.progress",
    "train.device",
    "train.devices",
    "train.num_nodes",
    "train.strategy",
    "train.precision",
    "train.logger",
    "data.root",
)
LOCK = ".lock"
# checkpoint entry holding the random generators' states, so a resumed run continues the
# uninterrupted run's random stream (posterior draws, MMD prior draws)
RNG_KEY = "repvae_rng"


class RunBusy(RuntimeError):
    """Another process is training into the same run folder."""


def primary_process() -> bool:
    """False in the extra processes of a multi-process (DDP) launch, which share the folder
    the first process checks, locks and writes: Lightning's own launcher and torchrun set
    RANK / LOCAL_RANK / NODE_RANK, ``srun`` sets SLURM_PROCID (a job of one task has 0)."""
    ranks = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")
    return all(os.environ.get(k, "0") == "0" for k in ranks)


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``RUN/.lock`` while training: a second ``train`` into the same folder is refused.

    An OS lock (``flock``), so a killed process leaves no stale lock behind. The folder is
    created here; one that holds nothing when the block fails (say, its data did not load) is
    removed again, so a failed start leaves no empty folder.
    """
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK
    handle = open(path, "a+")  # noqa: SIM115  (held open for the block)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunBusy(
                f"{run_dir}: another repvae process is training into this folder; wait for it "
                "to finish (or stop it) before starting another"
            ) from None
        yield
    except BaseException:
        if created and [p.name for p in run_dir.iterdir()] == [LOCK]:
            path.unlink()
            run_dir.rmdir()
        raise
    finally:
        handle.close()


def state_in(run_dir: Path) -> list[str]:
    """The run files ``run_dir`` holds."""
    return [name for name in RUN_STATE if (run_dir / name).exists()]


def check_fresh(run_dir: Path, overwrite: bool) -> None:
    """Refuse to start a run in a folder that holds one, unless told to ``overwrite`` it."""
    found = state_in(run_dir)
    if not found or overwrite:
        return
    if "model.safetensors" in found:
        raise FileExistsError(
            f"{run_dir} already holds a trained model; choose another --out, continue it with "
            f"--resume {run_dir}, or replace it with --overwrite"
        )
    raise FileExistsError(
        f"{run_dir} holds an unfinished run ({', '.join(found)}); continue it with "
        f"--resume {run_dir}, or replace it with --overwrite"
    )


def clear_run(run_dir: Path) -> None:
    """Remove a run's files (``--overwrite``); files of the user's own are left alone."""
    for name in (*RUN_STATE, *RUN_OUTPUTS):
        path = run_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A Lightning checkpoint's contents (tensors memory-mapped), read as weights only."""
    advice = (
        f"to resume from the best epoch instead, copy {path.parent / 'best.ckpt'} over it; "
        "or start again with --overwrite"
    )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # torch raises RuntimeError, EOFError, UnpicklingError, ... here
        reason = f"{type(err).__name__}: {(str(err).splitlines() or [''])[0]}"
        raise DamagedRun(f"{path}: damaged checkpoint ({reason}); {advice}") from None
    recorded = checkpoint.get(DIGEST_KEY) if isinstance(checkpoint, dict) else None
    if recorded is not None and recorded != checkpoint_digest(checkpoint):
        raise DamagedRun(
            f"{path}: damaged checkpoint (its tensors changed since it was written); {advice}"
        )
    return checkpoint


def checkpoint_digest(checkpoint: dict[str, Any]) -> str:
    """The digest a checkpoint records of its weights and optimiser state."""
    return tensor_digest(
        {k: checkpoint.get(k) for k in ("state_dict", "optimizer_states", RNG_KEY)}
    )


def concrete_architecture(config: Config, shape: tuple[int, int, int]) -> Config:
    """The config with ``auto`` replaced by the architecture it chooses for ``shape``: a run
    folder records what was built, so a later change of what ``auto`` means cannot break it."""
    if not family_of(config.model).uses_networks:
        return config
    chosen = resolve_architecture(config.model.architecture, shape)
    return apply_overrides(config, {"model.architecture": chosen})


def check_resume(config: Config, run_dir: Path) -> dict[str, Any]:
    """Refuse a resume that would change what the checkpoint was trained as, before anything
    in the folder changes; returns the last checkpoint's contents."""
    last = run_dir / "checkpoints" / "last.ckpt"
    if not last.exists():
        raise FileNotFoundError(f"{last}: nothing to resume (no checkpoint in {run_dir})")
    saved, shape, _ = read_run_config(run_dir)
    # a study's spec (or a config file) may say `auto` where the run folder records its choice
    config = concrete_architecture(config, shape)
    changed = [
        name for name in differences(saved.to_dict(), config.to_dict()) if name not in RESUMABLE
    ]
    if changed:
        was = {name: _value(saved.to_dict(), name) for name in changed}
        raise ConfigError(
            f"--resume {run_dir}: {', '.join(changed)} cannot change when a run resumes (it was "
            f"trained with {', '.join(f'{k}={v!r}' for k, v in was.items())}); a resume may "
            f"change only {', '.join(RESUMABLE)}. Train a new run with --out instead"
        )
    checkpoint = read_checkpoint(last)
    done = epochs_done(checkpoint)
    if config.train.epochs < done:
        raise ConfigError(
            f"train.epochs: {run_dir} has trained {done} epochs already; resume with "
            f"--epochs {done + 1} or more to train on"
        )
    return checkpoint


def epochs_done(checkpoint: dict[str, Any]) -> int:
    """How many epochs a Lightning checkpoint's run has gone through: an end-of-epoch checkpoint
    is written before Lightning counts its epoch ``completed``, but after ``processed``."""
    try:
        return int(checkpoint["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"])
    except (KeyError, TypeError):
        return int(checkpoint.get("epoch", 0))


def _value(raw: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        raw = raw.get(part) if isinstance(raw, dict) else None  # type: ignore[assignment]
    return raw
