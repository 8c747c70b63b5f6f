"""The GPQA task on records of the real Idavidrein/gpqa schema WRITTEN BY THESE TESTS
(invented arithmetic questions; GPQA's own questions must never be published)."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from hotmess.core import plugins
from hotmess.core.seeding import context_seed, derive_seed
from hotmess.core.types import DrawResult, SamplingParams

# The columns of the hub dataset's gpqa_main/gpqa_diamond CSV that the task reads, plus
# some it ignores (the real files have more; extra columns must not matter).
COLUMNS = [
    "Pre-Revision Question",
    "Question",
    "Correct Answer",
    "Incorrect Answer 1",
    "Incorrect Answer 2",
    "Incorrect Answer 3",
    "Explanation",
    "Record ID",
    "High-level domain",
    "Subdomain",
    "Writer's Difficulty Estimate",
]
DOMAINS = ["Physics", "Chemistry", "Biology"]


def make_records(n=40):
    out = []
    for i in range(n):
        a, b = 3 + i, 7 + 2 * i
        out.append(
            {
                "Pre-Revision Question": f"What is {a} plus {b}?",
                # a multi-line question, as many real ones are
                "Question": f"Invented test question {i}.\nWhat is {a} + {b}?",
                "Correct Answer": str(a + b),
                "Incorrect Answer 1": str(a + b + 1),
                "Incorrect Answer 2": str(a * b),
                "Incorrect Answer 3": f"{a - b}, with a comma",
                "Explanation": "Addition.",
                "Record ID": f"recTEST{i:04d}",
                "High-level domain": DOMAINS[i % 3],
                "Subdomain": "Arithmetic (test)",
                "Writer's Difficulty Estimate": "Easy undergraduate level (or easier)",
            }
        )
    return out


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("gpqa")
    recs = make_records()
    with open(d / "gpqa_main.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(recs)
    with open(d / "gpqa_diamond.jsonl", "w", encoding="utf-8") as f:
        for r in recs[:10]:
            f.write(json.dumps(r) + "\n")
    return d


def make_task(data_dir, **kw):
    from hotmess.plugins.gpqa.task import GPQATask

    return GPQATask(data_dir=str(data_dir), **kw)


def request(task, q, *, ctx=0, chat=False, seeds=(1, 2)):
    return task.build_request(
        q,
        context=ctx,
        context_seed=context_seed(0, q.id, ctx),
        seeds=seeds,
        budget=None,
        effort=None,
        sampling=SamplingParams(),
        chat=chat,
    )


def test_registered_and_reads_csv_and_jsonl(data_dir):
    t = plugins.create("tasks", "gpqa", data_dir=str(data_dir), subset="main")
    qs = t.questions()
    assert [q.id for q in qs] == [f"gpqa/main/recTEST{i:04d}" for i in range(40)]
    assert qs[0].data["question"] == "Invented test question 0.\nWhat is 3 + 7?"
    assert [q.subject for q in qs[:3]] == DOMAINS
    d = make_task(data_dir, subset="diamond").questions()
    assert [q.id for q in d] == [f"gpqa/diamond/recTEST{i:04d}" for i in range(10)]
    assert len(make_task(data_dir, limit=5).questions()) == 5


def test_shuffle_once_per_question_with_recorded_seed(data_dir):
    recs = {r["Record ID"]: r for r in make_records()}
    t = make_task(data_dir, shuffle_seed=7)
    qs = t.questions()
    for q in qs:
        rec = recs[q.data["record_id"]]
        # the correct answer is where the target says
        assert q.data["choices"][q.target] == rec["Correct Answer"]
        assert sorted(q.data["choices"]) == sorted(
            rec[k]
            for k in [
                "Correct Answer",
                "Incorrect Answer 1",
                "Incorrect Answer 2",
                "Incorrect Answer 3",
            ]
        )
        # the permutation, recomputed here from its definition
        expected = sorted(
            range(4), key=lambda j: derive_seed(7, "gpqa-options", q.data["record_id"], j)
        )
        assert q.data["order"] == expected
    # the correct answer is not always at the same position
    assert len(Counter(q.target for q in qs)) == 4
    # same order in every draw and context (never re-shuffled)
    q = qs[3]
    lines = set()
    for ctx in range(5):
        p = request(t, q, ctx=ctx, seeds=(ctx, ctx + 1)).prompt
        lines.add(
            tuple(
                re.findall(
                    r"^([A-D]\. .*)$", p.split(q.data["question"].splitlines()[-1])[-1], re.M
                )
            )
        )
    assert len(lines) == 1
    # a new instance gives the same order; another shuffle seed changes some orders
    assert [q.data["order"] for q in make_task(data_dir, shuffle_seed=7).questions()] == [
        q.data["order"] for q in qs
    ]
    other = [q.data["order"] for q in make_task(data_dir, shuffle_seed=8).questions()]
    assert other != [q.data["order"] for q in qs]
    info = t.info()
    assert info["shuffle_seed"] == 7 and "once per question" in info["option_shuffle"]


def test_zero_shot_cot_prompt(data_dir):
    t = make_task(data_dir, n_shot=0, cot=True)
    q = t.questions()[0]
    req = request(t, q)
    assert req.prompt.count("Question:") == 1 and req.prompt.endswith("Reasoning:")
    assert "Reason step by step" in req.prompt and req.answer_prefix == "Answer:"
    assert req.option_labels == ("A", "B", "C", "D")
    chat = request(t, q, chat=True)
    assert chat.messages[0]["content"].count("Question:") == 1


def test_fewshot_without_reasoning_from_other_questions(data_dir):
    t = make_task(data_dir, n_shot=3, cot=False)
    qs = t.questions()
    by_text = {q.data["question"].splitlines()[0]: q for q in qs}
    q = qs[5]
    seen = set()
    for ctx in range(6):
        p = request(t, q, ctx=ctx).prompt
        assert p == request(t, q, ctx=ctx, seeds=(42,)).prompt  # fixed by the context seed only
        shown = re.findall(r"^Question: (.*)$", p, re.M)
        answers = re.findall(r"^Answer: ([A-D])$", p, re.M)
        assert len(shown) == 4 and len(answers) == 3
        assert shown[-1] == q.data["question"].splitlines()[0]
        assert q.data["question"].splitlines()[0] not in shown[:3]
        for text, ans in zip(shown[:3], answers, strict=True):
            ex = by_text[text]
            assert "ABCD"[ex.target] == ans  # the example's answer in its own fixed order
        assert "Reason step by step" not in p and not p.endswith("Reasoning:")
        seen.add(tuple(shown[:3]))
    assert len(seen) > 1


def test_letter_scoring(data_dir):
    t = make_task(data_dir)
    q = t.questions()[0]
    out = t.score(q, DrawResult(text="Answer: **D**"))
    np.testing.assert_array_equal(out.vector, [0, 0, 0, 1])
    out = t.score(q, DrawResult(text="Answer: D or A"))
    assert out.format_error and np.allclose(out.vector, 0.25)


def test_probability_format(data_dir):
    t = make_task(data_dir, format="probabilities")
    q = t.questions()[0]
    req = request(t, q)
    assert "<PROB> P(A), P(B), P(C), P(D) </PROB>" in req.prompt and req.answer_prefix == "<PROB>"
    cases = {
        "<PROB> 0.1, 0.2, 0.3, 0.4 </PROB>": [0.1, 0.2, 0.3, 0.4],
        "<PROB> A: 0.5, B: 0.5 </PROB>": [0.5, 0.5, 0, 0],
        "<PROB> 40%, 30%, 20%, 10% </PROB>": [0.4, 0.3, 0.2, 0.1],
        "<PROB> 1, 0, 0, 0 </PROB>\nOn reflection: <PROB> 0, 0, 0, 1 </PROB>": [0, 0, 0, 1],
    }
    for text, vec in cases.items():
        out = t.score(q, DrawResult(text=text))
        np.testing.assert_allclose(out.vector, vec)
        assert not out.format_error
    for bad in [
        "<PROB> 0.5, 0.5 </PROB>",
        "<PROB> -0.2, 0.4, 0.4, 0.4 </PROB>",
        "<PROB> 0.9, 0.9, 0.9, 0.9 </PROB>",
        "B",
    ]:
        out = t.score(q, DrawResult(text=bad))
        assert out.format_error and np.allclose(out.vector, 0.25), bad
    # the block only in the reasoning (answer cut): reasoning fallback
    out = t.score(q, DrawResult(text="", reasoning="... <PROB> 0.7, 0.1, 0.1, 0.1 </PROB>"))
    np.testing.assert_allclose(out.vector, [0.7, 0.1, 0.1, 0.1])


def test_bad_data_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="gpqa_main.csv"):
        make_task(tmp_path).questions()
    recs = make_records(3)
    recs[2]["Correct Answer"] = "  "
    with open(tmp_path / "gpqa_main.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(recs)
    with pytest.raises(
        ValueError, match=r"gpqa_main\.csv: record 4: missing or empty field 'Correct Answer'"
    ):
        make_task(tmp_path).questions()
    recs = make_records(3)
    recs[1]["Record ID"] = recs[0]["Record ID"]
    (tmp_path / "gpqa_diamond.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    with pytest.raises(ValueError, match=r"gpqa_diamond\.jsonl:2: duplicate Record ID"):
        make_task(tmp_path, subset="diamond").questions()
    with pytest.raises(ValueError, match="task.subset"):
        make_task(tmp_path, subset="gold")
    with pytest.raises(ValueError, match=r"task 'gpqa': unknown option\(s\) 'shuffle'.*'shuffle_seed'"):
        plugins.create("tasks", "gpqa", shuffle="x")  # hotmess.core.options: valid ones listed


def test_hub_failure_message_offline():
    """A real failed hub load: offline mode, nothing cached (subprocess: the variable is read
    by ``datasets`` at import)."""
    code = (
        "from hotmess.plugins.gpqa.task import GPQATask\nGPQATask(subset='diamond').questions()\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0
    err = proc.stderr
    assert "ConnectionError" in err and "gpqa_diamond" in err
    assert "HF_TOKEN" in err and "task.data_dir" in err


def test_hub_gated_message():
    """The gated-access failure cannot be produced offline; this feeds the real exception
    class with the hub's wording for a gated dataset to the message builder."""
    from datasets.exceptions import DatasetNotFoundError

    from hotmess.plugins.gpqa.task import hub_error_message

    exc = DatasetNotFoundError(
        "Dataset 'Idavidrein/gpqa' is a gated dataset on the Hub. You must be authenticated to access it."
    )
    msg = hub_error_message(exc, "Idavidrein/gpqa", "main")
    assert msg.startswith("no access to the GPQA dataset Idavidrein/gpqa (config gpqa_main)")
    assert "https://huggingface.co/datasets/Idavidrein/gpqa" in msg and "HF_TOKEN" in msg
    assert "task.data_dir" in msg and "gpqa_main.csv" in msg
