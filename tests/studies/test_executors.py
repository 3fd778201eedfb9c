"""Study executors: the same study on this machine, on a Ray cluster (a local 2-CPU one) and as
submitit jobs (its local executor runs the same job objects Slurm would, as subprocesses)
gives the same results table; runs survive a killed driver, a killed worker, a preempted job."""

import copy
import csv
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
import yaml

from repvae.cli import main
from repvae.config import ConfigError
from repvae.run import TrainingDiverged
from repvae.studies.executors import (
    LocalExecutor,
    RayExecutor,
    SlurmExecutor,
    folder_files,
    make_executor,
    write_folder_files,
)
from repvae.studies.runner import run_study
from repvae.studies.spec import Resources, Study

STUDY = {
    "name": "tiny",
    "base": {
        "data": {"name": "digits"},
        "model": {"hidden": 16},
        "train": {"epochs": 2, "progress": False},
    },
    "grid": [{"model": ["vae"], "model.latent_dim": [2, 4]}],
    "evaluate": {"kinds": ["map"], "probes": ["linear"], "protocol": "split"},
}
RUNS = ["digits-vae-latent_dim2-seed0", "digits-vae-latent_dim4-seed0"]
# one run long enough to be interrupted mid-training (about 0.1 s an epoch)
LONG = {
    **STUDY,
    "base": {**STUDY["base"], "train": {"epochs": 25, "patience": 100, "progress": False}},
    "grid": [{"model": ["vae"], "model.latent_dim": [3]}],
}
LONG_RUN = "digits-vae-latent_dim3-seed0"
QUIET = {"log": lambda _: None}


