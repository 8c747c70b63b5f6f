"""Answer-letter extraction and <PROB> parsing: one test per documented rule
(hotmess.plugins.mc.parsing), with the expected letter / vector written in the test."""

from __future__ import annotations

import numpy as np
import pytest

from hotmess.plugins.mc import (
    Choice,
    extract_answer,
    extract_choice,
    one_hot,
    outcome_from_choice,
    outcome_from_probabilities,
    parse_probabilities,
    softmax_logprobs,
    uniform,
)

ABCD = ("A", "B", "C", "D")
OPTIONS = ("London", "Paris", "Rome", "Berlin")


def choose(text, labels=ABCD, **kw):
    return extract_choice(text, labels, **kw)


# ---- rule 1: answer statements, wrapped letters, lowercase, last one counts ----------
@pytest.mark.parametrize(
    "text, letter",
    [
        ("Answer: B", "B"),
        ("Answer:B", "B"),
        ("answer: b", "B"),  # lowercase
        ("The answer is c.", "C"),  # lowercase after "answer is"
        ("**Answer:** B", "B"),  # markdown around the marker
        ("**Answer: D**", "D"),
        ("Answer: **B**", "B"),  # bold letter
        ("Answer: *C*", "C"),
        ("Answer: $B$", "B"),  # LaTeX
        ("Answer: $\\boxed{\\text{A}}$", "A"),
        ("so we get \\boxed{D}", "D"),  # boxed alone is a marker
        ("$\\boxed{c}$", "C"),
        ("Answer: (B)", "B"),  # parentheses
        ("Answer: [D]", "D"),  # brackets
        ("Answer: {A}", "A"),
        ("Answer: B) Paris", "B"),
        ("Answer: C. Rome", "C"),
        ("Final Answer: A", "A"),
        ("The correct answer is: (d)", "D"),
        ("The correct option is (C).", "C"),
        ("The best choice is B", "B"),
        ("The answer would be A.", "A"),
        ("<answer>(A)</answer>", "A"),  # model-written-eval style
        ("<answer> (b) </answer>", "B"),
        ("Answer:\n\n**C**", "C"),  # letter on the next line
        ("Answer: A is correct", "A"),  # "A is": the letter, not the article
        ("the answer is d because the others are false", "D"),
    ],
)
def test_statement_wrapped_and_lowercase(text, letter):
    got = choose(text)
    assert got == Choice(letter, "statement")


def test_last_answer_line_counts():
    assert choose("Answer: A\nWait, let me recheck.\nAnswer: C") == Choice("C", "statement")
    assert choose("I first thought the answer is B. On reflection the answer is D.").label == "D"


def test_statement_followed_by_discussion_of_other_letters():
    text = "Answer: B\n\nOption A is wrong because of X, C confuses Y, and (D) is a distractor."
    assert choose(text) == Choice("B", "statement")
    assert choose("Answer: C. A and B are too small; D is too large.") == Choice("C", "statement")


# ---- rule 2: English words that look like option letters ------------------------------
def test_article_a_is_not_option_a():
    # the article "A" after the marker is skipped; the later "answer is C" is the statement
    assert choose("Answer: A good answer is C") == Choice("C", "statement")
    assert choose("The answer is a matter of definitions.") == Choice(None, "none")
    assert choose("answer: a") == Choice("A", "statement")  # a lone lowercase a is option A


def test_pronoun_i_is_not_option_i():
    labels = tuple("ABCDEFGHIJ")  # "I" is an option here, still the pronoun is not it
    assert choose("Answer: I think it is B", labels) == Choice("B", "answer_line")
    assert choose("Answer: I believe (c)", ABCD) == Choice("C", "answer_line")
    assert choose("Answer: I", labels) == Choice("I", "statement")


# ---- rule 3: letters outside the options ------------------------------------------------
def test_letter_outside_options():
    assert choose("Answer: E") == Choice(None, "out_of_range")
    # the last statement decides even if an earlier one was valid
    assert choose("Answer: B\nAnswer: E") == Choice(None, "out_of_range")
    assert choose("E") == Choice(None, "out_of_range")
    assert choose("Answer: E", tuple("ABCDE")) == Choice("E", "statement")


# ---- rule 4: search of the answer line --------------------------------------------------
def test_answer_line_search():
    assert choose("Answer: probably **C** after all") == Choice("C", "answer_line")
    # a marker whose line has no letter is skipped; the earlier statement counts
    assert choose("Answer: B\nFinal answer: I am not sure") == Choice("B", "statement")


