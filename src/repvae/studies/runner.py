"""Running a study: train what is missing, probe and evaluate it, collect the results table.

Each run lives in ``STUDY/runs/<run-id>/``; a run with weights is not retrained, a run with a
checkpoint resumes, and probe or metric results already in its folder are not recomputed, so an
interrupted study (or one that gained an axis value) completes only what is missing.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import json
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import torch
import yaml

from repvae.config import ConfigError, differences
from repvae.evaluate.metric import Settings
from repvae.evaluate.probing import probe_embeddings, record_results
from repvae.evaluate.suite import evaluate
from repvae.files import write_text
from repvae.represent import embed
from repvae.run import load, read_run_config
from repvae.studies.results import collect
from repvae.studies.spec import Evaluation, RunSpec, Study
from repvae.training import concrete_architecture, train


def _record_key(r: dict[str, Any]) -> tuple:
    return (r["kind"], r.get("dims"), r["probe"], r["protocol"])


def execute_run(spec: RunSpec, study_dir: Path, evaluation: Evaluation, data_cache: dict) -> None:
    """Train (or resume) one run and compute its missing probe results."""
    run_dir = study_dir / "runs" / spec.id
    d = spec.config.data
    key = (d.name, d.root, d.val_size, d.seed, d.image_size, d.grayscale)
    if key not in data_cache:
        data_cache.clear()  # keep one dataset in memory at a time
        data_cache[key] = d.load()
    data = data_cache[key]
    if (run_dir / "config.yaml").exists():
        # read through the config parser: a run made by an earlier version (older format, or
        # before a field was added, which then had its default) compares as it would load
        theirs, _, _ = read_run_config(run_dir)
        # Where the data lives and whether a bar is drawn do not change results; the precision
        # changes their rounding, not what is trained, so runs finished in fp32 before
        # `train.precision: auto` became the default still count.
        ours = concrete_architecture(spec.config, data.shape)
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
    if not (run_dir / "model.safetensors").exists():
        resume = (run_dir / "checkpoints" / "last.ckpt").exists()
        # a run stopped before its first checkpoint has nothing to resume: it starts again
        train(spec.config, run_dir, resume=resume, overwrite=not resume, data=data)
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
            },
            sort_keys=False,
        ),
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
    torch.set_num_threads(threads)
