"""Declarative studies: a YAML file describes a grid of runs; the runner trains and probes what is
missing and collects one results table.

    name: flexible
    base: {data: {name: mnist}, train: {epochs: 10}}      # a Config, as in config.yaml
    grid:                                                   # each entry: a cartesian product
      - {model: [vae, infovae], model.latent_dim: [2, 8, 16]}
      - {model: [minfovae], model.latent_dim: [16]}
    seeds: [0]
    evaluate: {kinds: [map, sample], probes: [mlp], protocol: cv, folds: 5, subset: null,
               metrics: [information, likelihood], settings: {iw_samples: 100}}
    budgets: {quick: {train.epochs: 2, evaluate.subset: 10000}}
    labels: {vae: VAE}                                      # display names of presets

Axis keys are dotted config fields, or ``model`` for a preset of ``repvae.models.presets``.
Nested (Matryoshka) models are probed at every prefix size; ``evaluate.metrics`` names metrics
of ``repvae evaluate`` (``evaluate.settings`` sets its options) to compute for every run. Each
run lives in ``STUDY/runs/<run-id>/``; a run with weights is not retrained, a run with a
checkpoint resumes, and probe or metric results already in its folder are not recomputed, so an
interrupted study (or one that gained an axis value) completes only what is missing.
``STUDY/results.csv`` (one row per run x representation x prefix x probe or metric) is rebuilt
from the run folders and is the single source for reports. Runs trained in another study folder
(another machine, or a folder since deleted) join through ``STUDY/imported.csv``: their rows,
copied from that folder's ``results.csv`` by ``import_results``, stand in for a run folder
that is not here; a run folder that is here always wins.
"""

from __future__ import annotations

import contextlib
import csv
import fnmatch
import functools
import itertools
import json
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from repvae.api import probe_embeddings, record_results
from repvae.config import Config, ConfigError, apply_overrides, from_dict
from repvae.data import dataset_label
from repvae.models.presets import PRESETS, UNNESTED
from repvae.represent import embed

RESULT_COLUMNS = [
    "run",
    "dataset",
    "method",
    "replaces",
    "latent",
    "dims",
    "seed",
    "kind",
    "probe",
    "protocol",
    "accuracy",
    "std",
    "n_train",
    "n_test",
    "train_seconds",
    "epochs",
    "metric",
    "value",
]

Values = Callable[[dict[str, Any]], dict[str, float]]


def _at(paths: dict[str, tuple[str, ...]]) -> Values:
    """Values read at fixed key paths. A value that is absent (written by an older version) or
    undefined (bits/dim of a continuous likelihood, Inception FID without weights) is left out."""

    def read(result: dict[str, Any]) -> dict[str, float]:
        values: dict[str, float] = {}
        for name, keys in paths.items():
            value: Any = result
            for key in keys:
                value = value.get(key) if isinstance(value, dict) else None
            if isinstance(value, int | float):
                values[name] = value
        return values

    return read


def _label_efficiency_values(result: dict[str, Any]) -> dict[str, float]:
    """Test error (%) with n labels, the way semi-supervised tables (Kingma et al.) print it,
    and Locatello et al.'s acc(100)/acc(10,000) where both sizes were run."""
    values = {
        f"error_percent_{r['size']}_labels": 100.0 * (1.0 - r["mean"])
        for r in result.get("sizes", [])
    }
    if result.get("statistical_efficiency") is not None:
        values["statistical_efficiency"] = result["statistical_efficiency"]
    return values


