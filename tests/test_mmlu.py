"""The MMLU task on the real MMLU files in ../shared/data/mmlu (read independently here)."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from hotmess.core import plugins
from hotmess.core.seeding import context_seed
from hotmess.core.types import DrawResult, SamplingParams

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mmlu"
if not DATA.is_dir():
    DATA = Path("/work/shared/data/mmlu")
pytestmark = pytest.mark.skipif(
    not (DATA / "test.jsonl").is_file(), reason="needs ../shared/data/mmlu"
)

SUBJECTS = ["abstract_algebra", "marketing"]


def records(split):
    with open(DATA / f"{split}.jsonl") as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="module")
def task():
    from hotmess.plugins.mmlu.task import MMLUTask

    return MMLUTask(data_dir=str(DATA), subjects=SUBJECTS, per_subject=7, n_shot=3)


def request(task, q, *, ctx=0, chat=False, seeds=(1, 2, 3)):
    return task.build_request(
        q,
        context=ctx,
        context_seed=context_seed(0, q.id, ctx),
        seeds=seeds,
        budget=64,
        effort=None,
        sampling=SamplingParams(temperature=0.6),
        chat=chat,
    )


def test_registered_through_entry_point():
    t = plugins.create(
        "tasks", "mmlu", data_dir=str(DATA), subjects=["anatomy"], per_subject=2, n_shot=0
    )
    assert [q.id for q in t.questions()] == ["mmlu/anatomy/0", "mmlu/anatomy/1"]


def test_questions_first_n_in_file_order(task):
    qs = task.questions()
    assert [q.id for q in qs] == [f"mmlu/{s}/{i}" for s in SUBJECTS for i in range(7)]
    first = [r for r in records("test") if r["subject"] == "marketing"][:7]
    mk = [q for q in qs if q.subject == "marketing"]
    assert [q.data["question"] for q in mk] == [r["question"] for r in first]
    assert [q.target for q in mk] == [r["answer"] for r in first]
    assert all(q.n_outcomes == 4 for q in qs)


def test_paper_scale_is_5700():
    from hotmess.plugins.mmlu.task import MMLUTask

    counts = Counter(r["subject"] for r in records("test"))
    expected = sum(min(100, c) for c in counts.values())
    assert len(counts) == 57 and expected == 5700
    qs = MMLUTask(data_dir=str(DATA), per_subject=100).questions()
    assert len(qs) == 5700 and len({q.id for q in qs}) == 5700


def test_ids_do_not_depend_on_cap_or_subjects():
    from hotmess.plugins.mmlu.task import MMLUTask

    small = {
        q.id: q.data["question"]
        for q in MMLUTask(data_dir=str(DATA), subjects=["marketing"], per_subject=3).questions()
    }
    big = {
        q.id: q.data["question"]
        for q in MMLUTask(
            data_dir=str(DATA), subjects=["marketing", "virology"], per_subject=10
        ).questions()
    }
    assert all(big[k] == v for k, v in small.items())


def test_fewshot_from_same_subject_dev_and_fixed_by_context_seed(task):
    dev = defaultdict(dict)
    for r in records("dev"):
        dev[r["subject"]][r["question"].strip()] = r
    q = task.questions()[8]  # marketing/1
    seen = set()
    for ctx in range(10):
        p1 = request(task, q, ctx=ctx).prompt
        p2 = request(task, q, ctx=ctx, seeds=(9,)).prompt  # other draws / seeds: same context
        assert p1 == p2
        shown = re.findall(r"Question: (.*?)\n", p1)
        answers = re.findall(r"^Answer: ([A-D])$", p1, flags=re.M)
        assert len(shown) == 4 and len(answers) == 3  # 3 examples + the question
        assert shown[-1] == q.data["question"].split("\n")[0].strip()
        for text, ans in zip(shown[:3], answers, strict=True):
            rec = dev["marketing"][text]
            assert "ABCD"[rec["answer"]] == ans
        assert len(set(shown[:3])) == 3
        seen.add(tuple(shown[:3]))
    assert len(seen) > 3  # contexts differ


def test_raw_prompt_and_chat_messages(task):
    q = task.questions()[0]
    raw = request(task, q)
    assert raw.messages is None and raw.prompt.endswith("Reasoning:")
    assert raw.answer_prefix == "Answer:" and raw.option_labels == ("A", "B", "C", "D")
    assert raw.seeds == (1, 2, 3) and raw.budget == 64 and raw.metadata["context"] == 0
    for lab, choice in zip("ABCD", q.data["choices"], strict=True):
        assert f"\n{lab}. {choice}\n" in raw.prompt
    chat = request(task, q, chat=True)
    assert chat.prompt is None and chat.messages[0]["role"] == "user"
    assert q.data["question"].strip() in chat.messages[0]["content"]
    assert '"Answer: X"' in chat.messages[0]["content"]


def test_zero_shot_has_no_examples():
    from hotmess.plugins.mmlu.task import MMLUTask

    t = MMLUTask(data_dir=str(DATA), subjects=["marketing"], per_subject=1, n_shot=0)
    assert request(t, t.questions()[0]).prompt.count("Question:") == 1


def test_score_one_hot_uniform_and_error(task):
    q = task.questions()[0]
    out = task.score(q, DrawResult(text="Answer: C\n\nQuestion: next? Answer: A", reasoning="blah"))
    np.testing.assert_array_equal(out.vector, [0, 0, 1, 0])
    assert out.answer == "C" and not out.format_error
    for text in ["Answer: E", "Answer: A or B", "Answer: I do not know", ""]:
        out = task.score(q, DrawResult(text=text))
        np.testing.assert_array_equal(out.vector, [0.25] * 4)
        assert out.format_error
    out = task.score(q, DrawResult(text="", finish_reason="error", error="OOM"))
    assert out.format_error and np.allclose(out.vector, 0.25)
    # budget hit, forced prefix with nothing after: the reasoning's statement counts
    out = task.score(
        q, DrawResult(text="Answer:", reasoning="... so the answer is (b)", finish_reason="budget")
    )
    np.testing.assert_array_equal(out.vector, [0, 1, 0, 0])
    # the option's exact text
    opt = q.data["choices"][3]
    assert task.score(q, DrawResult(text=f"Answer: {opt}")).answer == "D"


def test_logprobs_option():
    from hotmess.plugins.mmlu.task import MMLUTask

    t = MMLUTask(
        data_dir=str(DATA), subjects=["marketing"], per_subject=1, probabilities="logprobs"
    )
    q = t.questions()[0]
    assert request(t, q).want_logprobs
    lp = {k: math.log(v) for k, v in zip("ABCD", [0.4, 0.3, 0.2, 0.1], strict=True)}
    out = t.score(q, DrawResult(text="Answer: C", logprobs=lp))
    np.testing.assert_allclose(out.vector, [0.4, 0.3, 0.2, 0.1])
    # no log-probs returned: the parsed letter
    np.testing.assert_array_equal(t.score(q, DrawResult(text="Answer: C")).vector, [0, 0, 1, 0])


def test_probability_format():
    from hotmess.plugins.mmlu.task import MMLUTask

    t = MMLUTask(
        data_dir=str(DATA), subjects=["marketing"], per_subject=1, n_shot=1, format="probabilities"
    )
    q = t.questions()[0]
    req = request(t, q)
    assert req.answer_prefix == "<PROB>" and "<PROB> P(A), P(B), P(C), P(D) </PROB>" in req.prompt
    np.testing.assert_allclose(
        t.score(q, DrawResult(text="<PROB> 0.5, 0.2, 0.2, 0.1 </PROB>")).vector,
        [0.5, 0.2, 0.2, 0.1],
    )


def test_errors_name_the_problem(tmp_path):
    from hotmess.plugins.mmlu.task import MMLUTask

    with pytest.raises(FileNotFoundError, match="test.jsonl"):
        MMLUTask(data_dir=str(tmp_path)).questions()
    good = json.dumps({"question": "q", "subject": "s", "choices": ["a", "b"], "answer": 1})
    (tmp_path / "dev.jsonl").write_text(good + "\n")
    (tmp_path / "test.jsonl").write_text(
        good
        + "\n"
        + json.dumps({"question": "q", "subject": "s", "choices": ["a"], "answer": 3})
        + "\n"
    )
    with pytest.raises(ValueError, match=r"test\.jsonl:2: 'choices'"):
        MMLUTask(data_dir=str(tmp_path)).questions()
    (tmp_path / "test.jsonl").write_text(good + "\n{not json\n")
    with pytest.raises(ValueError, match=r"test\.jsonl:2: not valid JSON"):
        MMLUTask(data_dir=str(tmp_path)).questions()
    with pytest.raises(ValueError, match="unknown MMLU subject"):
        MMLUTask(data_dir=str(DATA), subjects=["astrology"]).questions()
    with pytest.raises(ValueError, match="n_shot=6"):
        MMLUTask(data_dir=str(DATA), subjects=["marketing"], n_shot=6).questions()
    with pytest.raises(ValueError, match=r"task 'mmlu': unknown option\(s\) 'data_dirr'.*'data_dir'"):
        plugins.create("tasks", "mmlu", data_dirr="x")  # hotmess.core.options: valid ones listed


def test_hub_failure_names_both_options():
    """A real failed hub load: the hub in offline mode (HF_HUB_OFFLINE=1, read by
    ``datasets`` at import, hence a subprocess) with nothing cached for a dataset id that
    does not exist."""
    code = (
        "from hotmess.plugins.mmlu.task import MMLUTask\n"
        "MMLUTask(hub_id='hotmess-tests/no-such-dataset-4f9c1', subjects=['marketing']).questions()\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0
    assert re.search(
        r"ConnectionError: could not load MMLU from the Hugging Face hub .*task\.data_dir", proc.stderr
    )


def test_info_records_choices(task):
    info = task.info()
    assert info["n_shot"] == 3 and info["per_subject"] == 7 and info["answer_format"] == "letter"
    assert info["subjects"] == "abstract_algebra,marketing" and len(info["data_test_sha256"]) == 64
    assert all(isinstance(v, str | int | float) for v in info.values())
