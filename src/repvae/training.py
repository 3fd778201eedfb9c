"""Training with Lightning: devices, DDP, checkpoints, early stopping, loggers, progress bar.

``train(config, out)`` writes a self-describing run folder:

    RUN/config.yaml          full configuration + library version + environment
    RUN/model.safetensors    weights of the best (lowest validation loss) epoch
    RUN/summary.json         epochs, steps, best validation loss, wall time
    RUN/logs/metrics.csv     per-step and per-epoch loss terms
    RUN/checkpoints/         Lightning checkpoints (best.ckpt, last.ckpt) for --resume
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import json
import logging
import math
import time
import warnings
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, cast

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import (
    Callback,
    EarlyStopping,
    LearningRateMonitor,
    ModelCheckpoint,
    TQDMProgressBar,
)
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

from repvae.config import Config, ConfigError, TrainConfig
from repvae.data import ImageData
from repvae.data.batches import SemiSupervisedBatches, TensorBatches
from repvae.data.splits import balanced_subset
from repvae.files import atomic_path, write_text
from repvae.models import Model, build_model
from repvae.run import (
    DIGEST_KEY,
    RNG_KEY,
    Run,
    TrainingDiverged,
    check_fresh,
    check_resume,
    checkpoint_digest,
    clear_run,
    concrete_architecture,
    environment,
    primary_process,
    read_checkpoint,
    run_lock,
    save_weights,
)

log = logging.getLogger(__name__)

# checkpoint entry holding the run's training time so far (see LitVAE.on_save_checkpoint)
TRAIN_SECONDS_KEY = "repvae_train_seconds"
# A batch loss this many times its scale above the best one is a blow-up, not noise: Adam at
# lr 1e6 takes an MNIST VAE from ~500 nats to ~1e9 in a few steps, while a healthy run's batch
# losses stay within a few times their running best.
EXPLOSION = 1e3
# the progress bar's refresh, in steps (and so how often the step's terms are logged for it)
BAR_REFRESH = 10


def make_adam(params, lr: float, weight_decay: float = 0.0) -> torch.optim.Adam:
    """Fused Adam (one kernel for the whole update; measured fastest on CPU in
    benchmarks/train_throughput.py), or multi-tensor foreach Adam where fused is unsupported."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, foreach=True)


