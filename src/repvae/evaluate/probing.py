"""Probing glue: representations of a run (or an embeddings file) -> probe results records,
and the ``probes`` metric of ``repvae evaluate``."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from repvae.evaluate.metric import Context, Metric, Result
from repvae.evaluate.paired import paired_test
from repvae.evaluate.probes import PREDICTORS, route_options, run_probes
from repvae.files import write_text
from repvae.represent import Embeddings, embed, kind_tag, parse_kind
from repvae.run import Run, load


def probe_embeddings(
    emb: Embeddings,
    *,
    probes=("linear", "mlp"),
    protocol: str = "split",
    folds: int = 5,
    seed: int = 0,
    **options: Any,
) -> list[dict[str, Any]]:
    """Run probes on one embeddings set; one record per probe, with the protocol spelled out
    (and the embeddings' note on what the probe measures, if they carry one)."""
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
    note = {"note": emb.note} if emb.note else {}
    return [
        {"kind": emb.kind, "dims": emb.dims, "seed": seed, **r.as_dict(), **note} for r in results
    ]


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
    write_text(path, json.dumps(list(merged.values()), indent=2))


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
        m = dims  # None: the whole representation
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


def _probes(ctx: Context) -> Result:
    s = ctx.settings
    model = ctx.run.model
    usable = [
        k
        for k in s.kinds
        if parse_kind(k)[0] in ("map", *model.capabilities.kinds)
        or model.capabilities.continuous_posterior
    ]
    embeddings = embed(
        ctx.run, usable, splits=("train", ctx.split), data=ctx.data, seed=s.seed, save=False
    )
    records = []
    for full in embeddings.values():
        emb = full.for_probing(ctx.split, s.probe_subset, s.seed)
        protocol = "split" if emb.kind.startswith("samples") else s.protocol
        records += probe_embeddings(
            emb, probes=s.probes, protocol=protocol, folds=s.folds, seed=s.seed
        )
    result: Result = {"split": ctx.split, "results": records}
    left_out = [k for k in s.kinds if k not in usable]
    if left_out:
        reason = model.capabilities.why_not("continuous_posterior")
        result["skipped_kinds"] = {k: reason for k in left_out}
    return result


def probe_quantity(record: dict[str, Any]) -> str:
    """How a probe record is named in comparisons (accuracy in %)."""
    return f"{record['probe']} probe, {record['kind']} ({record['protocol']}) %"


def _headline(result: Result) -> dict[str, float]:
    return {probe_quantity(r): 100 * r["accuracy"] for r in result.get("results", [])}


def _summary(result: Result) -> list[str]:
    lines = [
        f"  probe {r['probe']:<8} {r['kind']:<10} {r['protocol']:<5} "
        f"{100 * r['accuracy']:6.2f}%  (n_train {r['n_train']}, n_test {r['n_test']})"
        for r in result.get("results", [])
    ]
    for kind, reason in result.get("skipped_kinds", {}).items():
        lines.append(f"  probe on {kind} skipped: {reason}")
    return lines + [f"  note: {note}" for note in probe_notes(result.get("results", []))]


def probe_notes(records: list[dict[str, Any]]) -> list[str]:
    """The notes on what the probes measured (e.g. a style code), each once."""
    return list(dict.fromkeys(r["note"] for r in records if r.get("note")))


METRIC = Metric("probes", _probes, _headline, _summary)
