"""The data contracts between the engine, backend plugins and task plugins.

A *backend* turns :class:`SampleRequest` objects into :class:`DrawResult` objects (one per
draw). A *task* says which :class:`Question` objects exist, builds a request for a question,
its few-shot context and a reasoning budget, and scores each draw's result into an
:class:`Outcome` of the task's kind. The engine owns everything in between (seeds, batching,
storage). See ``docs/design.md``, "Plugins: backends, tasks, embedders, producers, figures";
the cube's layout (and each kind's outcome dimension) is :mod:`hotmess.core.schema`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

FinishReason = Literal["stop", "length", "budget", "error"]
#: The finish reasons, in the order of their integer codes in the cube (CF ``flag_values``).
FINISH_REASONS: tuple[str, ...] = ("stop", "length", "budget", "error")

#: What a task's draw is scored into (a kind of :data:`hotmess.core.schema.KINDS` with an
#: outcome dimension: :data:`hotmess.core.schema.OUTCOME_DIMS`).
OutcomeKind = Literal["probabilities", "tests", "embedding", "point"]


@dataclass(frozen=True)
class SamplingParams:
    """Sampling settings of one request.

    Attributes
    ----------
    temperature : float
        Softmax temperature; ``0`` means greedy decoding.
    top_p : float
        Nucleus mass kept (``1.0`` = off).
    top_k : int
        Number of most likely tokens kept (``0`` = off).
    max_tokens : int
        Cap on answer tokens generated *after* the reasoning ends (tokens). The reasoning
        itself is capped by :attr:`SampleRequest.budget`.
    """

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_tokens: int = 32


@dataclass(frozen=True)
class SampleRequest:
    """One prompt, sampled ``len(seeds)`` times.

    Exactly one of ``prompt`` (raw completion text) and ``messages`` (chat messages, a list of
    ``{"role": ..., "content": ...}``) is set.

    Attributes
    ----------
    question_id : str
        Stable id of the question this request belongs to (used in error messages).
    seeds : tuple of int
        One seed per draw; ``len(seeds)`` is the number of draws. Backends that accept a
        per-request seed must use these; see each backend's docs for what is reproducible.
    budget : int or None
        Reasoning budget in tokens: at most this many reasoning tokens, after which the answer
        is forced (finish reason ``"budget"``). ``None`` = no cap beyond the backend's limit.
    effort : str or None
        A vendor reasoning-effort level (``"low"``, ``"medium"``, ``"high"``) where the
        backend's budget is an effort rather than a token count.
    answer_prefix : str
        Text that introduces the final answer (e.g. ``"Answer:"``). For models with prompted
        chain of thought the reasoning ends where this text appears; when the budget is hit,
        the backend appends it to force the answer.
    option_labels : tuple of str
        For multiple choice: the option labels (``"A"``..).
    want_logprobs : bool
        The task scores this request from log-probabilities (probability prompting,
        ensembling): a backend that can, returns in :attr:`DrawResult.logprobs` the
        log-probability of each of ``option_labels`` as the first answer token; one that
        cannot leaves ``logprobs`` ``None`` and the task falls back to the text.
    sampling : SamplingParams
    metadata : dict
        Free-form, passed through to the backend (e.g. a system prompt for API backends).
    """

    question_id: str
    seeds: tuple[int, ...]
    prompt: str | None = None
    messages: tuple[dict[str, str], ...] | None = None
    budget: int | None = None
    effort: str | None = None
    answer_prefix: str = "Answer:"
    option_labels: tuple[str, ...] = ()
    want_logprobs: bool = False
    sampling: SamplingParams = field(default_factory=SamplingParams)
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError(
                f"question {self.question_id!r}: a SampleRequest needs exactly one of prompt or messages"
            )
        if not self.seeds:
            raise ValueError(f"question {self.question_id!r}: a SampleRequest needs at least one seed")

    @property
    def n_draws(self) -> int:
        return len(self.seeds)


@dataclass
class DrawResult:
    """What a backend returns for one draw.

    Attributes
    ----------
    text : str
        The visible answer after the reasoning (for prompted chain of thought: from the answer
        prefix on; if the answer was forced, it starts with the forced prefix).
    reasoning : str
        The reasoning text (thinking tokens, or the chain of thought before the answer).
    output_tokens : int or None
        All generated tokens, reasoning included (tokens). ``None`` = unknown (a server that
        does not report it): stored as NaN in the cube. (``-1`` is accepted as "unknown" too,
        for compatibility; new code uses ``None``.)
    reasoning_tokens : int or None
        Tokens of reasoning (tokens); as reported by the server where it reports them.
        ``None`` = unknown (NaN in the cube), as for ``output_tokens``.
    finish_reason : {"stop", "length", "budget", "error"}
        ``"budget"``: the reasoning budget was hit and the answer forced; ``"length"``: the
        answer itself was cut at ``max_tokens`` (censored, not a normal answer).
    seed : int or None
        The seed actually sent / used.
    logprobs : dict or None
        ``{label: log-probability}`` of each option label as the answer token, where asked.
    error : str or None
        Why the draw failed, for ``finish_reason == "error"``.
    latency_s : float
        Wall-clock seconds spent on this draw's request (shared across a batch); NaN = not
        measured (the engine then records the batch's time divided by its requests).
    extra : dict
        Further per-draw facts the backend reports (e.g. ``budget_hit``, ``prompt_tokens``,
        ``retries``): each key whose value is a bool, number or string becomes a per-draw
        data variable of the cube with that name (``extra_<key>`` where the name is taken),
        NaN / ``""`` in draws that do not report it; other values are dropped.
    """

    text: str
    reasoning: str = ""
    output_tokens: int | None = 0
    reasoning_tokens: int | None = 0
    finish_reason: FinishReason = "stop"
    seed: int | None = None
    logprobs: dict[str, float] | None = None
    error: str | None = None
    latency_s: float = float("nan")
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Question:
    """One question of a task.

    Attributes
    ----------
    id : str
        Stable id (unique within the task, the same across runs and machines).
    subject : str
        Subject or subset (MMLU subject, MWE subset, ...).
    target : int or str
        The correct option index for multiple choice; task-defined otherwise.
    n_outcomes : int
        Length of the outcome vector (options, tests, embedding size, coordinates).
    data : dict
        Everything the task needs to build the prompt.
    """

    id: str
    subject: str
    target: Any
    n_outcomes: int
    data: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass
class Outcome:
    """A scored draw.

    Attributes
    ----------
    vector : numpy.ndarray, shape (n_outcomes,)
        Probability vector over options, pass/fail over tests, embedding, or point.
    format_error : bool
        True where the answer could not be parsed (the vector is then the paper's fallback,
        e.g. uniform for multiple choice).
    answer : str
        The parsed answer as text ("" if none).
    rule : str
        Which parsing rule produced the answer (stored as ``parse_rule`` so that format
        errors can be audited per rule); "" if the task does not say.
    """

    vector: np.ndarray
    format_error: bool = False
    answer: str = ""
    rule: str = ""