def table(folder: Path) -> list[dict]:
    """A study's results table without the training times (the only column that may differ)."""
    with open(folder / "results.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k != "train_seconds"} for row in csv.DictReader(f)]


def one_thread_study(spec: dict, folder: Path) -> None:
    """The study in this process at one CPU thread: the threads a 1-CPU task gets, so the same
    float reductions and the same numbers."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_study(Study.from_dict(spec), folder, **QUIET)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> list[dict]:
    folder = tmp_path_factory.mktemp("local")
    one_thread_study(STUDY, folder)
    return table(folder)


@pytest.fixture(scope="module")
def long_weights(tmp_path_factory) -> bytes:
    """The weights of the long run trained without interruption."""
    folder = tmp_path_factory.mktemp("long")
    one_thread_study(LONG, folder)
    return (folder / "runs" / LONG_RUN / "model.safetensors").read_bytes()


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray cluster of 2 CPUs for the module; its address, for other drivers."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'repvae[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture
def submitit():
    return pytest.importorskip("submitit", reason="submitit is not installed (repvae[slurm])")


def lock_holders(folder: Path) -> list[int]:
    """Processes holding a run's training lock (``RUN/.lock``) under ``folder``."""
    holders = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            links = [os.readlink(fd) for fd in (proc / "fd").iterdir()]
        except OSError:  # ended, or not ours to read
            continue
        if any(link.startswith(str(folder)) and link.endswith("/.lock") for link in links):
            holders.append(int(proc.name))
    return holders


def interrupt_mid_training(run: Path, signals: list[int], seen: dict) -> threading.Thread:
    """In the background: once the run has checkpointed an epoch, send ``signals`` (half a
    second apart) to the process training it; ``seen`` records whether training was still
    going on then."""

    def watch() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            holders = lock_holders(run)
            if (run / "checkpoints" / "last.ckpt").exists() and holders:
                seen["unfinished"] = not (run / "summary.json").exists()
                for i, signum in enumerate(signals):
                    time.sleep(0.5 if i else 0)
                    for pid in holders:
                        os.kill(pid, signum)
                return
            time.sleep(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_ray_executor_gives_the_local_results_table(ray_cluster, reference, tmp_path):
    lines = []
    rows = run_study(
        Study.from_dict(STUDY), tmp_path, executor=RayExecutor(Resources(cpus=1)), log=lines.append
    )
    assert sorted(r["run"] for r in rows) == RUNS
    assert table(tmp_path) == reference  # same seeds, same numbers
    assert lines[0] == "2 runs to do on the Ray cluster this process has joined (1 CPU per run)"
    assert lines[-1].startswith("[2/2 done] finished")


def test_submitit_jobs_give_the_local_results_table(submitit, reference, tmp_path):
    # submitit's local executor runs the pickled job objects Slurm would run, as subprocesses
    executor = SlurmExecutor(Resources(cpus=1), tmp_path / "slurm", cluster="local")
    executor.poll_seconds = 0.2
    run_study(Study.from_dict(STUDY), tmp_path, executor=executor, **QUIET)
    assert table(tmp_path) == reference
    assert len(list((tmp_path / "slurm").glob("*_result.pkl"))) == 2  # one job per run


def test_without_a_shared_filesystem_run_folders_travel_with_their_tasks(
    ray_cluster, reference, tmp_path
):
    executor = RayExecutor(Resources(cpus=1), shared_fs=False)
    run_study(Study.from_dict(STUDY), tmp_path, executor=executor, **QUIET)
    assert table(tmp_path) == reference
    for run in RUNS:
        folder = tmp_path / "runs" / run
        # trained elsewhere: no training lock here, and checkpoints stay on the worker
        assert not (folder / ".lock").exists() and not (folder / "checkpoints").exists()
        assert {"config.yaml", "model.safetensors", "summary.json", "probes.json"} <= set(
            folder_files(folder)
        )
    # a metric added later: the finished run folder goes to the worker, which evaluates it
    # (without retraining) and sends the result back
    weights = (tmp_path / "runs" / RUNS[0] / "model.safetensors").read_bytes()
    more = copy.deepcopy(STUDY)
    more["evaluate"]["metrics"] = ["information"]
    run_study(Study.from_dict(more), tmp_path, executor=executor, **QUIET)
    assert (tmp_path / "runs" / RUNS[0] / "evaluation" / "information.json").exists()
    assert (tmp_path / "runs" / RUNS[0] / "model.safetensors").read_bytes() == weights


def test_a_killed_ray_driver_run_again_completes_only_the_missing_runs(ray_cluster, tmp_path):
    spec = copy.deepcopy(STUDY)
    spec["base"]["train"] = {"epochs": 8, "patience": 100, "progress": False}
    spec["grid"] = [{"model": ["vae"], "model.latent_dim": [2, 3, 4, 5]}]
    study_file, out = tmp_path / "tiny.yaml", tmp_path / "study"
    study_file.write_text(yaml.safe_dump(spec))
    command = ["run-experiment", str(study_file), "--out", str(out), "--executor", "ray"]
    driver = subprocess.Popen(
        [sys.executable, "-m", "repvae.cli", *command, "--address", ray_cluster],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 180
    try:
        while not list(out.glob("runs/*/probes.json")):
            assert driver.poll() is None and time.monotonic() < deadline, "no run finished"
            time.sleep(0.05)
    finally:
        driver.kill()
        driver.wait()
    complete = {p.parent.name for p in out.glob("runs/*/probes.json")}
    weights = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/model.safetensors")}
    assert len(complete) < 4, "the driver finished before it was killed"
    # the dead driver's tasks end with it (Ray kills the workers of a job whose driver died)
    while lock_holders(out):
        assert time.monotonic() < deadline, "the killed driver's runs train on"
        time.sleep(0.1)
    lines = []  # run again (the CLI's run_study, without its report)
    run_study(Study.from_dict(spec), out, executor=RayExecutor(Resources(cpus=1)), log=lines.append)
    assert lines[0].startswith(f"{4 - len(complete)} runs to do on the Ray cluster")
    assert all(p.stat().st_mtime_ns == t for p, t in weights.items())  # not trained again
    assert len({r["run"] for r in table(out)}) == 4


def test_a_ray_worker_killed_mid_run_is_retried_and_resumes(ray_cluster, long_weights, tmp_path):
    """SIGKILL to the worker process training a run: Ray retries the task (max_retries), which
    resumes the run from its last checkpoint to the weights of an uninterrupted run."""
    seen: dict = {}
    watcher = interrupt_mid_training(tmp_path / "runs" / LONG_RUN, [signal.SIGKILL], seen)
    executor = RayExecutor(Resources(cpus=1), retries=1)
    run_study(Study.from_dict(LONG), tmp_path, executor=executor, **QUIET)
    watcher.join()
    assert seen.get("unfinished"), "the worker was not killed mid-training"
    assert (tmp_path / "runs" / LONG_RUN / "model.safetensors").read_bytes() == long_weights


def test_a_preempted_submitit_job_is_requeued_and_resumes(submitit, long_weights, tmp_path):
    """Slurm preempts a job with SIGTERM, then USR2 (the signal submitit asks for, also sent
    before the time limit; submitit's SlurmJob._interrupt sends the same pair). Lightning stops
    at the end of its batch on SIGTERM; the job waits for USR2, on which submitit calls its
    checkpoint() and requeues it, and the requeued job resumes the run from its last checkpoint
    to the weights of an uninterrupted run."""
    seen: dict = {}
    watcher = interrupt_mid_training(
        tmp_path / "runs" / LONG_RUN, [signal.SIGTERM, signal.SIGUSR2], seen
    )
    executor = SlurmExecutor(Resources(cpus=1), tmp_path / "slurm", cluster="local")
    executor.poll_seconds = 0.2
    run_study(Study.from_dict(LONG), tmp_path, executor=executor, **QUIET)
    watcher.join()
    assert seen.get("unfinished"), "the job was not signalled mid-training"
    (log,) = (tmp_path / "slurm").glob("*_0_log.err")
    assert "this job is preempted" in log.read_text()
    assert (tmp_path / "runs" / LONG_RUN / "model.safetensors").read_bytes() == long_weights


@pytest.mark.parametrize(("executor", "package"), [("ray", "ray"), ("slurm", "submitit")])
def test_an_executor_without_its_extra_is_one_line_naming_the_extra(
    executor, package, tmp_path, monkeypatch, capsys
):
    monkeypatch.setitem(sys.modules, package, None)  # import fails as if not installed
    study_file = tmp_path / "tiny.yaml"
    study_file.write_text(yaml.safe_dump(STUDY))
    assert main(["run-experiment", str(study_file), "--executor", executor]) == 2
    err = capsys.readouterr().err
    extra = "ray" if executor == "ray" else "slurm"
    assert err.strip().splitlines() == [
        f"repvae: error: --executor {executor} needs {'Ray' if extra == 'ray' else 'submitit'}: "
        f"pip install 'repvae[{extra}]'"
    ]


def test_study_resources_come_from_the_study_file_its_budget_and_the_flags(tmp_path):
    spec = {
        **STUDY,
        "resources": {"cpus": 2, "time": 30},
        "budgets": {"long": {"resources.time": 600}},
    }
    study = Study.from_dict(spec)
    assert study.resources == Resources(cpus=2, time=30)
    assert study.with_budget("long").resources == Resources(cpus=2, time=600)
    with pytest.raises(ConfigError, match=r"study\.resources\.cores: unknown key"):
        Study.from_dict({**STUDY, "resources": {"cores": 2}})
    with pytest.raises(ConfigError, match=r"study\.resources\.cpus: must be a whole number >= 1"):
        Study.from_dict({**STUDY, "resources": {"cpus": 0}})
    with pytest.raises(ConfigError, match="--no-shared-fs"):
        make_executor("slurm", Resources(), tmp_path, shared_fs=False)
    with pytest.raises(ConfigError, match="--address"):
        make_executor("local", Resources(), tmp_path, address="auto")
    assert isinstance(make_executor("local", Resources(), tmp_path, workers=3), LocalExecutor)


def test_a_failing_ray_run_names_its_own_error_and_the_others_finish(ray_cluster, tmp_path):
    spec = copy.deepcopy(STUDY)
    spec["grid"] = [{"model": ["vae"], "model.latent_dim": [2], "train.lr": [0.001, 1.0e12]}]
    lines = []
    with pytest.raises(TrainingDiverged):  # the run's own error, as a local run raises it
        run_study(
            Study.from_dict(spec), tmp_path, executor=RayExecutor(Resources()), log=lines.append
        )
    assert any("lr1000000000000.0-seed0 failed: TrainingDiverged: " in line for line in lines)
    assert (tmp_path / "runs" / "digits-vae-latent_dim2-lr0.001-seed0" / "probes.json").exists()


def test_more_than_one_gpu_per_run_is_refused_with_where_to_look(ray_cluster, submitit, tmp_path):
    for executor in ("ray", "slurm"):
        with pytest.raises(ConfigError, match=r"one GPU at most.*docs/scaling\.md"):
            make_executor(executor, Resources(gpus=2), tmp_path, slurm_cluster="local")
    with pytest.raises(ConfigError, match="whole GPUs"):
        make_executor("slurm", Resources(gpus=0.5), tmp_path, slurm_cluster="local")


@pytest.mark.skipif(shutil.which("sbatch") is not None, reason="this machine has Slurm")
def test_slurm_without_sbatch_is_refused_before_anything_runs(submitit, tmp_path):
    with pytest.raises(ConfigError, match="no sbatch on this machine"):
        make_executor("slurm", Resources(), tmp_path)


def test_run_folder_files_are_written_back_weights_last(tmp_path, monkeypatch):
    """A driver killed while writing a returned run folder leaves no weights without the rest:
    a run folder with weights is a finished run, so the weights go last."""
    files = {
        "config.yaml": b"c",
        "model.safetensors": b"w",
        "summary.json": b"s",
        "logs/m.csv": b"m",
    }
    written = []
    monkeypatch.setattr(
        "repvae.studies.executors.write_bytes", lambda path, data: written.append(path.name)
    )
    write_folder_files(tmp_path, files)
    assert written[-1] == "model.safetensors" and len(written) == 4
