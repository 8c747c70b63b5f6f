"""No silent corruption: part fingerprints checked on resume and assembly, one set of
settings per cube directory, budgets a backend cannot honour refused before sampling.

The sampling engine calls, in this order (``docs/design.md``, "Storage"):

1. :func:`admit` — under the directory lock, refuse if a live run of this cube directory has
   other settings (naming its host and PID), check the manifest, and register this run;
2. :func:`check_budgets` — every budget of every family has a kind its backend honours;
3. :func:`verify_parts` — every part already on disk was produced by exactly these settings
   and requests (its fingerprint, :mod:`hotmess.core.fingerprint`);
4. the sampling loop writes each new part with its fingerprint and claims each chunk first
   (:class:`hotmess.core.locks.Locks`);
5. :func:`verify_parts` again at assembly (a part another process wrote meanwhile is checked
   too), then the cube is written under the directory lock.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from hotmess.core import fingerprint, manifest, seeding
from hotmess.core.backend import ModelSpec
from hotmess.core.cube import CubeStore
from hotmess.core.experiment import Budget, ConfigError, Experiment, ModelFamily
from hotmess.core.locks import Locks
from hotmess.core.task import Task
from hotmess.core.types import Question, SampleRequest

log = logging.getLogger(__name__)

#: The ways out offered with every refusal.
WAYS_OUT = ("rerun with the settings the samples were taken with, or choose another out_dir "
            "(out_dir=... on the command line)")


def run_settings(exp: Experiment) -> dict[str, Any]:
    """The settings every part of one cube shares (normalised: paths resolved, home as ``~``)."""
    return fingerprint.normalise({k: v for k, v in manifest.sampling_settings(exp).items()})


def cell_settings(exp: Experiment, fam: ModelFamily, spec: ModelSpec, budget: Budget,
                  task_info: dict[str, Any]) -> dict[str, Any]:
    """Everything that changes the draws of one (model, size, budget) cell."""
    return {
        "seed_scheme": seeding.SEED_SCHEME,
        "experiment_seed": exp.seed,
        "draws": exp.draws,
        "seeds_per_context": exp.seeds_per_context,
        "chunk_questions": exp.chunk_questions,
        "budget": {"label": budget.label, "tokens": budget.tokens, "effort": budget.effort},
        "sampling": dataclasses.asdict(fam.sampling),
        "task": exp.task,
        "task_info": task_info,
        "backend": exp.backend,
        "model": {"name": spec.name, "size": spec.size, "source": spec.source, "revision": spec.revision,
                  "chat": spec.chat, "thinking": spec.thinking, "options": spec.options},
    }


def request_digests(questions: Sequence[Question], requests: Sequence[SampleRequest]) -> dict[str, str]:
    """One digest per question over its requests (in order)."""
    by_q: dict[str, list[SampleRequest]] = {q.id: [] for q in questions}
    for r in requests:
        by_q.setdefault(r.question_id, []).append(r)
    return {qid: fingerprint.request_digest(reqs) for qid, reqs in by_q.items()}


def settings_digest(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


# ----------------------------------------------------------------------------- runs
def admit(exp: Experiment, locks: Locks, store: CubeStore) -> None:
    """Refuse a second live run with other settings; check the manifest; register this run.

    Two runs with the *same* settings (e.g. the jobs of a SLURM array over sizes or shards)
    are admitted together and share the work chunk by chunk.

    Raises
    ------
    ConfigError
        A live run holds this directory with other settings (its host, PID, command and the
        changed keys), or the manifest records other settings.
    """
    mine = run_settings(exp)
    with locks.directory():
        for other in locks.live_runs():
            changed: list[str] = []
            fingerprint.changed_keys(other.settings.get("run", {}), mine, "", changed)
            mine_models = manifest.model_entries(exp)
            for key, entry in fingerprint.normalise(other.settings.get("models", {})).items():
                if key in mine_models and fingerprint.normalise(mine_models[key]) != entry:
                    changed.append(f"models.{key} differs")
            if changed:
                raise ConfigError(
                    f"{exp.root} is being written right now by another run with other settings "
                    f"({other.describe()}; {fingerprint.summary(changed)}); wait for it to finish, "
                    f"or {WAYS_OUT}")
        manifest.check(exp.root, manifest.sampling_settings(exp), models=manifest.model_entries(exp),
                       has_samples=bool(store.part_paths()))
        locks.register(settings_digest(mine), {"run": mine, "models": manifest.model_entries(exp)})


# ----------------------------------------------------------------------------- budgets
def budget_kinds_of(budget: Budget) -> str | None:
    """``"tokens"``, ``"effort"``, or ``None`` for an unbudgeted cell."""
    if budget.effort is not None:
        return "effort"
    if budget.tokens is not None:
        return "tokens"
    return None


def check_budgets(families: Iterable[ModelFamily], backend_name: str, kinds: Sequence[str] | None,
                  *, model: str | None = None) -> None:
    """Refuse budgets of a kind the backend cannot honour.

    Parameters
    ----------
    families : iterable of ModelFamily
    backend_name : str
    kinds : sequence of str or None
        The backend's :attr:`hotmess.core.backend.Backend.budget_kinds`; ``None`` = unknown
        (nothing is checked).
    model : str, optional
        Check only this family (``ModelSpec.name``).

    Raises
    ------
    ConfigError
        Names the budget label, its kind and value, the family and the backend.
    """
    if kinds is None:
        return
    bad = []
    for fam in families:
        if model is not None and fam.specs and fam.specs[0].name != model:
            continue
        for b in fam.budgets:
            kind = budget_kinds_of(b)
            if kind is not None and kind not in kinds:
                value = b.effort if kind == "effort" else b.tokens
                name = fam.specs[0].name if fam.specs else "?"
                bad.append(f"budget {b.label!r} ({kind} {value!r}) of model {name!r}")
    if bad:
        hint = ("token caps are integers (budgets=[256,1024]); effort levels (low/medium/high) need a "
                "backend that takes them (api with an OpenAI reasoning model)")
        raise ConfigError(f"backend {backend_name!r} honours budgets of kind {list(kinds)} only; "
                          f"refused before sampling: {'; '.join(bad)} ({hint})")


def static_budget_kinds(declares: Any) -> tuple[str, ...] | None:
    """A backend's ``budget_kinds`` from the class its registration declares (no model
    loaded), or ``None`` where the registration names none."""
    if declares is None:
        return None
    from hotmess.core import options

    try:
        target = options._load(declares)
    except Exception:  # noqa: BLE001 - an unimportable class is reported when the backend is built
        return None
    kinds = getattr(target, "budget_kinds", None)
    return tuple(kinds) if kinds is not None else None


def check_backend_info(exp: Experiment, store: CubeStore, spec: ModelSpec, info: dict[str, Any],
                       keys: Sequence[str]) -> None:
    """Refuse to add draws to cells whose parts a backend with other ``info()[key]`` wrote.

    Raises
    ------
    ConfigError
        Names the part, the key and both values.
    """
    if not keys:
        return
    import netCDF4

    problems = []
    for fam in exp.families:
        for b in fam.budgets:
            cell = store.cell_dir(spec.name, spec.size, b.label)
            for path in sorted(cell.glob("chunk*.nc")) if cell.exists() else []:
                try:
                    with netCDF4.Dataset(path) as nc:
                        old = json.loads(nc.getncattr("backend_info")) if "backend_info" in nc.ncattrs() else {}
                except (OSError, ValueError):
                    continue
                for k in keys:
                    if k in old and str(old[k]) != str(info.get(k)):
                        problems.append(f"{path.relative_to(store.root)}: backend {k}: {old[k]!r} -> {info.get(k)!r}")
    if problems:
        raise ConfigError(f"{store.root}: the backend now samples {spec.name}/{spec.size} differently from the parts "
                          f"on disk ({fingerprint.summary(problems, 3)}); set the option that pins it (e.g. "
                          f"backend.dtype=...) to its old value, or {WAYS_OUT}")


# ----------------------------------------------------------------------------- parts
#: Settings every part of one cube shares, whatever its cell.
SHARED_KEYS = ("seed_scheme", "experiment_seed", "draws", "seeds_per_context", "chunk_questions", "task",
               "task_info", "backend")


def _shared(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: settings.get(k) for k in SHARED_KEYS}


def read_fingerprint(path: Path) -> dict[str, Any] | None:
    """The fingerprint stored in a part file's attributes (``None`` if it has none)."""
    import netCDF4

    try:
        with netCDF4.Dataset(path) as nc:
            text = nc.getncattr(fingerprint.ATTR) if fingerprint.ATTR in nc.ncattrs() else None
    except OSError as exc:
        raise ConfigError(f"cannot read part file {path}: {exc}; delete it and rerun the same command "
                          f"to sample its chunk again") from exc
    return fingerprint.loads(text)


