"""Turning parsed answers into outcome vectors (docs/science.md, "Metrics", "Where f_ε comes from").

* letter answers: the chosen option becomes a one-hot vector; an answer that cannot be
  parsed (or is ambiguous, or names a letter that is not an option) becomes the uniform
  vector and is counted as a format error (the paper's rule for open models);
* probability prompting: the parsed ``<PROB>`` vector; unusable → uniform + format error;
* log-probs: the softmax of the option letters' log-probabilities (base/instruct comparison).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hotmess.core.types import Outcome
from hotmess.plugins.mc.parsing import Choice, ProbParse


def one_hot(index: int, n: int) -> np.ndarray:
    """Shape ``(n,)`` float vector with 1 at ``index``."""
    if not 0 <= index < n:
        raise IndexError(f"option index {index} outside 0..{n - 1}")
    v = np.zeros(n)
    v[index] = 1.0
    return v


def uniform(n: int) -> np.ndarray:
    """Shape ``(n,)`` float vector ``1/n`` (the paper's fallback for unparseable answers)."""
    return np.full(n, 1.0 / n)


def outcome_from_choice(choice: Choice, labels: Sequence[str]) -> Outcome:
    """One-hot on the chosen label, or uniform with ``format_error=True``."""
    labels = [str(x).upper() for x in labels]
    if choice.label is None or choice.label not in labels:
        return Outcome(uniform(len(labels)), format_error=True, answer="", rule=choice.rule)
    return Outcome(
        one_hot(labels.index(choice.label), len(labels)),
        format_error=False,
        answer=choice.label,
        rule=choice.rule,
    )


def outcome_from_probabilities(parse: ProbParse, labels: Sequence[str]) -> Outcome:
    """The parsed vector (``answer`` = the most probable label, "" on ties), or uniform with
    ``format_error=True``."""
    n = len(labels)
    if parse.vector is None or parse.vector.shape != (n,):
        return Outcome(uniform(n), format_error=True, answer="", rule=parse.rule)
    v = np.asarray(parse.vector, dtype=float)
    top = np.flatnonzero(v == v.max())
    answer = str(labels[top[0]]) if len(top) == 1 else ""
    return Outcome(v, format_error=False, answer=answer, rule=parse.rule)


def outcome_from_vector(vector: np.ndarray | None, labels: Sequence[str]) -> Outcome:
    """Like :func:`outcome_from_probabilities` for an already computed vector (log-probs)."""
    return outcome_from_probabilities(
        ProbParse(vector, "logprobs" if vector is not None else "no_logprobs"), labels
    )
