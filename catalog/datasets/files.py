"""Finding a dataset's files: ``--path``, then ``settings.DATA_DIR`` (env ``GNOMON_DATA_DIR``), then
``settings.DATASET_CACHE_DIR``; else downloaded from the recorded URL into the cache. Every file is checked against its
SHA-256 wherever it was found."""

from __future__ import annotations

import hashlib
import logging
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from django.conf import settings

from catalog.datasets.registry import ChecksumMismatch, Dataset, DatasetFile, DatasetUnavailable

logger = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_S = 60


def sha256_of(path: Path) -> str:
    """The one file checksum (SHA-256, read in 1 MiB blocks): dataset files, model weights, published dumps."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, expected: str) -> None:
    actual = sha256_of(path)
    if actual != expected:
        raise ChecksumMismatch(
            f"{path}: SHA-256 {actual} does not match the registry's {expected}; the file is damaged or a different "
            f"version: delete it (it is downloaded again) or put the published file there"
        )


def resolve_files(dataset: Dataset, path: Path | str | None = None,
                  opener: Callable = urllib.request.urlopen) -> dict[str, Path]:
    """Local paths of every file of ``dataset`` (see the module docstring for the order), checksums verified."""
    if path is not None:  # an explicit --path is the only place looked at: no silent fallback to other copies
        path = Path(path)
        roots = [path, path / dataset.folder]
    else:
        roots = [Path(settings.DATA_DIR) / dataset.folder, Path(settings.DATASET_CACHE_DIR) / dataset.folder]
    found: dict[str, Path] = {}
    for file in dataset.files:
        local = next((root / file.path for root in roots if (root / file.path).is_file()), None)
        if local is None:
            if path is not None:
                raise DatasetUnavailable(f"{dataset.name}: {file.path} not found under {path}")
            local = download(dataset, file, opener=opener)
        verify(local, file.sha256)
        found[file.path] = local
    return found


def download(dataset: Dataset, file: DatasetFile, opener: Callable = urllib.request.urlopen) -> Path:
    target = Path(settings.DATASET_CACHE_DIR) / dataset.folder / file.path
    if file.url is None:
        raise DatasetUnavailable(
            f"{dataset.name}: {file.path} has no public download URL; put it in "
            f"{Path(settings.DATA_DIR) / dataset.folder} (GNOMON_DATA_DIR) or pass --path"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    logger.info("downloading %s", file.url)
    try:
        with opener(file.url, timeout=DOWNLOAD_TIMEOUT_S) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        partial.unlink(missing_ok=True)
        raise DatasetUnavailable(
            f"{dataset.name}: cannot download {file.url} ({exc}). Offline? Put the files in "
            f"{Path(settings.DATA_DIR) / dataset.folder} (GNOMON_DATA_DIR) or pass --path"
        ) from exc
    try:
        verify(partial, file.sha256)
    except ChecksumMismatch:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
    return target