class PartChecker:
    """Checks part files against the current run, remembering what it already checked.

    Parameters
    ----------
    exp : Experiment
    task : Task
    store : CubeStore
    chunks : sequence of sequence of Question
        The plan's chunks (the unit of a part).
    task_info : dict
        ``task.info()`` of this run.
    build_requests : callable
        ``build_requests(task, chunk, spec=..., budget=..., exp=..., sampling=...) ->
        (requests, index)``, the engine's own request builder.
    """

    def __init__(self, exp: Experiment, task: Task, store: CubeStore, chunks: Sequence[Sequence[Question]],
                 task_info: dict[str, Any], build_requests: Any) -> None:
        self.exp, self.task, self.store, self.chunks = exp, task, store, chunks
        self.task_info = task_info
        self.build_requests = build_requests
        self._ok: set[Path] = set()
        self._legacy_warned = False
        #: Parts written by this process.
        self.sampled = 0

    def expected(self, fam: ModelFamily, spec: ModelSpec, budget: Budget, chunk: int) -> dict[str, Any]:
        """The fingerprint a part of this cell and chunk must carry."""
        requests, _ = self.build_requests(self.task, self.chunks[chunk], spec=spec, budget=budget, exp=self.exp,
                                          sampling=fam.sampling)
        return fingerprint.make(cell_settings(self.exp, fam, spec, budget, self.task_info),
                                request_digests(self.chunks[chunk], requests))

    def trust(self, path: Path) -> None:
        """Mark a part this process wrote (with the expected fingerprint) as checked."""
        self._ok.add(Path(path))
        self.sampled += 1

    def verify(self) -> None:
        """Check every part of the current run's cells on disk.

        Raises
        ------
        ConfigError
            One line per mismatching part (up to five), each naming the part and the
            changed keys (old -> new), then the ways out.
        """
        problems = []
        for fam in self.exp.families:
            for spec in fam.specs:
                for budget in fam.budgets:
                    for i in range(len(self.chunks)):
                        path = self.store.part_path(spec.name, spec.size, budget.label, i)
                        if path in self._ok or not path.exists():
                            continue
                        stored = read_fingerprint(path)
                        if stored is None:  # a part of hotmess 0.1: the manifest vouched for it
                            if not self._legacy_warned:
                                log.warning("%s: part files without fingerprints (hotmess 0.1) are trusted on "
                                            "the manifest's word", self.store.parts_dir)
                                self._legacy_warned = True
                            self._ok.add(path)
                            continue
                        diff = fingerprint.diff(stored, self.expected(fam, spec, budget, i))
                        if diff:
                            problems.append(f"{path.relative_to(self.store.root)}: {fingerprint.summary(diff, 4)}")
                        else:
                            self._ok.add(path)
        # parts of cells this run does not sample (another job's sizes): the shared settings
        shared_now = _shared(cell_settings(self.exp, self.exp.families[0], self.exp.families[0].specs[0],
                                           self.exp.families[0].budgets[0], self.task_info)) \
            if self.exp.families and self.exp.families[0].specs else None
        for path in self.store.part_paths():
            if path in self._ok or shared_now is None:
                continue
            stored = read_fingerprint(path)
            if stored is None:
                self._ok.add(path)
                continue
            diff = fingerprint.diff({"settings": _shared(stored.get("settings", {})), "requests": {}},
                                    {"settings": fingerprint.normalise(shared_now), "requests": {}})
            diff = [d for d in diff if not d.startswith(("version", "sampling_code_version"))]
            if stored.get("sampling_code_version") != fingerprint.SAMPLING_CODE_VERSION:
                diff.append(f"sampling_code_version: {stored.get('sampling_code_version')!r} -> "
                            f"{fingerprint.SAMPLING_CODE_VERSION!r}")
            if diff:
                problems.append(f"{path.relative_to(self.store.root)}: {fingerprint.summary(diff, 4)}")
            else:
                self._ok.add(path)
        if problems:
            more = f" (and {len(problems) - 5} more parts)" if len(problems) > 5 else ""
            raise ConfigError(
                f"{self.store.root} holds part files sampled with other settings: "
                f"{' | '.join(problems[:5])}{more}; {WAYS_OUT}")
