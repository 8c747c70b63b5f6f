"""The cube: one labelled ``xarray.Dataset`` per experiment, stored as netCDF4.

Dimensions (DESIGN.md, "The cube")::

    model x size x budget x question x draw [x option | test | embedding | coordinate] [x step]

Coordinates: ``model``, ``size`` (labels) with ``params(model, size)`` (parameters),
``budget`` (labels) with ``budget_tokens(budget)`` (tokens, NaN for effort levels) and
``budget_effort(budget)``, ``question`` (stable ids) with ``subject(question)`` and
``target(question)``, ``draw`` (index) with ``context(draw)`` (few-shot context id) and
``seed(model, size, budget, question, draw)``.

Data variables written by the sampling engine: ``outcome`` (float, outcome dim last),
``reasoning_tokens`` and ``output_tokens`` (tokens), ``finish_reason`` (int8 codes with CF
``flag_values``/``flag_meanings``), ``format_error`` (0/1), ``answer``, ``text``,
``reasoning_text`` (variable-length strings, stored uncompressed), ``latency_s`` (seconds).
Cells not run are NaN (numbers) or ``""`` (text), never zero.

Storage (resumable): the engine writes one *part* file per (model, size, budget) cell and
chunk of questions, ``<root>/parts/<model>__<size>__<budget>/<chunk>.nc``, each written to
a temporary file and renamed atomically, so a run killed at any moment leaves only complete
parts. :meth:`CubeStore.combine` merges the parts into ``<root>/cube.nc`` (again atomically).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from hotmess.core.types import FINISH_REASONS

CUBE_FILE = "cube.nc"
#: Small integer codes stored as int8 with _FillValue -1 (NaN in memory where not run).
FLAG_VARS = ("finish_reason", "format_error")
#: Integers stored as int64 with _FillValue -1.
INT_VARS = ("seed",)


class CubeError(ValueError):
    """A cube or part file is missing, unreadable or inconsistent (the message names it)."""


# ----------------------------------------------------------------------------- provenance
def _git_revision() -> str:
    here = Path(__file__).resolve().parent
    # A non-editable install (wheel, Docker image) has no .git: setup.py wrote the revision
    # it was built from into the package (``_build_info.json``, see docs/design.md, Container).
    try:
        return str(json.loads((here / "_build_info.json").read_text())["git_revision"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        rev = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if rev.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5,
        )
        return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


#: Keys whose values are credentials: a whole key or its last ``_``/``-`` part (``api_key``,
#: ``hf_token``, ``password``); counts such as ``max_tokens`` are not secrets.
_SECRET_KEY = re.compile(
    r"(^|[_-])(api[_-]?key|token|access[_-]?token|secret|password|authorization|credentials?)$", re.I
)


def scrub(obj: Any) -> Any:
    """Drop secrets and home-directory paths from a config before it is stored.

    Keys that look like secrets (``api_key``, ``token``, ...) get the value ``"<redacted>"``;
    string values starting with the user's home directory have it replaced by ``~``.
    """
    home = str(Path.home())
    if isinstance(obj, dict):
        return {k: ("<redacted>" if _SECRET_KEY.search(str(k)) and v not in (None, "") else scrub(v))
                for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [scrub(v) for v in obj]
    if isinstance(obj, str) and home not in ("/", "") and obj.startswith(home):
        return "~" + obj[len(home):]
    return obj


def provenance(cfg: Any = None, **extra: Any) -> dict[str, str]:
    """Provenance attributes for a cube (all values strings, netCDF-safe).

    Parameters
    ----------
    cfg : omegaconf.DictConfig or dict, optional
        The resolved run configuration; stored as YAML in ``config`` (secrets and
        home-directory paths scrubbed, see :func:`scrub`).
    **extra
        More attributes (backend and model versions, seed scheme, ...); non-strings are
        converted with ``str``; secrets scrubbed by key name.

    Returns
    -------
    dict
        ``hotmess_version``, ``git_revision``, ``created``, ``python``, ``config`` and ``extra``.
    """
    import platform
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version("hotmess")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        ver = "unknown"
    attrs = {
        "hotmess_version": ver,
        "git_revision": _git_revision(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "xarray_version": xr.__version__,
        "Conventions": "CF-1.8",
    }
    if cfg is not None:
        import yaml
        from omegaconf import DictConfig, OmegaConf

        data = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
        attrs["config"] = yaml.safe_dump(scrub(data), sort_keys=True)
    for key, value in scrub(dict(extra)).items():
        attrs[key] = value if isinstance(value, str) else str(value)
    return attrs


# ----------------------------------------------------------------------------- files
def _encoding(ds: xr.Dataset) -> dict[str, dict]:
    enc: dict[str, dict] = {}
    for name, var in {**ds.data_vars, **ds.coords}.items():
        if name in FLAG_VARS:
            enc[name] = {"dtype": "int8", "_FillValue": np.int8(-1), "zlib": True}
        elif name in INT_VARS:
            enc[name] = {"dtype": "int64", "_FillValue": np.int64(-1), "zlib": True}
        elif var.dtype.kind in "OUS":
            enc[name] = {"dtype": str}  # vlen string, uncompressed
        elif var.dtype.kind in "fiub" and var.ndim > 0 and name not in ds.dims:
            enc[name] = {"zlib": True, "complevel": 4}
    return enc


def _prepare(ds: xr.Dataset) -> xr.Dataset:
    """Make every text variable a plain str array (NaN from reindexing -> "")."""
    ds = ds.copy()
    for name, var in {**ds.data_vars, **ds.coords}.items():
        if var.dtype.kind == "O" and name not in ds.dims:
            vals = np.vectorize(lambda v: v if isinstance(v, str) else "", otypes=[object])(var.values) \
                if var.size else var.values
            ds[name] = var.copy(data=vals)
    for var in ds.variables.values():
        var.attrs = {k: (v if isinstance(v, str | int | float | np.number | np.ndarray | list) else str(v))
                     for k, v in var.attrs.items()}
    return ds


def save_cube(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write a dataset as netCDF4 atomically (temporary file in the same folder + rename).

    Text variables are stored as uncompressed variable-length strings, numbers zlib-compressed.
    The file is readable by ``xarray.open_dataset`` and ``ncdump`` with no hotmess code.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds = _prepare(ds)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        ds.to_netcdf(tmp, format="NETCDF4", engine="netcdf4", encoding=_encoding(ds))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a cube is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def open_cube(path: str | os.PathLike) -> xr.Dataset:
    """Open a cube fully into memory (the file is closed afterwards).

    Raises
    ------
    CubeError
        The file does not exist or is not a readable netCDF file (the message names it).
    """
    path = Path(path)
    if not path.exists():
        raise CubeError(f"no cube at {path}")
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            return ds.load()
    except (OSError, ValueError) as exc:
        raise CubeError(f"cannot read cube {path}: {exc}") from exc


def file_hash(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (to stamp figures with the cubes they read)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ----------------------------------------------------------------------------- store
def _safe(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", str(label))


class CubeStore:
    """The part files of one experiment and their combination into ``cube.nc``.

    Parameters
    ----------
    root : path
        ``<out_dir>/<experiment>``.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.parts_dir = self.root / "parts"

    @property
    def cube_path(self) -> Path:
        return self.root / CUBE_FILE

    def cell_dir(self, model: str, size: str, budget: str) -> Path:
        return self.parts_dir / f"{_safe(model)}__{_safe(size)}__{_safe(budget)}"

    def part_path(self, model: str, size: str, budget: str, chunk: int) -> Path:
        return self.cell_dir(model, size, budget) / f"chunk{chunk:05d}.nc"

    def has_part(self, model: str, size: str, budget: str, chunk: int) -> bool:
        return self.part_path(model, size, budget, chunk).exists()

    def write_part(self, ds: xr.Dataset, model: str, size: str, budget: str, chunk: int) -> Path:
        """Write one part (dims question x draw [x outcome]; scalar coords model/size/budget)."""
        return save_cube(ds, self.part_path(model, size, budget, chunk))

    def part_paths(self) -> list[Path]:
        if not self.parts_dir.exists():
            return []
        return sorted(self.parts_dir.glob("*/chunk*.nc"))

    def combine(self, attrs: dict[str, str] | None = None, order: dict[str, Iterable] | None = None) -> xr.Dataset:
        """Merge every part into one cube, write ``cube.nc`` atomically, and return it.

        Parameters
        ----------
        attrs : dict, optional
            Provenance attributes for the cube.
        order : dict, optional
            Label order per dimension (``{"model": [...], "size": [...], ...}``), e.g. the
            config's order; labels absent from the parts are kept as missing (NaN) cells.

        Raises
        ------
        CubeError
            No parts, or a part that cannot be read (named).
        """
        paths = self.part_paths()
        if not paths:
            raise CubeError(f"no part files under {self.parts_dir}")
        cells: dict[tuple, list[xr.Dataset]] = {}
        for p in paths:
            try:
                with xr.open_dataset(p, engine="netcdf4") as part:
                    part = part.load()
            except (OSError, ValueError) as exc:
                raise CubeError(
                f"cannot read part file {p}: {exc}; delete this file and rerun the same command "
                f"to sample its chunk again (every other part is kept)"
            ) from exc
            key = (str(part["model"].item()), str(part["size"].item()), str(part["budget"].item()))
            cells.setdefault(key, []).append(part)
        # parts may differ in which optional variables they hold (backend extras): give every
        # part the union, missing values NaN / ""
        templates: dict[str, xr.DataArray] = {}
        for parts in cells.values():
            for part in parts:
                for name, var in part.data_vars.items():
                    templates.setdefault(name, var)
        for parts in cells.values():
            for k, part in enumerate(parts):
                for name, var in templates.items():
                    if name not in part.data_vars:
                        shape = tuple(part.sizes[d] for d in var.dims)
                        fill = np.full(shape, "", dtype=object) if var.dtype.kind in "OUS" else np.full(shape, np.nan)
                        part[name] = (var.dims, fill, var.attrs)
                parts[k] = part
        blocks = []
        for (model, size, budget), parts in cells.items():
            block = xr.concat(parts, dim="question", data_vars="minimal", coords="minimal",
                              compat="override", join="outer")
            block = block.expand_dims(model=[model], size=[size], budget=[budget])
            for name in ("params",):
                if name in block.coords:
                    block = block.assign_coords({name: (("model", "size"), block[name].values.reshape(1, 1))})
            for name in ("budget_tokens", "budget_effort"):
                if name in block.coords:
                    block = block.assign_coords({name: ("budget", np.atleast_1d(block[name].values)[:1])})
            blocks.append(block)
        ds = xr.merge(blocks, join="outer", compat="no_conflicts", combine_attrs="drop_conflicts")
        infos = {}
        for (model, size, _budget), parts in cells.items():
            info = parts[0].attrs.get("backend_info")
            if info:
                infos[f"{model}/{size}"] = json.loads(info)
        if infos:
            ds.attrs["backend_info"] = json.dumps(infos, sort_keys=True)
        if order:
            ds = ds.reindex({k: list(v) for k, v in order.items() if k in ds.dims})
        ds = _prepare(ds)
        if attrs:
            ds.attrs.update(attrs)
        save_cube(ds, self.cube_path)
        return ds


def finish_reason_attrs() -> dict[str, Any]:
    """CF flag attributes for the ``finish_reason`` codes."""
    return {
        "flag_values": np.arange(len(FINISH_REASONS), dtype=np.int8),
        "flag_meanings": " ".join(FINISH_REASONS),
        "long_name": "why generation of the draw ended",
    }
