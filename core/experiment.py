"""The parsed experiment: the Hydra config read once into plain, typed objects.

:func:`parse_experiment` turns the composed config into an :class:`Experiment` (name, seed,
draws, model families with their sizes, budgets and sampling settings, the task / backend /
producer options) after merging the experiment's ``scales.<scale>`` block
(:func:`apply_scale`). Everything downstream -- the manifest, the sampling loop, the cube
assembly and every producer -- reads this object, never the Hydra config
(``docs/design.md``, "Layout and data flow").
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from hotmess.core.backend import ModelSpec
from hotmess.core.types import SamplingParams

log = logging.getLogger(__name__)

#: Config groups (their selections on the command line are not value overrides).
GROUPS = ("backend", "task", "producer", "experiment", "model", "scale_group")
#: Keys of a model family's config that are not options passed on to the backend.
FAMILY_KEYS = ("name", "chat", "thinking", "sizes", "run_sizes", "sampling", "budgets")


class ConfigError(ValueError):
    """The experiment configuration is invalid (the message names the key)."""


@dataclass(frozen=True)
class Budget:
    """A reasoning budget: a label, and a token cap or a vendor effort level.

    Attributes
    ----------
    label : str
        The cube's ``budget`` coordinate.
    tokens : int or None
        Reasoning tokens allowed (tokens); None for effort levels or no cap.
    effort : str or None
        Vendor effort level ("low", "medium", "high").
    """

    label: str
    tokens: int | None = None
    effort: str | None = None


@dataclass(frozen=True)
class ModelFamily:
    """One entry of the experiment's ``models`` mapping, parsed.

    Attributes
    ----------
    key : str
        The key under ``models`` (``models.<key>``).
    specs : tuple of ModelSpec
        One per size to run (``run_sizes`` restricts them), in config order.
    budgets : tuple of Budget
        The family's own ``budgets``, else the experiment's.
    sampling : SamplingParams
        The experiment's ``sampling`` overridden by the family's ``sampling``.
    sampling_config : dict
        The family's own ``sampling`` block as written (recorded in the manifest).
    config : dict
        The family's whole config entry as plain data.
    """

    key: str
    specs: tuple[ModelSpec, ...]
    budgets: tuple[Budget, ...]
    sampling: SamplingParams
    sampling_config: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Experiment:
    """An experiment as the engine and the producers see it.

    Attributes
    ----------
    name : str
        ``experiment``; the cube is ``<out_dir>/<name>/cube.nc``.
    out_dir : pathlib.Path
    seed : int
        The experiment seed every draw seed derives from (:mod:`hotmess.core.seeding`).
    draws : int
        Draws per question (SWE-bench: Inspect epochs).
    seeds_per_context : int
        Draws sharing one few-shot context (draw ``d`` uses context ``d // seeds_per_context``).
    chunk_questions : int
        Questions per part file / backend call (the unit of resumption).
    families : tuple of ModelFamily
        Empty for producers that train their own models (synthetic) or sample none (survey).
    task, backend, producer : dict or None
        The selected config group entries (``name`` plus options), plain data.
    config : dict
        The whole resolved config as plain data: recorded in the cube's attributes and in the
        manifest. Producers read their options and the fields above, not this.
    overrides : tuple of str
        The command-line overrides (``key=value``), for the options' precedence
        (:mod:`hotmess.core.options`).
    """

    name: str
    out_dir: Path
    seed: int
    draws: int
    seeds_per_context: int
    chunk_questions: int
    families: tuple[ModelFamily, ...] = ()
    task: dict[str, Any] | None = None
    backend: dict[str, Any] | None = None
    producer: dict[str, Any] | None = None
    config: dict[str, Any] = field(default_factory=dict)
    overrides: tuple[str, ...] = ()
    subdir: str = ""

    @property
    def root(self) -> Path:
        """``<out_dir>/<name>`` (``/<subdir>`` for a multirun job that changes the draws): the
        experiment's folder (parts, manifest, cube)."""
        return self.out_dir / self.name / self.subdir if self.subdir else self.out_dir / self.name

    def cells(self) -> list[tuple[ModelSpec, Budget]]:
        """Every (model size, budget) cell, in config order."""
        return [(spec, b) for fam in self.families for spec in fam.specs for b in fam.budgets]

    def order(self) -> dict[str, list[str]]:
        """The label order of the ``model``, ``size`` and ``budget`` dims (config order)."""
        return {
            "model": list(dict.fromkeys(s.name for f in self.families for s in f.specs)),
            "size": list(dict.fromkeys(s.size for f in self.families for s in f.specs)),
            "budget": list(dict.fromkeys(b.label for f in self.families for b in f.budgets)),
        }

    def options(self, group: str) -> dict[str, Any]:
        """The options of a selected config group entry (``task``/``backend``/``producer``),
        without its ``name``."""
        entry = dict(getattr(self, group) or {})
        entry.pop("name", None)
        return entry


def apply_scale(cfg: DictConfig, overrides: Sequence[str] = ()) -> DictConfig:
    """Merge ``cfg.scales[cfg.scale]`` (if present) onto the config, then re-apply the
    command-line ``overrides`` (``key=value`` strings in Hydra syntax) so that a user's
    override always wins over the scale block.

    Raises
    ------
    ConfigError
        ``scale`` names a scale the experiment does not define.
    """
    scales = cfg.get("scales")
    scale = cfg.get("scale")
    if not scales or scale is None:
        if scale not in (None, "cpu", "paper"):
            raise ConfigError(f"scale must be cpu or paper, not {scale!r}")
        if scale == "paper":
            log.warning("experiment %r has no `scales` block: scale=paper changes nothing", cfg.get("experiment"))
        return cfg
    if scale not in scales:
        raise ConfigError(f"experiment {cfg.get('experiment')!r} has no scale {scale!r}; scales: {list(scales)}")
    cfg = cfg.copy()
    OmegaConf.set_struct(cfg, False)  # a scale block may add keys (e.g. models.<name>.run_sizes)
    merged = OmegaConf.merge(cfg, scales[scale])
    if overrides:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        for o in OverridesParser.create().parse_overrides(list(overrides)):
            key = o.key_or_group
            if o.is_delete() or key in GROUPS or key.startswith("hydra") or "@" in key or o.package:
                continue  # config-group choices were applied by Hydra's composition
            OmegaConf.update(merged, key, o.value(), merge=False, force_add=True)
    return merged


def parse_budgets(raw: Any) -> list[Budget]:
    """The ``budgets`` config to :class:`Budget` objects.

    Accepted forms: a list (``[1024, 4096]`` = token caps labelled ``"1024"``, ``"4096"``;
    ``[low, medium, high]`` = effort levels), or a mapping label -> token cap (int) | effort
    level (str) | null (no cap), e.g. ``{1k: 1024, 4k: 4096}``; ``null`` = one cell without
    a cap, labelled ``"none"``. On the command line a list replaces the default
    (``budgets=[16,64]``).

    Raises
    ------
    ConfigError
        A value that is neither a positive int, a string nor null; duplicate labels.
    """
    if raw is None:
        return [Budget("none")]
    if hasattr(raw, "items"):
        items = [(str(label), value) for label, value in raw.items()]
    elif isinstance(raw, list | tuple) or (hasattr(raw, "__iter__") and not isinstance(raw, str)):
        items = [("none" if v is None else str(v), v) for v in raw]
    else:
        raise ConfigError(f"budgets must be a list or a mapping label -> tokens/effort, got {raw!r}")
    out = []
    for label, value in items:
        if value is None:
            out.append(Budget(label))
        elif isinstance(value, bool):
            raise ConfigError(f"budgets.{label}: {value!r} is not a token count or effort level")
        elif isinstance(value, int):
            if value <= 0:
                raise ConfigError(f"budgets.{label}: token budget must be positive, got {value}")
            out.append(Budget(label, tokens=int(value)))
        elif isinstance(value, str):
            out.append(Budget(label, effort=value))
        else:
            raise ConfigError(f"budgets.{label}: {value!r} is not a token count or effort level")
    if not out:
        raise ConfigError("budgets is empty")
    labels = [b.label for b in out]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"budgets has duplicate labels: {labels}")
    return out


