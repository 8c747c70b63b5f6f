"""The sampling loop: backend x task -> one part file per (model, size, budget, chunk).

For every model family, size, budget and chunk of questions the loop builds one request per
(question, few-shot context) with one seed per draw (:mod:`hotmess.core.seeding`), sends the
chunk's requests to the backend in one call, scores every draw with the task, and writes
the chunk as one part file (:class:`hotmess.core.cube.CubeStore`). A part that exists is
never redone, so a killed run resumes where it stopped; chunk boundaries depend only on the
question order, so a resumed run sends the backend exactly the same batches as an
uninterrupted one. A model is loaded only if one of its cells still has work.

Draw ``d`` of a question uses few-shot context ``d // seeds_per_context``
(paper: 30 draws = 10 contexts x 3 seeds; ``docs/science.md``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import xarray as xr

from hotmess.core import fingerprint, seeding
from hotmess.core.assembly import DrawTable
from hotmess.core.backend import Backend, ModelSpec
from hotmess.core.cube import CubeStore
from hotmess.core.experiment import Budget, Experiment
from hotmess.core.integrity import PartChecker, cell_settings, request_digests
from hotmess.core.locks import Locks
from hotmess.core.task import Task
from hotmess.core.types import DrawResult, Outcome, Question, SampleRequest, SamplingParams


@dataclass(frozen=True)
class Plan:
    """What the loop samples: the questions cut into chunks, and the outcome labels.

    Attributes
    ----------
    questions : tuple of Question
        All questions, in the task's order.
    chunks : tuple of tuple of Question
        ``chunk_questions`` consecutive questions each (the unit of resumption).
    outcome_labels : tuple of str
        Labels of the outcome dim, from *all* questions (a chunk may hold only short ones).
    """

    questions: tuple[Question, ...]
    chunks: tuple[tuple[Question, ...], ...]
    outcome_labels: tuple[str, ...]

    @classmethod
    def make(cls, questions: Sequence[Question], outcome_labels: Sequence[str], chunk_questions: int) -> Plan:
        qs = tuple(questions)
        return cls(qs, tuple(qs[i:i + chunk_questions] for i in range(0, len(qs), chunk_questions)),
                   tuple(outcome_labels))

    def todo(self, store: CubeStore, spec: ModelSpec, budgets: Sequence[Budget]) -> list[tuple[Budget, int]]:
        """The (budget, chunk index) pairs of one model size that have no part file yet."""
        return [(b, i) for b in budgets for i in range(len(self.chunks))
                if not store.has_part(spec.name, spec.size, b.label, i)]

    def draws_done(self, store: CubeStore, exp: Experiment) -> int:
        """Draws already on disk (for the progress bar)."""
        return sum(len(c) * exp.draws for spec, b in exp.cells() for i, c in enumerate(self.chunks)
                   if store.has_part(spec.name, spec.size, b.label, i))


def score_all(task: Task, question: Question, results: Sequence[DrawResult]) -> list[Outcome]:
    """Score every draw of one question with :meth:`Task.score_batch`.

    Raises
    ------
    RuntimeError
        The task raised while scoring (naming the task and the question).
    """
    try:
        return list(task.score_batch(question, list(results)))
    except Exception as exc:
        raise RuntimeError(f"task {task.name!r} failed to score question {question.id!r}: {exc}") from exc


def build_requests(
    task: Task,
    questions: Sequence[Question],
    *,
    spec: ModelSpec,
    budget: Budget,
    exp: Experiment | None = None,
    draws: int | None = None,
    seeds_per_context: int | None = None,
    experiment_seed: int | None = None,
    sampling: SamplingParams,
) -> tuple[list[SampleRequest], list[tuple[int, list[int], list[int]]]]:
    """The requests of one chunk of one cell: per question and few-shot context, one request
    with one seed per draw. A pure function of its arguments (the fingerprint of a part is
    computed from these requests, :mod:`hotmess.core.integrity`).

    ``draws``, ``seeds_per_context`` and ``experiment_seed`` default to ``exp``'s.

    Returns
    -------
    requests : list of SampleRequest
    index : list of (question index, draw ids, seeds)
        One entry per request.

    Raises
    ------
    RuntimeError
        The task built a request with another number of draws than seeds.
    """
    draws = exp.draws if draws is None else draws
    spc = exp.seeds_per_context if seeds_per_context is None else seeds_per_context
    seed0 = exp.seed if experiment_seed is None else experiment_seed
    requests, index = [], []
    for qi, q in enumerate(questions):
        for c in range(math.ceil(draws / spc)):
            ds_ = range(c * spc, min((c + 1) * spc, draws))
            seeds = [seeding.draw_seed(seed0, spec.name, spec.size, budget.label, q.id, d) for d in ds_]
            req = task.build_request(
                q, context=c, context_seed=seeding.context_seed(seed0, q.id, c), seeds=seeds,
                budget=budget.tokens, effort=budget.effort, sampling=sampling, chat=spec.chat,
            )
            if req.n_draws != len(seeds):
                raise RuntimeError(f"task {task.name!r} built a request with {req.n_draws} draws for {len(seeds)} seeds")
            requests.append(req)
            index.append((qi, list(ds_), seeds))
    return requests, index


def sample_chunk(
    task: Task,
    backend: Backend,
    questions: Sequence[Question],
    *,
    spec: ModelSpec,
    budget: Budget,
    draws: int,
    seeds_per_context: int,
    experiment_seed: int,
    sampling: SamplingParams,
    outcome_labels: Sequence[str],
    requests: tuple[list[SampleRequest], list[tuple[int, list[int], list[int]]]] | None = None,
) -> xr.Dataset:
    """Sample and score one chunk of questions for one (model, size, budget) cell.

    ``requests`` are the chunk's requests from :func:`build_requests` (built here if not given).

    Returns
    -------
    xarray.Dataset
        Dims ``question x draw x <outcome dim>``; scalar coordinates ``model``, ``size``,
        ``budget``, ``params``, ``budget_tokens``, ``budget_effort``
        (:meth:`hotmess.core.assembly.DrawTable.to_part`).

    Raises
    ------
    RuntimeError
        The task or the backend broke its contract (wrong number of draws or results).
    """
    requests, index = requests or build_requests(
        task, questions, spec=spec, budget=budget, draws=draws, seeds_per_context=seeds_per_context,
        experiment_seed=experiment_seed, sampling=sampling)
    t0 = time.perf_counter()
    results = backend.sample(requests)
    elapsed = time.perf_counter() - t0
    if len(results) != len(requests):
        raise RuntimeError(f"backend returned {len(results)} results for {len(requests)} requests")
    table = DrawTable(len(questions), draws, len(outcome_labels))
    fallback_latency = elapsed / max(len(requests), 1)
    for (qi, draw_ids, seeds), req, res in zip(index, requests, results, strict=True):
        if len(res) != len(draw_ids):
            raise RuntimeError(
                f"backend returned {len(res)} draws for question {req.question_id!r} (asked {len(draw_ids)})"
            )
        outcomes = score_all(task, questions[qi], res)
        for d, seed, r, o in zip(draw_ids, seeds, res, outcomes, strict=True):
            table.record(qi, d, seed, r, o, fallback_latency)
    return table.to_part(questions, spec=spec, budget=budget, outcome_kind=task.outcome_kind,
                         outcome_labels=outcome_labels, seeds_per_context=seeds_per_context,
                         question_coords=task.question_coords)


def parse_shard(raw: object) -> tuple[int, int]:
    """``shard: i/n`` -> ``(i, n)``: this process samples chunks ``c`` with ``c % n == i``
    (``None`` -> ``(0, 1)``, every chunk). Chunk boundaries do not depend on the shard, so
    the shards' parts make the same cube as one process.

    Raises
    ------
    ConfigError
        Not of the form ``i/n`` with ``0 <= i < n``.
    """
    from hotmess.core.experiment import ConfigError

    if raw is None or raw == "":
        return 0, 1
    text = str(raw)
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ConfigError(f"shard must be i/n (e.g. shard=0/4), not {text!r}") from None
    if n <= 0 or not 0 <= i < n:
        raise ConfigError(f"shard {text!r}: need 0 <= i < n")
    return i, n


def sample_cells(
    exp: Experiment,
    task: Task,
    store: CubeStore,
    plan: Plan,
    *,
    build_backend: Callable[[ModelSpec], Backend],
    locks: Locks | None = None,
    checker: PartChecker | None = None,
    on_backend: Callable[[Backend, ModelSpec], None] | None = None,
) -> list[str]:
    """Sample every (model, size, budget, chunk) of ``exp`` (of this ``shard``) that has no
    part file yet.

    ``build_backend(spec)`` makes the backend of one model size (called only for sizes with
    work left; closed after its cells); ``on_backend(backend, spec)`` is called right after
    (e.g. to refuse budgets it cannot honour) before any of its cells is sampled. With
    ``locks``, a chunk is sampled only while this run holds its claim (chunks claimed by
    another live run are skipped and listed in the return value); with ``checker``, each
    part is written with its fingerprint (:mod:`hotmess.core.integrity`). Progress is shown
    with ``tqdm``.

    Returns
    -------
    list of str
        The chunks skipped because another live run was sampling them.
    """
    from tqdm.auto import tqdm

    k, n = parse_shard(exp.config.get("shard"))
    mine = [i for i in range(len(plan.chunks)) if i % n == k]
    skipped: list[str] = []
    total = len(exp.cells()) * sum(len(plan.chunks[i]) for i in mine) * exp.draws
    done = sum(len(plan.chunks[i]) * exp.draws for spec, b in exp.cells() for i in mine
               if store.has_part(spec.name, spec.size, b.label, i))
    with tqdm(total=total, initial=done, unit="draw", desc=exp.name, dynamic_ncols=True) as bar:
        for fam in exp.families:
            for spec in fam.specs:
                todo = [(b, i) for b, i in plan.todo(store, spec, fam.budgets) if i in mine]
                if not todo:
                    continue
                bar.set_postfix_str(f"{spec.name} {spec.size}: loading")
                with build_backend(spec) as backend:
                    if on_backend is not None:
                        on_backend(backend, spec)
                    info = backend.info()
                    for b, i in todo:
                        key = f"{store.cell_dir(spec.name, spec.size, b.label).name}__{i:05d}"
                        if locks is not None and not locks.claim(key):
                            skipped.append(key)
                            continue
                        try:
                            if store.has_part(spec.name, spec.size, b.label, i):
                                continue  # another run finished it while we waited
                            bar.set_postfix_str(f"{spec.name} {spec.size} budget {b.label}")
                            reqs = build_requests(task, plan.chunks[i], spec=spec, budget=b, exp=exp,
                                                  sampling=fam.sampling)
                            part = sample_chunk(
                                task, backend, plan.chunks[i], spec=spec, budget=b, draws=exp.draws,
                                seeds_per_context=exp.seeds_per_context, experiment_seed=exp.seed,
                                sampling=fam.sampling, outcome_labels=plan.outcome_labels, requests=reqs,
                            )
                            part.attrs["backend_info"] = json.dumps(info, sort_keys=True, default=str)
                            if checker is not None:
                                fp = fingerprint.make(
                                    cell_settings(exp, fam, spec, b, checker.task_info),
                                    request_digests(plan.chunks[i], reqs[0]))
                                part.attrs[fingerprint.ATTR] = fingerprint.dumps(fp)
                            path = store.write_part(part, spec.name, spec.size, b.label, i)
                            if checker is not None:
                                checker.trust(path)
                            bar.update(len(plan.chunks[i]) * exp.draws)
                        finally:
                            if locks is not None:
                                locks.unclaim(key)
    return skipped
