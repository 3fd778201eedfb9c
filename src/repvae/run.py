"""A trained run on disk: config + safetensors weights, loaded without pickle."""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file, save_file

from repvae.config import Config, from_dict
from repvae.models import Model, build_model


@dataclass
class Run:
    dir: Path
    config: Config
    model: Model
    summary: dict = field(default_factory=dict)


def environment() -> dict[str, str]:
    """Versions and hardware recorded beside every result."""
    import lightning
    import sklearn

    from repvae import __version__

    return {
        "version": __version__,
        "torch": str(torch.__version__),
        "lightning": lightning.__version__,
        "scikit-learn": sklearn.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
        "cpu_threads": str(torch.get_num_threads()),
    }


def save_weights(model: Model, path: Path) -> None:
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path))


def load(run_dir: str | Path, device: str | torch.device | None = None) -> Run:
    """Rebuild a trained model from its run folder (config.yaml + model.safetensors)."""
    run_dir = Path(run_dir)
    config_path, weights = run_dir / "config.yaml", run_dir / "model.safetensors"
    for path in (config_path, weights):
        if not path.exists():
            raise FileNotFoundError(f"{path}: missing; is {run_dir} a finished repvae run folder?")
    raw = yaml.safe_load(config_path.read_text())
    config = from_dict(raw)
    shape = tuple(raw["dataset"]["shape"])
    model = build_model(config.model, shape, raw["dataset"]["num_classes"])
    model.load_state_dict(load_file(str(weights)))
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    summary_path = run_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    return Run(run_dir, config, model.to(device).eval(), summary)
