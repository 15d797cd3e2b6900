"""The seed datasets: the registry (``registry.py``, data only), finding and verifying their files (``files.py``) and
the loaders that put them into the catalog (``loaders.py``). Callers import from here."""

from catalog.datasets.files import download, resolve_files, sha256_of, verify
from catalog.datasets.loaders import LOADERS, load_dataset
from catalog.datasets.registry import (
    AVIARY,
    BARTEL_2020,
    CARBON_24,
    GPAW_BOOTSTRAP,
    MP_ELEMENTAL_REFS,
    PEROV_5,
    REGISTRY,
    ChecksumMismatch,
    Dataset,
    DatasetError,
    DatasetFile,
    DatasetResult,
    DatasetUnavailable,
    SchemeSpec,
    get_dataset,
)

__all__ = [
    "AVIARY", "BARTEL_2020", "CARBON_24", "GPAW_BOOTSTRAP", "LOADERS", "MP_ELEMENTAL_REFS", "PEROV_5", "REGISTRY",
    "ChecksumMismatch", "Dataset", "DatasetError", "DatasetFile", "DatasetResult", "DatasetUnavailable", "SchemeSpec",
    "download", "get_dataset", "load_dataset", "resolve_files", "sha256_of", "verify",
]
