#!/usr/bin/env bash
# GPU check for a bare GPU machine (PyTorch, transformers, xarray, matplotlib, pluggy, pandas;
# no SGLang, Hydra or netCDF4; no network). Runs in well under 8 minutes at its default size:
#
#   1. the synthetic optimizer (hotmess.plugins.synthetic) at the paper's batch size (1024)
#      for every paper size: a fixed number of training steps each, timed on the GPU, printing
#      steps/s and the projected training time of `scale=paper` (65,000 steps per size), plus a
#      timed rollout of the paper's 4,096 start points projected to its 2,048 steps;
#   2. the hf backend (hotmess.plugins.hf) on a randomly initialised Qwen3-architecture model
#      built from a transformers Qwen3Config (Qwen3-0.6B dimensions, no weights downloaded),
#      with paper-like draws (30 per question) and two reasoning budgets, printing draws/s and
#      checking budget enforcement (reasoning_tokens <= budget; finish_reason "budget" exactly
#      when the cap was hit) and that per-draw seeds give distinct draws.
#
# The tokenizer comes from nowhere on the network: the script writes a character-level
# tokenizer (printable ASCII, Qwen3's chat and thinking markers as special tokens, and filler
# tokens up to Qwen3's vocabulary size) with the `tokenizers` library that transformers ships
# with, plus a minimal Qwen3-style chat template, next to the random weights; the backend
# loads that directory like any checkpoint. Hydra is not needed: the training and rollout
# functions are called directly.
#
# Exit status: 0 all checks passed; 1 a check failed; 2 the machine lacks something.
#
# Usage:
#   scripts/gpu_check.sh                 # on the GPU machine
#   scripts/gpu_check.sh --cpu --tiny    # the same code paths at toy size on a CPU (seconds)
#   WHEELS=dir scripts/gpu_check.sh      # carried wheels (default: wheels/gpu_check)
#
# Carried wheels (hotmess's own dependencies the GPU machine lacks; ~13 MiB, abi3 wheels serve
# Python 3.11 and 3.12). They are installed with `pip install --no-index --find-links` before
# the checks when a module is missing; the checks themselves do not need them. Prepare them on
# a machine with network, from the repository root:
#
#   pip download --only-binary=:all: --no-deps --implementation cp --python-version 3.12 \
#     --abi cp312 --abi abi3 --abi none --platform manylinux2014_x86_64 \
#     --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 -d wheels/gpu_check \
#     hydra-core==1.3.8 omegaconf==2.3.1 netCDF4==1.7.5.1.post1 cftime==1.6.6.1
#   pip wheel --no-deps -w wheels/gpu_check antlr4-python3-runtime==4.9.3   # sdist only on PyPI: a pure-Python wheel
#
# (versions from constraints.txt; wheels/ is git-ignored: carry it to the machine).
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
WHEELS="${WHEELS:-$HERE/wheels/gpu_check}"

# hotmess from this checkout, without installing it: hotmess.<folder> -> <checkout>/<folder>
DEV="$(mktemp -d)"
trap 'rm -rf "$DEV"' EXIT
mkdir -p "$DEV/hotmess"
for d in core plugins paper conf; do ln -s "$HERE/$d" "$DEV/hotmess/$d"; done
ln -s "$HERE/core/testing" "$DEV/hotmess/testing"
export PYTHONPATH="$DEV${PYTHONPATH:+:$PYTHONPATH}"

if ! "$PYTHON" -c "import hydra, omegaconf, netCDF4, cftime" 2>/dev/null; then
  if [ -d "$WHEELS" ]; then
    echo "gpu_check: installing carried wheels from $WHEELS"
    "$PYTHON" -m pip install -q --no-index --find-links "$WHEELS" \
      hydra-core omegaconf antlr4-python3-runtime netCDF4 cftime \
      || echo "gpu_check: warning: carried wheels did not install (the checks below do not need them)" >&2
  else
    echo "gpu_check: no carried wheels at $WHEELS (Hydra/netCDF4 missing; the checks below do not need them)" >&2
  fi
