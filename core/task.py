"""The task contract (docs/design.md, "Plugins: backends, tasks, embedders, producers, figures")."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from hotmess.core.types import (
    DrawResult,
    Outcome,
    OutcomeKind,
    Question,
    SampleRequest,
    SamplingParams,
)


class Task(ABC):
    """A benchmark: its questions, how a request is built, and how a draw is scored.

    Built by the factory a plugin registers with ``register_tasks`` as ``factory(**options)``.

    Few-shot contexts: draw ``d`` of a question uses context ``d // seeds_per_context``;
    the engine passes ``context_seed``, a pure function of (experiment seed, question id,
    context id) that is the same for every model, size and budget, so that all of them see
    the same few-shot examples for the same draw (a paired design).
    """

    name: str = "task"
    #: What a draw is scored into; sets the cube's outcome dimension
    #: (:data:`hotmess.core.schema.OUTCOME_DIMS`).
    outcome_kind: OutcomeKind = "probabilities"
    #: Keys of ``Question.data`` stored as per-question coordinates of the cube (a number
    #: per question where every value is a number, else a string; ``None`` -> ``""``), e.g.
    #: ``("difficulty",)`` for GPQA's difficulty labels.
    question_coords: tuple[str, ...] = ()
    #: The typed options (a dataclass; :mod:`hotmess.core.options`). ``None``: the
    #: constructor's signature declares them.
    Options: ClassVar[type | None] = None

    @abstractmethod
    def questions(self) -> list[Question]:
        """The questions, in a stable order.

        Raises
        ------
        FileNotFoundError, ValueError
            Missing or malformed data; the message names the file and line.
        """

    def outcome_labels(self, questions: Sequence[Question]) -> list[str]:
        """Labels of the outcome dimension (e.g. ``["A", "B", "C", "D"]``)."""
        n = max(q.n_outcomes for q in questions)
        return [chr(ord("A") + i) for i in range(n)]

    @abstractmethod
    def build_request(
        self,
        question: Question,
        *,
        context: int,
        context_seed: int,
        seeds: Sequence[int],
        budget: int | None,
        effort: str | None,
        sampling: SamplingParams,
        chat: bool,
    ) -> SampleRequest:
        """The request for ``len(seeds)`` draws of ``question`` under few-shot context
        ``context`` (derive the examples from ``context_seed`` only)."""

    @abstractmethod
    def score(self, question: Question, result: DrawResult) -> Outcome:
        """Score one draw. Never raises on bad model output: an unparseable answer is an
        :class:`Outcome` with ``format_error=True`` (and the task's fallback vector)."""

    def score_batch(self, question: Question, results: Sequence[DrawResult]) -> list[Outcome]:
        """Score every draw of one question at once; the engine calls this (default: :meth:`score`
        draw by draw). Override it where scoring is cheaper in a batch (e.g. one embedding call
        for all draws); it must agree with :meth:`score` draw by draw."""
        return [self.score(question, r) for r in results]

    def info(self) -> dict[str, Any]:
        """Provenance for the cube's attributes (data source and version, prompt version,
        the task's OPEN choices)."""
        return {"task": self.name}
