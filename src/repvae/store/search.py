"""Nearest neighbours in a store at a prefix size, flat or adaptive (funnel).

Flat search at prefix m scores every stored item on its first m coordinates (FAISS's exact
flat index). Funnel search (Matryoshka Representation Learning's adaptive retrieval, AdANNS):
shortlist with a small prefix over every item, then re-rank the shortlist with larger prefixes,
each stage keeping fewer candidates: ``dims=[8, 16, 128], shortlist=[200, 50]`` scores all N
items on 8 numbers, the best 200 on 16, the best 50 of those on 128, and returns the top k. The
re-ranking is batched over queries (one gather and one product per stage), not a Python loop
per query. ``cost`` counts the multiply-adds, so a funnel's cost is comparable with a flat
search's.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from repvae.store.core import EmbeddingStore, prepare


@dataclass
class Neighbours:
    ids: np.ndarray  # [Q, k] store ids, best first
    scores: np.ndarray  # [Q, k] similarity (cosine) or negative squared distance (l2)
    cost: int  # multiply-adds per query


def _scores_to_similarity(distances: np.ndarray, metric: str) -> np.ndarray:
    return distances if metric == "cosine" else -distances


def flat_search(
    store: EmbeddingStore, queries: np.ndarray, dim: int, k: int, exclude: np.ndarray | None = None
) -> Neighbours:
    """The ``k`` nearest stored items to each full-size query, on prefix ``dim``. ``exclude``:
    one store id per query to leave out (a stored item searched by its own id)."""
    metric = store.manifest.metric
    extra = 0 if exclude is None else 1
    found = min(k + extra, len(store))
    distances, ids = store.index(dim).search(prepare(queries, dim, metric), found)
    scores = _scores_to_similarity(distances, metric)
    if exclude is not None:
        ids, scores = _drop(ids, scores, exclude, min(k, found - 1))
    return Neighbours(ids[:, :k], scores[:, :k], len(store) * dim)


def _drop(
    ids: np.ndarray, scores: np.ndarray, exclude: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each row without its excluded id (stable order), cut to ``k``."""
    keep = ids != exclude[:, None]
    order = np.argsort(~keep, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(ids, order, 1), np.take_along_axis(scores, order, 1)


def funnel_search(
    store: EmbeddingStore,
    queries: np.ndarray,
    dims: list[int],
    shortlist: list[int],
    k: int,
    exclude: np.ndarray | None = None,
) -> Neighbours:
    """Adaptive retrieval: flat search at ``dims[0]`` for ``shortlist[0]`` candidates, then
    each later prefix ``dims[j]`` re-ranks the candidates and keeps ``shortlist[j]`` (the last
    keeps ``k``)."""
    if len(shortlist) != len(dims) - 1:
        raise ValueError("--shortlist: give one size per funnel stage but the last dimension")
    if any(b <= a for a, b in itertools.pairwise(dims)):
        raise ValueError("--funnel: the dimensions must grow from stage to stage")
    sizes = [*shortlist, k]
    if any(b > a for a, b in itertools.pairwise(sizes)) or sizes[-1] > sizes[0]:
        raise ValueError("--shortlist: each stage must keep no more candidates than the last")
    first = flat_search(store, queries, dims[0], sizes[0], exclude)
    ids, cost = first.ids, first.cost
    metric = store.manifest.metric
    scores = first.scores
    for dim, keep in zip(dims[1:], sizes[1:], strict=True):
        query = prepare(queries, dim, metric)  # [Q, d]
        stored = store.prefix(dim)
        scores = np.concatenate(
            [
                _rerank(
                    stored,
                    ids[start : start + RERANK_CHUNK],
                    query[start : start + RERANK_CHUNK],
                    metric,
                )
                for start in range(0, len(ids), RERANK_CHUNK)
            ]
        )
        order = np.argsort(-scores, axis=1, kind="stable")[:, :keep]
        cost += ids.shape[1] * dim
        ids = np.take_along_axis(ids, order, 1)
        scores = np.take_along_axis(scores, order, 1)
    return Neighbours(ids, scores, cost)


# queries re-ranked at a time: the gathered candidates ([chunk, shortlist, d] float32) stay in
# the cache's order of size instead of one array for every query (gigabytes for 10,000)
RERANK_CHUNK = 256


def _rerank(stored: np.ndarray, ids: np.ndarray, query: np.ndarray, metric: str) -> np.ndarray:
    """Scores of each query's candidates ``ids`` [q, s] on the prepared prefixes."""
    candidates = stored[ids]  # [q, s, d]
    if metric == "cosine":
        return np.einsum("qsd,qd->qs", candidates, query)
    return -np.square(candidates - query[:, None, :]).sum(-1)
