"""Running a study: train what is missing, probe and evaluate it, collect the results table.

Each run lives in ``STUDY/runs/<run-id>/``; a run with weights is not retrained, a run with a
checkpoint resumes, and probe or metric results already in its folder are not recomputed, so an
interrupted study (or one that gained an axis value) completes only what is missing. Where the
runs execute (this machine, a Ray cluster, Slurm) is the executor's business
(``repvae.studies.executors``).
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import json
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from repvae.config import ConfigError, differences
from repvae.data import ImageData
from repvae.evaluate.metric import Settings
from repvae.evaluate.probing import probe_embeddings, record_results
from repvae.evaluate.suite import evaluate
from repvae.files import write_text
from repvae.represent import embed
from repvae.run import Run, concrete_architecture, load, read_run_config
from repvae.studies.executors import (
    NOT_RETURNED,
    Executor,
    Job,
    LocalExecutor,
    Outcome,
    folder_files,
    scratch_folder,
    sigterm_raises_exit,
    write_folder_files,
)
from repvae.studies.results import collect
from repvae.studies.spec import Evaluation, RunSpec, Study
from repvae.training import train


def _record_key(r: dict[str, Any]) -> tuple:
    return (r["kind"], r.get("dims"), r["probe"], r["protocol"])


def execute_run(spec: RunSpec, study_dir: Path, evaluation: Evaluation, data_cache: dict) -> None:
    """Train (or resume) one run and compute its missing probe results and metrics."""
    run_dir = study_dir / "runs" / spec.id
    check_same_config(spec, run_dir)
    if not (run_dir / "model.safetensors").exists():
        resume = (run_dir / "checkpoints" / "last.ckpt").exists()
        # a run stopped before its first checkpoint has nothing to resume: it starts again
        data = _data(spec, data_cache)
        train(spec.config, run_dir, resume=resume, overwrite=not resume, data=data)
    run = load(run_dir)
    todo, missing = _missing_results(run, evaluation)
    if todo:
        _probe_run(run, todo, _data(spec, data_cache), evaluation, spec.config.train.seed)
    if missing:
        settings = Settings(**{"seed": spec.config.train.seed, **evaluation.settings})
        evaluate(run, only=missing, settings=settings, data=_data(spec, data_cache))


def _data(spec: RunSpec, data_cache: dict) -> ImageData:
    d = spec.config.data
    key = (d.name, d.root, d.val_size, d.seed, d.image_size, d.grayscale)
    if key not in data_cache:
        data_cache.clear()  # keep one dataset in memory at a time
        data_cache[key] = d.load()
    return data_cache[key]


def check_same_config(spec: RunSpec, run_dir: Path) -> None:
    """Refuse a run folder made with another configuration than the spec's."""
    if not (run_dir / "config.yaml").exists():
        return
    # read through the config parser: a run made by an earlier version (older format, or
    # before a field was added, which then had its default) compares as it would load
    theirs, shape, _ = read_run_config(run_dir)
    # Where the data lives and whether a bar is drawn do not change results; the precision
    # changes their rounding, not what is trained, so runs finished in fp32 before
    # `train.precision: auto` became the default still count.
    ours = concrete_architecture(spec.config, shape)
    changed = [
        name
        for name in differences(ours.to_dict(), theirs.to_dict())
        if name not in ("data.root", "train.progress", "train.precision")
    ]
    if changed:
        raise ConfigError(
            f"{run_dir} was made with a different configuration ({', '.join(changed)}); "
            "delete that run folder to redo it, or choose another study folder (--out)"
        )


def _missing_results(
    run: Run, evaluation: Evaluation
) -> tuple[list[tuple[str, int | None]], list[str]]:
    """The (kind, prefix) pairs still to probe and the metrics still to compute for a run."""
    done_path = run.dir / "probes.json"
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
    missing = [m for m in evaluation.metrics if not (run.dir / "evaluation" / f"{m}.json").exists()]
    return todo, missing


def needs_work(spec: RunSpec, study_dir: Path, evaluation: Evaluation) -> bool:
    """Whether a run has anything left to train, probe or evaluate (checked by the driver, so
    that a finished run costs no task, no job, no transfer)."""
    run_dir = study_dir / "runs" / spec.id
    check_same_config(spec, run_dir)
    if not all((run_dir / name).exists() for name in ("model.safetensors", "summary.json")):
        return True
    todo, missing = _missing_results(load(run_dir, device="cpu"), evaluation)
    return bool(todo or missing)


