"""Measurements of representations: downstream probes (`probes`) and information metrics
(`information`: active units, mutual information, conditional entropy, intrinsic dimension)."""

from repvae.evaluate.probes import (
    PROBES,
    ProbeResult,
    knn_probe,
    linear_probe,
    linear_unscaled_probe,
    logistic_probe,
    mlp_probe,
    run_probes,
)

__all__ = [
    "PROBES",
    "ProbeResult",
    "knn_probe",
    "linear_probe",
    "linear_unscaled_probe",
    "logistic_probe",
    "mlp_probe",
    "run_probes",
]