def warmup_cosine(step: int, warmup: int, total: int) -> float:
    """The learning-rate factor at ``step``: linear from 1/warmup to 1 over ``warmup`` steps,
    then a cosine from 1 to 0 at step ``total``. A function of the step alone, so a resumed run
    (perhaps given more epochs, hence a later ``total``) follows the schedule it is given."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def kl_warmup_scale(step: int, warmup_steps: int) -> float:
    """Linear KL warm-up: the KL weight grows from beta/warmup to beta over ``warmup_steps``."""
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0


class LitVAE(L.LightningModule):
    """Thin Lightning wrapper: the maths lives in ``VAE.loss``."""

    def __init__(
        self,
        model: Model,
        train_config: TrainConfig,
        train_batches: TensorBatches | SemiSupervisedBatches,
    ) -> None:
        super().__init__()
        self.model = model
        self.cfg = train_config
        self.train_batches = train_batches
        # training time of earlier legs, from the resumed checkpoint (None: not recorded there)
        self.seconds_before: float | None = None
        self._best_loss: float | None = None
        self._fit_started = time.perf_counter()

    def on_fit_start(self) -> None:
        self._fit_started = time.perf_counter()

    def train_seconds(self) -> float:
        """Wall time spent training this run, over every leg up to now."""
        return (self.seconds_before or 0.0) + time.perf_counter() - self._fit_started

    # The time rides in each checkpoint, so a run stopped before it wrote its summary (killed,
    # out of time) still counts the epochs it checkpointed once resumed.
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[TRAIN_SECONDS_KEY] = self.train_seconds()
        checkpoint[RNG_KEY] = {
            "cpu": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }
        # last: the digest covers the weights, the optimiser state and the generators
        checkpoint[DIGEST_KEY] = checkpoint_digest(checkpoint)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if TRAIN_SECONDS_KEY in checkpoint:
            self.seconds_before = float(checkpoint[TRAIN_SECONDS_KEY])
        # Lightning runs its sanity check with the generators isolated, so the state restored
        # here is the one the next epoch starts from, as in a run never interrupted
        rng = checkpoint.get(RNG_KEY)
        if rng is not None:
            torch.set_rng_state(rng["cpu"])
            if rng["cuda"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(rng["cuda"])

    def setup(self, stage: str) -> None:
        self.train_batches.rank = self.global_rank
        self.train_batches.world_size = self.trainer.world_size

    def on_train_epoch_start(self) -> None:
        self.train_batches.epoch = self.current_epoch

    def on_train_start(self) -> None:
        # On resume the optimizer state comes from the checkpoint; honour a changed learning rate.
        for group in self.trainer.optimizers[0].param_groups:
            group["lr"] = self.cfg.lr
        for config in self.trainer.lr_scheduler_configs:
            config.scheduler.base_lrs = [self.cfg.lr] * len(config.scheduler.base_lrs)

    def _beta_scale(self) -> float:
        return kl_warmup_scale(self.global_step, self.cfg.kl_warmup_steps)

    def training_step(self, batch, batch_idx):
        x, y = batch
        out = self.model.loss(self._to_memory_format(x), self._beta_scale(), labels=y)
        self._check_diverged(out.loss.detach())
        if not self._logs_this_step():
            return out.loss
        self.log("loss", out.loss, prog_bar=True, batch_size=len(x))
        self.log_dict({f"train/{k}": v for k, v in out.terms.items()}, batch_size=len(x))
        # The progress bar shows the terms of the full-size prefix (all terms go to the logger).
        full = f"/{self.model.prefixes[-1]}"
        bar = {
            k.removesuffix(full): v
            for k, v in out.terms.items()
            if "/" not in k or k.endswith(full)
        }
        self.log_dict(bar, prog_bar=True, logger=False, batch_size=len(x))
        return out.loss

    def _logs_this_step(self) -> bool:
        """Whether this step's terms go to the logger or the progress bar. Lightning writes step
        metrics every ``log_every_n_steps`` and the bar refreshes every ``BAR_REFRESH`` steps,
        but each ``self.log`` call goes through its result collection, a large share of a small
        network's step (results/speed-peers), so the terms are handed over only on the steps
        that show them."""
        step = self.global_step + 1  # as Lightning counts it before the optimizer steps
        trainer = cast(Any, self.trainer)  # log_every_n_steps: set by Lightning, not declared
        shown = self.cfg.progress and step % BAR_REFRESH == 0
        return bool(shown or step % trainer.log_every_n_steps == 0 or trainer.should_stop)

    def _check_diverged(self, loss: torch.Tensor) -> None:
        """Stop before a diverged step reaches the weights: a non-finite loss, or one that
        jumped ``EXPLOSION`` times its scale above the best batch loss seen since the start."""
        value = loss.item()
        where = f"at step {self.global_step} (epoch {self.current_epoch + 1})"
        if not math.isfinite(value):
            raise TrainingDiverged(f"non-finite loss ({value}) {where}")
        best = self._best_loss
        if best is not None and value - best > EXPLOSION * max(abs(best), 1.0):
            raise TrainingDiverged(
                f"the loss exploded to {value:.4g} {where}, from {best:.4g} at best"
            )
        self._best_loss = value if best is None else min(best, value)

    def on_validation_epoch_end(self) -> None:
        # before the epoch's checkpoints are written: a diverged epoch must not become last.ckpt
        loss = self.trainer.callback_metrics.get("val/loss")
        finite = all(bool(torch.isfinite(p).all()) for p in self.model.parameters())
        if not finite or (loss is not None and not torch.isfinite(loss)):
            raise TrainingDiverged(
                f"non-finite {'weights' if not finite else 'validation loss'} after epoch "
                f"{self.current_epoch + 1}"
            )

    def validation_step(self, batch, batch_idx):
        x, y = batch
        x = self._to_memory_format(x)
        out = self.model.validation_loss(x, y)
        self.log("val/loss", out.loss, prog_bar=True, batch_size=len(x), sync_dist=True)
        if self.model.capabilities.classifier:  # logged to watch, not to select on
            accuracy = (self.model.classify(x).argmax(1) == y).float().mean()
            self.log("val/accuracy", accuracy, prog_bar=True, batch_size=len(x), sync_dist=True)
        self.log_dict(
            {f"val/{k}": v for k, v in out.terms.items()}, batch_size=len(x), sync_dist=True
        )

    def _to_memory_format(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x

    def configure_optimizers(self):
        optimiser = make_adam(self.parameters(), self.cfg.lr, self.cfg.weight_decay)
        if self.cfg.schedule == "constant":
            return optimiser
        total = int(self.trainer.estimated_stepping_batches)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimiser, partial(warmup_cosine, warmup=self.cfg.warmup_steps, total=total)
        )
        return {"optimizer": optimiser, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


class ProgressBar(TQDMProgressBar):
    """Lightning's bar without the logger's version number (``v_num``), which means nothing here,
    and with the precision training runs in (``train.precision: auto`` chooses it)."""

    def get_metrics(self, trainer, pl_module):
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        metrics["precision"] = str(trainer.precision)
        return metrics


def _accelerator(device: str) -> str:
    return {"cuda": "gpu"}.get(device, device)


def native_bf16(device: str) -> bool:
    """Whether the training device computes bfloat16 natively (fast), not by emulation: the
    CPU's AVX512-BF16 or AMX instructions, or a GPU of compute capability 8.0 or later."""
    uses_gpu = device in ("cuda", "gpu") or (device == "auto" and torch.cuda.is_available())
    if uses_gpu:
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device not in ("auto", "cpu"):
        return False  # mps and others: not measured here
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def resolve_precision(setting: str, device: str) -> str:
    """``auto``: bf16 mixed precision where the device has native bf16, else fp32 (the models
    keep their likelihoods, KL and MMD terms in fp32 either way); any other value as it is."""
    if setting != "auto":
        return setting
    return "bf16-mixed" if native_bf16(device) else "32-true"


