"""Measurements of representations: probes, label efficiency, information metrics, likelihood
bounds, disentanglement, FID, and the ``repvae evaluate`` suite that runs them on a run.

Each metric module holds plain, tested functions and, at its end, the ``METRIC`` that says how
``repvae evaluate`` computes it on a run and which headline numbers its JSON carries.
"""

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
