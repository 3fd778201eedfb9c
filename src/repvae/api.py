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


def paired_probe(
    run_a: Run | str | Path,
    run_b: Run | str | Path,
    *,
    kind: str = "map",
    dims: int | None = None,
    probe: str = "linear-unscaled",
    split: str = "test",
    subset: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """One probe fitted on each run's representation, scored on the same images and compared
    pairwise (``repvae.evaluate.paired``): is A's accuracy really above B's?

    Both runs must have been trained on the same dataset and split; the data is loaded once
    (from A's config, so B's data root may differ). ``subset`` draws the same seeded
    ``subset`` training and ``subset // 6`` test images for both.
    """
    from dataclasses import asdict

    from repvae.evaluate.paired import paired_test
    from repvae.evaluate.probes import PREDICTORS, route_options
    from repvae.run import load

    runs = [r if isinstance(r, Run) else load(r) for r in (run_a, run_b)]
    # Every data field must match except the root: the same files may sit in another folder.
    a_data, b_data = (asdict(r.config.data) for r in runs)
    differ = [
        f"data.{f}: {a_data[f]!r} vs {b_data[f]!r}"
        for f in a_data
        if f != "root" and a_data[f] != b_data[f]
    ]
    if differ:
        raise ValueError(
            f"{runs[0].dir} and {runs[1].dir} saw different data ({'; '.join(differ)})"
        )
    options = route_options([probe], {"seed": seed})[probe]
    data = runs[0].config.data.load()
    predictions, labels = [], []
    for run in runs:
        m = dims or run.model.latent_dim
        (emb,) = embed(
            run, [kind], splits=("train", split), dims=[m], data=data, save=False
        ).values()
        emb = emb.for_probing(split, subset, seed)
        predictions.append(
            PREDICTORS[probe](
                emb.features["train"], emb.labels["train"], emb.features["test"], **options
            )
        )
        labels.append(emb.labels["test"])  # the same images for both runs
    return {
        "a": str(runs[0].dir),
        "b": str(runs[1].dir),
        "protocol": {
            "kind": kind,
            "dims": dims,
            "probe": probe,
            "split": split,
            "n_train": len(emb.labels["train"]),
            "subset_seed": seed if subset is not None else None,
            "probe_seed": seed,
        },
        **paired_test(predictions[0], predictions[1], labels[0]),
    }