fi

exec "$PYTHON" - "$HERE" "$@" <<'PY'
import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

ap = argparse.ArgumentParser(prog="gpu_check.sh")
ap.add_argument("root")
ap.add_argument("--cpu", action="store_true", help="run on the CPU (no GPU required)")
ap.add_argument("--tiny", action="store_true", help="toy sizes: the same code paths in seconds")
ap.add_argument("--train-steps", type=int, default=None, help="timed training steps per size")
ap.add_argument("--questions", type=int, default=None)
ap.add_argument("--draws", type=int, default=None)
ap.add_argument("--budgets", default=None, help="comma-separated reasoning budgets (tokens)")
args = ap.parse_args()

try:
    import numpy as np
    import torch
    import yaml
except ModuleNotFoundError as exc:
    print(f"gpu_check: missing {exc.name}", file=sys.stderr)
    sys.exit(2)
if args.cpu:
    device = torch.device("cpu")
elif torch.cuda.is_available():
    device = torch.device("cuda")
else:
    print("gpu_check: no CUDA device (use --cpu --tiny for the CPU run)", file=sys.stderr)
    sys.exit(2)
print(f"gpu_check: torch {torch.__version__}, device {device}"
      + (f" ({torch.cuda.get_device_name(0)})" if device.type == "cuda" else ""), flush=True)
tiny = args.tiny
failures: list[str] = []


def check(ok: bool, what: str) -> None:
    print(f"  [{'ok' if ok else 'FAIL'}] {what}", flush=True)
    if not ok:
        failures.append(what)


def sync() -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


# ------------------------------------------------------------------------ 1. synthetic optimizer
print("\n== 1. synthetic optimizer: training steps at the paper's batch size ==", flush=True)
from hotmess.core.seeding import derive_seed
from hotmess.plugins.synthetic.encoding import tokens_per_float
from hotmess.plugins.synthetic.model import SizeSpec, build_model, count_params
from hotmess.plugins.synthetic.problem import make_problem, teacher_trajectories
from hotmess.plugins.synthetic.rollout import rollout
from hotmess.plugins.synthetic.train import TrainConfig, encode_pairs, train

conf = yaml.safe_load((Path(args.root) / "conf/experiment/synthetic.yaml").read_text())
base, paper = conf["synthetic"], conf["scales"]["paper"]["synthetic"]
problem_kw = {**base["problem"], **paper.get("problem", {})}
p_train, p_roll = {**base["train"], **paper["train"]}, {**base["rollout"], **paper["rollout"]}
sizes = paper["sizes"][:2] if tiny else paper["sizes"]
batch = 64 if tiny else int(p_train["batch_size"])
steps = args.train_steps or (5 if tiny else 150)
warm = 2 if tiny else 20
precision, step_norm = int(base["precision"]), float(base["step_norm"])
problem = make_problem(np.random.default_rng(derive_seed(0, "problem", 0)), **problem_kw)
n_traj, traj_steps = (8, 32) if tiny else (256, int(paper["data"]["trajectory_steps"]))
t0 = time.perf_counter()
x0 = problem.starts(n_traj, np.random.default_rng(1))
xs, us = teacher_trajectories(problem, x0, traj_steps, step_norm)
d = problem.dim
tokens = encode_pairs(xs[:-1].reshape(-1, d), us.reshape(-1, d), precision)
n_x = d * tokens_per_float(precision)
data = torch.from_numpy(tokens).to(device)
print(f"teacher data: {len(tokens)} pairs x {tokens.shape[1]} tokens in {time.perf_counter() - t0:.1f} s "
      f"(steps/s does not depend on the data size)", flush=True)
