"""Reading a multiple-choice answer out of model text.

Two public parsers:

* :func:`extract_choice` — which option *letter* a text states (``"Answer: B"``,
  ``"**B**"``, ``"\\boxed{B}"``, ``"the answer is (b)"``, ``"<answer>(A)</answer>"``...).
* :func:`parse_probabilities` — the probability vector of a
  ``<PROB> P(A), P(B), P(C), P(D) </PROB>`` block (probability prompting, as in the paper, arXiv 2601.23045).

Both never raise on model output: they return a result whose ``rule`` names the rule that
decided (or why nothing could be read), so that format errors can be counted and audited.
Scoring these into outcome vectors (one-hot / uniform, the paper's rule) is in
:mod:`hotmess.plugins.mc.scoring`.

Letter extraction rules (each has a test in ``tests/test_mc_parsing.py``)
------------------------------------------------------------------------
The text is first cut at the first *stop marker* (e.g. ``"\\nQuestion:"``: a base model that
answered and then went on to invent the next few-shot question), then:

1. **Answer statements, last one counts** (rule ``"statement"``). An *answer marker* is
   ``Answer:`` / ``Final answer:`` / ``answer is|would be|should be|will be`` /
   ``correct|best|right option|choice is`` / ``<answer>`` / ``\\boxed{`` (case-insensitive,
   markdown emphasis around the marker allowed: ``**Answer:** B``). The *statement* of a
   marker is the letter right after it, possibly wrapped: ``**B**``, ``*B*``, ``$B$``,
   ``\\boxed{B}``, ``\\text{B}``, ``(B)``, ``[B]``, ``{B}``, quotes, and ended by
   anything that is not a letter, a digit or a contraction (``B.``, ``B)``, ``B: Paris``,
   end of text; not ``I've``).
   Lowercase letters count (``answer is (c)`` → C). The *last* marker that carries a
   statement decides; discussion after it (mentioning other letters) is ignored because
   only the token right after the marker is read.
2. **English words are not letters** (rule applied inside 1 and 4). A *bare* (unwrapped)
   ``A``/``a`` followed by a lowercase word is the article ("Answer: a good choice is C"),
   a bare ``I``/``i`` followed by a word is the pronoun ("Answer: I think it is B"), unless the
   word is a copula/connective (``is``, ``because``, ``since``, ``as``, ``was``, ``and``,
   ``or``) — "A is correct" is a statement. Such a marker has no statement, and the
   answer line is searched as in 4.
3. **Letters outside the options** (rule ``"out_of_range"``): a statement naming a letter
   that is not an option (``E`` with options A-D) makes the answer unusable: no choice (it
   does not fall back to an earlier statement: the model's last word was E).
4. **Search of the answer line** (rule ``"answer_line"``). When the last marker has no
   statement, the rest of its line (or the next non-empty line if the marker ends its line)
   is searched for option letters standing alone (wrapped, or bare uppercase, never the
   English words of rule 2). Exactly one distinct in-range letter → that letter; more than
   one → ambiguous. If none, the same line is compared with the option texts (rule 7);
   if that fails too, the marker is skipped and the previous marker is tried.
5. **Ambiguous statements** (rule ``"ambiguous"``): a statement followed by ``or``/``and``/
   ``,``/``/``/``&`` and another letter (``Answer: A or B``), or by a list of letters
   separated by periods or spaces whose next letter ends its phrase (``Answer: B. C. D``,
   ``Answer: B C``; but ``Answer: B. A is wrong`` states B), or an answer line with two
   distinct letters: no choice.
6. **Natural phrasings of a final choice** (rule ``"statement"``): ``I'd go with B``,
   ``I'll go with (C)``, ``going with B``, ``I choose B``, ``I pick option D``, ``I select
   b``, ``I'd opt for A``, ``my pick is B``, ``my choice: C``, ``my final answer would be
   D`` (:data:`NATURAL_MARKERS`, case-insensitive; an optional ``the``/``option``/``choice``/
   ``answer``/``letter`` before the letter). They take part in rule 1 (the last marker
   counts) and rules 2, 3, 5 (English words, out of range, ambiguous), but a natural marker
   without a letter right after it is skipped: its line is not searched (rule 4), because
   "I'd go with the one where A fails" names no choice. The option text after it counts
   (rule 7: ``I'd go with Paris``).
7. **Option text** (rule ``"option_text"``, only when ``option_texts`` is given): the answer
   line after the last marker (or the whole text when there is no marker) equals one
   option's text, compared case-insensitively with surrounding whitespace, markdown and
   final punctuation removed. Exact only: no fuzzy matching.
8. **A letter alone** (rule ``"bare"``): no marker, and the text (stripped) is just a letter
   with optional wrappers and final punctuation (``"B"``, ``"**(b)**."``), or starts with
   one followed by ``.``/``)``/``:`` or a line end (``"B. Paris is ..."``).
9. Nothing of the above → no choice (rule ``"none"``).

:func:`extract_answer` applies these to a :class:`~hotmess.core.types.DrawResult`: the answer
``text`` first; only when it yields *no statement at all* (rule ``"none"``), the reasoning's
last statement (rules 1-6 on the reasoning, reported as ``"reasoning:<rule>"``), because a
model whose reasoning was cut by the budget may have stated its answer there. An
``out_of_range`` or ``ambiguous`` answer text is final (not overridden by the reasoning).

Probability-block rules (each has a test)
-----------------------------------------
``<PROB> ... </PROB>`` (case-insensitive, spaces inside the tags allowed):

* **several blocks**: the last complete block counts (``"last_block"`` when >1);
  an unclosed ``<PROB>`` after the last complete block (text cut off) is read to the end of
  the text (``"unclosed"``) and counts only if it parses completely;
* **no block** → ``"no_block"`` (unusable);
* **entries**: numbers (``0.25``, ``.25``, ``25%``, ``1e-2``, ``1/4``), separated by commas,
  semicolons, whitespace or newlines. An entry may carry a label: ``A: 0.2``, ``A=0.2``,
  ``(A) 0.2``, ``P(A) = 0.2``, ``P(A): 0.2``. If *every* entry is labelled, values go to their
  labels (``"labelled"``); labels missing from the block get 0; a duplicated label or a label
  that is not an option → ``"bad_label"``. Otherwise the entries are positional and their
  count must equal the number of options, else ``"wrong_count"``;
* **percentages**: if any entry has ``%``, or all values are within [0, 100] and sum to
  100 ± 100·``sum_tolerance`` while not to 1 ± ``sum_tolerance``, all values are divided by
  100 (``"percent"``);
* **negatives** (``-0.1``, ``−0.1``) → ``"negative"`` (unusable; ``-0`` is 0);
* **sum**: a sum within ``1 ± sum_tolerance`` (default 0.05) is renormalised to 1
  (``"renormalised"`` when it was not already 1 within 1e-9); a sum outside it, or 0, →
  ``"bad_sum"`` (unusable: the model did not give a distribution);
* a value that is not finite → ``"not_a_number"``.

The returned ``rule`` is the decisive one; a usable vector with no special case is ``"ok"``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "Choice",
    "ProbParse",
    "extract_choice",
    "extract_answer",
    "parse_probabilities",
    "DEFAULT_MARKERS",
    "NATURAL_MARKERS",
]


@dataclass(frozen=True)
class Choice:
    """The outcome of :func:`extract_choice`.

    Attributes
    ----------
    label : str or None
        The chosen option label (one of the ``labels`` passed in, upper-case as given), or
        ``None`` when no usable choice was found.
    rule : str
        The rule that decided: ``"statement"``, ``"answer_line"``, ``"option_text"``,
        ``"bare"`` (a choice); ``"out_of_range"``, ``"ambiguous"``, ``"none"`` (no choice).
        :func:`extract_answer` prefixes rules found in the reasoning with ``"reasoning:"``.
    """

    label: str | None
    rule: str

    @property
    def ok(self) -> bool:
        return self.label is not None


@dataclass(frozen=True)
class ProbParse:
    """The outcome of :func:`parse_probabilities`.

    Attributes
    ----------
    vector : numpy.ndarray or None, shape (n_options,)
        Probabilities over the options (non-negative, summing to 1), or ``None`` when the
        block is unusable.
    rule : str
        The deciding rule (see the module docstring).
    notes : tuple of str
        Every rule that applied on the way (e.g. ``("last_block", "percent", "renormalised")``).
    """

    vector: np.ndarray | None
    rule: str
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.vector is not None


# --------------------------------------------------------------------------------------
# letters

#: Phrases after which the answer's letter is expected (regular expressions, case-insensitive).
DEFAULT_MARKERS: tuple[str, ...] = (
    r"(?:final\s+)?answer\s*(?:\*\*|__)?\s*[:=]",
    r"answer\s+(?:is|would\s+be|should\s+be|will\s+be)\s*:?",
    r"(?:correct|best|right)\s+(?:option|choice)\s+(?:is|would\s+be)\s*:?",
    r"<answer>",
    r"\\boxed\{",
)

_SUBJECT = r"\b(?:i|we)(?:\s*['’](?:d|ll|m)|\s+(?:would|will|shall|am))?"
_FILLER = r"(?:\s+(?:the|option|choice|answer|letter))*\s*:?"
#: Natural phrasings of a final choice (rule 6): the letter must follow right after.
NATURAL_MARKERS: tuple[str, ...] = (
    rf"(?:{_SUBJECT}\s+|\b)(?:go|going|stick|sticking)\s+with{_FILLER}",
    rf"{_SUBJECT}\s+(?:choose|chose|pick|picked|select|selected|opt\s+for|vote\s+for|go\s+for){_FILLER}",
    r"\bmy\s+(?:final\s+)?(?:pick|choice|selection|answer|vote|guess|bet)\s*(?:is|would\s+be|will\s+be|[:=])"
    + _FILLER,
)

# Opening wrappers that may come before the letter (repeated), e.g. "**", "$\boxed{", "(".
_OPEN = r"(?:\*\*|\*|__|_|\$\$|\$|\\\(|\\\[|\\boxed\{|\\text(?:bf)?\{|\\math(?:bf|rm)\{|\(|\[|\{|\"|'|`|“|‘)"
_CLOSE_CHARS = set(")]}*$_\"'`”’.:")
# a letter ends at anything but a letter, a digit or a contraction ("I've", "A's")
_LETTER_RE = re.compile(
    rf"(?P<open>(?:\s*{_OPEN})*)\s*(?P<letter>[A-Za-z])(?![A-Za-z0-9]|['’][A-Za-z])"
)
_CONNECTIVES = {"is", "because", "since", "as", "was", "and", "or"}
_AMBIG_RE = re.compile(
    rf"\s*(?:\*\*|\*|\$|\)|\]|\}})*\s*(?:or|and|,|/|&)\s*(?:{_OPEN})*\s*([A-Za-z])(?![A-Za-z0-9])",
    re.I,
)
# a list of letters separated by periods or spaces ("B. C. D", "B C"): the next letter must
# itself end its phrase (closing wrappers, then . , ; or the line end), unlike "B. A is wrong"
_LIST_RE = re.compile(
    rf"[ \t]*(?:\*\*|\*|\$|\)|\]|\}})*\.?[ \t]+(?:{_OPEN})*([A-Za-z])(?:\*\*|\*|\$|\)|\]|\}})*(?=[.,;]|[ \t]*(?:\n|$))"
)
_WORD_AFTER_RE = re.compile(r"[ \t]+([a-z][a-z']*)")


def _is_english_word(text: str, start: int, end: int, letter: str, wrapped: bool) -> bool:
    """Rule 2: a bare A/a/I/i followed by a word is the article/pronoun, not an option."""
    if wrapped or letter not in "AaIi":
        return False
    m = _WORD_AFTER_RE.match(text, end)
    if not m:
        return False
    word = m.group(1).lower()
    if letter in "Ii":
        return True
    return word not in _CONNECTIVES


def _is_wrapped(text: str, open_part: str, end: int) -> bool:
    if open_part.strip():
        return True
    return end < len(text) and text[end] in _CLOSE_CHARS


def _statement_at(text: str, pos: int, labels: Sequence[str]):
    """Read a statement right at ``pos``. Returns (kind, letter, end) where kind is
    "letter" (in range), "out" (a letter that is not an option), "ambiguous", or None."""
    m = _LETTER_RE.match(text, pos)
    if not m:
        return None, None, pos
    letter, end = m.group("letter"), m.end("letter")
    # no newline-crossing for a bare letter further than the next line
    between = text[pos : m.start("letter")]
    if between.count("\n") > 2:
        return None, None, pos
    wrapped = _is_wrapped(text, m.group("open"), end)
    if _is_english_word(text, m.start("letter"), end, letter, wrapped):
        return None, None, pos
    up = letter.upper()
    if not wrapped and letter.islower():
        # a bare lowercase letter followed by a lowercase word is prose ("the answer is c
        # the ..."), unless the word is a connective ("the answer is b because ...")
        w = _WORD_AFTER_RE.match(text, end)
        if w and w.group(1) not in _CONNECTIVES:
            return None, None, pos
    amb = _AMBIG_RE.match(text, end) or _LIST_RE.match(text, end)
    if amb and amb.group(1).upper() in labels and amb.group(1).upper() != up:
        # "A or B" / "A and C": the second letter must itself not be an English word
        if not _is_english_word(text, amb.start(1), amb.end(1), amb.group(1), False):
            return "ambiguous", None, amb.end()
    if up not in labels:
        return "out", up, end
    return "letter", up, end


def _norm_text(s: str) -> str:
    s = re.sub(r"[*_`$]+", "", s)
    s = s.strip().strip(" \t\n.;:!\"'“”‘’").strip()
    return re.sub(r"\s+", " ", s).casefold()


def _match_option_text(segment: str, option_texts: Sequence[str] | None, labels: Sequence[str]):
    if not option_texts:
        return None
    seg = _norm_text(segment)
    if not seg:
        return None
    hits = {
        labels[i]
        for i, t in enumerate(option_texts)
        if i < len(labels) and _norm_text(str(t)) == seg
    }
    return hits.pop() if len(hits) == 1 else None


_STANDALONE_RE = re.compile(
    rf"(?<![A-Za-z0-9'’])(?P<open>(?:{_OPEN})*)(?P<letter>[A-Za-z])(?![A-Za-z0-9'’])"
)


def _search_line(line: str, labels: Sequence[str]) -> tuple[set[str], bool]:
    """Rule 4: distinct in-range option letters standing alone in ``line``."""
    found: set[str] = set()
    for m in _STANDALONE_RE.finditer(line):
        letter, end = m.group("letter"), m.end("letter")
        wrapped = _is_wrapped(line, m.group("open"), end)
        if not wrapped and letter.islower():
            continue  # bare lowercase letters in prose are words or variables
        if _is_english_word(line, m.start("letter"), end, letter, wrapped):
            continue
        if letter.upper() in labels:
            found.add(letter.upper())
    return found, bool(found)


def _answer_line(text: str, pos: int) -> str:
    rest = text[pos:]
    line, _, after = rest.partition("\n")
    if line.strip(" \t*_:"):
        return line
    for nxt in after.split("\n"):
        if nxt.strip():
            return nxt
    return ""


def _check_labels(labels: Sequence[str]) -> tuple[str, ...]:
    labs = tuple(str(x).upper() for x in labels)
    if not labs or any(len(x) != 1 or not x.isalpha() for x in labs):
        raise ValueError(f"option labels must be single letters, got {tuple(labels)!r}")
    return labs


def extract_choice(
    text: str,
    labels: Sequence[str] = ("A", "B", "C", "D"),
    *,
    option_texts: Sequence[str] | None = None,
    stop_markers: Sequence[str] = (),
    markers: Sequence[str] = DEFAULT_MARKERS,
    statements_only: bool = False,
    natural_markers: Sequence[str] = NATURAL_MARKERS,
) -> Choice:
    """Which option a model's text states (rules 1-9 of the module docstring).

    Parameters
    ----------
    text : str
        The model's answer text.
    labels : sequence of str
        The option labels, single letters (``"A"``..); case-insensitive.
    option_texts : sequence of str, optional
        The options' texts, for rule 7 (exact option-text answers).
    stop_markers : sequence of str
        Cut the text at the first occurrence of any of these (e.g. ``"\\nQuestion:"``).
    markers : sequence of str
        Regular expressions of answer markers (default :data:`DEFAULT_MARKERS`).
    statements_only : bool
        Only rules 1-6 (used on reasoning text, where a lone letter or an option's text is
        not a statement of the answer).
    natural_markers : sequence of str
        Regular expressions of natural phrasings of a choice (rule 6, default
        :data:`NATURAL_MARKERS`); ``()`` turns the rule off.

    Returns
    -------
    Choice

    Raises
    ------
    ValueError
        ``labels`` are not single letters (a programming error, not model output).
    """
    labs = _check_labels(labels)
    text = text or ""
    for stop in stop_markers:
        i = text.find(stop)
        if i >= 0:
            text = text[:i]
    alternatives = [f"(?P<std>{'|'.join(f'(?:{m})' for m in markers)})"]
    if natural_markers:
        alternatives.append(f"(?P<nat>{'|'.join(f'(?:{m})' for m in natural_markers)})")
    marker_re = re.compile("|".join(alternatives), re.I)
    found_markers = [(m.end(), m.group("std") is None) for m in marker_re.finditer(text)]
    ends = [end for end, _ in found_markers]
    for end, natural in reversed(found_markers):
        # allow markdown closing emphasis after the marker: "**Answer:** B"
        m = re.match(r"(?:\*\*|__|\*)?", text[end:])
        pos = end + (m.end() if m else 0)
        kind, letter, _ = _statement_at(text, pos, labs)
        if kind == "letter":
            return Choice(letter, "statement")
        if kind == "out":
            return Choice(None, "out_of_range")
        if kind == "ambiguous":
            return Choice(None, "ambiguous")
        line = _answer_line(text, pos)
        if natural:  # rule 6: no search of the line after a natural phrasing
            hit = None if statements_only else _match_option_text(line, option_texts, labs)
            if hit:
                return Choice(hit, "option_text")
            continue
        found, _ = _search_line(line, labs)
        if len(found) == 1:
            return Choice(found.pop(), "answer_line")
        if len(found) > 1:
            return Choice(None, "ambiguous")
        if not statements_only:
            hit = _match_option_text(line, option_texts, labs)
            if hit:
                return Choice(hit, "option_text")
    if statements_only:
        return Choice(None, "none")
    if not ends:
        stripped = text.strip()
        m = re.fullmatch(rf"(?:{_OPEN})*\s*([A-Za-z])\s*[)\]}}*$_\"'`”’]*\s*[.!:]?\s*", stripped)
        if m:
            up = m.group(1).upper()
            return Choice(up, "bare") if up in labs else Choice(None, "out_of_range")
        m = re.match(rf"(?:{_OPEN})*\s*([A-Za-z])(?:[)\]}}*]+|\s*[.:)])(?:\s|$)", stripped)
        if m and m.group(1).upper() in labs:
            return Choice(m.group(1).upper(), "bare")
        hit = _match_option_text(stripped, option_texts, labs)
        if hit:
            return Choice(hit, "option_text")
    return Choice(None, "none")


def extract_answer(
    text: str,
    reasoning: str = "",
    labels: Sequence[str] = ("A", "B", "C", "D"),
    *,
    option_texts: Sequence[str] | None = None,
    stop_markers: Sequence[str] = (),
    reasoning_fallback: bool = True,
) -> Choice:
    """The choice of one draw: the answer text first, then (only when the text states
    nothing at all) the last statement of the reasoning (module docstring).

    Parameters
    ----------
    text, reasoning : str
        :attr:`DrawResult.text` and :attr:`DrawResult.reasoning`.
    labels, option_texts, stop_markers
        As for :func:`extract_choice`.
    reasoning_fallback : bool
        Read the reasoning when the text yields rule ``"none"``.

    Returns
    -------
    Choice
        Rules from the reasoning are prefixed ``"reasoning:"``.
    """
    got = extract_choice(text, labels, option_texts=option_texts, stop_markers=stop_markers)
    if got.rule != "none" or not reasoning_fallback or not reasoning:
        return got
    r = extract_choice(reasoning, labels, stop_markers=stop_markers, statements_only=True)
    if r.rule == "none":
        return got
    return Choice(r.label, "reasoning:" + r.rule)


# --------------------------------------------------------------------------------------
# probabilities

_BLOCK_RE = re.compile(r"<\s*PROB\s*>(.*?)<\s*/\s*PROB\s*>", re.I | re.S)
_OPEN_TAG_RE = re.compile(r"<\s*PROB\s*>", re.I)
_NUM_RE = re.compile(
    r"(?P<sign>[-+−–])?\s*(?P<num>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)(?:\s*/\s*(?P<den>\d+(?:\.\d*)?))?\s*(?P<pct>%)?"
)
_LABEL_BEFORE_RE = re.compile(
    r"(?:P\s*\(\s*(?P<l1>[A-Za-z])\s*\)|\(\s*(?P<l2>[A-Za-z])\s*\)|(?<![A-Za-z])(?P<l3>[A-Za-z])(?![A-Za-z]))\s*[:=]?\s*$"
)


def parse_probabilities(
    text: str,
    labels: Sequence[str] = ("A", "B", "C", "D"),
    *,
    sum_tolerance: float = 0.05,
) -> ProbParse:
    """The probability vector of the last ``<PROB> ... </PROB>`` block (module docstring
    lists every rule; probability prompting as in the paper).

    Parameters
    ----------
    text : str
        The model's answer text.
    labels : sequence of str
        Option labels, single letters; the vector is in this order.
    sum_tolerance : float
        Largest accepted ``|sum - 1|`` (sums within it are renormalised).

    Returns
    -------
    ProbParse
        ``vector`` of shape ``(len(labels),)`` or ``None``.
    """
    labs = _check_labels(labels)
    text = text or ""
    blocks = [(m.group(1), m.end()) for m in _BLOCK_RE.finditer(text)]
    tail = list(_OPEN_TAG_RE.finditer(text, blocks[-1][1] if blocks else 0))
    if tail:  # an unclosed block after the last complete one (the text was cut off)
        got = _parse_block(text[tail[-1].end() :], labs, sum_tolerance, ["unclosed"])
        if got.ok or not blocks:
            return got
    if not blocks:
        return ProbParse(None, "no_block")
    return _parse_block(
        blocks[-1][0], labs, sum_tolerance, ["last_block"] if len(blocks) > 1 else []
    )


def _parse_block(body: str, labs: tuple[str, ...], tol: float, notes: list[str]) -> ProbParse:
    entries = []  # (label or None, value, pct)
    prev_end = 0
    for m in _NUM_RE.finditer(body):
        before = body[prev_end : m.start()]
        lab = _LABEL_BEFORE_RE.search(before)
        label = None
        if lab:
            label = (lab.group("l1") or lab.group("l2") or lab.group("l3")).upper()
        try:
            value = float(m.group("num"))
            if m.group("den"):
                value = value / float(m.group("den"))
        except (ValueError, ZeroDivisionError):
            return ProbParse(None, "not_a_number", tuple(notes))
        if m.group("sign") in ("-", "−", "–") and value != 0:
            return ProbParse(None, "negative", tuple(notes + ["negative"]))
        entries.append((label, value, bool(m.group("pct"))))
        prev_end = m.end()
    if not entries:
        return ProbParse(None, "wrong_count", tuple(notes + ["wrong_count"]))
    n = len(labs)
    values = np.zeros(n)
    if all(e[0] is not None for e in entries) and len(entries) <= n:
        seen = set()
        for label, value, _ in entries:
            if label not in labs or label in seen:
                return ProbParse(None, "bad_label", tuple(notes + ["bad_label"]))
            seen.add(label)
            values[labs.index(label)] = value
        notes.append("labelled")
    elif all(e[0] is not None for e in entries):
        return ProbParse(None, "bad_label", tuple(notes + ["bad_label"]))
    else:
        if len(entries) != n:
            return ProbParse(None, "wrong_count", tuple(notes + ["wrong_count"]))
        values = np.array([e[1] for e in entries], dtype=float)
    if not np.all(np.isfinite(values)):
        return ProbParse(None, "not_a_number", tuple(notes + ["not_a_number"]))
    total = float(values.sum())
    any_pct = any(e[2] for e in entries)
    if any_pct or (
        abs(total - 1.0) > tol and abs(total - 100.0) <= 100.0 * tol and values.max() <= 100.0
    ):
        values = values / 100.0
        total = total / 100.0
        notes.append("percent")
    if total <= 0 or abs(total - 1.0) > tol:
        return ProbParse(None, "bad_sum", tuple(notes + ["bad_sum"]))
    if abs(total - 1.0) > 1e-9:
        notes.append("renormalised")
    values = values / total
    return ProbParse(values, notes[-1] if notes else "ok", tuple(notes))


def softmax_logprobs(logprobs: dict[str, float] | None, labels: Sequence[str]) -> np.ndarray | None:
    """Softmax of the label log-probs over the options (the paper's base/instruct comparison).

    Returns ``None`` when a label is missing or a value is not finite-or-minus-infinity.
    Shape ``(len(labels),)``.
    """
    if not logprobs:
        return None
    vals = []
    for lab in labels:
        v = logprobs.get(lab)
        if v is None:
            v = logprobs.get(lab.lower())
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return None
        vals.append(float(v))
    x = np.asarray(vals)
    if not np.any(np.isfinite(x)):
        return None
    x = x - np.max(x[np.isfinite(x)])
    p = np.exp(x)
    return p / p.sum()
