"""Where datasets live on disk."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "REPVAE_DATA"


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """Resolve the data folder: explicit argument, then $REPVAE_DATA, then the user cache.

    The cache default ($XDG_CACHE_HOME or ~/.cache, then repvae/data) keeps downloads out of
    project trees; the folder is not created here because resolving a path must not have side
    effects (loaders create it only when they write).
    """
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return user_cache_dir()


def user_cache_dir() -> Path:
    """The per-user default data folder: ($XDG_CACHE_HOME or ~/.cache)/repvae/data."""
    cache = os.environ.get("XDG_CACHE_HOME")
    base = Path(cache).expanduser() if cache else Path.home() / ".cache"
    return base / "repvae" / "data"
