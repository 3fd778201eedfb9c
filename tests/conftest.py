import os

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "datasets")


@pytest.fixture
def shared_datasets() -> str:
    if not os.path.isdir(os.path.join(SHARED, "MNIST", "raw")):
        pytest.skip("../shared/datasets is not present")
    return os.path.abspath(SHARED)


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Caches (extracted archives, FID classifiers) go to a temporary folder, not ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))