# The scalar headline numbers of each evaluation/<metric>.json: study rows and `repvae compare`.
METRIC_VALUES: dict[str, Values] = {
    "classifier": _at({"classifier_error_percent": ("error_percent",)}),  # as Kingma et al.
    "label_efficiency": _label_efficiency_values,
    "information": _at(
        {
            "mutual_information": ("mutual_information",),
            "intrinsic_dimension": ("intrinsic_dimension",),
            "active_units": ("active_units",),
            "conditional_entropy": ("conditional_entropy",),
        }
    ),
    "likelihood": _at(
        {
            "bpd_elbo": ("negative_elbo", "bits_per_dim"),
            "bpd_iwae": ("negative_iwae", "bits_per_dim"),
            "nats_elbo": ("negative_elbo", "nats"),
            "nats_iwae": ("negative_iwae", "nats"),
            "reconstruction_nats": ("reconstruction", "nats"),
        }
    ),
    "disentanglement": _at(
        {
            f"{score}_{kind}": (kind, *path)
            for kind in ("map", "sample")
            for score, path in {
                "beta_vae": ("beta_vae", "eval_accuracy"),
                "factor_vae": ("factor_vae", "eval_accuracy"),
                "mig": ("mig", "score"),
                "dci_disentanglement": ("dci", "disentanglement"),
                "dci_completeness": ("dci", "completeness"),
                "dci_informativeness": ("dci", "informativeness_test"),
                "sap": ("sap", "score"),
                "modularity": ("modularity", "score"),
            }.items()
        }
    ),
    # domain FID: on the features of a classifier trained on the dataset itself, so it is not
    # comparable with Inception FID; the reference is the FID of training vs test images.
    "fid": _at(
        {
            "domain_fid": ("domain_fid",),
            "domain_fid_reference": ("domain_fid_reference",),
            "inception_fid": ("inception_fid",),
        }
    ),
    "pictures": _at({}),  # figures only
}


def metric_values(metric: str, result: dict[str, Any]) -> dict[str, float]:
    """The headline numbers of one evaluation/<metric>.json (see ``METRIC_VALUES``)."""
    return METRIC_VALUES[metric](result)


@dataclass
class Evaluation:
    kinds: list[str] = field(default_factory=lambda: ["map"])
    probes: list[str] = field(default_factory=lambda: ["linear", "mlp"])
    protocol: str = "split"
    folds: int = 5
    subset: int | None = None  # probe on a seeded subset of this many training images
    metrics: list[str] = field(default_factory=list)  # see METRIC_VALUES
    settings: dict[str, Any] = field(default_factory=dict)  # repvae.evaluate.suite.Settings


@dataclass
class RunSpec:
    id: str
    method: str
    config: Config
    # nested runs: the label of the separately trained method whose runs this one replaces
    replaces: str = ""


