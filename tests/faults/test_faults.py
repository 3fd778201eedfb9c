"""Fault injection: what users and machines do to real runs, through the real command line.

Each case runs ``repvae`` in a subprocess and does to it what happens in practice: SIGKILL at
some point of training, evaluation or a study, a full disk (a file-size limit), a read-only
folder, a second process on the same folder. Afterwards the command either succeeded, or
failed with a one-line message leaving the folder as it was, or the folder resumes to the same
final weights as a run never interrupted (training is deterministic on the CPU at one thread:
the final weights' SHA-256 is compared).

The CI version kills at two chosen points; ``-m slow`` adds kills at seeded random times and
prints the counts (kills, resumes, identical weights).
"""

import contextlib
import fcntl
import hashlib
import io
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from repvae.cli import main

TRAIN = ["--dataset", "digits", "--latent-dim", "4", "--set", "model.hidden=32", "--no-progress"]
EPOCHS = ["--epochs", "6"]
# one thread: the same floating-point results whatever the machine's core count
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
TIMEOUT = 300


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "repvae.cli", *args]


def repvae_here(*args: str) -> subprocess.CompletedProcess:
    """The command in this process (no second start-up of torch and Lightning) at one thread,
    as the subprocesses run: for the commands that are not killed."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(list(args))
    finally:
        torch.set_num_threads(threads)
    return subprocess.CompletedProcess(args, code, "", err.getvalue())


def repvae(*args: str, preexec=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        _command(*args),
        env=ENV,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        preexec_fn=preexec,
        check=False,
    )


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        _command(*args), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): digest(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def assert_one_line_error(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("repvae: error: "), result.stderr
    return lines[0]


def assert_whole(run: Path) -> None:
    """Every file a kill could have cut is whole: the writes are atomic."""
    if (run / "config.yaml").exists():
        yaml.safe_load((run / "config.yaml").read_text())
    for path in [run / "summary.json", *run.glob("evaluation/*.json"), run / "probes.json"]:
        if path.exists():
            json.loads(path.read_text())
    assert not list(run.rglob("*.tmp")), "a temporary file was left behind"


def wait_for(condition, process: subprocess.Popen, seconds: float = TIMEOUT) -> bool:
    """Poll ``condition`` until it holds (True) or the process ends first (False)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        if process.poll() is not None:
            return condition()
        time.sleep(0.05)
    raise TimeoutError("the condition never held")


