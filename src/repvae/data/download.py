"""Checksummed downloads and the shared "files are missing" error."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .core import ROOT_HINT, DatasetError

log = logging.getLogger(__name__)

_TIMEOUT_S = 60


@dataclass(frozen=True)
class Remote:
    """A file published at one or more mirrors, with the MD5 the official release has."""

    filename: str
    urls: tuple[str, ...]
    md5: str


def md5sum(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(remote: Remote, folder: Path) -> Path:
    """Download `remote` into `folder`, trying each mirror, and return its path.

    The file is written as `.part` and only renamed once its MD5 matches, so an interrupted or
    tampered download never looks like a valid file; a mismatching download is deleted.
    """
    dest = folder / remote.filename
    if dest.is_file() and md5sum(dest) == remote.md5:
        return dest
    folder.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    errors: list[str] = []
    for url in remote.urls:
        log.info("downloading %s to %s", url, dest)
        try:
            request = urllib.request.Request(url, headers={"User-Agent": "repvae"})
            with (
                urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response,
                part.open("wb") as out,
            ):
                shutil.copyfileobj(response, out, 1 << 20)
        except (OSError, ValueError) as exc:  # URLError, HTTPError and timeouts are OSErrors
            part.unlink(missing_ok=True)
            errors.append(f"{url}: {exc}")
            continue
        digest = md5sum(part)
        if digest != remote.md5:
            part.unlink()
            errors.append(
                f"{url}: MD5 {digest} does not match the expected {remote.md5} "
                "(the download was deleted)"
            )
            continue
        os.replace(part, dest)
        return dest
    raise DatasetError(f"could not download {remote.filename}:\n  " + "\n  ".join(errors))


def ensure_files(
    *,
    dataset: str,
    folder: Path,
    root: Path,
    find_missing: Callable[[], list[str]],
    download_missing: Callable[[list[str]], None],
    download: bool,
    how_to_get: str,
) -> None:
    """Make sure a dataset's files exist, downloading them if allowed.

    When they cannot be had, the error lists exactly which files are missing and where they
    must go, because on offline machines the user has to copy them there by hand.
    """
    missing = find_missing()
    if not missing:
        return
    if download:
        try:
            download_missing(missing)
        except DatasetError as exc:
            reason = f"Automatic download failed: {exc}"
        else:
            missing = find_missing()
            if not missing:
                return
            reason = "The download did not provide them."
    else:
        reason = "Automatic download is off (download=False)."
    listing = "\n".join(f"  {name}" for name in missing)
    raise DatasetError(
        f"{dataset} files are missing from {folder.resolve()}:\n{listing}\n{reason}\n"
        f"Fix: {how_to_get} They must end up in {folder.resolve()}. {ROOT_HINT} "
        f"(Current data root: {root.resolve()}.)"
    )