class _ResumedWriter(ExperimentWriter):
    """Lightning's CSV writer deletes ``metrics.csv`` when it starts, so a resumed run would lose
    the loss curve of everything before the interruption. This one keeps the rows of the steps
    the checkpoint holds (``step`` < its global step) and drops those it will redo."""

    def __init__(self, log_dir: str, done_steps: int) -> None:
        self.done_steps = done_steps
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if not path.is_file():
            return
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            keys = list(reader.fieldnames or [])
            rows = [r for r in reader if r.get("step") and int(r["step"]) < self.done_steps]
        with atomic_path(path) as temporary, temporary.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)
        self.metrics_keys = sorted(keys)  # later saves append under the same header


def _lightning_state_key(key: str, ours: type[Callback], base: type[Callback]) -> str:
    """Our subclass's state key spelled with Lightning's class name: checkpoints file callback
    state under keys that start with the class name, and ours must read and write the same
    entries as the plain callbacks of runs trained before them."""
    return base.__qualname__ + key.removeprefix(ours.__qualname__)


class _RunCheckpoint(ModelCheckpoint):
    """A ModelCheckpoint that survives a moved run folder.

    Lightning restores the best score only when the checkpoint folder's path is unchanged: a run
    resumed after a move (a copy, another machine) would take its next epoch as the best however
    bad, and until then point at the old folder's file. A run's checkpoints always live in
    RUN/checkpoints, so the saved paths are re-rooted in the current folder instead.
    """

    @property
    def state_key(self) -> str:
        return _lightning_state_key(super().state_key, _RunCheckpoint, ModelCheckpoint)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved_dir, here = state_dict.get("dirpath"), self.dirpath
        if saved_dir is not None and here is not None and saved_dir != here:

            def moved(path: str) -> str:
                return str(Path(here) / Path(path).name) if path else path

            state_dict = {
                **state_dict,
                "dirpath": here,
                "best_model_path": moved(state_dict["best_model_path"]),
                "kth_best_model_path": moved(state_dict.get("kth_best_model_path", "")),
                "last_model_path": moved(state_dict.get("last_model_path", "")),
                "best_k_models": {
                    moved(k): v for k, v in state_dict.get("best_k_models", {}).items()
                },
            }
        super().load_state_dict(state_dict)


class _RunEarlyStopping(EarlyStopping):
    """EarlyStopping whose patience is the run's configured one, also after a resume.

    Lightning restores the patience saved in the checkpoint, so ``--resume --patience N`` (say,
    to continue a run that stopped early) would be silently ignored.
    """

    @property
    def state_key(self) -> str:
        return _lightning_state_key(super().state_key, _RunEarlyStopping, EarlyStopping)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict({**state_dict, "patience": self.patience})


class _ResumedCSVLogger(CSVLogger):
    def __init__(self, run_dir: Path, done_steps: int) -> None:
        super().__init__(run_dir, name="", version="logs")
        self._done_steps = done_steps

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if not isinstance(self._experiment, _ResumedWriter):
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ResumedWriter(self.log_dir, self._done_steps)
        return self._experiment


def _logger(kind: str, run_dir: Path, done_steps: int | None = None):
    """The configured logger; ``done_steps``: the resumed checkpoint's step."""
    if kind == "csv":
        if done_steps is not None:
            return _ResumedCSVLogger(run_dir, done_steps)
        return CSVLogger(run_dir, name="", version="logs")
    if kind == "tensorboard":
        return TensorBoardLogger(run_dir, name="", version="logs")
    return False


