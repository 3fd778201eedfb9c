"""Studies: expansion, resume after interruption, and the results table."""

import contextlib
import copy
import csv
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from repvae.config import ConfigError
from repvae.models.contract import STYLE_NOTE
from repvae.report.study import report_study
from repvae.studies import runner
from repvae.studies.results import read_results
from repvae.studies.runner import run_study
from repvae.studies.spec import Study, builtin_study, load_study

TINY = {
    "name": "tiny",
    "base": {
        "data": {"name": "digits"},
        "model": {"hidden": 16},
        "train": {"epochs": 1, "progress": False},
    },
    "grid": [
        {"model": ["vae", "infovae"], "model.latent_dim": [2, 4]},
        {"model": ["minfovae"], "model.latent_dim": [4]},
    ],
    "seeds": [0],
    "evaluate": {"kinds": ["map"], "probes": ["linear"], "protocol": "cv", "folds": 3},
    "budgets": {"quick": {"train.epochs": 1, "evaluate.subset": 600}},
}


def test_grid_expands_to_runs_with_presets():
    specs = Study.from_dict(TINY).runs()
    assert [s.id for s in specs] == [
        "digits-vae-latent_dim2-seed0",
        "digits-vae-latent_dim4-seed0",
        "digits-infovae-latent_dim2-seed0",
        "digits-infovae-latent_dim4-seed0",
        "digits-minfovae-latent_dim4-seed0",
    ]
    nested = specs[-1].config.model
    assert nested.options.nesting == [2, 4] and nested.options.alpha == 1.0
    assert (
        specs[0].config.model.options.lam == 1.0 and specs[0].config.model.options.nesting is None
    )


def test_list_valued_grid_axis_gives_readable_run_ids_and_labels():
    grid = [{"model": ["minfovae"], "model.latent_dim": [4], "model.nesting_weights": [[4, 1]]}]
    (spec,) = Study.from_dict({**TINY, "grid": grid}).runs()
    assert spec.id == "digits-minfovae-latent_dim4-nesting_weights4_1-seed0"
    assert spec.method == "minfovae (nesting_weights=4,1)"
    assert spec.config.model.options.nesting_weights == [4, 1]


def test_unknown_budget_and_key_are_named():
    with pytest.raises(ConfigError, match="--budget"):
        Study.from_dict(TINY).with_budget("huge")
    with pytest.raises(ConfigError, match=r"study\.grids"):
        Study.from_dict({**TINY, "grids": []})


class Killed(Exception):
    """Stands in for the process being killed half-way through the study."""


def test_interrupted_study_completes_only_missing_runs(tmp_path, monkeypatch):
    study = Study.from_dict(TINY)
    trained = []
    kill_at = {"call": 3}

    original = runner.train

    def counting_train(config, out, **kw):
        trained.append(out.name)
        if len(trained) == kill_at["call"]:
            raise Killed
        return original(config, out, **kw)

    monkeypatch.setattr(runner, "train", counting_train)
    with pytest.raises(Killed):
        run_study(study, tmp_path, budget="quick", log=lambda _: None)
    finished = sorted(p.parent.name for p in tmp_path.glob("runs/*/model.safetensors"))
    assert finished == ["digits-vae-latent_dim2-seed0", "digits-vae-latent_dim4-seed0"]
    mtimes = {p: p.stat().st_mtime_ns for p in tmp_path.glob("runs/*/model.safetensors")}

    trained.clear()
    kill_at["call"] = None
    rows = run_study(study, tmp_path, budget="quick", log=lambda _: None)
    assert trained == [
        "digits-infovae-latent_dim2-seed0",
        "digits-infovae-latent_dim4-seed0",
        "digits-minfovae-latent_dim4-seed0",
    ]
    assert all(p.stat().st_mtime_ns == t for p, t in mtimes.items())  # finished runs untouched
    # One row per run x representation (x nested prefix for the Matryoshka model).
    assert len(rows) == 4 + 2
    with open(tmp_path / "results.csv") as f:
        table = list(csv.DictReader(f))
    assert {r["method"] for r in table} == {"vae", "infovae", "minfovae"}
    nested = sorted(int(r["latent"]) for r in table if r["method"] == "minfovae")
    assert nested == [2, 4]
    assert all(r["protocol"] == "cv3" and 0 <= float(r["accuracy"]) <= 1 for r in table)

    trained.clear()
    run_study(study, tmp_path, budget="quick", log=lambda _: None)
    assert trained == []  # nothing left to do