# ---- rule 5: ambiguous -------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "Answer: A or B",
        "Answer: (A) and (C)",
        "Answer: B/D",
        "Answer: A, C",
        "Answer: maybe B, maybe C",
        "Answer: B. C. D",
        "Answer: B C",
        "Answer: (B) (C)",
    ],
)
def test_ambiguous(text):
    assert choose(text) == Choice(None, "ambiguous")


def test_repeated_same_letter_is_not_ambiguous():
    assert choose("Answer: B (B)").label == "B"


# ---- rule 6: option text -----------------------------------------------------------------
def test_option_text_exact():
    assert choose("Answer: Paris", option_texts=OPTIONS) == Choice("B", "option_text")
    assert choose("**berlin.**", option_texts=OPTIONS) == Choice("D", "option_text")
    # not fuzzy
    assert choose("Answer: Pariss", option_texts=OPTIONS) == Choice(None, "none")
    # without option texts the rule is off
    assert choose("Answer: Paris") == Choice(None, "none")


# ---- rule 7: a letter alone ---------------------------------------------------------------
@pytest.mark.parametrize(
    "text, letter",
    [("B", "B"), ("  c\n", "C"), ("**(b)**.", "B"), ("D. Berlin", "D"), ("(A) London", "A")],
)
def test_bare_letter(text, letter):
    assert choose(text) == Choice(letter, "bare")


def test_prose_without_marker_is_none():
    assert choose("A cat sat on the mat, B-movies are fun.") == Choice(None, "none")
    assert choose("") == Choice(None, "none")


# ---- stop markers: a base model inventing the next few-shot question ---------------------
def test_stop_marker_cuts_invented_next_question():
    text = "Answer: B\n\nQuestion: What is 2+2?\nA. 3\nB. 4\nAnswer: B\n\nQuestion: x?\nAnswer: D"
    assert choose(text, stop_markers=("\nQuestion:",)) == Choice("B", "statement")
    assert choose(text).label == "D"  # without the stop marker the last statement would win


# ---- extract_answer: text first, then the reasoning --------------------------------------
def test_reasoning_fallback():
    # forced answer with nothing after the prefix: the reasoning's last statement counts
    got = extract_answer("Answer:", "Hmm, A? No. So the answer is (C). Let me check B", ABCD)
    assert got == Choice("C", "reasoning:statement")
    # the text wins when it states an answer
    assert extract_answer("Answer: D", "the answer is (C)", ABCD) == Choice("D", "statement")
    # an unusable text statement is final: not overridden by the reasoning
    assert extract_answer("Answer: E", "the answer is (C)", ABCD) == Choice(None, "out_of_range")
    # a lone letter in the reasoning is not a statement
    assert extract_answer("", "Consider option B. It is wrong.", ABCD) == Choice(None, "none")
    assert extract_answer("Answer:", "the answer is (C)", ABCD, reasoning_fallback=False) == Choice(
        None, "none"
    )


def test_labels_must_be_letters():
    with pytest.raises(ValueError, match="single letters"):
        extract_choice("Answer: 1", ("1", "2"))


# ---- scoring: one-hot / uniform ------------------------------------------------------------
def test_outcome_from_choice():
    out = outcome_from_choice(Choice("C", "statement"), ABCD)
    np.testing.assert_array_equal(out.vector, [0, 0, 1, 0])
    assert not out.format_error and out.answer == "C"
    bad = outcome_from_choice(Choice(None, "ambiguous"), ABCD)
    np.testing.assert_array_equal(bad.vector, [0.25] * 4)
    assert bad.format_error and bad.answer == ""
    np.testing.assert_array_equal(one_hot(1, 3), [0, 1, 0])
    np.testing.assert_array_equal(uniform(5), [0.2] * 5)


# ---- probabilities ---------------------------------------------------------------------------
def probs(text, labels=ABCD, **kw):
    return parse_probabilities(text, labels, **kw)


def test_prob_plain():
    got = probs("Reasoning... <PROB> 0.1, 0.2, 0.3, 0.4 </PROB>")
    np.testing.assert_allclose(got.vector, [0.1, 0.2, 0.3, 0.4])
    assert got.rule == "ok"
    np.testing.assert_allclose(probs("<prob>0.7 0.1 0.1 0.1</prob>").vector, [0.7, 0.1, 0.1, 0.1])
    np.testing.assert_allclose(
        probs("< PROB >.5;.25;.125;.125</ PROB >").vector, [0.5, 0.25, 0.125, 0.125]
    )
    np.testing.assert_allclose(
        probs("<PROB> 1/4, 1/2, 1/8, 1/8 </PROB>").vector, [0.25, 0.5, 0.125, 0.125]
    )