def _check_logger(kind: str) -> None:
    if kind == "tensorboard" and not any(
        importlib.util.find_spec(m) for m in ("tensorboard", "tensorboardX")
    ):
        raise ConfigError(
            "train.logger: tensorboard needs the tensorboard package: "
            "pip install 'repvae[tensorboard]' (or use train.logger=csv)"
        )


def quiet_lightning(verbose: bool = False) -> None:
    """Keep Lightning's start-up banners (GPU/TPU available, tips) out of the user's output."""
    level = logging.INFO if verbose else logging.WARNING
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(level)


def train(
    config: Config,
    out: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    data: ImageData | None = None,
) -> Run:
    """Train the configured model into run folder ``out``: a new run, or continue it
    (``resume``), or replace the run it holds (``overwrite``).

    Nothing in the folder changes before the checks pass: a folder holding a run is refused
    unless ``resume`` or ``overwrite``; a resume may change only ``RESUMABLE`` settings; a
    damaged checkpoint is named; a second process training into the folder is refused.
    """
    config.validate()
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite: choose one")
    _check_logger(config.train.logger)
    quiet_lightning(log.isEnabledFor(logging.INFO))
    run_dir = Path(out)
    primary = primary_process()
    with run_lock(run_dir) if primary else contextlib.nullcontext():
        checkpoint = None
        if primary and resume:
            checkpoint = check_resume(config, run_dir)
        elif primary:
            check_fresh(run_dir, overwrite)
        if data is None:
            data = config.data.load()
        config = concrete_architecture(config, data.shape)
        if primary:
            if overwrite:
                clear_run(run_dir)
            config.save(
                run_dir / "config.yaml",
                repvae=environment(),
                dataset={"shape": list(data.shape), "num_classes": data.num_classes},
            )
        done_steps = None if checkpoint is None else int(checkpoint["global_step"])
        return _train(config, run_dir, data, resume, done_steps)


def _train(
    config: Config, run_dir: Path, data: ImageData, resume: bool, done_steps: int | None
) -> Run:
    t = config.train
    L.seed_everything(t.seed, workers=True, verbose=False)
    checkpoints = run_dir / "checkpoints"
    last_ckpt = checkpoints / "last.ckpt"
    train_split = data.train
    images, labels = train_split.images, train_split.labels
    if t.train_subset is not None and t.train_subset < len(images):
        keep = torch.randperm(len(images), generator=torch.Generator().manual_seed(t.seed))[
            : t.train_subset
        ]
        images, labels = images[keep], labels[keep]
    model = build_model(config.model, data.shape, data.num_classes)
    if model.capabilities.closed_form:
        return _fit_closed_form(model, config, run_dir, images, data)
    # Module.to takes memory_format (documented), but torch's stubs do not list it
    model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    train_batches: TensorBatches | SemiSupervisedBatches
    needs_labels = model.capabilities.needs_labels
    if needs_labels:
        if t.labelled is None or t.labelled >= len(labels):
            labelled = np.arange(len(labels))  # every label (a balanced draw would drop some)
        else:
            labelled = balanced_subset(labels.numpy(), t.labelled, np.random.default_rng(t.seed))
        model.label_budget(len(labelled), len(labels))
        train_batches = SemiSupervisedBatches(
            images, labels, torch.from_numpy(labelled), t.batch_size, seed=t.seed
        )
    else:
        train_batches = TensorBatches(
            images, labels, t.batch_size, shuffle=True, seed=t.seed, min_last=2
        )
    val_batches = TensorBatches(data.val.images, data.val.labels, max(t.batch_size, 512))
    module = LitVAE(model, t, train_batches)
    best = _RunCheckpoint(
        dirpath=checkpoints, filename="best", monitor="val/loss", enable_version_counter=False
    )
    # Not ``save_last=True``: Lightning writes that copy only when a top-k checkpoint is saved,
    # so after the best epoch it would stop moving and a resume would lose every later epoch.
    # Without a monitor a checkpoint is written after every epoch.
    last = _RunCheckpoint(dirpath=checkpoints, filename="last", enable_version_counter=False)
    callbacks = [
        best,
        last,
        _RunEarlyStopping(monitor="val/loss", patience=t.patience, check_finite=True),
    ]
    if t.schedule != "constant" and t.logger != "none":
        callbacks.append(LearningRateMonitor(logging_interval="step"))
    if t.progress:
        callbacks.append(ProgressBar(refresh_rate=BAR_REFRESH))
    precision = resolve_precision(t.precision, t.device)
    trainer = L.Trainer(
        accelerator=_accelerator(t.device),
        devices=t.devices if t.devices != "auto" else "auto",
        num_nodes=t.num_nodes,
        strategy=t.strategy,
        precision=precision,  # type: ignore[arg-type]  # one of config.PRECISIONS
        max_epochs=t.epochs,
        max_steps=t.max_steps,
        max_time=None if t.max_minutes is None else timedelta(minutes=t.max_minutes),
        callbacks=callbacks,
        logger=_logger(t.logger, run_dir, done_steps if resume else None),
        enable_progress_bar=t.progress,
        enable_model_summary=False,
        log_every_n_steps=min(50, max(1, len(train_batches))),
        default_root_dir=run_dir,
        deterministic=False,
    )
    with warnings.catch_warnings():
        # Lightning's notes about DataLoader workers and pytree internals do not apply to
        # in-memory TensorBatches; everything else it warns about is kept.
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        # a resumed run writes into its own checkpoint folder: that is the point
        warnings.filterwarnings("ignore", message=".*Checkpoint directory .* exists and is not")
        try:
            trainer.fit(
                module, train_batches, val_batches, ckpt_path=str(last_ckpt) if resume else None
            )
        except TrainingDiverged as err:
            raise TrainingDiverged(f"{err}. {_after_divergence(run_dir, last_ckpt)}") from err
    if trainer.interrupted:
        trainer.save_checkpoint(last_ckpt)
        raise KeyboardInterrupt(
            f"training interrupted; resume with `repvae train --resume {run_dir}`"
        )

    if not trainer.is_global_zero:  # under DDP only rank 0 writes the run folder's results
        return Run(run_dir, config, model.eval(), {})
    if best.best_model_path:
        state = torch.load(best.best_model_path, map_location="cpu", weights_only=True)[
            "state_dict"
        ]
        module.load_state_dict(state)
    save_weights(model, run_dir / "model.safetensors")
    seconds = module.train_seconds()
    if resume and module.seconds_before is None:
        # a checkpoint from before checkpoints carried the time: add the finished run's summary
        seconds += _read_summary(run_dir).get("train_seconds", 0.0)
    best_val = best.best_model_score.item() if best.best_model_score is not None else math.nan
    summary = {
        "epochs": trainer.current_epoch,
        "steps": trainer.global_step,
        "best_val_loss": best_val,
        "train_seconds": seconds,
        "train_images": len(images),
        "precision": precision,
        **({"labelled_images": len(labelled)} if needs_labels else {}),
        "parameters": sum(p.numel() for p in model.parameters()),
        **model.training_summary(images),
    }
    write_text(run_dir / "summary.json", json.dumps(summary, indent=2))
    return Run(run_dir, config, model.eval(), summary)


