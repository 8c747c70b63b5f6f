"""SWE-bench: the conversion of Inspect eval samples into per-test pass/fail cubes, the
paper's limit-hit rule, and the coverage-error decomposition on a converted cube.

These tests build real ``inspect_ai`` log objects (``EvalSample`` with ``Score``) by hand,
with the exact explanation layout of inspect_evals' ``swe_bench_scorer``; the test on a log
written by a real Inspect run with a real local model is in ``test_swebench_inspect.py``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("inspect_ai")

from inspect_ai.log import EvalError, EvalSample, EvalSampleLimit  # noqa: E402
from inspect_ai.model import ChatMessageAssistant, ChatMessageTool, ChatMessageUser, ModelUsage  # noqa: E402
from inspect_ai.scorer import Score  # noqa: E402
from inspect_ai.tool import ToolCall  # noqa: E402

from hotmess.core.metrics import coverage_error, incoherence  # noqa: E402
from hotmess.plugins.swebench.convert import (  # noqa: E402
    Cell,
    ConversionError,
    parse_tests_status,
    records_to_cube,
    sample_to_record,
)


def swe_explanation(f2p_ok, f2p_bad, p2p_ok, p2p_bad) -> str:
    """The explanation exactly as inspect_evals 0.26.0 swe_bench_scorer writes it."""
    p2p = json.dumps({"success": p2p_ok, "failure": p2p_bad}, indent=2)
    f2p = json.dumps({"success": f2p_ok, "failure": f2p_bad}, indent=2)
    return f"PASS_TO_PASS:\n\n{p2p}\n\nFAIL_TO_PASS:\n\n{f2p}\n\n"


def make_sample(iid, epoch, f2p, p2p, *, explanation=None, value=None, limit=None, error=None,
                tool_calls=0, submit=False, out_tokens=10, reasoning=None):
    meta = {"FAIL_TO_PASS": f2p, "PASS_TO_PASS": p2p, "repo": "org/repo"}
    msgs = [ChatMessageUser(content="fix it")]
    for k in range(tool_calls):
        msgs.append(ChatMessageAssistant(content="", tool_calls=[ToolCall(id=f"c{k}", function="bash",
                                                                          arguments={"cmd": "ls"})]))
        msgs.append(ChatMessageTool(content="ok", tool_call_id=f"c{k}", function="bash"))
    if submit:
        msgs.append(ChatMessageAssistant(content="", tool_calls=[ToolCall(id="s", function="submit", arguments={})]))
    scores = None
    if explanation is not None or value is not None:
        scores = {"swe_bench_scorer": Score(value=value if value is not None else 0.0, explanation=explanation,
                                            metadata={"model_patch": f"diff {iid} {epoch}"})}
    return EvalSample(
        id=iid, epoch=epoch, input="issue", target="", messages=msgs, scores=scores, metadata=meta,
        model_usage={"m": ModelUsage(input_tokens=5, output_tokens=out_tokens, total_tokens=5 + out_tokens,
                                     reasoning_tokens=reasoning)},
        limit=EvalSampleLimit(type=limit, limit=250) if limit else None,
        error=EvalError(message=error, traceback="", traceback_ansi="") if error else None,
    )


def test_parse_tests_status_reads_the_scorer_layout():
    text = swe_explanation(["t::a"], ["t::b"], ["t::c", "t::d"], [])
    assert parse_tests_status(text) == {
        "FAIL_TO_PASS": {"success": ["t::a"], "failure": ["t::b"]},
        "PASS_TO_PASS": {"success": ["t::c", "t::d"], "failure": []},
    }
    # the scorer's text when swebench parsed no test results
    assert parse_tests_status("The test phase ran to completion but produced no parseable test results.") is None
    assert parse_tests_status(None) is None
    assert parse_tests_status("PASS_TO_PASS:\n\n{\"success\": []}\n\n") is None  # one block only


def test_sample_rules_scored_limit_error_unparseable_unreported():
    f2p, p2p = ["f1", "f2"], ["p1", "p2", "p3"]
    # scored: f1 passes, f2 fails; p1, p2 pass, p3 fails
    s = make_sample("a__b-1", 1, f2p, p2p, explanation=swe_explanation(["f1"], ["f2"], ["p1", "p2"], ["p3"]),
                    value=0.0, tool_calls=3, submit=True, out_tokens=42, reasoning=7)
    r = sample_to_record(s)
    assert r.tests == ["f1", "f2", "p1", "p2", "p3"] and r.n_fail_to_pass == 2
    np.testing.assert_array_equal(r.outcome, [1, 0, 1, 1, 0])
    assert (r.finish_reason, r.format_error, r.limit) == ("stop", 0.0, "")
    assert (r.actions, r.output_tokens, r.reasoning_tokens) == (3.0, 42.0, 7.0)  # submit not counted
    assert sample_to_record(s, count_submit=True).actions == 4.0
    assert r.patch == "diff a__b-1 1"

    # limit hit: nothing changed (F2P fail, P2P pass) whatever was scored
    s = make_sample("a__b-1", 2, f2p, p2p, explanation=swe_explanation(["f1", "f2"], [], [], ["p1", "p2", "p3"]),
                    value=0.0, limit="message")
    r = sample_to_record(s)
    np.testing.assert_array_equal(r.outcome, [0, 0, 1, 1, 1])
    np.testing.assert_array_equal(r.outcome_scored, [1, 1, 0, 0, 0])
    assert (r.finish_reason, r.limit) == ("budget", "message")
    assert np.isnan(r.reasoning_tokens)  # no model reported reasoning tokens

    # error: the run is missing
    r = sample_to_record(make_sample("a__b-1", 3, f2p, p2p, error="sandbox died"))
    assert r.finish_reason == "error" and np.isnan(r.outcome).all() and r.error == "sandbox died"

    # no parseable test results: every test fails, flagged
    r = sample_to_record(make_sample("a__b-1", 4, f2p, p2p, value=0.0,
                                     explanation="The test phase ran to completion but produced no parseable test results."))
    np.testing.assert_array_equal(r.outcome, [0, 0, 0, 0, 0])
    assert r.format_error == 1.0

    # a test in neither list (e.g. SKIPPED): fail by default, else as asked
    s = make_sample("a__b-1", 5, f2p, p2p, explanation=swe_explanation(["f1"], [], ["p1", "p2"], []), value=0.0)
    np.testing.assert_array_equal(sample_to_record(s).outcome, [1, 0, 1, 1, 0])
    np.testing.assert_array_equal(sample_to_record(s, unreported="pass").outcome, [1, 1, 1, 1, 1])
    assert np.isnan(sample_to_record(s, unreported="nan").outcome[[1, 4]]).all()
    with pytest.raises(ConversionError, match="unreported"):
        sample_to_record(s, unreported="maybe")

    # metadata kept as JSON text (raw dataset rows) is decoded; missing lists are an error
    s = make_sample("a__b-1", 1, json.dumps(f2p), json.dumps(p2p), explanation=swe_explanation(f2p, [], p2p, []),
                    value=1.0)
    assert sample_to_record(s).tests == f2p + p2p
    s = make_sample("a__b-1", 1, f2p, p2p, value=1.0, explanation="")
    s.metadata.pop("PASS_TO_PASS")
    with pytest.raises(ConversionError, match="a__b-1.*PASS_TO_PASS"):
        sample_to_record(s)


def test_cube_and_coverage_error_hand_computed():
    # Instance A: F2P [a1], P2P [a2, a3]; runs (1,1,1), (0,1,1), limit hit (scored 1,0,1 -> 0,1,1).
    # Instance B: F2P [b1, b2]; runs (1,0), (0,0), error (missing).
    ex = swe_explanation
    recs = [
        sample_to_record(make_sample("A", 1, ["a1"], ["a2", "a3"], explanation=ex(["a1"], [], ["a2", "a3"], []), value=1.0, tool_calls=4)),
        sample_to_record(make_sample("A", 2, ["a1"], ["a2", "a3"], explanation=ex([], ["a1"], ["a2", "a3"], []), value=0.0, tool_calls=6)),
        sample_to_record(make_sample("A", 3, ["a1"], ["a2", "a3"], explanation=ex(["a1"], [], ["a3"], ["a2"]), value=0.0, limit="time")),
        sample_to_record(make_sample("B", 1, ["b1", "b2"], [], explanation=ex(["b1"], ["b2"], [], []), value=0.0)),
        sample_to_record(make_sample("B", 2, ["b1", "b2"], [], explanation=ex([], ["b1", "b2"], [], []), value=0.0)),
        sample_to_record(make_sample("B", 3, ["b1", "b2"], [], error="boom")),
    ]
    ds = records_to_cube([(Cell("sonnet4", "-", "none"), recs)])
    assert ds["outcome"].dims == ("model", "size", "budget", "question", "draw", "test")
    assert ds.sizes["test"] == 3 and list(ds.question.values) == ["A", "B"]
    y = ds["outcome"].isel(model=0, size=0, budget=0)
    np.testing.assert_array_equal(y.sel(question="A").values, [[1, 1, 1], [0, 1, 1], [0, 1, 1]])
    b = y.sel(question="B").values
    np.testing.assert_array_equal(b[:2, :2], [[1, 0], [0, 0]])
    assert np.isnan(b[:, 2]).all() and np.isnan(b[2]).all()  # padding and the errored run
    assert list(ds["test_id"].sel(question="A").values) == ["a1", "a2", "a3"]
    assert list(ds["test_category"].sel(question="B").values) == ["FAIL_TO_PASS", "FAIL_TO_PASS", ""]
    assert ds["limit_hit"].sel(question="A").values.ravel().tolist() == [0, 0, 1]
    assert ds["actions"].sel(question="A").values.ravel().tolist() == [4, 6, 0]
    fr = ds["finish_reason"].sel(question="B").values.ravel().tolist()
    assert fr == [0, 0, 3]  # stop, stop, error

    ce = coverage_error(ds["outcome"]).isel(model=0, size=0, budget=0)
    # A: ybar = (1/3, 1, 1); bias = (1/3)(2/3)^2 = 4/27; variance = (1/9)(4/9 + 1/9 + 1/9) = 2/27
    # B: ybar = (1/2, 0); bias = (1/2)(1/4 + 1) = 5/8; variance = (1/4)(1/4 + 1/4) = 1/8
    np.testing.assert_allclose(ce["bias"].values, [4 / 27, 5 / 8])
    np.testing.assert_allclose(ce["variance"].values, [2 / 27, 1 / 8])
    np.testing.assert_allclose(ce["error"].values, [6 / 27, 6 / 8])
    np.testing.assert_allclose(ce["resolved"].values, [1 / 3, 0])
    inc = incoherence(ce["variance"], ce["error"], dim="question")
    np.testing.assert_allclose(float(inc), (2 / 27 + 1 / 8) / (6 / 27 + 6 / 8))


def test_inconsistent_test_lists_are_refused():
    a = sample_to_record(make_sample("A", 1, ["x"], [], explanation=swe_explanation(["x"], [], [], []), value=1.0))
    b = sample_to_record(make_sample("A", 1, ["x", "y"], [], explanation=swe_explanation(["x"], [], [], []), value=0.0))
    with pytest.raises(ConversionError, match="'A'.*different"):
        records_to_cube([(Cell("m"), [a]), (Cell("m", budget="high"), [b])])


def test_task_options_and_missing_docker(monkeypatch):
    from hotmess.core import plugins
    from hotmess.core.backend import ModelSpec
    from hotmess.plugins.swebench.producer import SWEBenchError, SWEBenchProducer

    task = plugins.create("producers", "swebench")
    assert task.needs_models and task.outcome_kind == "tests"
    assert (task.message_limit, task.time_limit, task.solver) == (250, 3600, "bash_react")
    with pytest.raises(SWEBenchError, match="unreported_tests"):
        SWEBenchProducer(unreported_tests="skip")
    with pytest.raises(SWEBenchError, match="only for dataset=probe"):
        SWEBenchProducer(solver="generate")
    with pytest.raises(SWEBenchError, match="inspect_model"):
        SWEBenchProducer.inspect_model(ModelSpec(name="claude", size="-", source="claude-sonnet-4"))
    assert SWEBenchProducer.inspect_model(ModelSpec(name="o4", size="-", source="o4-mini",
                                                options={"inspect_model": "openai/o4-mini"}))[0] == "openai/o4-mini"
    # the api backend's model configs name a provider
    assert SWEBenchProducer.inspect_model(ModelSpec(name="sonnet4", size="default", source="claude-sonnet-4-20250514",
                                                options={"provider": "anthropic"}))[0] == \
        "anthropic/claude-sonnet-4-20250514"
    monkeypatch.setenv("PATH", "/nonexistent")  # a machine without docker (cannot be produced otherwise here)
    with pytest.raises(SWEBenchError, match="Docker"):
        SWEBenchProducer().inspect_task()


def test_probe_scoring_pieces():
    """The probe's patch extraction, test run and swebench-style grading, by hand."""
    from hotmess.plugins.swebench.probe import (
        PROBLEMS,
        explanation,
        extract_patch,
        grade,
        run_tests,
    )

    # a fenced block wins; else the function's block, cut where a cut-off answer stops parsing
    assert extract_patch("x\n```python\ndef f(a):\n  return 1\n```\nmore", "f") == "def f(a):\n  return 1\n"
    assert extract_patch("def f(a):\n    return a\nResult (output)\n1.5", "f") == "def f(a):\n    return a\n"
    assert extract_patch("def f(a):\n    return a\n    if a >", "f") == "def f(a):\n    return a\n"
    assert extract_patch("def f(a):\n    if (a", "f") == "def f(a):\n    if (a"  # broken: kept broken
    assert extract_patch("no code here", "f") == ""  # nothing changed

    p = PROBLEMS["probe__word_count-2"]
    f2p = p["fail_to_pass"]
    p2p = [t for t in p["tests"] if t not in f2p]
    as_given = run_tests(p["code"], p["tests"])  # the buggy code: exactly the F2P tests fail
    assert as_given == {"test_single_word": "PASSED", "test_two_words": "PASSED",
                        "test_repeated_spaces": "FAILED", "test_empty": "FAILED"}
    fixed = run_tests("def word_count(s):\n    return len(s.split())\n", p["tests"])
    assert set(fixed.values()) == {"PASSED"}
    broken = run_tests("def word_count(s) return 0", p["tests"])
    assert set(broken.values()) == {"ERROR"}
    report = grade(as_given, f2p, p2p)
    assert report == {"FAIL_TO_PASS": {"success": [], "failure": f2p},
                      "PASS_TO_PASS": {"success": p2p, "failure": []}}
    assert grade({}, f2p, p2p)["PASS_TO_PASS"]["failure"] == p2p  # tests that did not run fail
    assert parse_tests_status(explanation(report)) == report
    # every problem's F2P tests fail and P2P tests pass on the code as given
    for prob in PROBLEMS.values():
        status = run_tests(prob["code"], prob["tests"])
        assert {t for t, s in status.items() if s != "PASSED"} == set(prob["fail_to_pass"])
