"""Where a training step's time goes, per oneDNN primitive, fp32 against bf16 (issue 26): the
MNIST conv VAE step of ``benchmarks/step_levers.py`` (latent 16, batch 128, channels-last, fused
Adam) under oneDNN's verbose mode, which times every convolution, deconvolution and bf16 matmul
it executes and names the kernel that ran.

    python benchmarks/onednn_primitives.py [--steps 20]

Each precision runs in a child process (verbose output goes to the process's stdout); the table
gives milliseconds per step for each primitive and direction (forward, backward data, backward
weights) at each shape, the bf16 kernel's name and the bf16/fp32 ratio, then the step's wall time
measured without verbose, and what oneDNN did not account for (fp32 matmuls run in MKL, not
oneDNN; elementwise ops, casts, the loss and the optimiser run in ATen).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass

import torch
from step_levers import Lever, Step  # the step being measured (a sibling benchmark script)

from repvae.report.tables import markdown_table

PRECISIONS = ("fp32", "bf16")
MARK = "step ms:"
Key = tuple[str, str, str]  # primitive, direction, shape


@dataclass
class Timing:
    ms: float = 0.0  # per step
    kernel: str = ""


def child(precision: str, steps: int) -> None:
    """Time the step, then run ``steps`` more under oneDNN verbose (printed to stdout)."""
    step = Step(Lever(precision, bf16=precision == "bf16", channels_last=True))
    for _ in range(5):
        step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    print(f"{MARK} {1e3 * (time.perf_counter() - started) / steps}", flush=True)
    with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
        for _ in range(steps):
            step()


def measure(precision: str, steps: int) -> tuple[float, dict[Key, Timing]]:
    """The step's wall ms and each primitive's ms per step and kernel."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", precision, "--steps", str(steps)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    step_ms, primitives = 0.0, defaultdict[Key, Timing](Timing)
    for line in out.splitlines():
        if line.startswith(MARK):
            step_ms = float(line.split()[-1])
        fields = line.split(",")
        if fields[:4] == ["onednn_verbose", "v1", "primitive", "exec"] and fields[5] != "reorder":
            timing = primitives[(fields[5], fields[7], fields[-2])]
            timing.ms += float(fields[-1]) / steps
            timing.kernel = fields[6]
    return step_ms, dict(primitives)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--child", choices=PRECISIONS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.steps)
        return
    (fp32_step, fp32), (bf16_step, bf16) = (measure(p, args.steps) for p in PRECISIONS)
    rows = []
    for key in sorted(bf16.keys() | fp32.keys(), key=lambda k: -bf16.get(k, Timing()).ms):
        f = fp32[key].ms if key in fp32 else None
        b = bf16[key].ms if key in bf16 else None
        rows.append(
            {
                "primitive": key[0],
                "direction": key[1],
                "shape": key[2],
                "fp32 ms": "" if f is None else round(f, 2),
                "bf16 ms": "" if b is None else round(b, 2),
                "bf16 / fp32": "" if f is None or b is None else round(b / f, 2),
                "bf16 kernel": bf16.get(key, Timing()).kernel,
            }
        )
    print(f"MNIST conv VAE step, batch 128, channels-last, {torch.get_num_threads()} threads")
    print(markdown_table(rows, list(rows[0])))
    for name, step, primitives in (("fp32", fp32_step, fp32), ("bf16", bf16_step, bf16)):
        inside = sum(t.ms for t in primitives.values())
        print(
            f"\n{name}: step {step:.1f} ms (without verbose); oneDNN primitives {inside:.1f} ms; "
            f"the rest {step - inside:.1f} ms"
        )


if __name__ == "__main__":
    main()
