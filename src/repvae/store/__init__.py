"""Flexible embeddings in use: a durable store of full-size MAP embeddings (``core``), and
nearest-neighbour search at any prefix size, flat or adaptive (``search``)."""

from repvae.store.core import EmbeddingStore, StoreError
from repvae.store.search import Neighbours, flat_search, funnel_search

__all__ = ["EmbeddingStore", "Neighbours", "StoreError", "flat_search", "funnel_search"]
