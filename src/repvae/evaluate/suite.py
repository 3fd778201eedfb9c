"""``repvae evaluate RUN``: measurements of a trained run written into ``RUN/evaluation/``.

Metrics are computed on the test split's posterior parameters (each image encoded once) and
written as JSON beside their figures, so reports read files instead of recomputing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from repvae.evaluate.information import information_report
from repvae.report.figures import eigenvalue_spectrum
from repvae.represent import encode
from repvae.run import Run

METRICS = ("information",)


def evaluate(run: Run, *, only: tuple[str, ...] = METRICS, split: str = "test") -> dict[str, Any]:
    """Compute the chosen metrics on ``split``; returns what was written to evaluation/*.json."""
    unknown = [m for m in only if m not in METRICS]
    if unknown:
        raise ValueError(f"--only: unknown metrics {unknown}; choose from {METRICS}")
    out = run.dir / "evaluation"
    out.mkdir(exist_ok=True)
    data = run.config.data.load()
    means, stds = encode(run.model, getattr(data, split).images)
    results: dict[str, Any] = {}
    if "information" in only:
        started = time.perf_counter()
        info = information_report(means, stds)
        info.update(split=split, seconds=round(time.perf_counter() - started, 3))
        eigenvalue_spectrum(
            {run.dir.name: info["eigenvalues"]},
            out / "eigenvalue_spectrum.png",
            threshold=info["intrinsic_dimension_threshold"],
            title=f"PCA spectrum of MAP codes ({split} split)",
        )
        _write(out / "information.json", info)
        results["information"] = info
    return results


def _write(path: Path, payload: dict[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=2))
