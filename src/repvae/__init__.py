"""repvae: better and more flexible image representations with Variational Autoencoders.

    import repvae
    run = repvae.train(repvae.Config(), "runs/digits")      # or repvae.load("runs/digits")
    posterior = run.model.encode(images)                      # posterior.mean is the MAP code
    emb = repvae.embed(run, ["map", "samples:100"])
    results = repvae.probe(run, ["map"], probes=["linear", "mlp"])

The model families register themselves when ``repvae.models`` is imported, which happens here,
so every entry point (a config file read by ``repvae.config``, the CLI, the Python API) knows
them. The names below are imported lazily so that ``import repvae`` does not pay for importing
Lightning.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

from repvae import models as _models  # noqa: F401  (registers the built-in model families)

try:
    __version__ = version("repvae")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+source"

_API = {
    "Config": "repvae.config",
    "ConfigError": "repvae.config",
    "load_config": "repvae.config",
    "Embeddings": "repvae.represent",
    "embed": "repvae.represent",
    "Run": "repvae.run",
    "load": "repvae.run",
    "train": "repvae.training",
    "probe": "repvae.evaluate.probing",
    "evaluate": "repvae.evaluate.suite",
    "load_dataset": "repvae.data",
}

__all__ = sorted(_API)


def __getattr__(name: str):
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'repvae' has no attribute {name!r}")