@pytest.mark.parametrize(
    "text",
    [
        "<PROB> A: 0.2, B: 0.5, C: 0.1, D: 0.2 </PROB>",
        "<PROB> P(A) = 0.2, P(B) = 0.5, P(C) = 0.1, P(D) = 0.2 </PROB>",
        "<PROB> (C) 0.1 (A) 0.2 (D) 0.2 (B) 0.5 </PROB>",  # labels in any order
        "<PROB>\nA=0.2\nB=0.5\nC=0.1\nD=0.2\n</PROB>",
    ],
)
def test_prob_labels(text):
    got = probs(text)
    np.testing.assert_allclose(got.vector, [0.2, 0.5, 0.1, 0.2])
    assert got.rule == "labelled"


def test_prob_labels_missing_get_zero():
    got = probs("<PROB> B: 0.75, D: 0.25 </PROB>")
    np.testing.assert_allclose(got.vector, [0, 0.75, 0, 0.25])


def test_prob_bad_labels():
    assert probs("<PROB> A: 0.5, A: 0.5 </PROB>").rule == "bad_label"
    assert probs("<PROB> A: 0.5, E: 0.5 </PROB>").rule == "bad_label"
    assert probs("<PROB> A: 0.5, E: 0.5 </PROB>").vector is None


def test_prob_percentages():
    got = probs("<PROB> 10%, 20%, 30%, 40% </PROB>")
    np.testing.assert_allclose(got.vector, [0.1, 0.2, 0.3, 0.4])
    assert got.rule == "percent"
    # no % sign but summing to 100
    np.testing.assert_allclose(probs("<PROB> 5, 15, 30, 50 </PROB>").vector, [0.05, 0.15, 0.3, 0.5])
    np.testing.assert_allclose(probs("<PROB> A: 60%, B: 40% </PROB>").vector, [0.6, 0.4, 0, 0])


def test_prob_several_blocks_last_counts():
    got = probs("draft <PROB> 0.25, 0.25, 0.25, 0.25 </PROB> final <PROB> 0, 0, 1, 0 </PROB>")
    np.testing.assert_allclose(got.vector, [0, 0, 1, 0])
    assert got.rule == "last_block"


def test_prob_unclosed_block():
    got = probs("<PROB> 0.1, 0.1, 0.1, 0.7")
    np.testing.assert_allclose(got.vector, [0.1, 0.1, 0.1, 0.7])
    assert got.rule == "unclosed"
    # an incomplete unclosed block after a complete one: the complete one counts
    np.testing.assert_allclose(
        probs("<PROB>0.1,0.2,0.3,0.4</PROB> <PROB> 0.5, 0.").vector, [0.1, 0.2, 0.3, 0.4]
    )


def test_prob_wrong_count():
    assert probs("<PROB> 0.5, 0.5 </PROB>").rule == "wrong_count"
    assert probs("<PROB> 0.2, 0.2, 0.2, 0.2, 0.2 </PROB>").rule == "wrong_count"
    assert probs("<PROB> P(A), P(B), P(C), P(D) </PROB>").rule == "wrong_count"
    assert probs("<PROB> 0.5, 0.5 </PROB>").vector is None


def test_prob_negative():
    for t in ("<PROB> -0.1, 0.5, 0.3, 0.3 </PROB>", "<PROB> 0.6, −0.1, 0.3, 0.2 </PROB>"):
        got = probs(t)
        assert got.vector is None and got.rule == "negative"
    np.testing.assert_allclose(probs("<PROB> -0, 0.5, 0.5, 0 </PROB>").vector, [0, 0.5, 0.5, 0])


def test_prob_sum_rules():
    got = probs("<PROB> 0.26, 0.25, 0.25, 0.25 </PROB>")  # sum 1.01: renormalised
    np.testing.assert_allclose(got.vector, np.array([0.26, 0.25, 0.25, 0.25]) / 1.01)
    assert got.rule == "renormalised"
    assert probs("<PROB> 0.3, 0.3, 0.3, 0.3 </PROB>").rule == "bad_sum"  # sum 1.2
    assert probs("<PROB> 0, 0, 0, 0 </PROB>").rule == "bad_sum"
    assert probs("<PROB> 0.3, 0.3, 0.3, 0.3 </PROB>", sum_tolerance=0.25).vector is not None


def test_prob_no_block():
    got = probs("I think B, 0.6")
    assert got.vector is None and got.rule == "no_block"


