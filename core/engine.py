"""The engine: a composed config -> a parsed experiment -> samples (or a producer) -> cube.

:func:`run_experiment` is the one entry point of ``hotmess run``. It parses the config
(:mod:`hotmess.core.experiment`), checks the resume manifest (:mod:`hotmess.core.manifest`),
runs the sampling loop (:mod:`hotmess.core.sampling`) and assembles the cube
(:mod:`hotmess.core.assembly`). ``docs/design.md``, "Layout and data flow", draws the picture.

The names that used to live here (``ConfigError``, ``Budget``, ``apply_scale``,
``parse_budgets``, ``model_specs``, ``sampling_for``, ``check_manifest``, ``sample_chunk``)
are re-exported for compatibility.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from hotmess.core import integrity, manifest, options, plugins, status
from hotmess.core.assembly import combine, write_produced
from hotmess.core.backend import Backend, ModelSpec
from hotmess.core.cube import CubeStore, CubeWriteError
from hotmess.core.experiment import (
    GROUPS,
    Budget,
    ConfigError,
    Experiment,
    apply_scale,
    model_families,
    model_specs,
    parse_budgets,
    parse_experiment,
    sampling_for,
)
from hotmess.core.locks import Locks
from hotmess.core.manifest import MANIFEST_KEYS
from hotmess.core.producer import Producer
from hotmess.core.sampling import Plan, build_requests, sample_cells, sample_chunk
from hotmess.core.task import Task

__all__ = [
    "GROUPS", "MANIFEST_KEYS", "Budget", "ConfigError", "Experiment", "apply_scale", "build_backend",
    "build_producer", "build_task", "check_manifest", "run_producer", "model_specs", "parse_budgets", "parse_experiment", "run_experiment",
    "sample_chunk", "sampling_for",
]

log = logging.getLogger(__name__)


def build_task(exp: Experiment) -> Task:
    """The experiment's task, built by its registered factory with the task options."""
    return plugins.create("tasks", exp.task["name"], **exp.options("task"))


def build_backend(exp: Experiment, spec: ModelSpec) -> Backend:
    """The backend of one model size, built by its registered factory.

    Where the backend declares its options (:mod:`hotmess.core.options`), they are merged
    in the one precedence: command line > model family (declared keys of
    ``spec.options``, which are then taken out of it) > backend config entry > defaults.
    """
    name = exp.backend["name"]
    entry = exp.options("backend")
    target = plugins.get("backends", name).meta.get("declares")
    if target is None:  # options not declared: passed through, the backend merges them
        return plugins.create("backends", name, spec, **entry)
    decl = options.declared(target, skip=1)
    family = {k: v for k, v in spec.options.items() if decl is not None and k in decl.fields}
    spec = dataclasses.replace(spec, options={k: v for k, v in spec.options.items() if k not in family})
    resolved = options.resolve(target, [
        ("backend config", entry),
        (f"model {spec.name}/{spec.size}", family),
        ("command line", options.command_line(exp.overrides, "backend", entry)),
    ], where=f"backend {name!r}", skip=1)
    return plugins.create("backends", name, spec, **resolved)


def build_producer(exp: Experiment) -> Producer:
    """The experiment's producer, built by its registered factory with the producer options."""
    return plugins.create("producers", exp.producer["name"], **exp.options("producer"))


def run_producer(exp: Experiment, producer: Producer | None = None) -> Path:
    """Make a producer's cube: check the manifest, :meth:`Producer.produce`, then stamp the
    provenance and schema version and write ``cube.nc`` atomically.

    Parameters
    ----------
    exp : Experiment
    producer : Producer, optional
        Default: built from ``exp.producer`` (:func:`build_producer`).

    Raises
    ------
    ConfigError
        The producer needs models and the experiment names none; resuming with different
        settings.
    """
    producer = producer or build_producer(exp)
    if producer.needs_models and not exp.families:
        raise ConfigError(f"producer {producer.name!r} needs models and the experiment names none (config key `models`)")
    store = CubeStore(exp.root)
    settings = producer.manifest(exp)
    if settings is not None:
        manifest.check(exp.root, settings, models=manifest.model_entries(exp) if exp.families else None,
                       has_samples=producer.has_samples(store))
    ds = producer.produce(exp, store)
    path = write_produced(store, exp, ds, kind=producer.outcome_kind, info=producer.info())
    log.info("cube written to %s", path)
    return path