def test_builtin_flexible_study_is_valid():
    study = load_study(builtin_study("flexible"))
    specs = study.with_budget("quick").runs({"data.name": "digits"})
    assert len(specs) == 6 * 2 + 2 + 2 + 1
    shared, weighted = specs[-2:]
    assert shared.config.model.options.nesting == [2, 8, 16, 32, 64, 128]
    assert shared.config.model.options.shared_decoder and shared.method.endswith("(shared decoder)")
    assert shared.id == "digits-minfovae-latent_dim128-shared_decoderTrue-seed0"
    assert weighted.config.model.options.nesting_weights == [4, 4, 1, 1, 1, 1]
    # every nested variant is costed against the separately trained InfoVAE runs
    assert shared.replaces == weighted.replaces == "InfoVAE"
    assert {s.replaces for s in specs if s.config.model.options.nesting is None} == {""}
    with pytest.raises(ConfigError, match="available"):
        builtin_study("nope")


def test_run_folder_with_another_configuration_is_not_reused(tmp_path):
    study = Study.from_dict({**TINY, "grid": [{"model": ["vae"], "model.latent_dim": [2]}]})
    run_study(study, tmp_path, budget="quick", log=lambda _: None)
    changed = Study.from_dict(
        {**copy.deepcopy(TINY), "grid": [{"model": ["vae"], "model.latent_dim": [2]}]}
    )
    changed.base["model"]["hidden"] = 32
    with pytest.raises(ConfigError, match=r"model\.hidden"):
        run_study(changed, tmp_path, budget="quick", log=lambda _: None)
    # a run made before a field existed (so it had the field's default) is still reused
    saved = tmp_path / "runs" / "digits-vae-latent_dim2-seed0" / "config.yaml"
    raw = yaml.safe_load(saved.read_text())
    del raw["model"]["family"], raw["train"]["labelled"]
    saved.write_text(yaml.safe_dump(raw))
    run_study(study, tmp_path, budget="quick", log=lambda _: None)


