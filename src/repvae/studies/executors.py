"""Where a study's runs execute: one small interface, three executors.

``run_study`` hands the runs a study lacks to an :class:`Executor` and hears from it as each
run starts and finishes; it never asks which executor it was given.

- :class:`LocalExecutor` (the default, needs nothing more): this machine, in this process or in
  N spawned processes, each with its share of the CPU threads.
- :class:`RayExecutor` (``pip install 'repvae[ray]'``): one Ray task per run, on a Ray instance
  started here or on an existing cluster (``address``). A task asks for the study's
  ``resources`` (CPUs, GPUs); a task whose worker dies (a killed process, a lost node) is
  retried and resumes from the run's last checkpoint.
- :class:`SlurmExecutor` (``pip install 'repvae[slurm]'``): one element of a Slurm job array per
  run, through submitit; a job preempted or out of time is requeued and resumes from the run's
  last checkpoint. ``cluster="local"`` runs the same jobs as subprocesses of this machine.

Workers see the study folder (one machine, or a shared filesystem) unless ``shared_fs`` is
False: then a run's task takes the run folder as the driver has it, trains in a scratch folder
of its node (``$REPVAE_SCRATCH``, else the temporary folder) and returns the run folder's files
(all but checkpoints), which the driver writes into the study folder, weights last.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import multiprocessing
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from threadpoolctl import threadpool_limits

from repvae.config import ConfigError
from repvae.files import write_bytes
from repvae.studies.spec import Evaluation, Resources, RunSpec

EXECUTORS = ("local", "ray", "slurm")
# what a run folder's task does not send back: checkpoints only serve to resume on its node
NOT_RETURNED = ("checkpoints",)
WEIGHTS = "model.safetensors"


@dataclass(frozen=True)
class Job:
    """One run for a worker: its spec, where the study lives, what to evaluate, and, when the
    workers do not share the study folder, the run folder's files as the driver has them."""

    spec: RunSpec
    study_dir: Path
    evaluation: Evaluation
    files: dict[str, bytes] | None = None


@dataclass(frozen=True)
class Outcome:
    """What a worker reports of a finished run (``files``: the run folder, when the workers do
    not share the study folder)."""

    run: str
    seconds: float
    host: str
    files: dict[str, bytes] | None = None


@dataclass(frozen=True)
class Event:
    """A run started (no outcome, no error), finished (``outcome``) or failed (``error``)."""

    job: Job
    outcome: Outcome | None = None
    error: BaseException | None = None


Task = Callable[[Job], Outcome]


class RunFailed(RuntimeError):
    """A run failed on a worker in a way that did not bring its own error back (a lost worker,
    a cancelled job); the message names the run and, for Slurm, the job's log."""


class Executor(ABC):
    """Runs ``task(job)`` for each job somewhere and reports as runs start and finish."""

    shared_fs: bool = True

    @abstractmethod
    def describe(self) -> str:
        """Where the runs go, in a few words (for the study's log)."""

    @abstractmethod
    def events(self, task: Task, jobs: list[Job]) -> Generator[Event, None, None]:
        """Run every job; yield an Event when a run starts (where the executor can tell) and
        when it finishes or fails. A failed run does not stop the others, except in an executor
        that runs them in this process, where its error is raised at once. Closing the iterator
        early (Ctrl-C, SIGTERM) stops the runs in flight; each resumes from its last checkpoint
        when the study is run again."""


def finished(job: Job, result: Callable[[], Outcome]) -> Event:
    """The Event of a run whose result ``result()`` returns or raises."""
    try:
        return Event(job, result())
    except Exception as err:
        return Event(job, error=err)


def run_with_threads(task: Task, job: Job, threads: int) -> Outcome:
    """``task(job)`` on ``threads`` CPU threads, torch's and the BLAS/OpenMP pools' (the
    probes' numpy and scikit-learn): as many as the cores the run was given. Two runs on two
    cores with two BLAS threads each ran their probes about 4x slower than with one."""
    threads = max(1, threads)
    torch.set_num_threads(threads)
    with threadpool_limits(threads):
        return task(job)


