"""Downstream probes: how well simple classifiers read the labels off a representation.

A representation is a float array ``[N, D]`` (one vector per image, e.g. the posterior mean) or
``[N, K, D]`` (K posterior draws per image). The trained probes (linear, logistic, mlp) fit on all
``N*K`` draws, each labelled with its image's label, and classify an image by averaging their
scores over its K draws (a Monte-Carlo predictive). kNN compares images by the mean of their draws.
"""

import contextlib
import copy
import inspect
import re
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import TypeVar

import numpy as np
import torch
from sklearn.base import ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from torch import nn
from torch.nn import functional as F

ArrayLike = np.ndarray | torch.Tensor
Split = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
Rows = TypeVar("Rows", np.ndarray, torch.Tensor)

# liblinear's primal solver (chosen by dual="auto" when N > D) needs only tens of Newton steps;
# the large cap is for the dual solver on wide data, which converges slowly.
_SVC_MAX_ITER = 10_000
_EVAL_ROWS = 65_536  # rows per forward pass when evaluating the MLP
_KNN_SIM_ENTRIES = 1 << 25  # similarity entries per test chunk (128 MiB in float32)
_MIN_STD = 1e-8  # features with smaller spread are centred but not scaled


@dataclass(frozen=True)
class ProbeResult:
    """One probe's accuracy under one protocol, with what is needed to report it honestly.

    For CV, ``n_train``/``n_test`` are the mean per-fold sizes and ``seconds`` covers all folds.
    """

    probe: str  # "linear" | "mlp" | "knn" | "logistic"
    protocol: str  # "split" or f"cv{folds}"
    accuracy: float  # for CV the mean over folds
    std: float  # population std over folds (0.0 for split)
    folds: tuple[float, ...]  # per-fold accuracies (one entry for split)
    n_train: int
    n_test: int
    seconds: float  # wall time

    def as_dict(self) -> dict:
        """Plain dict (JSON-ready: ``folds`` becomes a list)."""
        return {**asdict(self), "folds": list(self.folds)}


def _features(x: ArrayLike) -> np.ndarray:
    """Own float32 copy of a representation: one dtype for every probe, and writable, so torch
    can share its memory without touching (or warning about read-only) caller data."""
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float32).numpy()
    x = np.array(x, dtype=np.float32)
    if x.ndim not in (2, 3) or len(x) == 0:
        raise ValueError(f"representations must be non-empty [N, D] or [N, K, D], got {x.shape}")
    return x


def _labels(y: ArrayLike, n: int) -> np.ndarray:
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"expected {n} labels, got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"labels must be integers, got dtype {y.dtype}")
    return y.astype(np.int64, copy=False)


