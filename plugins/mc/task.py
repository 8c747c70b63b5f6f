"""A base class for multiple-choice tasks (MMLU, GPQA, ...).

Subclasses load their questions into :class:`~hotmess.core.types.Question` objects whose
``data`` holds ``question`` (str), ``choices`` (list of str, in the order shown) and whatever
they need to find the few-shot pool, and implement :meth:`MultipleChoiceTask.fewshot_pool`.
Everything else (prompt, request, scoring) is shared here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hotmess.core.task import Task
from hotmess.core.types import DrawResult, Outcome, Question, SampleRequest, SamplingParams
from hotmess.plugins.mc import parsing, prompting, scoring
from hotmess.plugins.mc.prompting import LETTER, PROBABILITIES, MCItem

#: Where the probability vector of a draw comes from.
PROBABILITY_SOURCES = ("answer", "logprobs")
#: Text after which a raw-prompt continuation is the model inventing the next example.
STOP_MARKERS = ("\nQuestion:",)


class MultipleChoiceTask(Task):
    """Shared prompt building and scoring for multiple-choice tasks.

    Parameters
    ----------
    n_shot : int
        Few-shot examples per context (solved, without reasoning).
    format : {"letter", "probabilities"}
        Answer format: a final ``Answer: X`` line, or a ``<PROB> ... </PROB>`` block
        (probability prompting, docs/science.md, "Metrics").
    cot : bool
        Ask for step-by-step reasoning before the answer.
    probabilities : {"answer", "logprobs"}
        ``"answer"``: the outcome vector comes from the parsed answer (one-hot letter or
        ``<PROB>`` block); ``"logprobs"``: from the softmax of the option letters' log-probs
        returned by the backend (requests then set ``want_logprobs``); a draw without them
        falls back to the parsed answer.
    reasoning_fallback : bool
        Letter format: read the reasoning's last answer statement when the answer text
        states nothing (see :func:`hotmess.plugins.mc.parsing.extract_answer`).
    match_option_text : bool
        Accept an answer that repeats one option's text exactly (rule ``option_text``).
    sum_tolerance : float
        Probability format: accepted ``|sum - 1|`` of a ``<PROB>`` block.
    """

    outcome_kind = "probabilities"

    def __init__(
        self,
        *,
        n_shot: int = 0,
        format: str = LETTER,  # noqa: A002 - the config key's name
        cot: bool = True,
        probabilities: str = "answer",
        reasoning_fallback: bool = True,
        match_option_text: bool = True,
        sum_tolerance: float = 0.05,
    ) -> None:
        if format not in prompting.FORMATS:
            raise ValueError(f"task.format must be one of {prompting.FORMATS}, not {format!r}")
        if probabilities not in PROBABILITY_SOURCES:
            raise ValueError(
                f"task.probabilities must be one of {PROBABILITY_SOURCES}, not {probabilities!r}"
            )
        if int(n_shot) < 0:
            raise ValueError(f"task.n_shot must be >= 0, not {n_shot!r}")
        self.n_shot = int(n_shot)
        self.format = format
        self.cot = bool(cot)
        self.probabilities = probabilities
        self.reasoning_fallback = bool(reasoning_fallback)
        self.match_option_text = bool(match_option_text)
        self.sum_tolerance = float(sum_tolerance)

    # -- subclass hooks ------------------------------------------------------------------

    @classmethod
    def from_options(cls, **options: Any) -> MultipleChoiceTask:
        """Build from the ``task`` config group's keys (``name`` is ignored).

        Raises
        ------
        ValueError
            An option that neither this task nor :class:`MultipleChoiceTask` accepts (the
            message names it and lists the known ones).
        """
        import inspect

        options = {k: v for k, v in options.items() if k not in ("name", "_target_")}
        allowed = {
            p for c in (cls, MultipleChoiceTask) for p in inspect.signature(c.__init__).parameters
        } - {"self", "kwargs"}
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise ValueError(f"unknown task.* option(s) for {cls.name}: {unknown}; known: {sorted(allowed)}")
        return cls(**options)
    def fewshot_pool(self, question: Question) -> tuple[Sequence[MCItem], Sequence[Any]]:
        """The candidate examples for ``question`` (never the question itself) and a stable
        key per candidate."""
        raise NotImplementedError

    def subject_title(self, question: Question) -> str:
        """What the prompt's header names (default: the question's subject)."""
        return question.subject

    # -- shared --------------------------------------------------------------------------
    @staticmethod
    def item(question: Question) -> MCItem:
        return MCItem(
            str(question.data["question"]), tuple(question.data["choices"]), int(question.target)
        )

    @staticmethod
    def labels(question: Question) -> tuple[str, ...]:
        return prompting.labels_for(question.n_outcomes)

    @property
    def answer_prefix(self) -> str:
        return "<PROB>" if self.format == PROBABILITIES else "Answer:"

    def examples(self, question: Question, context_seed: int) -> list[MCItem]:
        """The few-shot examples of the context with seed ``context_seed``."""
        if self.n_shot == 0:
            return []
        pool, keys = self.fewshot_pool(question)
        if len(pool) < self.n_shot:
            raise ValueError(
                f"question {question.id!r}: task.n_shot={self.n_shot} but its few-shot pool has "
                f"only {len(pool)} examples"
            )
        return prompting.sample_examples(pool, self.n_shot, context_seed, keys)

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
        labels = self.labels(question)
        built = prompting.build_prompt(
            self.item(question),
            self.examples(question, context_seed),
            subject=self.subject_title(question),
            labels=labels,
            fmt=self.format,
            cot=self.cot,
            chat=chat,
        )
        return SampleRequest(
            question_id=question.id,
            seeds=tuple(int(s) for s in seeds),
            prompt=None if chat else built,
            messages=built if chat else None,
            budget=budget,
            effort=effort,
            answer_prefix=self.answer_prefix,
            option_labels=labels,
            want_logprobs=self.probabilities == "logprobs",
            sampling=sampling,
            metadata={"context": int(context), "context_seed": int(context_seed)},
        )

    def parse(self, question: Question, result: DrawResult) -> parsing.Choice | parsing.ProbParse:
        """The parsed answer of one draw (a :class:`Choice` or a :class:`ProbParse`)."""
        labels = self.labels(question)
        if self.format == PROBABILITIES:
            got = parsing.parse_probabilities(
                _cut(result.text or "", STOP_MARKERS), labels, sum_tolerance=self.sum_tolerance
            )
            if got.rule == "no_block" and self.reasoning_fallback and result.reasoning:
                r = parsing.parse_probabilities(
                    _cut(result.reasoning, STOP_MARKERS), labels, sum_tolerance=self.sum_tolerance
                )
                if r.rule != "no_block":
                    return parsing.ProbParse(r.vector, "reasoning:" + r.rule, r.notes)
            return got
        return parsing.extract_answer(
            result.text or "",
            result.reasoning or "",
            labels,
            option_texts=question.data["choices"] if self.match_option_text else None,
            stop_markers=STOP_MARKERS,
            reasoning_fallback=self.reasoning_fallback,
        )

    def score(self, question: Question, result: DrawResult) -> Outcome:
        """Outcome vector over the options (docs/science.md, "Metrics"): one-hot on the parsed letter,
        the parsed ``<PROB>`` vector, or the softmax of label log-probs; uniform with
        ``format_error=True`` when unusable or when the draw failed."""
        labels = self.labels(question)
        if result.finish_reason == "error":
            return Outcome(scoring.uniform(len(labels)), format_error=True, answer="", rule="error")
        if self.probabilities == "logprobs":
            v = parsing.softmax_logprobs(result.logprobs, labels)
            if v is not None:
                return scoring.outcome_from_vector(v, labels)
        got = self.parse(question, result)
        if isinstance(got, parsing.ProbParse):
            return scoring.outcome_from_probabilities(got, labels)
        return scoring.outcome_from_choice(got, labels)

    def info(self) -> dict[str, Any]:
        return {
            "task": self.name,
            "prompt_version": prompting.PROMPT_VERSION,
            "answer_format": self.format,
            "cot": int(self.cot),
            "n_shot": self.n_shot,
            "probabilities": self.probabilities,
            "reasoning_fallback": int(self.reasoning_fallback),
            "match_option_text": int(self.match_option_text),
            "sum_tolerance": self.sum_tolerance,
            "fewshot_sampling": "first n_shot of the pool ranked by blake2b(context_seed, 'fewshot', key)",
            "unparseable_answer": "uniform vector, format_error=1",
        }


def _cut(text: str, stops: Sequence[str]) -> str:
    for s in stops:
        i = text.find(s)
        if i >= 0:
            text = text[:i]
    return text
