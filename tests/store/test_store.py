"""The embedding store: durable, crash-safe appends, resumable indexing, and search that
agrees with brute force (flat) and with itself (funnel)."""

import json

import numpy as np
import pytest

from repvae.data import load_dataset
from repvae.store import EmbeddingStore, StoreError, flat_search, funnel_search
from repvae.store import core as store_core
from repvae.store.indexing import index_split

D = 6


def _store(tmp_path, n=50, metric="cosine", seed=0) -> EmbeddingStore:
    store = EmbeddingStore.create(
        tmp_path / "store",
        run="nowhere",
        dim=D,
        shape=(1, 2, 2),
        prefixes=[2, 6],
        index_dims=[2, 4, 6],
        metric=metric,
        class_names=["a", "b", "c"],
    )
    rng = np.random.default_rng(seed)
    store.append(
        rng.normal(size=(n, D)).astype(np.float32),
        rng.integers(0, 3, n),
        rng.integers(0, 256, (n, 1, 2, 2), dtype=np.uint8),
        {"test": True},
    )
    return store


def test_append_and_reopen_keep_every_item(tmp_path):
    store = _store(tmp_path)
    extra = np.ones((3, D), np.float32)
    ids = store.append(extra, np.array([0, 1, 2]), np.zeros((3, 1, 2, 2), np.uint8))
    assert ids.tolist() == [50, 51, 52]
    again = EmbeddingStore.open(tmp_path / "store")
    assert len(again) == 53 and again.ids.tolist() == list(range(53))
    np.testing.assert_array_equal(again.embeddings, store.embeddings)
    np.testing.assert_array_equal(again.item(51)[0], np.ones(D))
    assert again.has_images() and again.image(52).shape == (1, 2, 2)


def test_a_crash_during_append_loses_nothing(tmp_path, monkeypatch):
    store = _store(tmp_path)
    before = store.embeddings.copy()
    real = store_core.write_text

    def crash(path, text):
        if str(path).endswith("manifest.json"):
            raise KeyboardInterrupt("killed between the shard and the manifest")
        return real(path, text)

    monkeypatch.setattr(store_core, "write_text", crash)
    with pytest.raises(KeyboardInterrupt):
        store.append(np.zeros((5, D), np.float32), np.zeros(5, int))
    monkeypatch.setattr(store_core, "write_text", real)
    shards = sorted(p.name for p in (tmp_path / "store" / "shards").iterdir())
    assert shards == ["00000.safetensors", "00001.safetensors"]  # the orphan of the crash
    reopened = EmbeddingStore.open(tmp_path / "store")
    assert len(reopened) == 50
    np.testing.assert_array_equal(reopened.embeddings, before)
    reopened.append(np.zeros((2, D), np.float32), np.zeros(2, int))  # removes the orphan
    assert len(EmbeddingStore.open(tmp_path / "store")) == 52


def test_a_damaged_shard_is_named(tmp_path):
    _store(tmp_path)
    shard = tmp_path / "store" / "shards" / "00000.safetensors"
    data = bytearray(shard.read_bytes())
    data[-10] ^= 0x40
    shard.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=r"00000\.safetensors: damaged shard"):
        _ = EmbeddingStore.open(tmp_path / "store").embeddings
    (tmp_path / "store" / "manifest.json").write_text("{")
    with pytest.raises(StoreError, match=r"manifest\.json: damaged manifest"):
        EmbeddingStore.open(tmp_path / "store")


def test_an_interrupted_indexing_resumes_with_only_the_missing_images(tmp_path):
    data = load_dataset("digits")
    store = EmbeddingStore.create(
        tmp_path / "s", run="r", dim=4, shape=data.shape, prefixes=[4], index_dims=[4]
    )
    calls = {"n": 0}

    def failing(images):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed in the second shard")
        return images.reshape(len(images), -1)[:, :4].astype(np.float32)

    with pytest.raises(KeyboardInterrupt):
        index_split(store, failing, data, "train", shard_size=500, progress=False)
    assert len(EmbeddingStore.open(tmp_path / "s")) == 500
    added = index_split(store, failing, data, "train", shard_size=500, progress=False)
    store = EmbeddingStore.open(tmp_path / "s")
    assert added == len(data.train) - 500 and len(store) == len(data.train)
    np.testing.assert_array_equal(store.labels, data.train.labels.numpy())
    assert index_split(store, failing, data, "train", shard_size=500, progress=False) == 0


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_flat_search_agrees_with_brute_force(tmp_path, metric):
    store = _store(tmp_path, metric=metric)
    queries = np.random.default_rng(1).normal(size=(7, D)).astype(np.float32)
    for m in (2, 4, 6):
        found = flat_search(store, queries, m, 5)
        base, query = store.embeddings[:, :m], queries[:, :m]
        if metric == "cosine":
            base = base / np.linalg.norm(base, axis=1, keepdims=True)
            query = query / np.linalg.norm(query, axis=1, keepdims=True)
            scores = query @ base.T
        else:
            scores = -np.square(query[:, None] - base[None]).sum(-1)
        np.testing.assert_array_equal(found.ids, np.argsort(-scores, axis=1)[:, :5])
        np.testing.assert_allclose(
            found.scores, np.sort(scores, axis=1)[:, ::-1][:, :5], rtol=1e-4, atol=1e-5
        )
        assert found.cost == 50 * m


def test_funnel_with_a_full_shortlist_is_the_flat_search_at_its_last_size(tmp_path):
    store = _store(tmp_path)
    queries = store.embeddings[:5]
    funnel = funnel_search(store, queries, [2, 4, 6], [49, 49], 5, exclude=np.arange(5))
    flat = flat_search(store, queries, 6, 5, exclude=np.arange(5))
    np.testing.assert_array_equal(funnel.ids, flat.ids)
    assert all(i not in row for i, row in enumerate(funnel.ids))  # each query left itself out
    assert funnel.cost == 50 * 2 + 49 * 4 + 49 * 6
    small = funnel_search(store, queries, [2, 6], [10], 5)
    assert small.cost == 50 * 2 + 10 * 6 and small.ids.shape == (5, 5)


def test_funnel_settings_are_checked(tmp_path):
    store = _store(tmp_path)
    q = store.embeddings[:1]
    with pytest.raises(ValueError, match="one size per funnel stage"):
        funnel_search(store, q, [2, 6], [10, 5], 5)
    with pytest.raises(ValueError, match="grow"):
        funnel_search(store, q, [6, 2], [10], 5)
    with pytest.raises(ValueError, match="no more candidates"):
        funnel_search(store, q, [2, 6], [3], 5)


def test_indexes_are_written_and_rebuilt_when_stale(tmp_path):
    store = _store(tmp_path)
    assert store.build_indexes() == [2, 4, 6]
    assert sorted(p.name for p in (tmp_path / "store" / "indexes").iterdir()) == [
        "d2-n50.faiss",
        "d4-n50.faiss",
        "d6-n50.faiss",
    ]
    store.append(np.zeros((1, D), np.float32), np.zeros(1, int), np.zeros((1, 1, 2, 2), np.uint8))
    store.build_indexes()
    assert (tmp_path / "store" / "indexes" / "d4-n51.faiss").exists()
    assert not (tmp_path / "store" / "indexes" / "d4-n50.faiss").exists()
    manifest = json.loads((tmp_path / "store" / "manifest.json").read_text())
    assert [s["count"] for s in manifest["shards"]] == [50, 1]
