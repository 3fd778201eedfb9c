"""Declarative studies: a YAML file describes a grid of runs.

    name: flexible
    base: {data: {name: mnist}, train: {epochs: 10}}      # a Config, as in config.yaml
    grid:                                                   # each entry: a cartesian product
      - {model: [vae, infovae], model.latent_dim: [2, 8, 16]}
      - {model: [minfovae], model.latent_dim: [16]}
    seeds: [0]
    evaluate: {kinds: [map, sample], probes: [mlp], protocol: cv, folds: 5, subset: null,
               metrics: [information, likelihood], settings: {iw_samples: 100}}
    budgets: {quick: {train.epochs: 2, evaluate.subset: 10000}}
    labels: {vae: VAE}                                      # display names of presets
    pictures: [traversals]          # each method's pictures the report shows (metric pictures)
    resources: {cpus: 2, gpus: 0, partition: gpu, time: 120}   # per run, on Ray and Slurm

Axis keys are dotted config fields (``model.vae.nesting_weights``; the flat names of the first
format, ``model.nesting_weights``, still work), or ``model`` for a registered preset. Nested
(Matryoshka) models are probed at every prefix size; ``evaluate.metrics`` names metrics of
``repvae evaluate`` (``evaluate.settings`` sets its options) to compute for every run.
``resources`` is what one run asks of a Ray cluster or of Slurm (``repvae.studies.executors``);
a budget may change it too (``resources.time: 600``).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml

from repvae.config import PRESETS, Config, ConfigError, apply_overrides, from_dict, set_dotted
from repvae.config.errors import yaml_problem
from repvae.data import dataset_label
from repvae.evaluate.suite import METRICS

T = TypeVar("T")


@dataclass
class Evaluation:
    kinds: list[str] = field(default_factory=lambda: ["map"])
    probes: list[str] = field(default_factory=lambda: ["linear", "mlp"])
    protocol: str = "split"
    folds: int = 5
    subset: int | None = None  # probe on a seeded subset of this many training images
    metrics: list[str] = field(default_factory=list)  # metrics of repvae evaluate
    settings: dict[str, Any] = field(default_factory=dict)  # repvae.evaluate.suite.Settings


@dataclass
class Resources:
    """What one run asks for on a cluster: CPU cores and GPUs (Ray and Slurm; on Ray a share
    of a GPU, e.g. 0.25 for four small runs on one GPU), and on Slurm the partition, the time
    limit in minutes (a run still training then is requeued and resumes from its last
    checkpoint) and the memory in GB (None: the partition's default)."""

    cpus: int = 1
    gpus: float = 0
    partition: str | None = None
    time: int = 60
    mem_gb: float | None = None

    def check(self) -> None:
        for name, whole in (("cpus", self.cpus), ("time", self.time)):
            if isinstance(whole, bool) or not isinstance(whole, int) or whole < 1:
                raise ConfigError(f"study.resources.{name}: must be a whole number >= 1")
        for name, number in (("gpus", self.gpus), ("mem_gb", self.mem_gb or 0)):
            if isinstance(number, bool) or not isinstance(number, int | float) or number < 0:
                raise ConfigError(f"study.resources.{name}: must be a number >= 0")


@dataclass
class RunSpec:
    id: str
    method: str
    config: Config
    # nested runs: the label of the separately trained method whose runs this one replaces
    replaces: str = ""


@dataclass
class Study:
    name: str
    base: dict[str, Any]
    grid: list[dict[str, list[Any]]]
    seeds: list[int] = field(default_factory=lambda: [0])
    evaluate: Evaluation = field(default_factory=Evaluation)
    budgets: dict[str, dict[str, Any]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    title: str = ""
    source: str = ""
    # the pictures (of the ``pictures`` metric) of each method's first run the report shows
    pictures: list[str] = field(default_factory=lambda: ["traversals"])
    resources: Resources = field(default_factory=Resources)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Study:
        known = {
            "name",
            "base",
            "grid",
            "seeds",
            "evaluate",
            "budgets",
            "labels",
            "title",
            "source",
            "pictures",
            "resources",
        }
        for key in raw:
            if key not in known:
                raise ConfigError(f"study.{key}: unknown key; expected one of {sorted(known)}")
        evaluate = _dataclass_section(Evaluation, "evaluate", raw.get("evaluate"))
        unknown = [m for m in evaluate.metrics if m not in METRICS]
        if unknown:
            raise ConfigError(f"study.evaluate.metrics: {unknown} unknown; choose from {METRICS}")
        for key in ("name", "grid"):
            if key not in raw:
                raise ConfigError(f"study.{key}: missing")
        resources = _dataclass_section(Resources, "resources", raw.get("resources"))
        resources.check()
        return cls(
            name=raw["name"],
            base=raw.get("base") or {},
            grid=raw["grid"],
            seeds=raw.get("seeds", [0]),
            evaluate=evaluate,
            budgets=raw.get("budgets") or {},
            labels=raw.get("labels") or {},
            title=raw.get("title", ""),
            source=raw.get("source", ""),
            pictures=raw.get("pictures", ["traversals"]),
            resources=resources,
        )

    def with_budget(self, budget: str | None, seeds: list[int] | None = None) -> Study:
        """Apply a named budget: ``train.*``/``data.*``/``model.*`` go to the base config,
        ``evaluate.*`` to the evaluation settings, ``resources.*`` to what a run asks of a
        cluster, ``seeds`` replaces the seeds. Explicit
        ``seeds`` (``--seeds``) replace both the study's and the budget's."""
        if budget is None:
            return replace(self, seeds=list(seeds)) if seeds else self
        if budget not in self.budgets:
            raise ConfigError(
                f"--budget: unknown budget {budget!r}; this study has {sorted(self.budgets)}"
            )
        base = json.loads(json.dumps(self.base))
        evaluate, resources = replace(self.evaluate), replace(self.resources)
        sections: dict[str, Any] = {"evaluate": evaluate, "resources": resources}
        chosen = self.seeds
        for dotted, value in self.budgets[budget].items():
            section, _, key = dotted.partition(".")
            if dotted == "seeds":
                chosen = list(value)
            elif section in sections:
                if key not in vars(sections[section]):
                    raise ConfigError(f"study.budgets.{budget}.{dotted}: unknown setting")
                setattr(sections[section], key, value)
            else:
                set_dotted(base, dotted, value)
        resources.check()
        seeds = list(seeds) if seeds else chosen
        return replace(self, base=base, seeds=seeds, evaluate=evaluate, resources=resources)

    def runs(self, overrides: dict[str, Any] | None = None) -> list[RunSpec]:
        """Expand the grid x seeds into runs with stable, readable ids."""
        base = apply_overrides(from_dict(self.base), overrides or {})
        specs = []
        for seed in self.seeds:  # seed-major: a partly finished study has whole replicates
            for block in self.grid:
                axes = list(block)
                for values in itertools.product(*(block[a] for a in axes)):
                    chosen = dict(zip(axes, values, strict=True))
                    specs.append(self._spec(base, chosen, seed))
        ids = [s.id for s in specs]
        if len(set(ids)) != len(ids):
            raise ConfigError("study.grid: two grid entries expand to the same run")
        return specs

    def _spec(self, base: Config, chosen: dict[str, Any], seed: int) -> RunSpec:
        method = chosen.get("model", "vae")
        latent = chosen.get("model.latent_dim", base.model.latent_dim)
        if method not in PRESETS:
            raise ConfigError(
                f"study.grid.model: unknown preset {method!r}; "
                f"choose from {sorted(PRESETS.names())}"
            )
        preset = PRESETS.get(method)
        overrides = {**preset.overrides(latent), "train.seed": seed}
        overrides.update({k: v for k, v in chosen.items() if k != "model"})
        config = apply_overrides(base, overrides)
        parts = [dataset_label(config.data.name), method]
        parts += [f"{_field(k)}{_slug(v)}" for k, v in chosen.items() if k != "model"]
        parts.append(f"seed{seed}")
        section = config.model.options
        label = self.labels.get(method, method) + section.describe()
        # Other swept fields tell runs of one method apart (e.g. beta-VAE (beta=4)); the fields
        # the family's description covers are not repeated.
        named = ("model", "latent_dim", *section.described_fields)
        swept = [
            f"{_field(k)}={_slug(v, ',')}"
            for k, v in chosen.items()
            if k != "model" and _field(k) not in named
        ]
        if swept:
            label += f" ({', '.join(swept)})"
        replaces = self.labels.get(preset.replaces, preset.replaces)
        return RunSpec("-".join(str(p) for p in parts), label, config, replaces)


def _dataclass_section(kind: type[T], name: str, raw: Any) -> T:
    """A study file's mapping (``evaluate``, ``resources``) as its dataclass, unknown keys named."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"study.{name}: expected a mapping")
    known = {f.name for f in fields(kind)}  # type: ignore[arg-type]
    for key in raw:
        if key not in known:
            raise ConfigError(f"study.{name}.{key}: unknown key; expected one of {sorted(known)}")
    return kind(**raw)


def _field(dotted: str) -> str:
    """The field a grid axis sets, as run ids and labels name it (``model.vae.lam`` -> lam)."""
    return dotted.rpartition(".")[2]


def _slug(value: Any, sep: str = "_") -> str:
    """A grid value as it appears in run ids and labels: lists join without brackets or spaces."""
    if isinstance(value, list | tuple):
        return sep.join(_slug(v, sep) for v in value)
    return str(value)


def builtin_study(name: str) -> Path:
    """Path of a study shipped with repvae (``repvae/studies/<name>.yaml``)."""
    path = Path(str(resources.files("repvae") / "studies" / f"{name}.yaml"))
    if not path.exists():
        available = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise ConfigError(f"reproduce: unknown study {name!r}; available: {available}")
    return path


def load_study(path: str | Path) -> Study:
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except OSError as err:
        raise ConfigError(f"{path}: cannot read study file ({err.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (a YAML study file is expected)") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {yaml_problem(err)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a study file is a mapping (name, base, grid, ...)")
    try:
        return Study.from_dict(raw)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
