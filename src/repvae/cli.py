"""Command-line interface: ``repvae train | embed | sample | probe | evaluate | compare | paired |
reproduce | run-experiment | report | demo``.

The commands that train (train, reproduce, run-experiment, demo) import their modules when they
run: Lightning takes about 4 s to import, and the other commands should not pay for it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from repvae.config import (
    ARCHITECTURES,
    AUTO_ARCHITECTURE,
    LIKELIHOODS,
    PRESETS,
    Config,
    ConfigError,
    apply_overrides,
    from_dict,
    load_config,
    parse_override,
)
from repvae.data import DatasetError, dataset_label
from repvae.evaluate.boosting import DCI_BACKENDS
from repvae.evaluate.metric import Settings
from repvae.evaluate.probes import PROBES
from repvae.evaluate.probing import (
    paired_probe,
    probe,
    probe_embeddings,
    probe_notes,
    record_results,
)
from repvae.evaluate.suite import METRICS, evaluate, summary_lines
from repvae.export import ONNX_FILE, Encoder, OnnxEncoder, TorchEncoder, export_onnx
from repvae.files import write_text
from repvae.plots.figures import save_figure
from repvae.plots.pictures import sample_figure
from repvae.report.compare import compare_runs
from repvae.report.study import report_study
from repvae.report.tables import accuracy_rows, markdown_table
from repvae.represent import Embeddings, embed, kind_tag, layer_kinds
from repvae.run import RunBusy, TrainingDiverged, load, read_run_config
from repvae.serve import DEFAULT_MAX_BODY
from repvae.store import EmbeddingStore, flat_search, funnel_search
from repvae.store.core import store_threads
from repvae.store.indexing import index_split
from repvae.studies.executors import EXECUTORS, RunFailed, make_executor
from repvae.studies.spec import builtin_study, load_study

# CLI flag -> config field; every flag is optional and overrides the config file.
TRAIN_FLAGS: dict[str, tuple[str, type]] = {
    "dataset": ("data.name", str),
    "data_root": ("data.root", str),
    "image_size": ("data.image_size", int),
    "latent_dim": ("model.latent_dim", int),
    "architecture": ("model.architecture", str),
    "likelihood": ("model.likelihood", str),
    "beta": ("model.beta", float),
    "kl_warmup": ("train.kl_warmup_steps", int),
    "batch_size": ("train.batch_size", int),
    "epochs": ("train.epochs", int),
    "lr": ("train.lr", float),
    "seed": ("train.seed", int),
    "device": ("train.device", str),
    "patience": ("train.patience", int),
}


def _add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="YAML/JSON config file; flags override it")
    p.add_argument(
        "--model",
        choices=sorted(PRESETS.names()),
        help="model preset (sets model.* fields): "
        + "; ".join(f"{name}: {preset.help}" for name, preset in PRESETS.items()),
    )
    # option names from the registries: the help lists what the config check accepts
    named = {
        "model.architecture": (AUTO_ARCHITECTURE, *ARCHITECTURES.names()),
        "model.likelihood": LIKELIHOODS.names(),
    }
    for flag, (field, kind) in TRAIN_FLAGS.items():
        choices = f" (one of {', '.join(named[field])})" if field in named else ""
        p.add_argument("--" + flag.replace("_", "-"), type=kind, help=f"sets {field}{choices}")
    p.add_argument(
        "--set", action="append", default=[], metavar="SECTION.FIELD=VALUE", help="any config field"
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def build_config(args: argparse.Namespace, base: Config | None = None) -> Config:
    """Config file (or ``base``), then the model preset, then flags, then --set overrides."""
    cfg = load_config(args.config) if getattr(args, "config", None) else (base or from_dict({}))
    overrides: dict[str, Any] = {}
    if getattr(args, "model", None):
        overrides.update(
            PRESETS.get(args.model).overrides(
                cfg.model.latent_dim if args.latent_dim is None else args.latent_dim
            )
        )
    for flag, (field, _) in TRAIN_FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            overrides[field] = value
    if getattr(args, "no_progress", False):
        overrides["train.progress"] = False
    overrides.update(parse_override(s) for s in args.set)
    return apply_overrides(cfg, overrides)


def cmd_train(args: argparse.Namespace) -> int:
    from repvae.training import train  # imports Lightning (see the module docstring)

    if args.resume:
        if args.out is not None or args.overwrite:
            raise ConfigError("--resume RUN continues RUN: it takes no --out or --overwrite")
        last = args.resume / "checkpoints" / "last.ckpt"
        if not last.exists():
            raise FileNotFoundError(f"{last}: nothing to resume (no checkpoint in {args.resume})")
        base, _, _ = read_run_config(args.resume)
        cfg = build_config(args, base)
        run = train(cfg, args.resume, resume=True)
    else:
        if args.out is None:
            raise ConfigError("--out: required (the run folder to create), or use --resume RUN")
        run = train(build_config(args), args.out, overwrite=args.overwrite)
    if not run.summary:  # a non-zero DDP rank: rank 0 reports
        return 0
    load(run.dir)  # fail now, not later, if the saved run cannot be rebuilt
    print(json.dumps({"run": str(run.dir), **run.summary}, indent=2))
    return 0


def _kinds(args: argparse.Namespace) -> list[str]:
    """``--kind``, or the kinds ``--layer`` names (a hierarchical family's layers)."""
    return layer_kinds(args.layer) if args.layer else list(args.kind)


def cmd_embed(args: argparse.Namespace) -> int:
    run = load(args.run, device=args.device)
    kinds = _kinds(args)
    results = embed(run, kinds, splits=tuple(args.splits), dims=args.dims, seed=args.seed)
    for kind, dims in results:
        print(run.dir / "embeddings" / f"{kind_tag(kind, dims)}.npz")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    run = load(args.run, device=args.device)
    figure = sample_figure(run.model, n=args.n, label=args.label, seed=args.seed)
    print(f"{save_figure(figure, args.out)}: {figure.axes[0].get_title()}")
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    options = {
        "protocol": args.protocol,
        "folds": args.folds,
        "seed": args.seed,
        "probes": args.probes,
    }
    if args.target.suffix == ".npz":
        records = probe_embeddings(Embeddings.load(args.target), **options)
        record_results(args.target.with_suffix(".probes.json"), records)
    else:
        records = probe(args.target, _kinds(args), dims=args.dims, **options)
    columns = ["kind", "dims", "probe", "protocol", "accuracy %", "n_train", "n_test", "seconds"]
    print(markdown_table(accuracy_rows(records), columns))
    for note in probe_notes(records):
        print(f"note: {note}")
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    from repvae.studies.runner import run_study  # imports Lightning (see the module docstring)

    path = builtin_study(args.name) if args.command == "reproduce" else args.file
    study = load_study(path)
    overrides = dict(parse_override(s) for s in args.set)
    if getattr(args, "dataset", None):
        overrides["data.name"] = args.dataset
    if args.image_size:
        overrides["data.image_size"] = args.image_size
    if args.data_root:
        overrides["data.root"] = str(args.data_root)
    dataset = overrides.get("data.name")
    name = study.name + (f"-{dataset_label(dataset)}" if dataset else "")
    out = args.out or Path("studies") / f"{name}-{args.budget or 'default'}"
    command = "repvae " + " ".join(shlex.quote(a) for a in args.argv)
    asked = {
        "cpus": args.cpus_per_run,
        "gpus": args.gpus_per_run,
        "partition": args.partition,
        "time": args.time,
    }
    resources = replace(
        study.with_budget(args.budget, args.seeds).resources,
        **{key: value for key, value in asked.items() if value is not None},
    )
    resources.check()
    executor = make_executor(
        args.executor,
        resources,
        out,
        workers=args.workers,
        address=args.address,
        retries=args.retries,
        shared_fs=not args.no_shared_fs,
        slurm_cluster=args.slurm_cluster,
    )
    run_study(
        study,
        out,
        overrides=overrides,
        budget=args.budget,
        source=path,
        command=command,
        only=args.runs,
        seeds=args.seeds,
        executor=executor,
    )
    markdown_path, html_path = report_study(out)
    print(markdown_path.read_text())
    print(f"results: {out / 'results.csv'}\nreport: {html_path} (Markdown twin: {markdown_path})")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    markdown_path, html_path = report_study(args.study, args.import_results)
    print(f"report: {html_path} ({html_path.stat().st_size / 1024:.0f} KiB, self-contained)")
    print(f"Markdown twin: {markdown_path}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    names = args.names or [run.name for run in args.runs]
    if len(names) != len(args.runs):
        print("repvae compare: give one --names entry per run", file=sys.stderr)
        return 2
    path = compare_runs(dict(zip(names, args.runs, strict=True)), args.out)
    print(path.read_text())
    return 0


def cmd_paired(args: argparse.Namespace) -> int:
    result = paired_probe(
        args.run_a,
        args.run_b,
        kind=args.kind,
        dims=args.dims,
        probe=args.probe,
        split=args.split,
        subset=args.probe_subset,
        seed=args.seed,
    )
    if args.out:
        write_text(args.out, json.dumps(result, indent=2))
    low, high = (100 * v for v in result["interval"])
    print(json.dumps(result, indent=2))
    print(
        f"{result['protocol']['probe']} on {result['protocol']['kind']}, "
        f"{result['n']} {args.split} images: A {100 * result['accuracy_a']:.2f} %, "
        f"B {100 * result['accuracy_b']:.2f} %, A - B {100 * result['difference']:+.2f} points "
        f"({100 * result['confidence']:.0f} % CI {low:+.2f} to {high:+.2f}), "
        f"McNemar exact p = {result['mcnemar_exact_p']:.2g}"
    )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    run = load(args.run, device=args.device)
    only = list(args.only or METRICS)
    if args.bpd and "likelihood" not in only:
        only = [*([] if args.only is None else only), "likelihood"]
    settings = Settings(
        kinds=_kinds(args),
        probes=args.probes,
        protocol=args.protocol,
        folds=args.folds,
        probe_subset=args.probe_subset,
        iw_samples=args.iw_samples,
        likelihood_images=None if args.iw_images == 0 else args.iw_images,
        fid_samples=args.fid_samples,
        disentanglement_fast=args.fast,
        dci_backend=args.dci_backend,
        seed=args.seed,
    )
    results = evaluate(run, only=only, split=args.split, settings=settings, log=print)
    for line in summary_lines(results):
        print(line)
    print(f"written: {run.dir / 'evaluation'}")
    return 0


def _encoder(run_dir: Path, kind: str, device: str | None = None) -> Encoder:
    """The run's encoder as torch (its weights) or ONNX Runtime (its exported graph)."""
    if kind == "onnx":
        path = run_dir / ONNX_FILE
        if not path.exists():
            raise FileNotFoundError(
                f"{path}: missing; export it first with `repvae export {run_dir} --format onnx`"
            )
        return OnnxEncoder(path)
    return TorchEncoder(load(run_dir, device=device).model)


def cmd_index(args: argparse.Namespace) -> int:
    run = load(args.run, device=args.device)
    data_config = run.config.data
    if args.dataset:
        data_config = replace(data_config, name=args.dataset)
    if args.data_root:
        data_config = replace(data_config, root=str(args.data_root))
    data = data_config.load()
    if data.shape != run.model.shape:
        raise ValueError(
            f"--dataset {data.name}: images of {list(data.shape)}, but the run's encoder takes "
            f"{list(run.model.shape)}"
        )
    if args.append:
        store = EmbeddingStore.open(args.out)
        if store.manifest.dim != run.model.representation_dim:
            raise ValueError(f"{args.out}: holds {store.manifest.dim}-number embeddings")
    else:
        prefixes = run.model.prefixes
        store = EmbeddingStore.create(
            args.out,
            run=str(Path(args.run).resolve()),
            dim=run.model.representation_dim,
            shape=run.model.shape,
            prefixes=prefixes,
            index_dims=args.dims or prefixes,
            metric=args.metric,
            class_names=list(data.class_names),
        )
    encoder = _encoder(args.run, args.encoder, args.device)
    added = index_split(
        store,
        encoder,
        data,
        args.split,
        keep_images=not args.no_images,
        progress=not args.no_progress,
        log=print,
    )
    built = store.build_indexes()
    print(
        f"{args.out}: {len(store)} items ({added} added from {data.name}/{args.split}); "
        f"FAISS indexes at m = {', '.join(map(str, built))}"
    )
    return 0


def _query(store: EmbeddingStore, text: str, encoder_kind: str) -> tuple[np.ndarray, int | None]:
    """A --query: a stored id, or an image file encoded with the store's run."""
    if text.isdigit():
        item = int(text)
        if item >= len(store):
            raise ValueError(f"--query: no item {item}; ids run from 0 to {len(store) - 1}")
        return store.item(item)[0][None], item
    path = Path(text)
    if not path.is_file():
        raise FileNotFoundError(f"--query: {path} is neither a stored id nor an image file")
    c, h, w = store.manifest.shape
    with Image.open(path) as image:
        picture = np.asarray(image.convert("L" if c == 1 else "RGB"), dtype=np.uint8)
    if picture.shape[:2] != (h, w):
        raise ValueError(f"--query: {path} is {picture.shape[1]}x{picture.shape[0]}, not {w}x{h}")
    pixels = picture[None] if c == 1 else picture.transpose(2, 0, 1)
    return _encoder(Path(store.manifest.run), encoder_kind)(pixels[None]), None


def cmd_search(args: argparse.Namespace) -> int:
    store = EmbeddingStore.open(args.store)
    queries, item = _query(store, args.query, args.encoder)
    exclude = None if item is None else np.array([item])
    started = time.perf_counter()
    if args.funnel:
        found = funnel_search(store, queries, args.funnel, args.shortlist or [], args.k, exclude)
        how = f"funnel {' -> '.join(map(str, args.funnel))}, shortlist {args.shortlist}"
    else:
        dim = args.dim or store.manifest.dim  # default: the whole stored embedding
        if not 0 < dim <= store.manifest.dim:
            raise ValueError(
                f"--dim: {dim} is not a prefix size of the store (1..{store.manifest.dim})"
            )
        found = flat_search(store, queries, dim, args.k, exclude)
        how = f"flat at m = {dim}"
    seconds = time.perf_counter() - started
    names = store.manifest.class_names
    rows = [
        {
            "rank": rank + 1,
            "id": int(i),
            "label": names[int(store.labels[i])] if names else int(store.labels[i]),
            "score": round(float(score), 4),
        }
        for rank, (i, score) in enumerate(zip(found.ids[0], found.scores[0], strict=True))
    ]
    print(markdown_table(rows, ["rank", "id", "label", "score"]))
    print(f"{how}: {1000 * seconds:.2f} ms, {found.cost:,} multiply-adds, {len(store)} items")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    run = load(args.run, device="cpu")
    out = args.out or Path(args.run) / ONNX_FILE
    export_onnx(run.model, out)
    check = OnnxEncoder(out)
    images = run.config.data.load().test.images[:64].numpy()
    gap = float(np.abs(check(images) - TorchEncoder(run.model)(images)).max())
    print(f"{out}: the MAP encoder as ONNX (batch axis dynamic); max |onnx - torch| = {gap:.2e}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    # optional dependencies (repvae[serve]: FastAPI, uvicorn): imported by the command that serves
    import uvicorn

    from repvae.serve.app import ServiceSettings, create_app

    store = EmbeddingStore.open(args.store)
    encoder = _encoder(Path(store.manifest.run), args.encoder)
    token = args.token or os.environ.get("REPVAE_TOKEN") or None
    settings = ServiceSettings(
        token=token,
        max_body=args.max_body,
        encoder_name=args.encoder,
        funnel=args.funnel or [],
        shortlist=args.shortlist or [],
    )
    with store_threads(args.faiss_threads):
        app = create_app(store, encoder, settings)
        print(f"serving {args.store} ({len(store)} items) on http://{args.host}:{args.port}/")
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from repvae.demo import demo  # imports Lightning (see the module docstring)

    demo(args.out, epochs=args.epochs, progress=not args.no_progress)
    return 0


def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None


def _add_executor_args(s: argparse.ArgumentParser) -> None:
    """Where a study's runs execute (docs/scaling.md)."""
    g = s.add_argument_group("where the runs execute (docs/scaling.md)")
    g.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help="local: this machine (default); ray: one Ray task per run (repvae[ray]); "
        "slurm: one Slurm job per run through submitit (repvae[slurm])",
    )
    g.add_argument(
        "--address", help="ray: the cluster to join (e.g. auto); default: start Ray here"
    )
    g.add_argument(
        "--cpus-per-run", type=int, help="ray, slurm: CPU cores per run (resources.cpus)"
    )
    g.add_argument(
        "--gpus-per-run",
        type=float,
        help="ray, slurm: GPUs per run (resources.gpus; on Ray a share such as 0.25)",
    )
    g.add_argument("--partition", help="slurm: partition (resources.partition)")
    g.add_argument(
        "--time", type=int, metavar="MINUTES", help="slurm: time per job (resources.time)"
    )
    g.add_argument(
        "--retries",
        type=int,
        default=3,
        help="ray: times a run whose worker died starts again; slurm: requeues after a "
        "time-out (preemption always requeues); each resumes from the last checkpoint",
    )
    g.add_argument(
        "--no-shared-fs",
        action="store_true",
        help="workers do not see the study folder: each run's folder travels with its task "
        "and back (checkpoints stay on the worker)",
    )
    g.add_argument(
        "--slurm-cluster",
        choices=["slurm", "local"],
        default="slurm",
        help="local: submitit runs the same jobs as subprocesses here (to try a study out)",
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="repvae", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model into a run folder")
    _add_train_args(t)
    t.add_argument("--out", type=Path, help="run folder to create")
    t.add_argument("--resume", type=Path, metavar="RUN", help="continue an interrupted run")
    t.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run the --out folder holds (weights, checkpoints, logs, embeddings, "
        "evaluation); without it such a folder is refused",
    )
    t.set_defaults(func=cmd_train)

    kinds_help = (
        "representation kinds: map, sample, samples:K, dist; a family's own (vqvae: codes; "
        "hvae: layer1, layer2, ...)"
    )
    layer_help = (
        "hierarchical families: the layers' posterior means, N = 1 (bottom) to L, or all "
        "(concatenated: the map kind); replaces --kind"
    )
    e = sub.add_parser("embed", help="write representations of a run's splits (npz)")
    e.add_argument("run", type=Path)
    e.add_argument("--kind", nargs="+", default=["map"], help=kinds_help)
    e.add_argument("--layer", nargs="+", help=layer_help)
    e.add_argument(
        "--dims", nargs="+", type=int, help="Matryoshka prefix sizes (default: full latent)"
    )
    e.add_argument(
        "--splits", nargs="+", default=["train", "test"], choices=["train", "val", "test"]
    )
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--device", default=None)
    e.set_defaults(func=cmd_embed)

    sa = sub.add_parser("sample", help="draw images from a run's prior (families that generate)")
    sa.add_argument("run", type=Path)
    sa.add_argument(
        "-n",
        type=int,
        help="images (default 64); for a class-conditional model without --label, the rows of "
        "prior draws z, each decoded with every class (default 8)",
    )
    sa.add_argument("--label", type=int, help="class to draw (class-conditional models: cvae, m2)")
    sa.add_argument("--out", type=Path, required=True, help="the picture to write (.png)")
    sa.add_argument("--seed", type=int, default=0)
    sa.add_argument("--device", default=None)
    sa.set_defaults(func=cmd_sample)

    pr = sub.add_parser("probe", help="linear / nonlinear probes on a run or an embeddings .npz")
    pr.add_argument("target", type=Path, help="run folder or embeddings .npz file")
    pr.add_argument("--kind", nargs="+", default=["map"], help=kinds_help)
    pr.add_argument("--layer", nargs="+", help=layer_help)
    pr.add_argument("--dims", nargs="+", type=int, help="Matryoshka prefix sizes")
    pr.add_argument("--probes", nargs="+", default=["linear", "mlp"], help=", ".join(PROBES))
    pr.add_argument("--protocol", choices=["split", "cv"], default="split")
    pr.add_argument("--folds", type=int, default=5)
    pr.add_argument("--seed", type=int, default=0)
    pr.set_defaults(func=cmd_probe)

    for name in ("reproduce", "run-experiment"):
        if name == "reproduce":
            s = sub.add_parser(
                name, help="run a published study shipped with repvae (resumes if interrupted)"
            )
            s.add_argument("name", help="study name, e.g. flexible")
            s.add_argument("--dataset", help="dataset to run the study on (overrides data.name)")
        else:
            s = sub.add_parser(
                name, help="run a study described by a YAML experiment file (resumes)"
            )
            s.add_argument("file", type=Path)
        s.add_argument("--budget", help="named budget of the study (e.g. quick, standard, full)")
        s.add_argument(
            "--workers",
            type=int,
            help="runs at once: local processes (default 1); with ray or slurm a cap "
            "(default: as many as the cluster gives)",
        )
        s.add_argument("--data-root", type=Path)
        s.add_argument("--image-size", type=int, help="sets data.image_size (resizes images)")
        s.add_argument("--out", type=Path, help="study folder (default studies/<name>-<budget>)")
        s.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
        s.add_argument(
            "--runs",
            nargs="+",
            metavar="PATTERN",
            help="run only the runs whose id matches a glob (e.g. '*-infovae-*'); "
            "the report covers every finished run",
        )
        s.add_argument(
            "--seeds",
            nargs="+",
            type=int,
            metavar="SEED",
            help="seeds to run instead of the study's (list the earlier ones too to keep them "
            "in the report)",
        )
        _add_executor_args(s)
        s.set_defaults(func=cmd_study)

    defaults = Settings()
    ev = sub.add_parser("evaluate", help="measure a run's representations (evaluation/*.json)")
    ev.add_argument("run", type=Path)
    ev.add_argument("--only", nargs="+", choices=METRICS, help="metrics (default: all)")
    ev.add_argument("--bpd", action="store_true", help="the likelihood bounds (with --only: add)")
    ev.add_argument("--split", choices=["train", "val", "test"], default="test")
    ev.add_argument("--kind", nargs="+", default=defaults.kinds, help=kinds_help)
    ev.add_argument("--layer", nargs="+", help=layer_help)
    ev.add_argument("--probes", nargs="+", default=defaults.probes, help=", ".join(PROBES))
    ev.add_argument("--protocol", choices=["split", "cv"], default=defaults.protocol)
    ev.add_argument("--folds", type=int, default=defaults.folds)
    ev.add_argument("--probe-subset", type=int, help="training images for the probes")
    ev.add_argument("--iw-samples", type=int, default=defaults.iw_samples, help="IWAE K")
    ev.add_argument(
        "--iw-images",
        type=int,
        default=defaults.likelihood_images,
        help="test images for the likelihood bounds (0: all)",
    )
    ev.add_argument("--fid-samples", type=int, default=defaults.fid_samples)
    ev.add_argument("--fast", action="store_true", help="cheaper disentanglement settings")
    ev.add_argument(
        "--dci-backend",
        choices=DCI_BACKENDS,
        default=defaults.dci_backend,
        help="DCI's gradient-boosted trees: lightgbm (scikit-learn's algorithm grown by "
        "LightGBM, under a minute on shapes) or sklearn (disentanglement_lib's "
        "GradientBoostingClassifier itself, minutes per representation)",
    )
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--device", default=None)
    ev.set_defaults(func=cmd_evaluate)

    c = sub.add_parser("compare", help="evaluation results of several runs side by side")
    c.add_argument("runs", type=Path, nargs="+", help="run folders evaluated with repvae evaluate")
    c.add_argument("--names", nargs="+", help="column names (default: run folder names)")
    c.add_argument("--out", type=Path, default=Path("comparison"))
    c.set_defaults(func=cmd_compare)

    pa = sub.add_parser(
        "paired",
        help="is run A's probe accuracy really above run B's? (same images, McNemar's test)",
    )
    pa.add_argument("run_a", type=Path)
    pa.add_argument("run_b", type=Path)
    pa.add_argument("--kind", default="map", help=kinds_help)
    pa.add_argument("--dims", type=int, help="Matryoshka prefix size (default: full latent)")
    pa.add_argument("--probe", default="linear-unscaled", choices=PROBES)
    pa.add_argument("--split", choices=["val", "test"], default="test")
    pa.add_argument(
        "--probe-subset", type=int, help="training images for the probes (default: all)"
    )
    pa.add_argument("--seed", type=int, default=0)
    pa.add_argument("--out", type=Path, help="also write the result as JSON here")
    pa.set_defaults(func=cmd_paired)

    r = sub.add_parser(
        "report", help="write a study's self-contained HTML report and Markdown twin"
    )
    r.add_argument("study", type=Path, help="study folder (made by reproduce or run-experiment)")
    r.add_argument(
        "--import",
        dest="import_results",
        type=Path,
        nargs="+",
        default=[],
        metavar="RESULTS_CSV",
        help="results.csv of the same study run in other folders (other machines, or a folder "
        "since deleted): the runs this folder lacks are taken from them, and kept",
    )
    r.set_defaults(func=cmd_report)

    ix = sub.add_parser("index", help="encode a dataset once into an embedding store")
    ix.add_argument("run", type=Path)
    ix.add_argument("--dataset", help="dataset to index (default: the run's)")
    ix.add_argument("--data-root", type=Path)
    ix.add_argument("--split", choices=["train", "val", "test"], default="train")
    ix.add_argument("--out", type=Path, required=True, help="the store folder")
    ix.add_argument(
        "--append",
        action="store_true",
        help="add to an existing store (resumes an interrupted one)",
    )
    ix.add_argument(
        "--dims", nargs="+", type=int, help="prefix sizes to index (default: the run's nesting)"
    )
    ix.add_argument("--metric", choices=["cosine", "l2"], default="cosine")
    ix.add_argument("--encoder", choices=["torch", "onnx"], default="torch")
    ix.add_argument("--no-images", action="store_true", help="keep embeddings only")
    ix.add_argument("--no-progress", action="store_true")
    ix.add_argument("--device", default=None)
    ix.set_defaults(func=cmd_index)

    se = sub.add_parser("search", help="nearest neighbours in a store, flat or funnel")
    se.add_argument("store", type=Path)
    se.add_argument("--query", required=True, help="a stored id, or an image file")
    se.add_argument(
        "--dim", type=int, help="prefix size m (flat search; default: the whole embedding)"
    )
    se.add_argument("-k", type=int, default=10)
    se.add_argument(
        "--funnel", type=_int_list, metavar="M1,M2,...", help="adaptive retrieval: prefix sizes"
    )
    se.add_argument(
        "--shortlist", type=_int_list, metavar="S1,...", help="candidates kept after each stage"
    )
    se.add_argument("--encoder", choices=["torch", "onnx"], default="torch")
    se.set_defaults(func=cmd_search)

    ex = sub.add_parser("export", help="write a run's MAP encoder as ONNX")
    ex.add_argument("run", type=Path)
    ex.add_argument("--format", choices=["onnx"], default="onnx")
    ex.add_argument("--out", type=Path, help=f"default RUN/{ONNX_FILE}")
    ex.set_defaults(func=cmd_export)

    sv = sub.add_parser("serve", help="serve a store over HTTP (FastAPI), with a search page")
    sv.add_argument("store", type=Path)
    sv.add_argument("--host", default="127.0.0.1", help="default: loopback only")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--encoder", choices=["torch", "onnx"], default="torch")
    sv.add_argument("--token", help="bearer token for the endpoints that write (or $REPVAE_TOKEN)")
    sv.add_argument("--max-body", type=int, default=DEFAULT_MAX_BODY, help="bytes per request")
    sv.add_argument("--funnel", type=_int_list, help="the page's default funnel ladder")
    sv.add_argument("--shortlist", type=_int_list)
    sv.add_argument("--faiss-threads", type=int, default=1)
    sv.add_argument("--log-level", default="warning")
    sv.set_defaults(func=cmd_serve)

    d = sub.add_parser(
        "demo", help="the main job: train on the embedded digits and probe (about a minute)"
    )
    d.add_argument("--out", type=Path, default=Path("runs/demo"))
    d.add_argument("--epochs", type=int, default=None, help="override the demo's epoch budget")
    d.add_argument("--no-progress", action="store_true")
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    args.argv = argv  # recorded in study folders as the command that produced them
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s"
    )
    started = time.perf_counter()
    try:
        code = args.func(args)
    except (
        ConfigError,
        DatasetError,
        FileNotFoundError,
        FileExistsError,
        ValueError,
        TrainingDiverged,
        RunBusy,
        RunFailed,
        OSError,  # a full disk, a read-only folder: the message names the file
    ) as err:
        print(f"repvae: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        print(f"repvae: {err or 'interrupted'}", file=sys.stderr)
        return 130
    if args.verbose:
        print(f"done in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
