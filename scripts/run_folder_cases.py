"""The run-folder cases of issue 25, run through the command line: for each, the command, its
exit code, its message and whether the folder is intact (the same bytes as before, or, where
the command is meant to change it, a run that still loads). Prints a Markdown table.

    python scripts/run_folder_cases.py [WORK_DIR]
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml

TRAIN = ["--dataset", "digits", "--latent-dim", "4", "--set", "model.hidden=32", "--no-progress"]


def repvae(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "repvae.cli", *args], capture_output=True, text=True, check=False
    )


def snapshot(folder: Path) -> dict[str, str]:
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def case(
    work: Path,
    name: str,
    prepare: Callable[[Path], None],
    command: Callable[[Path], list[str]],
    intact: Callable[[Path, dict[str, str]], bool] | None = None,
) -> dict[str, str]:
    run = work / name.replace(" ", "_")
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(work / "finished", run)
    prepare(run)
    before = snapshot(run)
    args = command(run)
    result = repvae(*args)
    message = " ".join(result.stderr.strip().splitlines()[-1:]) if result.returncode else ""
    unchanged = intact(run, before) if intact else snapshot(run) == before
    shown = " ".join(a if not a.startswith(str(work)) else "RUN" for a in args)
    return {
        "case": name,
        "command": f"`repvae {shown}`",
        "exit": str(result.returncode),
        "message": message.replace(str(run), "RUN").replace("|", "\\|")[:220],
        "folder intact": "yes" if unchanged else "NO",
    }


def main(work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    finished = work / "finished"
    if not (finished / "model.safetensors").exists():
        assert repvae("train", *TRAIN, "--epochs", "2", "--out", str(finished)).returncode == 0

    def nothing(run: Path) -> None:
        pass

    def interrupted(run: Path) -> None:
        (run / "model.safetensors").unlink()
        (run / "summary.json").unlink()

    def truncate(name: str, keep: float) -> Callable[[Path], None]:
        def cut(run: Path) -> None:
            path = run / name
            path.write_bytes(path.read_bytes()[: int(path.stat().st_size * keep)])

        return cut

    def flip(name: str, offset: int) -> Callable[[Path], None]:
        def change(run: Path) -> None:
            path = run / name
            data = bytearray(path.read_bytes())
            data[offset] ^= 0x10
            path.write_bytes(bytes(data))

        return change

    def edit_latent(run: Path) -> None:
        raw = yaml.safe_load((run / "config.yaml").read_text())
        raw["model"]["latent_dim"] = 8
        (run / "config.yaml").write_text(yaml.safe_dump(raw))

    def bad_yaml(run: Path) -> None:
        (run / "config.yaml").write_text("model: [unclosed")

    def text_npz(run: Path) -> None:
        (run / "embeddings").mkdir(exist_ok=True)
        (run / "embeddings" / "map.npz").write_text("not an npz\n")

    def binary_config(run: Path) -> None:
        (run / "binary.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")

    rows = [
        case(
            work,
            "1 resume with an incompatible override",
            nothing,
            lambda r: ["train", "--resume", str(r), "--latent-dim", "8", "--epochs", "3"],
        ),
        case(
            work,
            "2 train into an interrupted run",
            interrupted,
            lambda r: ["train", *TRAIN, "--epochs", "2", "--out", str(r)],
        ),
        case(
            work,
            "3 divergence (lr 1e6) on resume",
            nothing,
            lambda r: ["train", "--resume", str(r), "--epochs", "4", "--lr", "1e6"],
            lambda r, before: (
                snapshot(r)["checkpoints/last.ckpt"] == before["checkpoints/last.ckpt"]
            ),
        ),
        case(
            work,
            "3 non-finite learning rate",
            nothing,
            lambda r: ["train", *TRAIN, "--set", "train.lr=inf", "--out", str(r / "new")],
        ),
        case(
            work,
            "4 zero-byte weights",
            truncate("model.safetensors", 0.0),
            lambda r: ["embed", str(r)],
        ),
        case(
            work,
            "4 truncated weights",
            truncate("model.safetensors", 0.5),
            lambda r: ["embed", str(r)],
        ),
        case(
            work,
            "4 bit-flipped weights",
            flip("model.safetensors", -100),
            lambda r: ["embed", str(r)],
        ),
        case(work, "4 config edited to latent 8", edit_latent, lambda r: ["embed", str(r)]),
        case(work, "4 config made invalid YAML", bad_yaml, lambda r: ["embed", str(r)]),
        case(
            work,
            "4 truncated last.ckpt on resume",
            truncate("checkpoints/last.ckpt", 0.3),
            lambda r: ["train", "--resume", str(r), "--epochs", "3"],
        ),
        case(
            work,
            "5 batch of one with BatchNorm",
            nothing,
            lambda r: [
                "train",
                *TRAIN,
                "--epochs",
                "1",
                "--set",
                "model.architecture=mlp-bn",
                "--set",
                "train.train_subset=129",
                "--out",
                str(r / "bn"),
            ],
            lambda r, before: (r / "bn" / "model.safetensors").exists(),
        ),
        case(
            work,
            "5 binary config file",
            binary_config,
            lambda r: ["train", "--config", str(r / "binary.yaml"), "--out", str(r / "x")],
        ),
        case(
            work,
            "5 text file named .npz",
            text_npz,
            lambda r: ["probe", str(r / "embeddings" / "map.npz")],
        ),
        case(
            work,
            "5 failed data load",
            nothing,
            lambda r: ["train", "--dataset", f"folder:{r}/nowhere", "--out", str(r / "new")],
        ),
        case(
            work,
            "5 tensorboard logger, package missing",
            nothing,
            lambda r: [
                "train",
                *TRAIN,
                "--set",
                "train.logger=tensorboard",
                "--out",
                str(r / "tb"),
            ],
        ),
    ]
    columns = ["case", "command", "exit", "message", "folder intact"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(row[c] for c in columns) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()))