def check_manifest(root: Path, cfg: DictConfig | Experiment, families: Any = (),
                   store: CubeStore | None = None) -> None:
    """Refuse to resume into a folder sampled with different settings (compatibility
    wrapper of :func:`hotmess.core.manifest.check` for a sampled experiment).

    ``cfg`` is an :class:`Experiment` or a config with the :data:`MANIFEST_KEYS` (and
    ``models``); ``families`` is ignored (the models are read from ``cfg``).

    Raises
    ------
    ConfigError
        A recorded setting differs; the message names each key with its old and new value.
    """
    if isinstance(cfg, Experiment):
        exp = cfg
    else:
        from omegaconf import OmegaConf

        plain = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
        fams = model_families(cfg) if cfg.get("models") else []
        exp = Experiment(name="", out_dir=Path(root), seed=0, draws=1, seeds_per_context=1, chunk_questions=1,
                         families=tuple(fams), config=plain)
    has = bool(store.part_paths()) if store is not None else (Path(root) / manifest.MANIFEST_FILE).exists()
    manifest.check(root, manifest.sampling_settings(exp), models=manifest.model_entries(exp), has_samples=has)


def _check_backend(exp: Experiment, store: CubeStore, backend: Backend, spec: ModelSpec) -> None:
    """Before a freshly built backend samples: its budgets, and the draw-changing values of its
    ``info()`` against the parts of the same cells on disk."""
    integrity.check_budgets(exp.families, exp.backend["name"], getattr(backend, "budget_kinds", None),
                            model=spec.name)
    integrity.check_backend_info(exp, store, spec, backend.info(), getattr(backend, "fingerprint_keys", ()))


def _plan(exp: Experiment, task: Task) -> Plan:
    questions = task.questions()
    if not questions:
        raise ConfigError(f"task {task.name!r} has no questions with these settings")
    ids = [q.id for q in questions]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"task {task.name!r} returned duplicate question ids")
    # the outcome dim's labels come from ALL questions (a chunk may hold only short ones)
    labels = list(task.outcome_labels(questions))
    if len(labels) < max(q.n_outcomes for q in questions):
        raise ConfigError(f"task {task.name!r} gives fewer outcome labels than its longest question has outcomes")
    return Plan.make(questions, labels, exp.chunk_questions)


def run_experiment(cfg: DictConfig, overrides: Sequence[str] = ()) -> Path:
    """Run one experiment config end to end and return the path of its cube.

    Parameters
    ----------
    cfg : DictConfig
        The composed Hydra config (``experiment``, ``out_dir``, ``seed``, ``models``,
        ``budgets``, ``draws``, ``seeds_per_context``, ``sampling``, and ``task`` +
        ``backend``, or ``producer``: then :func:`run_producer` makes the cube).
    overrides : sequence of str
        The command-line overrides, re-applied after the ``scales`` block (see
        :func:`apply_scale`).

    Returns
    -------
    pathlib.Path
        ``<out_dir>/<experiment>/cube.nc``.

    Raises
    ------
    ConfigError
        Invalid settings, or resuming with settings that differ from the samples on disk.
    """
    exp = parse_experiment(cfg, overrides)
    if exp.producer is not None:
        return run_producer(exp)
    root = exp.root
    task = build_task(exp)
    if not exp.families:
        raise ConfigError("the experiment names no models (config key `models`)")
    store = CubeStore(root)
    locks = Locks(root)
    backend_name = exp.backend["name"]
    try:
        integrity.admit(exp, locks, store)
        reg = plugins.get("backends", backend_name)
        integrity.check_budgets(exp.families, backend_name, reg.meta.get("budget_kinds")
                                or integrity.static_budget_kinds(reg.meta.get("declares")))
        plan = _plan(exp, task)
        with locks.directory():
            status.record_plan(root, {f"{s.name}/{s.size}/{b.label}": [len(c) for c in plan.chunks]
                                      for s, b in exp.cells()}, exp.draws, exp.overrides)
        task_info = task.info()
        checker = integrity.PartChecker(exp, task, store, plan.chunks, task_info, build_requests)
        checker.verify()
        try:
            skipped = sample_cells(
                exp, task, store, plan, build_backend=lambda spec: build_backend(exp, spec), locks=locks,
                checker=checker, on_backend=lambda backend, spec: _check_backend(exp, store, backend, spec))
        except KeyboardInterrupt:
            n = len(store.part_paths())
            log.warning("interrupted: %d part file(s) are saved under %s; rerun the same command to resume",
                        n, store.parts_dir)
            raise
        except CubeWriteError as exc:
            n = len(store.part_paths())
            raise CubeWriteError(f"{exc}; {n} part file(s) written before are safe under {store.parts_dir}; "
                                 f"fix that and rerun the same command to resume", exc.path, exc.reason) from exc
        # assemblies serialise (the last one sees every part) and check what other runs wrote
        with locks.directory():
            checker.verify()
            path = combine(store, exp, task_info=task_info, outcome_kind=task.outcome_kind,
                           question_ids=[q.id for q in plan.questions])
    finally:
        locks.release()
    log.info("%d chunk(s) of this run sampled, %d skipped (claimed by another live run)",
             checker.sampled, len(skipped))
    if skipped:
        log.warning("%d chunk(s) were being sampled by another live run of %s and are not in this cube yet; "
                    "the cube is complete once that run has finished (see `hotmess status %s`)",
                    len(skipped), root, root)
    log.info("cube written to %s", path)
    return path
