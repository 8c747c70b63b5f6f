"""Prompts for multiple-choice questions and few-shot context sampling.

The prompt layout follows the usual MMLU generative format (Hendrycks et al., 2021): a
header naming the subject, ``n_shot`` solved examples *without reasoning* (docs/design.md, "Experiments": "few-shot
examples carry no reasoning"), each ending in ``Answer: X``, then the question and an
instruction. Raw prompts (base models) never end in the answer prefix: the model writes its
reasoning (when asked for it) and then the ``Answer: X`` line, as the examples show.

Few-shot contexts are a pure function of the context seed (docs/design.md, "Plugins: backends, tasks, embedders, producers, figures"): the
examples of context ``c`` are the pool items ranked by ``derive_seed(context_seed, "fewshot",
key)`` (BLAKE2b, so the same on every machine and NumPy version), first ``n_shot`` of them, in
that order. Every model, size and budget thus sees the same examples for the same draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hotmess.core.seeding import derive_seed

#: Version of the prompt wording below; recorded in the cube's attributes.
PROMPT_VERSION = "mc-v1"

LETTER = "letter"
PROBABILITIES = "probabilities"
FORMATS = (LETTER, PROBABILITIES)


@dataclass(frozen=True)
class MCItem:
    """One multiple-choice item as shown in a prompt.

    Attributes
    ----------
    question : str
    choices : tuple of str
        Option texts in the order shown (label ``labels[i]`` is ``choices[i]``).
    answer : int
        Index of the correct option in ``choices``.
    """

    question: str
    choices: tuple[str, ...]
    answer: int


def labels_for(n: int) -> tuple[str, ...]:
    """The first ``n`` option letters, ``("A", "B", ...)``."""
    if not 1 <= n <= 26:
        raise ValueError(f"need 1..26 options, got {n}")
    return tuple(chr(ord("A") + i) for i in range(n))


def join_labels(labels: Sequence[str]) -> str:
    """``"A, B, C or D"``."""
    labels = list(labels)
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " or " + labels[-1]


def sample_examples(
    pool: Sequence[Any], n: int, context_seed: int, keys: Sequence[Any] | None = None
) -> list[Any]:
    """The ``n`` few-shot examples of one context (module docstring).

    Parameters
    ----------
    pool : sequence
        Candidate examples (the question itself must already be excluded).
    n : int
        Number of examples (``0`` gives ``[]``).
    context_seed : int
        The engine's context seed (``hotmess.core.seeding.context_seed``).
    keys : sequence, optional
        A stable key per pool item (default: its index); ranking by keys rather than
        indices keeps a context's examples when unrelated items are added to the pool.

    Raises
    ------
    ValueError
        ``n`` is larger than the pool.
    """
    if n < 0 or n > len(pool):
        raise ValueError(f"cannot draw {n} few-shot examples from a pool of {len(pool)}")
    keys = list(range(len(pool))) if keys is None else list(keys)
    order = sorted(
        range(len(pool)), key=lambda i: (derive_seed(int(context_seed), "fewshot", keys[i]), i)
    )
    return [pool[i] for i in order[:n]]


def format_item(item: MCItem, labels: Sequence[str]) -> str:
    """``Question: ...`` followed by one ``X. option`` line per option."""
    lines = [f"Question: {item.question.strip()}"]
    lines += [f"{lab}. {str(c).strip()}" for lab, c in zip(labels, item.choices, strict=True)]
    return "\n".join(lines)


def format_answer(item: MCItem, labels: Sequence[str], fmt: str) -> str:
    """The solved example's answer line: ``Answer: B`` or a one-hot ``<PROB>`` block."""
    if fmt == PROBABILITIES:
        probs = ", ".join("1" if i == item.answer else "0" for i in range(len(labels)))
        return f"<PROB> {probs} </PROB>"
    return f"Answer: {labels[item.answer]}"


def instruction(labels: Sequence[str], fmt: str, cot: bool) -> str:
    """The instruction after the question."""
    what = "Reason step by step, then" if cot else "Without explaining,"
    if fmt == PROBABILITIES:
        ps = ", ".join(f"P({lab})" for lab in labels)
        return (
            f"{what} end your answer with your probability that each option is correct, "
            f"as <PROB> {ps} </PROB> with numbers that sum to 1."
        )
    return f'{what} finish with a line "Answer: X", where X is {join_labels(labels)}.'


def header(subject: str) -> str:
    subject = subject.replace("_", " ").strip()
    return f"The following are multiple choice questions (with answers) about {subject}."


def build_prompt(
    item: MCItem,
    examples: Sequence[MCItem],
    *,
    subject: str,
    labels: Sequence[str],
    fmt: str = LETTER,
    cot: bool = True,
    chat: bool = False,
) -> str | tuple[dict[str, str], ...]:
    """The prompt (``chat=False``, a string) or chat messages (``chat=True``) for one item.

    Parameters
    ----------
    item : MCItem
        The question asked.
    examples : sequence of MCItem
        Solved few-shot examples, shown without reasoning.
    subject : str
        Named in the header (underscores become spaces).
    labels : sequence of str
        Option labels; ``len(labels) == len(item.choices)``.
    fmt : {"letter", "probabilities"}
    cot : bool
        Ask for step-by-step reasoning (raw prompts then end with ``Reasoning:``).
    chat : bool

    Returns
    -------
    str or tuple of dict
        For chat, one user message ``({"role": "user", "content": ...},)``.
    """
    if fmt not in FORMATS:
        raise ValueError(f"answer format must be one of {FORMATS}, not {fmt!r}")
    blocks = [header(subject)]
    for ex in examples:
        ex_labels = labels_for(len(ex.choices))
        blocks.append(format_item(ex, ex_labels) + "\n" + format_answer(ex, ex_labels, fmt))
    ask = format_item(item, labels) + "\n" + instruction(labels, fmt, cot)
    if chat:
        if examples:
            blocks.append("Now answer the following question.\n" + ask)
        else:
            blocks.append(ask)
        return ({"role": "user", "content": "\n\n".join(blocks)},)
    if cot:
        ask += "\nReasoning:"
    blocks.append(ask)
    return "\n\n".join(blocks) + ("" if cot else "\n")