class LocalExecutor(Executor):
    """This machine: the runs one after another in this process (``workers`` 1), or in
    ``workers`` spawned processes with an equal share of the CPU threads each."""

    def __init__(self, workers: int = 1, *, shared_fs: bool = True) -> None:
        self.workers, self.shared_fs = max(1, workers), shared_fs

    def describe(self) -> str:
        return "this process" if self.workers == 1 else f"{self.workers} local processes"

    def events(self, task: Task, jobs: list[Job]) -> Generator[Event, None, None]:
        if self.workers == 1:
            for job in jobs:
                yield Event(job)
                yield Event(job, task(job))  # in this process: an error stops the study
            return
        # Spawned, not forked: forking a process that has started OpenMP threads can deadlock.
        threads = max(1, (os.cpu_count() or 1) // self.workers)
        context = multiprocessing.get_context("spawn")
        with (
            ProcessPoolExecutor(self.workers, mp_context=context) as pool,
            _stop_children_on_exit(),  # inside: it must stop them before the pool waits for them
        ):
            futures = {pool.submit(run_with_threads, task, job, threads): job for job in jobs}
            for future in as_completed(futures):
                yield finished(futures[future], future.result)


@contextlib.contextmanager
def _stop_children_on_exit() -> Iterator[None]:
    """A study stopped (Ctrl-C, SIGTERM, or its loop left early) stops its worker processes.

    In training a worker ends at the end of its batch on SIGTERM, and the pool's worker loop
    then waits for the next run: it is killed. Checkpoints are written atomically, so each run
    resumes from its last epoch. A failing run is not such an exit: the other runs finish.
    """
    try:
        yield
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        children = multiprocessing.active_children()
        for child in children:
            child.terminate()
        for child in children:
            child.join(timeout=2)
            if child.is_alive():
                child.kill()
        raise


@contextlib.contextmanager
def sigterm_raises_exit() -> Iterator[None]:
    """SIGTERM raises SystemExit in the driver, so that the executor stops its runs as on
    Ctrl-C; Python's default would end the driver at once and leave its workers training on,
    orphaned, still writing run folders that a restarted study would resume."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _exit_on_signal) if main else None
    try:
        yield
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray: pip install 'repvae[ray]'") from None
    return ray


def _import_submitit() -> Any:
    try:
        import submitit
    except ImportError:
        raise ConfigError("--executor slurm needs submitit: pip install 'repvae[slurm]'") from None
    return submitit


class RayExecutor(Executor):
    """One Ray task per run, asking for ``resources.cpus`` CPUs and ``resources.gpus`` GPUs.

    ``address`` joins an existing cluster (``auto``, ``ray://host:10001``, ...); without it a
    Ray instance starts on this machine with ``cpus`` CPUs (default: all) and stops at the end.
    A task whose worker dies is retried ``retries`` times and resumes from the run's last
    checkpoint (on a shared filesystem; without one, when the retry lands on the same node).
    ``limit`` caps the runs in flight (default: as many as the cluster's resources allow).
    """

    def __init__(
        self,
        resources: Resources,
        *,
        address: str | None = None,
        cpus: int | None = None,
        retries: int = 3,
        shared_fs: bool = True,
        limit: int | None = None,
    ) -> None:
        self.ray = _import_ray()
        _check_one_gpu(resources)
        self.resources, self.address, self.cpus = resources, address, cpus
        self.retries, self.shared_fs, self.limit = retries, shared_fs, limit

    def describe(self) -> str:
        if self.address:
            where = f"the Ray cluster at {self.address}"
        elif self.ray.is_initialized():
            where = "the Ray cluster this process has joined"
        else:
            where = "a Ray instance on this machine"
        return f"{where} ({_asks(self.resources)} per run)"

    def events(self, task: Task, jobs: list[Job]) -> Generator[Event, None, None]:
        ray = self.ray
        started_here = not ray.is_initialized()
        if started_here:
            if not self.address:
                # Ray runs its workers at niceness 15, for a node whose driver must stay
                # responsive; here the runs are the work. On this 2-core machine, beside one
                # other busy process, a niced worker took 126 s to import torch and Lightning
                # (7.7 s unniced) and a 4-run study took 242 s against the local executor's 24.
                os.environ.setdefault("RAY_worker_niceness", "0")
            ray.init(
                address=self.address,
                num_cpus=None if self.address else self.cpus,
                include_dashboard=False,
                logging_level=logging.WARNING,
            )
        remote = ray.remote(run_with_threads).options(
            num_cpus=self.resources.cpus,
            num_gpus=self.resources.gpus,
            max_retries=self.retries,
            retry_exceptions=False,  # a run's own error (say, a diverged loss) is not retried
        )
        waiting = list(jobs)
        in_flight: dict[Any, Job] = {}
        try:
            while waiting or in_flight:
                while waiting and (self.limit is None or len(in_flight) < self.limit):
                    job = waiting.pop(0)
                    in_flight[remote.remote(task, job, self.resources.cpus)] = job
                (ref,), _ = ray.wait(list(in_flight), num_returns=1)
                yield finished(in_flight.pop(ref), functools.partial(self._result, ref))
        finally:
            for ref in in_flight:  # a driver stopped early stops its runs
                ray.cancel(ref, force=True)
            if started_here:
                ray.shutdown()

    def _result(self, ref: Any) -> Outcome:
        try:
            return self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as err:
            raise err.cause from None  # the run's own error, as a local run would raise it
        except self.ray.exceptions.RayError as err:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise RunFailed(f"{type(err).__name__}: {first}") from None


class SlurmExecutor(Executor):
    """One Slurm job per run (one job array for the study) through submitit.

    Each job asks for ``resources`` (CPUs, GPUs, memory, partition, ``time`` minutes). Slurm
    signals a job before its time runs out or when it is preempted; submitit then requeues it
    (``retries`` times for time-outs, always for preemption) and the requeued job resumes the
    run from its last checkpoint. ``limit`` caps the jobs running at once (on Slurm the job
    array's parallelism; submitit's local executor is given that many at a time). Submitit
    passes jobs through ``folder`` (pickles and logs), which every node must see.
    ``cluster="local"`` runs the same jobs as subprocesses of this machine (no Slurm needed).
    """

    shared_fs = True

    def __init__(
        self,
        resources: Resources,
        folder: Path,
        *,
        cluster: str = "slurm",
        retries: int = 3,
        limit: int | None = None,
        poll_seconds: float = 5.0,
        name: str = "repvae",
    ) -> None:
        self.submitit = _import_submitit()
        _check_one_gpu(resources)
        if resources.gpus not in (0, 1):
            raise ConfigError(
                f"resources.gpus: Slurm gives whole GPUs, not {resources.gpus} (a share of a GPU "
                "is for --executor ray)"
            )
        if cluster == "slurm" and shutil.which("sbatch") is None:
            raise ConfigError(
                "--executor slurm: no sbatch on this machine; run the study from a Slurm login "
                "node (or try its jobs here with --slurm-cluster local)"
            )
        self.resources, self.folder, self.cluster = resources, Path(folder), cluster
        self.retries, self.limit, self.poll_seconds, self.name = retries, limit, poll_seconds, name

    def describe(self) -> str:
        where = "Slurm" if self.cluster == "slurm" else f"submitit's {self.cluster} executor"
        return f"{where} jobs ({_asks(self.resources)}, {self.resources.time} min per job)"

    def events(self, task: Task, jobs: list[Job]) -> Generator[Event, None, None]:
        r = self.resources
        executor = self.submitit.AutoExecutor(
            folder=self.folder, cluster=self.cluster, slurm_max_num_timeout=self.retries
        )
        executor.update_parameters(
            name=self.name,
            timeout_min=r.time,
            nodes=1,
            tasks_per_node=1,
            cpus_per_task=r.cpus,
            gpus_per_node=int(r.gpus),
            **({"mem_gb": r.mem_gb} if r.mem_gb else {}),
            **({"slurm_partition": r.partition} if r.partition else {}),
            **({"slurm_array_parallelism": self.limit} if self.limit else {}),
        )
        runner = SlurmRun(task, r.cpus)
        queued = list(jobs)
        submitted: dict[Any, Job] = {}
        started: set[str] = set()
        try:
            while queued or submitted:
                # Slurm queues a job array itself (at most `limit` running); submitit's local
                # executor starts every job it is given, so it is given `limit` at a time
                room = len(queued)
                if self.cluster != "slurm" and self.limit is not None:
                    room = min(room, max(0, self.limit - len(submitted)))
                if room:
                    with executor.batch():
                        batch = [(executor.submit(runner, job), job) for job in queued[:room]]
                    submitted.update(batch)
                    del queued[:room]
                for handle, job in list(submitted.items()):
                    if handle.done():
                        del submitted[handle]
                        yield finished(job, functools.partial(self._result, handle))
                    elif job.spec.id not in started and handle.state == "RUNNING":
                        started.add(job.spec.id)
                        yield Event(job)
                if submitted:
                    time.sleep(self.poll_seconds)
        finally:
            for handle in submitted:  # a driver stopped early cancels its jobs
                handle.cancel(check=False)

    def _result(self, handle: Any) -> Outcome:
        try:
            return handle.result()
        except (
            self.submitit.core.utils.FailedJobError,
            self.submitit.core.utils.UncompletedJobError,
        ) as err:
            raise RunFailed(
                f"Slurm job {handle.job_id} failed: {_error_line(str(err))} "
                f"(log: {handle.paths.stderr})"
            ) from None


def _error_line(text: str) -> str:
    """The exception line of a job's traceback (``ValueError: ...``), else its first line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if re.match(r"^[\w.]*(Error|Exception|Exit|Interrupt)(:|$)", line):
            return line
    return lines[0] if lines else "no output"


class SlurmRun:
    """A run as a submitit job: on preemption or time-out submitit calls ``checkpoint`` and
    requeues what it returns, the same run, which resumes from its last checkpoint."""

    # Slurm preempts a job with SIGTERM, then the signal submitit requeues on (USR2, as
    # submitit's own SlurmJob._interrupt does it); Lightning stops training at the end of its
    # batch on the first (SIGTERMException). The job then waits this long for the second.
    requeue_wait_seconds = 300.0

    def __init__(self, task: Task, threads: int) -> None:
        self.task, self.threads = task, threads

    def __call__(self, job: Job) -> Outcome:
        try:
            return run_with_threads(self.task, job, self.threads)
        except SystemExit as stop:
            from lightning.pytorch.utilities.exceptions import SIGTERMException  # slow import

            if isinstance(stop, SIGTERMException):
                # submitit's handler checkpoints, requeues and exits when the signal comes; a
                # job cancelled instead is killed by Slurm meanwhile
                time.sleep(self.requeue_wait_seconds)
            raise

    def checkpoint(self, job: Job) -> Any:
        return _import_submitit().helpers.DelayedSubmission(self, job)


def _check_one_gpu(resources: Resources) -> None:
    if resources.gpus > 1:
        raise ConfigError(
            f"resources.gpus: {resources.gpus:g} GPUs per run; an executor gives a run one GPU "
            "at most (several runs share one with a fraction on Ray). One model on several GPUs "
            "or nodes is a repvae train launch of its own: see docs/scaling.md"
        )


def _asks(resources: Resources) -> str:
    gpus = f", {resources.gpus:g} GPU" if resources.gpus else ""
    return f"{resources.cpus} CPU{gpus}"


def make_executor(
    name: str,
    resources: Resources,
    study_dir: Path,
    *,
    workers: int | None = None,
    address: str | None = None,
    retries: int = 3,
    shared_fs: bool = True,
    slurm_cluster: str = "slurm",
) -> Executor:
    """The executor the command line names; ``workers`` caps the runs at once."""
    if address is not None and name != "ray":
        raise ConfigError("--address: for --executor ray (the Ray cluster to join)")
    if name == "local":
        return LocalExecutor(workers or 1, shared_fs=shared_fs)
    if name == "ray":
        return RayExecutor(
            resources, address=address, retries=retries, shared_fs=shared_fs, limit=workers
        )
    if name == "slurm":
        if not shared_fs:
            raise ConfigError(
                "--no-shared-fs: submitit passes Slurm jobs through files in the study folder, "
                "so --executor slurm needs it on a filesystem every node sees"
            )
        return SlurmExecutor(
            resources,
            study_dir / "slurm",
            cluster=slurm_cluster,
            retries=retries,
            limit=workers,
            name=f"repvae-{study_dir.name}",
        )
    raise ConfigError(f"--executor: unknown executor {name!r}; choose from {list(EXECUTORS)}")


# Moving run folders between the driver and workers that do not share the study folder.


def folder_files(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, bytes]:
    """The files under ``folder`` by relative path, without hidden files (the training lock,
    half-written temporary files) and without the top-level entries named in ``skip``."""
    if not folder.is_dir():
        return {}
    files = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        hidden = any(part.startswith(".") for part in relative.parts)
        if path.is_file() and relative.parts[0] not in skip and not hidden:
            files[relative.as_posix()] = path.read_bytes()
    return files


def write_folder_files(folder: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` under ``folder`` atomically, the weights last: a run folder with weights
    is a finished run, so one interrupted here is retrained, never half taken."""
    for name in sorted(files, key=lambda name: name == WEIGHTS):
        write_bytes(folder / name, files[name])


def scratch_folder(study_dir: Path) -> Path:
    """Where a worker without the study folder trains its runs: the same place for every
    attempt at a run on a node, so a retried task resumes from the last checkpoint there."""
    key = hashlib.sha256(str(study_dir).encode()).hexdigest()[:16]
    base = Path(os.environ.get("REPVAE_SCRATCH") or tempfile.gettempdir())
    return base / "repvae-studies" / key
