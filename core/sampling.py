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

from hotmess.core import seeding
from hotmess.core.assembly import DrawTable
from hotmess.core.backend import Backend, ModelSpec
from hotmess.core.cube import CubeStore
from hotmess.core.experiment import Budget, Experiment
from hotmess.core.task import Task
from hotmess.core.types import DrawResult, Outcome, Question, SamplingParams


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
) -> xr.Dataset:
    """Sample and score one chunk of questions for one (model, size, budget) cell.

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
    requests, index = [], []
    for qi, q in enumerate(questions):
        for c in range(math.ceil(draws / seeds_per_context)):
            ds_ = range(c * seeds_per_context, min((c + 1) * seeds_per_context, draws))
            seeds = [seeding.draw_seed(experiment_seed, spec.name, spec.size, budget.label, q.id, d) for d in ds_]
            req = task.build_request(
                q, context=c, context_seed=seeding.context_seed(experiment_seed, q.id, c), seeds=seeds,
                budget=budget.tokens, effort=budget.effort, sampling=sampling, chat=spec.chat,
            )
            if req.n_draws != len(seeds):
                raise RuntimeError(f"task {task.name!r} built a request with {req.n_draws} draws for {len(seeds)} seeds")
            requests.append(req)
            index.append((qi, list(ds_), seeds))
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


def sample_cells(
    exp: Experiment,
    task: Task,
    store: CubeStore,
    plan: Plan,
    *,
    build_backend: Callable[[ModelSpec], Backend],
) -> None:
    """Sample every (model, size, budget, chunk) of ``exp`` that has no part file yet.

    ``build_backend(spec)`` makes the backend of one model size (called only for sizes with
    work left; closed after its cells). Progress is shown with ``tqdm``.
    """
    from tqdm.auto import tqdm

    total = len(exp.cells()) * len(plan.questions) * exp.draws
    with tqdm(total=total, initial=plan.draws_done(store, exp), unit="draw", desc=exp.name,
              dynamic_ncols=True) as bar:
        for fam in exp.families:
            for spec in fam.specs:
                todo = plan.todo(store, spec, fam.budgets)
                if not todo:
                    continue
                bar.set_postfix_str(f"{spec.name} {spec.size}: loading")
                with build_backend(spec) as backend:
                    info = backend.info()
                    for b, i in todo:
                        bar.set_postfix_str(f"{spec.name} {spec.size} budget {b.label}")
                        part = sample_chunk(
                            task, backend, plan.chunks[i], spec=spec, budget=b, draws=exp.draws,
                            seeds_per_context=exp.seeds_per_context, experiment_seed=exp.seed,
                            sampling=fam.sampling, outcome_labels=plan.outcome_labels,
                        )
                        part.attrs["backend_info"] = json.dumps(info, sort_keys=True, default=str)
                        store.write_part(part, spec.name, spec.size, b.label, i)
                        bar.update(len(plan.chunks[i]) * exp.draws)