# One dataset per process, kept between the runs a process executes (in this process, in a
# local worker process, in a Ray worker).
_DATA: dict = {}


def run_job(job: Job) -> Outcome:
    """Execute one run where the worker is; the task every executor runs.

    With the study folder at hand (``job.files`` None) the run works in it. Otherwise the run
    folder's files came with the job: the run works in this node's scratch folder (where an
    earlier attempt's checkpoint may wait) and its files go back to the driver, checkpoints
    left out, and the scratch copy is removed."""
    started = time.perf_counter()
    host = socket.gethostname()
    if job.files is None:
        execute_run(job.spec, job.study_dir, job.evaluation, _DATA)
        return Outcome(job.spec.id, time.perf_counter() - started, host)
    scratch = scratch_folder(job.study_dir)
    run_dir = scratch / "runs" / job.spec.id
    write_folder_files(run_dir, job.files)
    execute_run(job.spec, scratch, job.evaluation, _DATA)
    files = folder_files(run_dir, skip=NOT_RETURNED)
    shutil.rmtree(run_dir, ignore_errors=True)
    for empty in (run_dir.parent, scratch):  # the last run of the study on this node
        with contextlib.suppress(OSError):
            empty.rmdir()
    return Outcome(job.spec.id, time.perf_counter() - started, host, files)


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
    executor: Executor | None = None,
) -> list[dict[str, Any]]:
    """Run every missing piece of the study (of the runs whose id matches one of the ``only``
    glob patterns, when given); returns the collected results rows of all finished runs.

    The runs that lack anything go to ``executor`` (default: ``workers`` local processes).
    ``seeds`` replaces the study's (and budget's) seeds, e.g. to add a seed to a finished study
    while its report keeps the earlier ones."""
    log = log or functools.partial(print, flush=True)
    executor = executor or LocalExecutor(workers)
    study = study.with_budget(budget, seeds)
    study_dir = Path(study_dir)
    study_dir.mkdir(parents=True, exist_ok=True)
    specs = study.runs(overrides)
    write_text(
        study_dir / "study.yaml",
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
                "executor": executor.describe(),
            },
            sort_keys=False,
        ),
    )
    todo = specs
    if only:
        todo = [s for s in specs if any(fnmatch.fnmatchcase(s.id, p) for p in only)]
        if not todo:
            raise ConfigError(f"--runs {' '.join(only)}: matches none of {[s.id for s in specs]}")
    todo = [s for s in todo if needs_work(s, study_dir, study.evaluate)]
    if todo:
        log(f"{len(todo)} runs to do on {executor.describe()}")
        try:
            _execute(todo, study_dir, study.evaluate, executor, log)
        finally:
            _DATA.clear()
    return collect(study, specs, study_dir)


def _execute(
    specs: list[RunSpec],
    study_dir: Path,
    evaluation: Evaluation,
    executor: Executor,
    log: Callable[[str], None],
) -> None:
    """Hand the runs to the executor, log progress, write back run folders that travelled."""
    shared = executor.shared_fs
    where = study_dir.resolve()  # a worker elsewhere has another working folder
    jobs = [
        Job(s, where, evaluation, None if shared else folder_files(study_dir / "runs" / s.id))
        for s in specs
    ]
    started, done, failures = time.perf_counter(), 0, []

    def line(text: str) -> None:
        elapsed = time.perf_counter() - started
        eta = f", ETA {elapsed / done * (len(jobs) - done) / 60:.1f} min" if done else ""
        log(f"[{done}/{len(jobs)} done] {text}{eta}")

    with sigterm_raises_exit(), contextlib.closing(executor.events(run_job, jobs)) as events:
        for event in events:
            run = event.job.spec.id
            if event.outcome is None and event.error is None:
                line(f"running {run}")
                continue
            done += 1
            if event.error is not None:
                failures.append(event.error)
                line(f"{run} failed: {_first_line(event.error)}")
                continue
            outcome = event.outcome
            assert outcome is not None
            if outcome.files is not None:
                write_folder_files(study_dir / "runs" / run, outcome.files)
            line(f"finished {run} ({outcome.seconds:.1f} s on {outcome.host})")
    if failures:
        if len(failures) > 1:
            log(f"{len(failures)} runs failed; the first error follows")
        raise failures[0]


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"