total_train_s = 0.0
roll_s_per_step = None
for s in sizes:
    spec = SizeSpec(name=s["name"], layers=s["layers"], width=s["width"], heads=s["heads"])
    model = build_model(spec, 12, 2 * n_x, derive_seed(0, "init", spec.name)).to(device)
    cfg = dict(lr=float(p_train["lr"]), warmup=1, eval_pairs=256, batch_size=batch)
    train(model, data, data, TrainConfig(steps=warm, eval_every=warm, checkpoint_every=warm, **cfg),
          seed=0, n_x=n_x)  # warm-up: CUDA context, kernels, allocator
    sync()
    t1 = time.perf_counter()
    hist = train(model, data, data, TrainConfig(steps=steps, eval_every=steps, checkpoint_every=steps, **cfg),
                 seed=1, n_x=n_x)
    sync()
    dt = time.perf_counter() - t1
    sps = steps / dt
    proj = int(p_train["steps"]) / sps
    total_train_s += proj
    print(f"size {spec.name:>5} ({count_params(model):>9,} params): {sps:8.1f} steps/s at batch {batch}; "
          f"loss {hist.train_loss[-1]:.3f}; {int(p_train['steps']):,} paper steps -> {proj / 60:7.1f} min", flush=True)
    check(all(math.isfinite(v) for v in hist.train_loss + hist.test_loss), f"size {spec.name}: finite losses")
    if s is sizes[-1]:  # rollout speed of the largest size, projected to the paper's rollout
        starts = problem.starts(64 if tiny else int(p_roll["starts"]), np.random.default_rng(2))
        r_steps = 2 if tiny else 8
        sync()
        t1 = time.perf_counter()
        out, _, _ = rollout(model, starts, r_steps, precision, batch_size=int(p_roll["batch_size"]))
        sync()
        roll_s_per_step = (time.perf_counter() - t1) / r_steps
        check(bool(np.isfinite(out).all()), f"size {spec.name}: finite rollout")
roll_total = roll_s_per_step * int(p_roll["steps"]) * len(paper["sizes"]) if roll_s_per_step else float("nan")
print(f"projected scale=paper: training {total_train_s / 3600:.2f} h over {len(sizes)} sizes"
      + ("" if not tiny else " (tiny: first 2 sizes, batch 64)")
      + f"; rollouts ~{roll_total / 60:.1f} min ({int(p_roll['starts'])} starts x {int(p_roll['steps'])} steps "
      "per size, largest size's speed as an upper bound)", flush=True)

# ------------------------------------------------------------------------ 2. hf backend, random Qwen3
print("\n== 2. hf backend on a randomly initialised Qwen3-architecture model ==", flush=True)
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import GenerationConfig, PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

from hotmess.core.backend import ModelSpec
from hotmess.core.types import SampleRequest, SamplingParams
from hotmess.plugins.hf.backend import HFBackend

if tiny:
    dims = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                intermediate_size=128, vocab_size=512)
else:  # Qwen3-0.6B
    dims = dict(hidden_size=1024, num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8, head_dim=128,
                intermediate_size=3072, vocab_size=151936)
specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]
chars = [chr(c) for c in range(32, 127)] + ["\n", "\t"]
vocab = {t: i for i, t in enumerate(specials + chars)}
for i in range(dims["vocab_size"] - len(vocab)):
    vocab[f"<f{i}>"] = len(vocab)
tk = Tokenizer(models.WordLevel(vocab, unk_token="<|endoftext|>"))
tk.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
tk.decoder = decoders.Fuse()
tok = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                              additional_special_tokens=specials)
tok.chat_template = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                     "{% if add_generation_prompt %}<|im_start|>assistant\n<think>\n{% endif %}")
check(tok.decode(tok("Answer: B\n")["input_ids"]) == "Answer: B\n", "character tokenizer round-trips text")
work = Path(tempfile.mkdtemp(prefix="hotmess-gpu-check-"))
cfg = Qwen3Config(**dims, max_position_embeddings=4096, tie_word_embeddings=True,
                  eos_token_id=vocab["<|im_end|>"], pad_token_id=vocab["<|endoftext|>"], bos_token_id=None)
