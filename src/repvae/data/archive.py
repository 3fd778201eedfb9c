"""Tar extraction that cannot write outside its destination."""

from __future__ import annotations

import tarfile
import zlib
from pathlib import Path, PurePosixPath

from .core import DatasetError


def _check_member(member: tarfile.TarInfo, archive: Path) -> None:
    """Refuse anything an image dataset has no business containing.

    This is checked by hand as well as by tarfile's "data" filter because the filter is
    missing from older Python 3.10/3.11 patch releases.
    """
    path = PurePosixPath(member.name)
    if path.is_absolute() or member.name.startswith(("/", "\\")) or ".." in path.parts:
        raise DatasetError(
            f"Refusing to extract {archive}: member {member.name!r} would be written outside "
            "the extraction folder. The archive is malformed or malicious; do not use it."
        )
    if not (member.isfile() or member.isdir()):
        raise DatasetError(
            f"Refusing to extract {archive}: member {member.name!r} is a link or special file, "
            "which an image dataset should not contain. Repack the archive with plain files."
        )


def safe_extract(archive: Path, dest: Path) -> None:
    """Extract a (possibly compressed) tar archive into `dest` after vetting every member."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                _check_member(member, archive)
            dest.mkdir(parents=True, exist_ok=True)
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, members=members, filter="data")
            else:  # pragma: no cover - only on Python releases without extraction filters
                tar.extractall(dest, members=members)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise DatasetError(
            f"Could not extract {archive.name} in {archive.parent} into {dest} ({exc}). "
            "If the disk is not full, the archive is corrupt or truncated: delete it and get "
            "it again."
        ) from exc