def model_specs(cfg: DictConfig) -> list[tuple[DictConfig, list[ModelSpec]]]:
    """The model families of the experiment (``cfg.models``, a mapping name -> model config)
    and, per family, one :class:`ModelSpec` per size to run (``run_sizes`` restricts them).

    A spec's ``options`` are the family's keys outside :data:`FAMILY_KEYS`, overridden by the
    size entry's keys other than ``source``, ``params`` and ``revision``.

    Raises
    ------
    ConfigError
        No models, a model without ``sizes``, or ``run_sizes`` naming an unknown size.
    """
    models = cfg.get("models")
    if not models:
        raise ConfigError("the experiment names no models (config key `models`)")
    out = []
    for key, mcfg in models.items():
        if mcfg is None:
            continue
        sizes = mcfg.get("sizes")
        if not sizes:
            raise ConfigError(f"models.{key} has no `sizes`")
        wanted = mcfg.get("run_sizes") or list(sizes)
        unknown = [s for s in wanted if s not in sizes]
        if unknown:
            raise ConfigError(f"models.{key}.run_sizes names unknown sizes {unknown}; known: {list(sizes)}")
        options = {k: v for k, v in OmegaConf.to_container(mcfg, resolve=True).items() if k not in FAMILY_KEYS}
        specs = []
        for size in wanted:
            scfg = sizes[size]
            if "source" not in scfg:
                raise ConfigError(f"models.{key}.sizes.{size} has no `source`")
            params = scfg.get("params")
            sopts = {k: v for k, v in OmegaConf.to_container(scfg, resolve=True).items()
                     if k not in ("source", "params", "revision")}
            specs.append(ModelSpec(
                name=str(mcfg.get("name", key)),
                size=str(size),
                source=str(scfg.source),
                params=float("nan") if params is None else float(params),
                revision=scfg.get("revision"),
                chat=bool(mcfg.get("chat", False)),
                thinking=OmegaConf.to_container(mcfg.thinking) if mcfg.get("thinking") else None,
                options={**options, **sopts},
            ))
        out.append((mcfg, specs))
    return out


