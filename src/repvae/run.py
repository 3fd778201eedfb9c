"""A trained run on disk: config + safetensors weights, loaded without pickle."""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from repvae.config import Config, ConfigError, from_dict
from repvae.files import atomic_path
from repvae.models import Model, build_model


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


def save_weights(model: Model, path: Path) -> None:
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as temporary:
        save_file(state, str(temporary))


def read_run_config(run_dir: Path) -> tuple[Config, tuple[int, int, int], int]:
    """A run folder's configuration with the image shape and class count it was trained on."""
    path = run_dir / "config.yaml"
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing; is {run_dir} a repvae run folder?")
    try:
        raw = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise DamagedRun(f"{path}: not valid YAML ({err}); restore it or retrain the run") from None
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
    return config, (shape[0], shape[1], shape[2]), num_classes


def load_weights(model: Model, path: Path, config_path: Path) -> None:
    """``model``'s weights from a safetensors file, or an error naming what is wrong."""
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise DamagedRun(
            f"{path}: damaged or not a safetensors file ({err}); retrain the run, or resume it "
            "(`repvae train --resume RUN`) if its checkpoints survive"
        ) from None
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