def test_run_experiment_then_self_contained_report(tmp_path, capsys):
    import re

    import yaml

    from repvae.cli import main

    study_file = tmp_path / "tiny.yaml"
    spec = {**TINY, "grid": [{"model": ["vae", "infovae"], "model.latent_dim": [2, 4]}]}
    study_file.write_text(yaml.safe_dump(spec))
    out = tmp_path / "study"
    assert main(["run-experiment", str(study_file), "--budget", "quick", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    page = (out / "results.html").read_text()
    assert "<table>" in page and "<h2>Summary</h2>" in page and "Provenance" in page
    assert "<details>" in page  # every run's results, folded
    images = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert len(images) == 3  # accuracy vs latent, latent scatters of VAE and InfoVAE
    assert all(src.startswith("data:image/png;base64,") for src in images)
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing outside the file
    assert "run-experiment" in (out / "results.md").read_text()


def test_parallel_workers_complete_the_study(tmp_path):
    study = Study.from_dict({**TINY, "grid": [{"model": ["vae"], "model.latent_dim": [2, 4]}]})
    lines = []
    rows = run_study(study, tmp_path, budget="quick", workers=2, log=lines.append)
    assert sorted(r["run"] for r in rows) == [
        "digits-vae-latent_dim2-seed0",
        "digits-vae-latent_dim4-seed0",
    ]
    assert lines[-1].startswith("[2/2 done] finished")
    # Same numbers as one process, up to float reduction order (workers use fewer threads).
    serial = run_study(study, tmp_path / "serial", budget="quick", log=lambda _: None)
    by_run = {r["run"]: r["accuracy"] for r in serial}
    assert all(abs(r["accuracy"] - by_run[r["run"]]) < 0.02 for r in rows)


def _parent_if_running(proc: Path) -> int | None:
    """The parent pid of a live (not ended, not zombie) process, from /proc/PID/stat."""
    try:
        state, parent = (proc / "stat").read_text().rsplit(")", 1)[1].split()[:2]
    except OSError:  # the process has ended
        return None
    return None if state == "Z" else int(parent)


def _running_children(pid: int) -> list[Path]:
    return [proc for proc in Path("/proc").glob("[0-9]*") if _parent_if_running(proc) == pid]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_sigterm_to_a_parallel_study_stops_its_workers(tmp_path):
    # Before, SIGTERM ended the parent alone and the workers trained on, orphaned.
    spec = {**TINY, "grid": [{"model": ["vae"], "model.latent_dim": [2, 4]}]}
    spec["budgets"] = {"quick": {"train.epochs": 10_000}}
    script = (
        "import sys, yaml\n"
        "from repvae.studies.runner import Study, run_study\n"
        "study = Study.from_dict(yaml.safe_load(sys.argv[1]))\n"
        "run_study(study, sys.argv[2], budget='quick', workers=2, log=lambda _: None)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script, yaml.safe_dump(spec), str(tmp_path)])
    logs = [tmp_path / "runs" / f"digits-vae-latent_dim{m}-seed0" / "logs" for m in (2, 4)]
    deadline = time.monotonic() + 120
    while not all(d.exists() for d in logs):
        assert parent.poll() is None and time.monotonic() < deadline, "workers did not start"
        time.sleep(0.2)
    workers = _running_children(parent.pid)
    try:
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=60) == 128 + signal.SIGTERM
        deadline = time.monotonic() + 30
        while alive := [w for w in workers if _parent_if_running(w) is not None]:
            assert time.monotonic() < deadline, f"workers {alive} outlived the study"
            time.sleep(0.2)
    finally:  # never leave a failed test's workers training
        for w in workers:
            with contextlib.suppress(OSError):
                os.kill(int(w.name), signal.SIGKILL)


def test_study_with_metrics_and_seeds_reports_a_summary_beside_published_values(tmp_path):
    from repvae.report.study import study_report
    from repvae.report.summary import PM
    from repvae.studies.published import read_published

    spec = {
        **TINY,
        "base": {
            "data": {"name": "digits"},
            "model": {"hidden": 16, "head_channels": 4, "head_layers": 2, "n_mix": 2},
            "train": {"epochs": 1, "progress": False},
        },
        "grid": [{"model": ["pixelvae-h0", "lpvae-h1"], "model.latent_dim": [3]}],
        "seeds": [0, 1],
        "evaluate": {
            "kinds": ["map"],
            "probes": ["linear"],
            "metrics": ["information", "likelihood"],
            "settings": {"iw_samples": 3, "likelihood_images": 20},
        },
        "labels": {"pixelvae-h0": "VAE (h=0)", "lpvae-h1": "LPVAE h=1"},
    }
    rows = run_study(Study.from_dict(spec), tmp_path, log=lambda _: None)
    metrics = {(r["run"], r["metric"]): r["value"] for r in rows}
    assert len(rows) == 4 * (1 + 4 + 5)  # runs x (probe + information + likelihood values)
    assert 0 < metrics[("digits-lpvae-h1-latent_dim3-seed1", "bpd_elbo")] < 8.5
    assert metrics[("digits-lpvae-h1-latent_dim3-seed1", "intrinsic_dimension")] <= 3
    published = tmp_path / "published.csv"
    published.write_text(
        "source,table,dataset,method,setting,quantity,value,pm,note,study,our_method,our_quantity\n"
        "paper,T2,digits,LPVAE,,BPD,1.5,,,tiny,LPVAE h=1,bpd_elbo\n"
        'paper,T2,digits,LPVAE,,linear probe,50,0.5,,tiny,LPVAE h=1,"linear probe, map (split)"\n'
    )
    values = [metrics[(f"digits-lpvae-h1-latent_dim3-seed{s}", "bpd_elbo")] for s in (0, 1)]
    mean, std = sum(values) / 2, abs(values[0] - values[1]) / 2**0.5  # sample std (n - 1)
    # the report's summary lists methods as the study's labels do, whatever the run order
    report = study_report(
        Study.from_dict(spec),
        rows[::-1],
        tmp_path,
        budget=None,
        published=read_published(published),
    ).read_text()
    flat = re.sub(" +", " ", report)
    assert "| quantity | VAE (h=0) | LPVAE h=1 | source | protocol |" in flat
    bpd = next(line for line in flat.splitlines() if line.startswith("| bpd_elbo "))
    assert f"{mean:.3f}{PM}{std:.3f} / 1.500 / {mean - 1.5:+.3f} | paper T2 |" in bpd
    probe = next(line for line in flat.splitlines() if line.startswith("| linear (split) "))
    assert f" / 50.00{PM}0.50 / " in probe
    assert "mean ± sample std (n − 1) over seeds [0, 1]" in report
    # the protocol line states the training the runs had, --set overrides included
    overridden = study_report(
        Study.from_dict(spec),
        rows,
        tmp_path,
        budget=None,
        overrides={"train.epochs": 7, "model.beta": 2.0},
    ).read_text()
    assert "epochs=7" in overridden and "epochs=7" not in report
    # a second call finds everything done: nothing is recomputed
    again = run_study(Study.from_dict(spec), tmp_path, log=lambda _: None)
    assert sorted(map(str, again)) == sorted(map(str, rows))


def test_builtin_pixelvae_study_is_valid():
    study = load_study(builtin_study("pixelvae")).with_budget("quick")
    specs = study.runs()
    assert len(specs) == 12 and specs[0].id == "mnist-pixelvae-h0-seed0"
    assert len(study.with_budget("standard").runs()) == 4
    heads = {(s.config.model.head.kind, s.config.model.head.horizon) for s in specs}
    assert heads == {("local", 0), ("local", 1), ("local", 2), ("full", 0)}
    assert all(s.config.model.likelihood == "logistic_mixture" for s in specs)
    assert study.evaluate.metrics == ["information", "likelihood"]


def test_runs_filter_trains_only_matching_runs_and_reports_all_finished(tmp_path):
    study = Study.from_dict(TINY)
    rows = run_study(study, tmp_path, budget="quick", only=["*-infovae-*"], log=lambda _: None)
    assert {r["run"] for r in rows} == {
        "digits-infovae-latent_dim2-seed0",
        "digits-infovae-latent_dim4-seed0",
    }
    assert not (tmp_path / "runs" / "digits-vae-latent_dim2-seed0").exists()
    with pytest.raises(ConfigError, match="matches none"):
        run_study(study, tmp_path, budget="quick", only=["*-m2-*"], log=lambda _: None)


def test_seeds_replace_the_studys_and_the_report_keeps_earlier_ones(tmp_path):
    source = tmp_path / "tiny.yaml"
    source.write_text(yaml.safe_dump(TINY))
    study, out = load_study(source), tmp_path / "study"
    quiet = {"budget": "quick", "log": lambda _: None, "source": source}
    run_study(study, out, only=["*-vae-latent_dim2-*"], **quiet)
    rows = run_study(study, out, only=["*-vae-latent_dim2-*"], seeds=[0, 1], **quiet)
    runs = {"digits-vae-latent_dim2-seed0", "digits-vae-latent_dim2-seed1"}
    assert {r["run"] for r in rows} == runs
    saved = yaml.safe_load((out / "runs/digits-vae-latent_dim2-seed1/config.yaml").read_text())
    assert saved["train"]["seed"] == 1 and saved["data"]["seed"] == 0
    report_study(out)  # rebuilds results.csv from study.yaml: both seeds stay
    with open(out / "results.csv") as f:
        assert {r["run"] for r in csv.DictReader(f)} == runs


def test_builtin_semisupervised_study_is_valid():
    study = load_study(builtin_study("semisupervised")).with_budget("quick")
    specs = study.runs()
    assert [s.config.train.labelled for s in specs] == [100, 600, 1000, 3000] * 3 + [None]
    assert [s.config.model.family for s in specs] == ["m2"] * 12 + ["vae"]
    assert specs[0].method == "M2 (labelled=100)"
    # Zhang et al.'s pair: M2 and LPVAE-M2 under their objective, differing only in the decoder
    m2, lpvae = specs[4], specs[8]
    assert lpvae.method == "LPVAE-M2 (labelled=100, objective=batch)"
    assert m2.config.model.options.objective == lpvae.config.model.options.objective == "batch"
    assert (lpvae.config.model.head.kind, lpvae.config.model.head.horizon) == ("local", 1)
    assert m2.config.model.head.kind == "none" and lpvae.config.train == m2.config.train


def test_runs_trained_elsewhere_join_the_report_through_their_results_csv(tmp_path):
    """A study split over two folders (say, two machines) reports as the whole study does."""
    source = tmp_path / "tiny.yaml"
    source.write_text(
        yaml.safe_dump({**TINY, "evaluate": {**TINY["evaluate"], "metrics": ["information"]}})
    )
    study, whole = load_study(source), tmp_path / "whole"
    quiet = {"budget": "quick", "log": lambda _: None, "source": source, "seeds": [0, 1]}
    run_study(study, whole, only=["*-vae-latent_dim2-*"], **quiet)
    report_study(whole)
    # the second folder holds seed 1 alone; seed 0 trained "elsewhere" (the first folder)
    part = tmp_path / "part"
    (part / "runs").mkdir(parents=True)
    shutil.copy(whole / "study.yaml", part / "study.yaml")
    shutil.copytree(
        whole / "runs/digits-vae-latent_dim2-seed1", part / "runs/digits-vae-latent_dim2-seed1"
    )
    report_study(part, [whole / "results.csv"])

    def tables(folder: Path) -> str:  # the numbers; figures and provenance differ by design
        sections = (folder / "results.md").read_text().split("\n## ")
        return "\n## ".join(s for s in sections if not s.startswith(("Figures", "Provenance")))

    assert tables(part) == tables(whole)
    assert "mean ± sample std (n − 1) over seeds [0, 1]" in tables(part)
    provenance = (part / "results.md").read_text().split("## Provenance")[1]
    assert "1 trained in another study folder" in provenance
    with open(whole / "results.csv") as a, open(part / "results.csv") as b:
        assert sorted(map(str, csv.DictReader(a))) == sorted(map(str, csv.DictReader(b)))
    # later reports keep the imported runs; a run folder that arrives wins over its rows
    report_study(part)
    assert tables(part) == tables(whole)
    shutil.copytree(
        whole / "runs/digits-vae-latent_dim2-seed0", part / "runs/digits-vae-latent_dim2-seed0"
    )
    report_study(part)
    assert "1 trained in another" not in (part / "results.md").read_text()


def test_importing_results_names_what_does_not_fit(tmp_path):
    source = tmp_path / "tiny.yaml"
    source.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "study"
    run_study(
        load_study(source),
        out,
        budget="quick",
        only=["*-vae-latent_dim2-*"],
        log=lambda _: None,
        source=source,
    )
    with pytest.raises(FileNotFoundError, match=r"nowhere\.csv"):
        report_study(out, [tmp_path / "nowhere.csv"])
    not_results = tmp_path / "other.csv"
    not_results.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"not a study.s results\.csv"):
        report_study(out, [not_results])
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    foreign = tmp_path / "foreign.csv"

    def write(changes: dict) -> Path:
        with open(foreign, "w", newline="") as f:
            writer = csv.DictWriter(f, list(rows[0]))
            writer.writeheader()
            writer.writerows({**r, **changes} for r in rows)
        return foreign

    # the finished run is here already: nothing of the file is wanted
    with pytest.raises(ValueError, match="no rows for the runs this study lacks"):
        report_study(out, [write({})])
    other_run = "digits-vae-latent_dim4-seed0"
    with pytest.raises(ValueError, match="labelled 'VAE-ish'"):
        report_study(out, [write({"run": other_run, "method": "VAE-ish"})])
    with pytest.raises(ValueError, match="trained 40 epochs"):
        report_study(out, [write({"run": other_run, "epochs": "40"})])
    assert not (out / "imported.csv").exists()


def test_a_study_report_says_when_a_probe_read_a_style_code(tmp_path):
    """A CVAE's code is read with the true label: its rows carry the family's note, the report
    says it once per method, and the note survives results.csv."""
    source = tmp_path / "style.yaml"
    grid = [{"model": ["cvae", "vae"], "model.latent_dim": [2]}]
    source.write_text(yaml.safe_dump({**TINY, "name": "style", "grid": grid}))
    out = tmp_path / "style"
    run_study(load_study(source), out, budget="quick", log=lambda _: None, source=source)
    report_study(out)
    rows = read_results(out / "results.csv")
    notes = {r["method"]: r["note"] for r in rows if r["metric"] == "accuracy"}
    assert notes == {"cvae": STYLE_NOTE, "vae": ""}
    report = (out / "results.md").read_text()
    section = report.split("## What the probes measure")[1].split("\n## ")[0]
    assert section.strip().count("\n") == 0 and STYLE_NOTE in section