def run_for(process: subprocess.Popen, seconds: float) -> None:
    """Let the process run for ``seconds`` (or until it ends)."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=seconds)


def recover(run: Path, train: list[str] | None = None) -> str:
    """What a user does after a crash: resume if there is a checkpoint, else start again."""
    if (run / "model.safetensors").exists():
        return "finished"
    if (run / "checkpoints" / "last.ckpt").exists():
        result = repvae_here("train", "--resume", str(run))
        how = "resumed"
    else:
        result = repvae_here(
            "train", *(train or [*TRAIN, *EPOCHS]), "--out", str(run), "--overwrite"
        )
        how = "restarted"
    assert result.returncode == 0, result.stderr
    return how


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, str]:
    """An uninterrupted run and the SHA-256 of its final weights."""
    run = tmp_path_factory.mktemp("reference") / "run"
    result = repvae_here("train", *TRAIN, *EPOCHS, "--out", str(run))
    assert result.returncode == 0, result.stderr
    return run, digest(run / "model.safetensors")


def kill_and_recover(run: Path, when, train: list[str] | None = None) -> str:
    train = train or [*TRAIN, *EPOCHS]
    process = start("train", *train, "--out", str(run))
    try:
        when(process)
    finally:
        process.kill()
        process.wait()
    assert_whole(run)
    return recover(run, train)


@pytest.mark.parametrize(
    "point",
    ["after_config", "after_first_checkpoint"],
)
def test_a_training_run_killed_resumes_to_the_uninterrupted_weights(reference, tmp_path, point):
    _, expected = reference
    run = tmp_path / "run"
    marker = {
        "after_config": run / "config.yaml",
        "after_first_checkpoint": run / "checkpoints" / "last.ckpt",
    }[point]
    how = kill_and_recover(run, lambda process: wait_for(marker.exists, process))
    assert how == ("restarted" if point == "after_config" else "resumed")
    assert digest(run / "model.safetensors") == expected


@pytest.mark.slow
def test_training_killed_at_random_times_always_recovers(tmp_path):
    # long enough (150 epochs) that most kills land in training, not in the start-up
    long = [*TRAIN, "--epochs", "150", "--patience", "150"]
    started = time.perf_counter()
    result = repvae("train", *long, "--out", str(tmp_path / "reference"))
    duration = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    expected = digest(tmp_path / "reference" / "model.safetensors")
    rng = random.Random(25)
    kills = 10
    outcomes = []
    started = time.perf_counter()
    for i in range(kills):
        run = tmp_path / f"run{i}"
        delay = rng.uniform(0.4, 0.95) * duration
        how = kill_and_recover(run, lambda process, d=delay: run_for(process, d), train=long)
        outcomes.append((round(delay, 2), how, digest(run / "model.safetensors") == expected))
    seconds = time.perf_counter() - started
    identical = sum(same for *_, same in outcomes)
    counts = {how: sum(h == how for _, h, _ in outcomes) for how in ("resumed", "restarted")}
    print(
        f"\nfault injection (training, {duration:.1f} s uninterrupted): {kills} kills at seeded "
        f"random times; {counts['resumed']} resumed from a checkpoint, {counts['restarted']} "
        f"started again (killed before the first checkpoint), "
        f"{kills - sum(counts.values())} had finished; final weights identical to the "
        f"uninterrupted run: {identical}/{kills}; {seconds:.0f} s\n{outcomes}"
    )
    assert identical == kills


@pytest.mark.slow
def test_evaluation_killed_at_random_times_completes_with_the_same_results(reference, tmp_path):
    source, _ = reference
    only = ["--only", "probes", "information", "latent_space", "--probes", "linear", "knn"]
    clean = Path(shutil.copytree(source, tmp_path / "clean"))
    assert repvae("evaluate", str(clean), *only).returncode == 0
    expected = json.loads((clean / "evaluation" / "information.json").read_text())
    rng = random.Random(7)
    for i in range(4):
        run = Path(shutil.copytree(source, tmp_path / f"run{i}"))
        process = start("evaluate", str(run), *only)
        run_for(process, rng.uniform(2.0, 8.0))
        process.kill()
        process.wait()
        assert_whole(run)
        assert repvae("evaluate", str(run), *only).returncode == 0
        got = json.loads((run / "evaluation" / "information.json").read_text())
        expected.pop("seconds", None), got.pop("seconds", None)
        assert got == expected


@pytest.mark.slow
def test_a_study_killed_completes_only_what_is_missing(tmp_path):
    study = tmp_path / "tiny.yaml"
    study.write_text(
        yaml.safe_dump(
            {
                "name": "tiny",
                "base": {"data": {"name": "digits"}, "model": {"hidden": 32}},
                "grid": [{"model": ["vae", "ae"], "model.latent_dim": [2, 4]}],
                "evaluate": {"kinds": ["map"], "probes": ["linear"], "protocol": "split"},
                "budgets": {"quick": {"train.epochs": 3, "train.progress": False}},
            }
        )
    )
    command = ["run-experiment", str(study), "--budget", "quick"]
    clean = tmp_path / "clean"
    assert repvae(*command, "--out", str(clean)).returncode == 0
    killed = tmp_path / "killed"
    process = start(*command, "--out", str(killed))
    second = killed / "runs" / "digits-vae-latent_dim4-seed0" / "checkpoints" / "last.ckpt"
    wait_for(second.exists, process)
    process.kill()
    process.wait()
    first_weights = killed / "runs" / "digits-vae-latent_dim2-seed0" / "model.safetensors"
    before = first_weights.stat().st_mtime_ns
    assert repvae(*command, "--out", str(killed)).returncode == 0
    assert first_weights.stat().st_mtime_ns == before  # finished runs are not trained again

    def table(folder: Path) -> list[dict]:
        rows = (folder / "results.csv").read_text().splitlines()
        return [r.split(",")[:14] for r in rows]  # all but the times

    assert table(killed) == table(clean)


def _file_size_limit(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_full_disk_fails_in_one_line_and_the_run_recovers(reference, tmp_path):
    _, expected = reference
    run = tmp_path / "run"
    # room for config.yaml, not for the first checkpoint
    result = repvae("train", *TRAIN, *EPOCHS, "--out", str(run), preexec=_file_size_limit(20_000))
    line = assert_one_line_error(result)
    assert "File too large" in line
    assert_whole(run)
    assert not (run / "checkpoints" / "last.ckpt").exists()
    assert recover(run) == "restarted"
    assert digest(run / "model.safetensors") == expected


@contextlib.contextmanager
def read_only_copy(source: Path, where: Path):
    """A copy of ``source`` on a read-only file system (root ignores file modes, so a
    read-only tmpfs mount is the honest test there)."""
    where.mkdir()
    if os.geteuid() != 0:
        copy = Path(shutil.copytree(source, where / source.name))
        for path in [copy, *copy.rglob("*")]:
            path.chmod(0o555 if path.is_dir() else 0o444)
        yield copy
        for path in [copy, *copy.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(where)])
    if mounted.returncode != 0:
        pytest.skip("running as root without permission to mount a read-only tmpfs")
    try:
        copy = Path(shutil.copytree(source, where / source.name))
        subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)
        yield copy
    finally:
        subprocess.run(["umount", str(where)], check=True)


def test_a_read_only_run_folder_gets_one_line_and_is_left_as_it_was(reference, tmp_path):
    source, _ = reference
    with read_only_copy(source, tmp_path / "ro") as run:
        before = snapshot(run)
        for command in (["train", "--resume", str(run), "--epochs", "7"], ["embed", str(run)]):
            line = assert_one_line_error(repvae_here(*command))
            assert "Read-only file system" in line or "Permission denied" in line
        assert snapshot(run) == before


def test_a_second_resume_of_a_training_run_is_refused(reference, tmp_path):
    source, _ = reference
    run = Path(shutil.copytree(source, tmp_path / "run"))
    forever = ["--epochs", "100000", "--patience", "100000"]
    first = start("train", "--resume", str(run), *forever)

    def locked() -> bool:
        with open(run / ".lock", "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
            return False

    try:
        assert wait_for(locked, first), "the first process never took the lock"
        line = assert_one_line_error(repvae_here("train", "--resume", str(run), "--epochs", "7"))
        assert "another repvae process is training into this folder" in line
    finally:
        first.kill()
        first.wait()
    # a killed process leaves no stale lock: the run resumes (one epoch more than it has done)
    done = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["epoch"]
    resumed = repvae_here(
        "train", "--resume", str(run), "--epochs", str(done + 3), "--patience", "5"
    )
    assert resumed.returncode == 0, resumed.stderr
