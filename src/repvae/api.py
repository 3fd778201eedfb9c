"""Probing glue: representations of a run (or an embeddings file) -> probe results records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from repvae.evaluate.probes import run_probes
from repvae.represent import Embeddings, embed, kind_tag, parse_kind
from repvae.run import Run


def probe_embeddings(
    emb: Embeddings,
    *,
    probes=("linear", "mlp"),
    protocol: str = "split",
    folds: int = 5,
    seed: int = 0,
    **options: Any,
) -> list[dict[str, Any]]:
    """Run probes on one embeddings set; one record per probe, with the protocol spelled out."""
    name, _ = parse_kind(emb.kind)
    if name == "samples" and protocol == "cv":
        raise ValueError(
            "samples:K is defined for the split protocol only "
            "(train on draws, average over K at test)"
        )
    results = run_probes(
        emb.features["train"],
        emb.labels["train"],
        emb.features["test"],
        emb.labels["test"],
        probes=tuple(probes),
        protocol=protocol,
        folds=folds,
        seed=seed,
        **options,
    )
    return [{"kind": emb.kind, "dims": emb.dims, "seed": seed, **r.as_dict()} for r in results]


def probe(
    run: Run | str | Path,
    kinds: list[str] | tuple[str, ...] = ("map",),
    *,
    dims: list[int | None] | None = None,
    probes=("linear", "mlp"),
    protocol: str = "split",
    folds: int = 5,
    seed: int = 0,
    save: bool = True,
    **options: Any,
) -> list[dict[str, Any]]:
    """Embed (each image encoded once) and probe every kind x prefix size; optionally record the
    results in ``RUN/probes.json`` (merged with earlier results, keyed by
    kind/dims/probe/protocol)."""
    if not isinstance(run, Run):
        from repvae.run import load

        run = load(run)
    embeddings = embed(run, kinds, dims=dims, seed=seed, save=False)
    records = []
    for emb in embeddings.values():
        records += probe_embeddings(
            emb, probes=probes, protocol=protocol, folds=folds, seed=seed, **options
        )
    if save:
        record_results(run.dir / "probes.json", records)
    return records


def record_results(path: Path, records: list[dict[str, Any]]) -> None:
    """Merge records into a JSON list, newer results replacing older ones with the same key."""

    def key(r: dict[str, Any]) -> str:
        return (
            f"{kind_tag(r['kind'], r.get('dims'))}/{r['probe']}/{r['protocol']}/{r.get('seed', 0)}"
        )

    old = json.loads(path.read_text()) if path.exists() else []
    merged = {key(r): r for r in old}
    merged.update({key(r): r for r in records})
    path.write_text(json.dumps(list(merged.values()), indent=2))