def sampling_for(cfg: DictConfig, mcfg: DictConfig) -> SamplingParams:
    """Experiment ``sampling`` overridden by the model family's ``sampling`` defaults.

    Raises
    ------
    ConfigError
        A key that is not a field of :class:`~hotmess.core.types.SamplingParams`.
    """
    merged = OmegaConf.merge(OmegaConf.create({}), cfg.get("sampling") or {}, mcfg.get("sampling") or {})
    known = SamplingParams.__dataclass_fields__
    unknown = [k for k in merged if k not in known]
    if unknown:
        raise ConfigError(f"unknown sampling keys {unknown}; known: {list(known)}")
    return SamplingParams(**OmegaConf.to_container(merged, resolve=True))


def model_families(cfg: DictConfig) -> list[ModelFamily]:
    """Every model family of ``cfg.models`` with its sizes, budgets and sampling settings.

    A family may set its own ``budgets`` (token caps for one vendor, effort levels for
    another); the cube's budget dim is then the union and the other cells stay NaN.

    Raises
    ------
    ConfigError
        See :func:`model_specs`, :func:`parse_budgets` and :func:`sampling_for`.
    """
    default_budgets = parse_budgets(cfg.get("budgets"))
    out = []
    for key, (mcfg, specs) in zip([k for k, v in cfg.models.items() if v is not None], model_specs(cfg),
                                  strict=True):
        budgets = parse_budgets(mcfg.budgets) if "budgets" in mcfg else default_budgets
        out.append(ModelFamily(
            key=str(key),
            specs=tuple(specs),
            budgets=tuple(budgets),
            sampling=sampling_for(cfg, mcfg),
            sampling_config=_plain(mcfg.get("sampling") or {}),
            config=_plain(mcfg),
        ))
    return out


