"""Atomic file writes: a reader (or a crash) sees the old file or the new one, never half of one.

Every file of a run folder or a study (configs, weights, summaries, embeddings, CSVs) is written
through these: the bytes go to a temporary file in the same folder, are flushed to disk, and the
temporary file is renamed over the target with ``os.replace`` (atomic on POSIX and Windows).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


_UMASK = _umask()


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed over ``path`` if the block succeeds,
    removed if it raises. For writers that want a file name (``np.savez``, safetensors)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    temporary = Path(name)
    try:
        yield temporary
        with open(temporary, "rb+") as f:
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); give it the mode a plain open() would
        os.chmod(temporary, 0o666 & ~_UMASK)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> Path:
    """``Path.write_text``, atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(text)
    return Path(path)


def write_bytes(path: str | Path, data: bytes) -> Path:
    """``Path.write_bytes``, atomically."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)
    return Path(path)