torch.manual_seed(0)
t0 = time.perf_counter()
qwen = Qwen3ForCausalLM(cfg)
qwen.save_pretrained(work)
GenerationConfig(eos_token_id=vocab["<|im_end|>"], pad_token_id=vocab["<|endoftext|>"]).save_pretrained(work)
tok.save_pretrained(work)
n_params = sum(p.numel() for p in qwen.parameters())
del qwen
print(f"random Qwen3 ({n_params / 1e6:.0f}M params, vocab {dims['vocab_size']}) written in "
      f"{time.perf_counter() - t0:.1f} s", flush=True)

spec = ModelSpec(name="qwen3", size="random", source=str(work), chat=True,
                 thinking={"start": "<think>", "end": "</think>"})
n_q = args.questions or (2 if tiny else 4)
n_d = args.draws or (6 if tiny else 30)
budgets = [int(b) for b in args.budgets.split(",")] if args.budgets else ([8, 24] if tiny else [256, 1024])
backend = HFBackend(spec, device=str(device), batch_size=min(128, n_q * n_d))
print(f"backend: {backend.info()['dtype']} ({backend.info()['dtype_reason']}), load {backend.load_seconds:.1f} s", flush=True)
sp = SamplingParams(temperature=0.6, top_p=0.95, top_k=20, max_tokens=4 if tiny else 16)  # Qwen3 thinking defaults
for b in budgets:
    reqs = [SampleRequest(question_id=f"q{q}", budget=b, sampling=sp,
                          seeds=tuple(derive_seed(0, "gpu-check", b, q, j) for j in range(n_d)),
                          messages=({"role": "user", "content": f"Question {q}: what is {q} + {b}? "
                                     "End with 'Answer: <number>'."},))
            for q in range(n_q)]
    sync()
    t0 = time.perf_counter()
    out = backend.sample(reqs)
    sync()
    dt = time.perf_counter() - t0
    draws = [r for row in out for r in row]
    n_tok = sum(r.output_tokens for r in draws)
    hits = sum(r.finish_reason == "budget" for r in draws)
    print(f"budget {b}: {len(draws)} draws in {dt:.1f} s = {len(draws) / dt:.2f} draws/s, {n_tok / dt:.0f} tokens/s; "
          f"{hits} hit the budget; finish reasons {sorted({r.finish_reason for r in draws})}", flush=True)
    check(all(r.finish_reason != "error" for r in draws), f"budget {b}: no failed draw "
          + str([r.error for r in draws if r.error][:1]))
    check(all(0 <= r.reasoning_tokens <= b for r in draws), f"budget {b}: reasoning_tokens <= budget for every draw "
          f"(max {max(r.reasoning_tokens for r in draws)})")
    check(all((r.finish_reason == "budget") == (r.reasoning_tokens == b and r.extra["budget_hit"]) for r in draws),
          f"budget {b}: finish_reason 'budget' exactly when the cap was hit")
    check(hits > 0, f"budget {b}: the cap was hit at least once (the check is not vacuous)")
    check(all(r.output_tokens >= r.reasoning_tokens for r in draws), f"budget {b}: output_tokens >= reasoning_tokens")
    for req, row in zip(reqs, out, strict=True):
        check([r.seed for r in row] == list(req.seeds) and len(set(req.seeds)) == n_d
              and len({(r.reasoning, r.text) for r in row}) == n_d,
              f"budget {b} {req.question_id}: {n_d} distinct seeds echoed give {n_d} distinct draws")
backend.close()

print(f"\ngpu_check: {'all checks passed' if not failures else f'{len(failures)} check(s) FAILED'}", flush=True)
sys.exit(1 if failures else 0)
PY