def _inputs(
    train_x: ArrayLike, train_y: ArrayLike, test_x: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, tx = _features(train_x), _features(test_x)
    if x.shape[-1] != tx.shape[-1]:
        raise ValueError(f"feature sizes differ: train {x.shape}, test {tx.shape}")
    return x, _labels(train_y, len(x)), tx


def _prepare(train_x: ArrayLike, train_y: ArrayLike, test_x: ArrayLike, test_y: ArrayLike) -> Split:
    x, y, tx = _inputs(train_x, train_y, test_x)
    return x, y, tx, _labels(test_y, len(tx))


def _flat(x: Rows) -> Rows:
    """``[N, K, D]`` -> ``[N*K, D]`` (draws of one image adjacent); ``[N, D]`` unchanged."""
    return x.reshape(-1, x.shape[-1])


def _draw_labels(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Labels matching ``_flat(x)``: every draw carries its image's label."""
    return np.repeat(y, x.shape[1]) if x.ndim == 3 else y


def _accuracy(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(pred == y))


def _device(device: str | None) -> torch.device:
    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


def _sklearn_predictions(
    estimator: ClassifierMixin,
    standardize: bool,
    score: str,
    data: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> np.ndarray:
    """Fit ``estimator`` on all draws; classify each test image by its draw-averaged ``score``."""
    x, y, tx = data
    model = Pipeline(
        [("scale", StandardScaler() if standardize else "passthrough"), ("clf", estimator)]
    )
    with warnings.catch_warnings():
        # The iteration caps are generous; a warning on a hard problem is not worth the noise.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(_flat(x), _draw_labels(y, x))
    scores = getattr(model, score)(_flat(tx))
    scores = scores.reshape(len(tx), -1, *scores.shape[1:]).mean(axis=1)
    classes = model.classes_
    # Binary decision_function is 1-D: positive means classes[1].
    return classes[(scores > 0).astype(int)] if scores.ndim == 1 else classes[scores.argmax(1)]


def linear_predictions(
    train_x: ArrayLike,
    train_y: ArrayLike,
    test_x: ArrayLike,
    *,
    C: float = 1.0,
    standardize: bool = True,
    seed: int = 0,
) -> np.ndarray:
    """Test-image labels predicted by a linear SVM (one-vs-rest) on standardised features.

    For ``[N, K, D]`` inputs the decision function is averaged over each test image's K draws.
    """
    svc = LinearSVC(C=C, dual="auto", max_iter=_SVC_MAX_ITER, random_state=seed)
    return _sklearn_predictions(
        svc, standardize, "decision_function", _inputs(train_x, train_y, test_x)
    )


def logistic_predictions(
    train_x: ArrayLike,
    train_y: ArrayLike,
    test_x: ArrayLike,
    *,
    C: float = 1.0,
    standardize: bool = True,
) -> np.ndarray:
    """Test-image labels predicted by multinomial logistic regression (lbfgs) on standardised
    features.

    For ``[N, K, D]`` inputs ``predict_proba`` is averaged over each test image's K draws.
    """
    logreg = LogisticRegression(C=C, solver="lbfgs", max_iter=1000)
    return _sklearn_predictions(
        logreg, standardize, "predict_proba", _inputs(train_x, train_y, test_x)
    )


def _stratified_holdout(
    y: np.ndarray, n_classes: int, fraction: float, gen: torch.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded per-class split into (fit, val) image indices, so every class keeps a fit example.

    Splitting images rather than draws keeps draws of one image from leaking into validation.
    """
    val = []
    for c in range(n_classes):
        members = np.flatnonzero(y == c)
        n_val = min(round(fraction * len(members)), len(members) - 1)
        val.append(members[torch.randperm(len(members), generator=gen)[:n_val].numpy()])
    is_val = np.zeros(len(y), dtype=bool)
    is_val[np.concatenate(val)] = True
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def _mc_probs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Class probabilities per image: p(y|z_k) averaged over its draws."""
    model.eval()
    with torch.inference_mode():
        probs = torch.cat([model(rows).softmax(1) for rows in _flat(x).split(_EVAL_ROWS)])
    return probs.reshape(len(x), -1, probs.shape[1]).mean(1)


@contextlib.contextmanager
def _one_cpu_thread(dev: torch.device) -> Iterator[None]:
    """Run tiny-batch CPU training on one thread, restoring the caller's setting afterwards.

    Its ops are too small to gain from intra-op threads, and on shared cores OpenMP's spinning
    threads made it several times slower (60,000 x 32 on 2 busy cores: 0.7 s vs 3.3 s an epoch).
    """
    if dev.type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _train_mlp(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    val_x: torch.Tensor,
    val_y: torch.Tensor,
    *,
    lr: float,
    batch_size: int,
    max_epochs: int,
    patience: int,
    gen: torch.Generator,
) -> None:
    """Adam on cross-entropy; keeps the weights with the best validation accuracy.

    Patience counts epochs without a strict gain, but a tie (common on small validation sets)
    still takes the newer, longer-trained weights, so a probe that is perfect early keeps its
    wider margins. Without validation images it trains for ``max_epochs``, keeping the last
    weights.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    best_acc, best_state, stale = -1.0, None, 0
    for _ in range(max_epochs):
        model.train()
        perm = torch.randperm(len(x), generator=gen).to(x.device)
        xs, ys = x[perm], y[perm]
        # BatchNorm cannot train on a single row, so a trailing batch of one is skipped.
        for start in range(0, len(xs) - 1, batch_size):
            optimizer.zero_grad(set_to_none=True)
            batch = slice(start, start + batch_size)
            F.cross_entropy(model(xs[batch]), ys[batch]).backward()
            optimizer.step()
        if len(val_y) == 0:
            continue
        acc = (_mc_probs(model, val_x).argmax(1) == val_y).float().mean().item()
        stale = 0 if acc > best_acc else stale + 1
        if acc >= best_acc:
            best_acc, best_state = acc, copy.deepcopy(model.state_dict())
        if stale >= patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)


def mlp_predictions(
    train_x: ArrayLike,
    train_y: ArrayLike,
    test_x: ArrayLike,
    *,
    hidden: int = 200,
    dropout: float = 0.1,
    lr: float = 1e-3,
    batch_size: int = 256,
    max_epochs: int = 100,
    patience: int = 10,
    val_fraction: float = 0.1,
    seed: int = 0,
    device: str | None = None,
) -> np.ndarray:
    """Test-image labels predicted by a one-hidden-layer MLP: the nonlinear probe.

    ``val_fraction`` of the training images (stratified, seeded) is held out for early stopping.
    Inputs are standardised with statistics of the remaining training draws. Runs under a forked
    RNG, so results depend only on ``seed`` (bit-identical on CPU) and the caller's global RNG
    is left untouched; on CPU it trains on one thread (see ``_one_cpu_thread``). For
    ``[N, K, D]`` inputs it trains on all draws and averages p(y|z_k) over each image's K draws
    before the argmax.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    x, y, tx = _inputs(train_x, train_y, test_x)
    dev = _device(device)
    classes, y_idx = np.unique(y, return_inverse=True)
    gen = torch.Generator().manual_seed(seed)
    fit, val = _stratified_holdout(y_idx, len(classes), val_fraction, gen)

    fit_x = torch.from_numpy(_flat(x[fit])).to(dev)
    std, mean = torch.std_mean(fit_x, dim=0, correction=0)
    std = torch.where(std > _MIN_STD, std, torch.ones_like(std))
    fit_x.sub_(mean).div_(std)  # in place: x[fit] is already a private copy

    def standardized(a: np.ndarray) -> torch.Tensor:
        return (torch.from_numpy(a).to(dev) - mean) / std

    def class_index(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).to(dev)

    rng_devices = []
    if dev.type == "cuda":
        rng_devices = [torch.cuda.current_device() if dev.index is None else dev.index]
    with _one_cpu_thread(dev), torch.random.fork_rng(devices=rng_devices):
        torch.manual_seed(seed)  # weight init and dropout masks
        model = nn.Sequential(
            nn.Linear(x.shape[-1], hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, len(classes)),
        ).to(dev)
        _train_mlp(
            model,
            fit_x,
            class_index(_draw_labels(y_idx[fit], x)),
            standardized(x[val]),
            class_index(y_idx[val]),
            lr=lr,
            batch_size=batch_size,
            max_epochs=max_epochs,
            patience=patience,
            gen=gen,
        )
    return classes[_mc_probs(model, standardized(tx)).argmax(1).cpu().numpy()]


def _unit_rows(x: np.ndarray, dev: torch.device) -> torch.Tensor:
    """L2-normalised vectors, one per image (the mean of its draws for ``[N, K, D]``)."""
    t = torch.from_numpy(x.mean(axis=1) if x.ndim == 3 else x).to(dev)
    return F.normalize(t, dim=1)


def knn_predictions(
    train_x: ArrayLike,
    train_y: ArrayLike,
    test_x: ArrayLike,
    *,
    k: int = 20,
    temperature: float = 0.07,
    device: str | None = None,
) -> np.ndarray:
    """Test-image labels predicted by weighted cosine kNN, as solo-learn / DINO report it.

    Each of the ``k`` most cosine-similar training images votes for its class with weight
    ``exp(sim / temperature)``. ``[N, K, D]`` inputs are reduced to the mean over the K draws on
    both sides, because a per-draw vote would mostly measure draw-to-draw noise. Test images are
    processed in chunks so that 10,000 x 60,000 similarities never sit in memory at once.
    """
    x, y, tx = _inputs(train_x, train_y, test_x)
    dev = _device(device)
    classes, y_idx = np.unique(y, return_inverse=True)
    bank, queries = _unit_rows(x, dev), _unit_rows(tx, dev)
    bank_labels = torch.from_numpy(y_idx).to(dev)
    k = min(k, len(bank))
    preds = []
    for q in queries.split(max(1, _KNN_SIM_ENTRIES // len(bank))):
        sim, idx = (q @ bank.T).topk(k, dim=1)
        votes = torch.zeros(len(q), len(classes), device=dev)
        votes.scatter_add_(1, bank_labels[idx], (sim / temperature).exp())
        preds.append(votes.argmax(1))
    return classes[torch.cat(preds).cpu().numpy()]


def _scored(predictions: Callable[..., np.ndarray], name: str) -> Callable[..., float]:
    """The test accuracy of a ``*_predictions`` function: same arguments plus the test labels."""

    def probe(
        train_x: ArrayLike, train_y: ArrayLike, test_x: ArrayLike, test_y: ArrayLike, **options
    ) -> float:
        pred = predictions(train_x, train_y, test_x, **options)
        return _accuracy(pred, _labels(test_y, len(pred)))

    probe.__doc__ = f"Test accuracy of ``{name}`` (see its options)."
    return probe


linear_probe = _scored(linear_predictions, "linear_predictions")
logistic_probe = _scored(logistic_predictions, "logistic_predictions")
mlp_probe = _scored(mlp_predictions, "mlp_predictions")
knn_probe = _scored(knn_predictions, "knn_predictions")
# Zhang et al.'s protocol: the SVM (C = 1) on unscaled posterior means. Without standardisation C
# penalises a weakly spread dimension's weight more, so the probe leans on widely spread ones.
linear_unscaled_predictions = partial(linear_predictions, standardize=False)
linear_unscaled_probe = _scored(linear_unscaled_predictions, "linear_unscaled_predictions")

PREDICTORS: dict[str, Callable[..., np.ndarray]] = {
    "linear": linear_predictions,
    "linear-unscaled": linear_unscaled_predictions,
    "mlp": mlp_predictions,
    "knn": knn_predictions,
    "logistic": logistic_predictions,
}
PROBES: tuple[str, ...] = tuple(PREDICTORS)


def route_options(probes: Sequence[str], options: dict[str, object]) -> dict[str, dict]:
    """Each probe's share of ``options``: those its predictor's signature accepts.

    An unknown probe, or an option no selected probe accepts, is an error, so typos do not pass
    silently.
    """
    unknown = [p for p in probes if p not in PREDICTORS]
    if unknown:
        raise ValueError(f"unknown probes {unknown}; choose from {PROBES}")
    per_probe = {
        p: {k: v for k, v in options.items() if k in inspect.signature(PREDICTORS[p]).parameters}
        for p in probes
    }
    unused = set(options).difference(*per_probe.values()) - {"seed"}
    if unused:
        raise TypeError(f"options {sorted(unused)} are not accepted by any of {tuple(probes)}")
    return per_probe


def _n_folds(protocol: str, folds: int) -> int | None:
    """None for "split"; the fold count for "cv" (``folds``) or "cvN" (N, as results name it)."""
    if protocol == "split":
        return None
    match = re.fullmatch(r"cv(\d*)", protocol)
    if match is None:
        raise ValueError(f"protocol must be 'split', 'cv' or 'cvN', got {protocol!r}")
    n = int(match.group(1) or folds)
    if n < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {n}")
    return n


def _splits(data: Split, n_folds: int | None, seed: int) -> Iterator[Split]:
    """The given train/test split, or stratified folds over train and test pooled together."""
    x, y, tx, ty = data
    if n_folds is None:
        yield data
        return
    if x.shape[1:] != tx.shape[1:]:
        raise ValueError(f"cannot pool train {x.shape} and test {tx.shape} for CV")
    all_x, all_y = np.concatenate([x, tx]), np.concatenate([y, ty])
    kfold = StratifiedKFold(n_folds, shuffle=True, random_state=seed)
    for tr, te in kfold.split(np.zeros(len(all_y)), all_y):
        yield all_x[tr], all_y[tr], all_x[te], all_y[te]


def run_probes(
    train_x: ArrayLike,
    train_y: ArrayLike,
    test_x: ArrayLike,
    test_y: ArrayLike,
    *,
    probes: Sequence[str] = ("linear", "mlp"),
    protocol: str = "split",
    folds: int = 5,
    seed: int = 0,
    **probe_options: object,
) -> list[ProbeResult]:
    """Run several probes under one protocol, one ``ProbeResult`` per probe (in order).

    ``protocol="split"`` trains on train and tests on test. ``protocol="cv"`` pools train and
    test and reports mean ± std over ``StratifiedKFold(folds, shuffle=True, random_state=seed)``
    (the reference project's 5-fold CV); every probe sees the same folds. ``seed`` also seeds
    the probes. Each entry of ``probe_options`` goes to every selected probe whose signature
    accepts it (e.g. ``C`` to linear and logistic, ``device`` to mlp and knn); an option no
    selected probe accepts is an error, so typos do not pass silently.
    """
    probes = (probes,) if isinstance(probes, str) else tuple(probes)
    per_probe = route_options(probes, {"seed": seed, **probe_options})
    n_folds = _n_folds(protocol, folds)
    data = _prepare(train_x, train_y, test_x, test_y)

    results = []
    for name in probes:
        start = time.perf_counter()
        accs, n_train, n_test = [], [], []
        for x, y, tx, ty in _splits(data, n_folds, seed):
            accs.append(_accuracy(PREDICTORS[name](x, y, tx, **per_probe[name]), ty))
            n_train.append(len(x))
            n_test.append(len(tx))
        results.append(
            ProbeResult(
                probe=name,
                protocol="split" if n_folds is None else f"cv{n_folds}",
                accuracy=float(np.mean(accs)),
                std=float(np.std(accs)),
                folds=tuple(accs),
                n_train=round(np.mean(n_train)),
                n_test=round(np.mean(n_test)),
                seconds=time.perf_counter() - start,
            )
        )
    return results