@torch.no_grad()
def _fit_closed_form(
    model: Model, config: Config, run_dir: Path, images: torch.Tensor, data: ImageData
) -> Run:
    """A family fitted in closed form (no epochs): fit, score the validation split with the
    family's loss, and write the same run folder a trained model gets."""
    started = time.perf_counter()
    fitted = model.fit(images)
    seconds = time.perf_counter() - started
    model.eval()
    val_losses = [
        (model.validation_loss(x, y).loss.item(), len(x))
        for x, y in TensorBatches(data.val.images, data.val.labels, 512)
    ]
    val_loss = sum(loss * n for loss, n in val_losses) / max(1, sum(n for _, n in val_losses))
    save_weights(model, run_dir / "model.safetensors")
    summary = {
        "epochs": 0,
        "steps": 0,
        "fit": "closed form",
        "best_val_loss": val_loss,
        "train_seconds": seconds,
        "train_images": len(images),
        "parameters": sum(p.numel() for p in model.parameters()),
        **fitted,
    }
    write_text(run_dir / "summary.json", json.dumps(summary, indent=2))
    return Run(run_dir, config, model, summary)


def _after_divergence(run_dir: Path, last_ckpt: Path) -> str:
    """What a diverged run leaves to resume from: the diverged weights are never saved, so the
    last checkpoint is the last epoch that ended with finite weights and validation loss."""
    if not last_ckpt.exists():
        return (
            "No epoch finished before it, so there is no checkpoint to resume: start again "
            f"with a lower --lr (repvae train ... --out {run_dir} --overwrite)"
        )
    saved = read_checkpoint(last_ckpt)
    return (
        f"The last good checkpoint, {last_ckpt}, holds the weights after epoch "
        f"{int(saved['epoch']) + 1} (step {int(saved['global_step'])}); resume from it with a "
        f"lower learning rate: repvae train --resume {run_dir} --lr LR"
    )


def _read_summary(run_dir: Path) -> dict:
    path = run_dir / "summary.json"
    return json.loads(path.read_text()) if path.exists() else {}