def _plain(node: Any) -> Any:
    """A config node as plain data, interpolations resolved.

    Raises
    ------
    ConfigError
        An interpolation that cannot be resolved (e.g. ``${synthetic}`` without that block).
    """
    from omegaconf.errors import OmegaConfBaseException

    try:
        if isinstance(node, DictConfig) or OmegaConf.is_config(node):
            return OmegaConf.to_container(node, resolve=True)
        if isinstance(node, Mapping):
            return OmegaConf.to_container(OmegaConf.create(dict(node)), resolve=True)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"the config cannot be resolved: {str(exc).splitlines()[0]}") from exc
    return node


def _group(cfg: DictConfig, key: str) -> dict[str, Any] | None:
    node = cfg.get(key)
    if node is None:
        return None
    entry = _plain(node)
    if not isinstance(entry, dict):
        raise ConfigError(f"`{key}` must be a config group entry (a mapping with a `name`), got {entry!r}")
    if not entry.get("name"):
        raise ConfigError(f"{key} config has no `name`")
    return entry


def parse_experiment(cfg: DictConfig, overrides: Sequence[str] = ()) -> Experiment:
    """Read a composed Hydra config into an :class:`Experiment`.

    Parameters
    ----------
    cfg : DictConfig
        The composed config (``experiment``, ``out_dir``, ``seed``, ``models``, ``budgets``,
        ``draws``, ``seeds_per_context``, ``sampling``, and ``task`` + ``backend`` or
        ``producer``).
    overrides : sequence of str
        The command-line overrides, re-applied after the ``scales`` block (:func:`apply_scale`).

    Raises
    ------
    ConfigError
        No experiment name, non-positive draws, neither a task nor a producer, a task
        without a backend, or an invalid model family (see :func:`model_families`).
    """
    cfg = apply_scale(cfg, overrides)
    name = cfg.get("experiment")
    if not name:
        raise ConfigError("no experiment name (config key `experiment`)")
    def _int(key: str, value: Any) -> int:
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key} must be an integer, not {value!r}") from None

    draws = _int("draws", cfg.get("draws", 1) or 0)
    raw_spc = cfg.get("seeds_per_context")
    spc = draws if raw_spc is None else _int("seeds_per_context", raw_spc)  # null: one context for all draws
    if draws <= 0 or spc <= 0:
        raise ConfigError(f"draws ({draws}) and seeds_per_context ({spc}) must be positive")
    if spc < draws and draws % spc:
        log.warning("draws (%d) is not a multiple of seeds_per_context (%d): contexts 0..%d get %d draws each "
                    "and context %d gets %d (draw d uses context d // seeds_per_context)",
                    draws, spc, draws // spc - 1, spc, draws // spc, draws % spc)
    producer = _group(cfg, "producer")
    task = None if producer is not None else _group(cfg, "task")
    if producer is None and task is None:
        raise ConfigError("the experiment selects neither a task nor a producer (config key `task`/`producer`)")
    backend = _group(cfg, "backend") if task is not None else None
    if task is not None and backend is None:
        raise ConfigError("backend config has no `name`")
    families: list[ModelFamily] = []
    if task is not None or cfg.get("models"):
        families = model_families(cfg)
    return Experiment(
        name=str(name),
        out_dir=Path(str(cfg.get("out_dir") or "results")),
        seed=int(cfg.get("seed") or 0),
        draws=draws,
        seeds_per_context=spc,
        chunk_questions=int(cfg.get("chunk_questions") or 16),
        families=tuple(families),
        task=task,
        backend=backend,
        producer=producer,
        config=_plain(cfg),
        overrides=tuple(overrides),
        subdir=str(cfg.get("cube_subdir") or ""),
    )