@dataclass
class Study:
    name: str
    base: dict[str, Any]
    grid: list[dict[str, list[Any]]]
    seeds: list[int] = field(default_factory=lambda: [0])
    evaluate: Evaluation = field(default_factory=Evaluation)
    budgets: dict[str, dict[str, Any]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    title: str = ""
    source: str = ""

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Study:
        known = {
            "name",
            "base",
            "grid",
            "seeds",
            "evaluate",
            "budgets",
            "labels",
            "title",
            "source",
        }
        for key in raw:
            if key not in known:
                raise ConfigError(f"study.{key}: unknown key; expected one of {sorted(known)}")
        evaluate = Evaluation(**(raw.get("evaluate") or {}))
        unknown = [m for m in evaluate.metrics if m not in METRIC_VALUES]
        if unknown:
            raise ConfigError(
                f"study.evaluate.metrics: {unknown} unknown; choose from {sorted(METRIC_VALUES)}"
            )
        return cls(
            name=raw["name"],
            base=raw.get("base") or {},
            grid=raw["grid"],
            seeds=raw.get("seeds", [0]),
            evaluate=evaluate,
            budgets=raw.get("budgets") or {},
            labels=raw.get("labels") or {},
            title=raw.get("title", ""),
            source=raw.get("source", ""),
        )

    def with_budget(self, budget: str | None, seeds: list[int] | None = None) -> Study:
        """Apply a named budget: ``train.*``/``data.*``/``model.*`` go to the base config,
        ``evaluate.*`` to the evaluation settings, ``seeds`` replaces the seeds. Explicit
        ``seeds`` (``--seeds``) replace both the study's and the budget's."""
        if budget is None:
            return replace(self, seeds=list(seeds)) if seeds else self
        if budget not in self.budgets:
            raise ConfigError(
                f"--budget: unknown budget {budget!r}; this study has {sorted(self.budgets)}"
            )
        base = json.loads(json.dumps(self.base))
        evaluate = Evaluation(**vars(self.evaluate))
        chosen = self.seeds
        for dotted, value in self.budgets[budget].items():
            section, _, key = dotted.partition(".")
            if dotted == "seeds":
                chosen = list(value)
            elif section == "evaluate":
                setattr(evaluate, key, value)
            else:
                base.setdefault(section, {})[key] = value
        return Study(
            self.name,
            base,
            self.grid,
            list(seeds) if seeds else chosen,
            evaluate,
            self.budgets,
            self.labels,
            self.title,
            self.source,
        )

    def runs(self, overrides: dict[str, Any] | None = None) -> list[RunSpec]:
        """Expand the grid x seeds into runs with stable, readable ids."""
        base = apply_overrides(from_dict(self.base), overrides or {})
        specs = []
        for seed in self.seeds:  # seed-major: a partly finished study has whole replicates
            for block in self.grid:
                axes = list(block)
                for values in itertools.product(*(block[a] for a in axes)):
                    chosen = dict(zip(axes, values, strict=True))
                    specs.append(self._spec(base, chosen, seed))
        ids = [s.id for s in specs]
        if len(set(ids)) != len(ids):
            raise ConfigError("study.grid: two grid entries expand to the same run")
        return specs

    def _spec(self, base: Config, chosen: dict[str, Any], seed: int) -> RunSpec:
        method = chosen.get("model", "vae")
        latent = chosen.get("model.latent_dim", base.model.latent_dim)
        if method not in PRESETS:
            raise ConfigError(
                f"study.grid.model: unknown preset {method!r}; choose from {sorted(PRESETS)}"
            )
        overrides = {**PRESETS[method](latent), "train.seed": seed}
        overrides.update({k: v for k, v in chosen.items() if k != "model"})
        config = apply_overrides(base, overrides)
        parts = [dataset_label(config.data.name), method]
        parts += [f"{k.rpartition('.')[2]}{_slug(v)}" for k, v in chosen.items() if k != "model"]
        parts.append(f"seed{seed}")
        label = self.labels.get(method, method)
        if config.model.nesting and config.model.shared_decoder:
            label += " (shared decoder)"
        # Other swept fields tell runs of one method apart (e.g. beta-VAE (beta=4)).
        named = ("model", "model.latent_dim", "model.shared_decoder")
        swept = [
            f"{k.rpartition('.')[2]}={_slug(v, ',')}" for k, v in chosen.items() if k not in named
        ]
        if swept:
            label += f" ({', '.join(swept)})"
        unnested = UNNESTED.get(method, "")
        replaces = self.labels.get(unnested, unnested) if config.model.nesting else ""
        return RunSpec("-".join(str(p) for p in parts), label, config, replaces)


def _slug(value: Any, sep: str = "_") -> str:
    """A grid value as it appears in run ids and labels: lists join without brackets or spaces."""
    if isinstance(value, list | tuple):
        return sep.join(_slug(v, sep) for v in value)
    return str(value)


def builtin_study(name: str) -> Path:
    """Path of a study shipped with repvae (``repvae/studies/<name>.yaml``)."""
    path = Path(str(resources.files("repvae") / "studies" / f"{name}.yaml"))
    if not path.exists():
        available = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise ConfigError(f"reproduce: unknown study {name!r}; available: {available}")
    return path


def load_study(path: str | Path) -> Study:
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read study file: {err}") from err
    return Study.from_dict(raw)


def _record_key(r: dict[str, Any]) -> tuple:
    return (r["kind"], r.get("dims"), r["probe"], r["protocol"])


def execute_run(spec: RunSpec, study_dir: Path, evaluation: Evaluation, data_cache: dict) -> None:
    """Train (or resume) one run and compute its missing probe results."""
    from repvae.run import load
    from repvae.training import train

    run_dir = study_dir / "runs" / spec.id
    d = spec.config.data
    key = (d.name, d.root, d.val_size, d.seed, d.image_size, d.grayscale)
    if key not in data_cache:
        data_cache.clear()  # keep one dataset in memory at a time
        data_cache[key] = d.load()
    data = data_cache[key]
    saved = run_dir / "config.yaml"
    if saved.exists():
        ours, theirs = spec.config.to_dict(), yaml.safe_load(saved.read_text())
        defaults = Config().to_dict()  # a field added since that run was made had its default
        changed = [
            f"{section}.{key}"
            for section in ("data", "model", "train")
            for key, value in ours[section].items()
            # Where the data lives and whether a bar is drawn do not change results.
            if theirs.get(section, {}).get(key, defaults[section][key]) != value
            and key not in ("progress", "root")
        ]
        if changed:
            raise ConfigError(
                f"{run_dir} was made with a different configuration ({', '.join(changed)}); "
                "delete that run folder to redo it, or choose another study folder (--out)"
            )
    if not (run_dir / "model.safetensors").exists():
        resume = (run_dir / "checkpoints" / "last.ckpt").exists()
        train(spec.config, run_dir, resume=resume, data=data)
    run = load(run_dir)
    done_path = run_dir / "probes.json"
    done = (
        {_record_key(r) for r in json.loads(done_path.read_text())} if done_path.exists() else set()
    )
    protocol = "split" if evaluation.protocol == "split" else f"cv{evaluation.folds}"
    dims = run.model.prefixes if len(run.model.prefixes) > 1 else [None]
    todo = [
        (kind, m)
        for kind in evaluation.kinds
        for m in dims
        if any((kind, m, p, protocol) not in done for p in evaluation.probes)
    ]
    if todo:
        _probe_run(run, todo, data, evaluation, spec.config.train.seed)
    missing = [m for m in evaluation.metrics if not (run_dir / "evaluation" / f"{m}.json").exists()]
    if missing:
        from repvae.evaluate.suite import Settings, evaluate

        settings = Settings(**{"seed": spec.config.train.seed, **evaluation.settings})
        evaluate(run, only=missing, settings=settings, data=data)


def _probe_run(run, todo: list[tuple[str, int | None]], data, evaluation: Evaluation, seed: int):
    """Embed once and probe every missing (kind, prefix) pair, saving after each."""
    done_path = run.dir / "probes.json"
    dims = run.model.prefixes if len(run.model.prefixes) > 1 else [None]
    kinds = sorted({k for k, _ in todo})
    embeddings = embed(
        run,
        kinds,
        dims=sorted({m for _, m in todo if m is not None}) if dims != [None] else None,
        data=data,
        save=False,
    )
    for kind, m in todo:
        emb = embeddings[(kind, m)].for_probing("test", evaluation.subset, seed)
        records = probe_embeddings(
            emb,
            probes=evaluation.probes,
            protocol=evaluation.protocol,
            folds=evaluation.folds,
            seed=seed,
        )
        record_results(
            done_path, records
        )  # after each representation: an interruption loses little


IMPORTED = "imported.csv"
_NUMBER_COLUMNS = (
    *("latent", "dims", "seed", "epochs", "n_train", "n_test"),
    *("accuracy", "std", "train_seconds", "value"),
)


def _number(text: str) -> int | float | None:
    """A CSV cell as the number ``collect`` wrote (an int stays an int), or None if empty."""
    if text in ("", None):
        return None
    try:
        return int(text)
    except ValueError:
        return float(text)


def read_results(path: Path) -> list[dict[str, Any]]:
    """The rows of a ``results.csv`` (or ``imported.csv``) with the types ``collect`` gives
    them: numbers as numbers, empty numeric cells as None."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = set(RESULT_COLUMNS).difference(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: not a study's results.csv (no column {sorted(missing)})")
        rows = list(reader)
    for row in rows:
        try:
            row.update({key: _number(row[key]) for key in _NUMBER_COLUMNS})
        except ValueError as err:
            raise ValueError(f"{path}: run {row['run']}: {err}") from None
    return rows


def run_finished(study_dir: Path, run_id: str) -> bool:
    """Whether the run's folder holds a finished run (training writes summary.json last)."""
    return (study_dir / "runs" / run_id / "summary.json").exists()


def import_results(study_dir: Path, specs: list[RunSpec], sources: list[Path]) -> list[str]:
    """Copy into ``STUDY/imported.csv`` the rows of this study's runs that finished in other
    study folders (their ``results.csv``), for the runs that have no finished folder here.

    A later source, or a later import, replaces the rows of the runs it has. A row's method
    must be the one this study gives its run id (a row of another study would otherwise
    slip in), and it cannot have trained more epochs than this study's budget allows.
    Returns the imported run ids."""
    if not sources:
        return []
    wanted = {s.id: s for s in specs if not run_finished(study_dir, s.id)}
    target = study_dir / IMPORTED
    rows_by_run: dict[str, list[dict[str, Any]]] = {}
    for row in read_results(target) if target.exists() else []:
        rows_by_run.setdefault(row["run"], []).append(row)
    imported: list[str] = []
    for source in sources:
        if not Path(source).is_file():
            raise FileNotFoundError(f"{source}: no such results file to import")
        fresh: dict[str, list[dict[str, Any]]] = {}
        for row in read_results(Path(source)):
            spec = wanted.get(row["run"])
            if spec is None:
                continue
            if row["method"] != spec.method:
                raise ValueError(
                    f"{source}: run {row['run']} is labelled {row['method']!r}, but this "
                    f"study calls it {spec.method!r}: rows of another study?"
                )
            if row["epochs"] is not None and row["epochs"] > spec.config.train.epochs:
                raise ValueError(
                    f"{source}: run {row['run']} trained {row['epochs']} epochs, more than "
                    f"this study's budget ({spec.config.train.epochs}): another budget?"
                )
            fresh.setdefault(row["run"], []).append(row)
        rows_by_run.update(fresh)
        imported += [run for run in fresh if run not in imported]
    if not imported:
        names = ", ".join(map(str, sources))
        raise ValueError(
            f"{names}: no rows for the runs this study lacks ({sorted(wanted) or 'none'})"
        )
    with open(target, "w", newline="") as f:
        writer = csv.DictWriter(f, RESULT_COLUMNS)
        writer.writeheader()
        writer.writerows(row for rows in rows_by_run.values() for row in rows)
    return imported


def collect(study: Study, specs: list[RunSpec], study_dir: Path) -> list[dict[str, Any]]:
    """Rebuild ``results.csv`` from the run folders (only the study's current runs), and from
    ``imported.csv`` for the runs that finished elsewhere."""
    imported: dict[str, list[dict[str, Any]]] = {}
    if (study_dir / IMPORTED).exists():
        for row in read_results(study_dir / IMPORTED):
            imported.setdefault(row["run"], []).append(row)
    rows = []
    for spec in specs:
        run_dir = study_dir / "runs" / spec.id
        if not run_finished(study_dir, spec.id):
            rows += imported.get(spec.id, [])
            continue
        summary = json.loads((run_dir / "summary.json").read_text())
        common = {
            "run": spec.id,
            "dataset": dataset_label(spec.config.data.name),
            "method": spec.method,
            "replaces": spec.replaces,
            "seed": spec.config.train.seed,
            "train_seconds": round(summary["train_seconds"], 1),
            "epochs": summary["epochs"],
        }
        probes = run_dir / "probes.json"
        for r in json.loads(probes.read_text()) if probes.exists() else []:
            rows.append(
                {
                    **common,
                    "latent": r.get("dims") or spec.config.model.latent_dim,
                    "dims": r.get("dims"),
                    "kind": r["kind"],
                    "probe": r["probe"],
                    "protocol": r["protocol"],
                    "accuracy": r["accuracy"],
                    "std": r["std"],
                    "n_train": r["n_train"],
                    "n_test": r["n_test"],
                    "metric": "accuracy",
                    "value": r["accuracy"],
                }
            )
        for metric in study.evaluate.metrics:
            path = run_dir / "evaluation" / f"{metric}.json"
            if not path.exists():
                continue
            result = json.loads(path.read_text())
            for name, value in metric_values(metric, result).items():
                rows.append(
                    {
                        **common,
                        "latent": spec.config.model.latent_dim,
                        "kind": "map" if metric == "information" else "",
                        "protocol": result.get("split", ""),
                        "n_test": result.get("n_images", result.get("n")),
                        "metric": name,
                        "value": value,
                    }
                )
    with open(study_dir / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, RESULT_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return rows


def run_study(
    study: Study,
    study_dir: str | Path,
    *,
    overrides: dict[str, Any] | None = None,
    budget: str | None = None,
    log: Callable[[str], None] | None = None,
    source: str | Path | None = None,
    command: str | None = None,
    workers: int = 1,
    only: list[str] | None = None,
    seeds: list[int] | None = None,
) -> list[dict[str, Any]]:
    """Run every missing piece of the study (of the runs whose id matches one of the ``only``
    glob patterns, when given); returns the collected results rows of all finished runs.

    ``seeds`` replaces the study's (and budget's) seeds, e.g. to add a seed to a finished study
    while its report keeps the earlier ones."""
    log = log or functools.partial(print, flush=True)
    study = study.with_budget(budget, seeds)
    study_dir = Path(study_dir)
    study_dir.mkdir(parents=True, exist_ok=True)
    specs = study.runs(overrides)
    (study_dir / "study.yaml").write_text(
        yaml.safe_dump(
            {
                "name": study.name,
                "file": str(Path(source).resolve()) if source else None,
                "command": command,
                "budget": budget,
                "seeds": study.seeds,
                "overrides": overrides or {},
                "evaluate": vars(study.evaluate),
                "runs": [s.id for s in specs],
            },
            sort_keys=False,
        )
    )
    started = time.perf_counter()
    todo = specs
    if only:
        todo = [s for s in specs if any(fnmatch.fnmatchcase(s.id, p) for p in only)]
        if not todo:
            raise ConfigError(f"--runs {' '.join(only)}: matches none of {[s.id for s in specs]}")

    def progress(done: int, current: str) -> None:
        elapsed = time.perf_counter() - started
        eta = f", ETA {elapsed / done * (len(todo) - done) / 60:.1f} min" if done else ""
        log(f"[{done}/{len(todo)} done] {current}{eta}")

    if workers <= 1:
        data_cache: dict = {}
        for i, spec in enumerate(todo):
            progress(i, f"running {spec.id}")
            execute_run(spec, study_dir, study.evaluate, data_cache)
    else:
        # Separate processes (spawned: forking a process that has started OpenMP threads can
        # deadlock), each with an equal share of the CPU threads.
        threads = max(1, (os.cpu_count() or 1) // workers)
        context = multiprocessing.get_context("spawn")
        with (
            ProcessPoolExecutor(
                workers, mp_context=context, initializer=_worker_init, initargs=(threads,)
            ) as pool,
            _stop_workers_on_exit(),  # inside: it must stop them before the pool waits for them
        ):
            futures = {pool.submit(execute_run, s, study_dir, study.evaluate, {}): s for s in todo}
            for i, future in enumerate(as_completed(futures), 1):
                future.result()  # re-raise a failed run's error here
                progress(i, f"finished {futures[future].id}")
    return collect(study, specs, study_dir)


@contextlib.contextmanager
def _stop_workers_on_exit() -> Iterator[None]:
    """A study stopped by SIGTERM or Ctrl-C stops its workers too.

    Python's default SIGTERM ends the parent at once and leaves the spawned workers training
    on, orphaned, still writing run folders that a restarted study would resume. SIGTERM now
    raises SystemExit in the parent, which stops the workers (each run resumes from its last
    epoch's checkpoint). A failing run is not such an exit: the other runs finish.
    """
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _exit_on_signal) if main else None
    try:
        yield
    except (KeyboardInterrupt, SystemExit):
        children = multiprocessing.active_children()
        for child in children:
            child.terminate()  # outside training this ends it; in training Lightning raises
        for child in children:
            # ...at the end of the batch, and the pool's worker loop then waits for the next
            # run: kill it. Checkpoints are written atomically (Lightning's _atomic_save).
            child.join(timeout=2)
            if child.is_alive():
                child.kill()
        raise
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