def test_outcome_from_probabilities():
    out = outcome_from_probabilities(probs("<PROB> 0.1, 0.6, 0.2, 0.1 </PROB>"), ABCD)
    np.testing.assert_allclose(out.vector, [0.1, 0.6, 0.2, 0.1])
    assert out.answer == "B" and not out.format_error
    bad = outcome_from_probabilities(probs("<PROB> 0.5 </PROB>"), ABCD)
    np.testing.assert_array_equal(bad.vector, [0.25] * 4)
    assert bad.format_error


def test_softmax_logprobs():
    lp = {"A": np.log(0.1), "B": np.log(0.2), "C": np.log(0.3), "D": np.log(0.4)}
    np.testing.assert_allclose(softmax_logprobs(lp, ABCD), [0.1, 0.2, 0.3, 0.4])
    # unnormalised log-probs (mass elsewhere) are renormalised over the options
    lp2 = {"A": np.log(0.05), "B": np.log(0.05), "C": np.log(0.1), "D": np.log(0.3)}
    np.testing.assert_allclose(softmax_logprobs(lp2, ABCD), [0.1, 0.1, 0.2, 0.6])
    assert softmax_logprobs({"A": 0.0}, ABCD) is None
    assert softmax_logprobs(None, ABCD) is None


def test_period_after_statement_then_discussion_is_not_a_list():
    assert choose("Answer: B. D is too large") == Choice("B", "statement")
    assert choose("Answer: **B**. A is wrong.") == Choice("B", "statement")


# ---- real outputs of Gemma 3 270M (base, GGUF from PyPI) on MMLU through the hf backend,
# ---- prompted chain of thought, budget 48 tokens (recorded by hand from a run on this machine)
@pytest.mark.parametrize(
    "text, expected",
    [
        ("Answer: (C)", Choice("C", "statement")),
        ("Answer: D", Choice("D", "statement")),
        ("Answer: C, A, B, D.", Choice(None, "ambiguous")),
        ("Answer: A, B, C, D.", Choice(None, "ambiguous")),
        ("Answer: B. C. D", Choice(None, "ambiguous")),
        ("Answer: X) are, they live in a", Choice(None, "out_of_range")),
        (
            "Answer: I've had multiple customer visits to",
            Choice(None, "none"),
        ),  # contraction, not I
        ("Answer:\nI think the reason for the choice", Choice(None, "none")),
        ("Answer: 1.15", Choice(None, "none")),
    ],
)
def test_real_gemma_outputs(text, expected):
    assert choose(text) == expected


# ---- rule 6: natural phrasings of a final choice (issue 15: these were format errors) -----
@pytest.mark.parametrize(
    "text, letter",
    [
        ("I'd go with B", "B"),
        ("I’d go with (c).", "C"),
        ("After weighing them, I would go with option D.", "D"),
        ("I'll go with A because it is the only prime.", "A"),
        ("I'm going with **B**", "B"),
        ("Going with C.", "C"),
        ("I choose B", "B"),
        ("i choose b", "B"),
        ("I chose D.", "D"),
        ("I pick option A", "A"),
        ("I select the answer C", "C"),
        ("I'd opt for B.", "B"),
        ("I'll stick with D", "D"),
        ("My pick is B", "B"),
        ("my choice: C", "C"),
        ("My final answer would be D.", "D"),
        ("Hmm, A looks tempting. But I'd go with C.", "C"),
    ],
)
def test_natural_phrasings_are_answers(text, letter):
    assert choose(text) == Choice(letter, "statement")


def test_natural_phrasings_keep_the_ambiguity_rules():
    assert choose("I'd go with B or C") == Choice(None, "ambiguous")
    assert choose("I choose A, C") == Choice(None, "ambiguous")
    assert choose("I'd go with E") == Choice(None, "out_of_range")
    # English words are not letters; a natural marker without a letter is not searched
    assert choose("I'd go with a different approach") == Choice(None, "none")
    assert choose("I'd go with the one where A fails") == Choice(None, "none")
    assert choose("I choose to think about it") == Choice(None, "none")
    # the last marker counts, natural or not
    assert choose("Answer: A\nOn reflection I'd go with D") == Choice("D", "statement")
    assert choose("I'd go with D at first. The answer is B.") == Choice("B", "statement")
    # option text after a natural marker (rule 7)
    assert choose("I'd go with Paris.", option_texts=OPTIONS) == Choice("B", "option_text")
    # in the reasoning, as a statement (the answer text stated nothing)
    assert extract_answer("", "Let me think... I'll go with (C).", ABCD) == Choice(
        "C", "reasoning:statement"
    )
    # the rule can be turned off
    assert choose("I'd go with B", natural_markers=()) == Choice(None, "none")
