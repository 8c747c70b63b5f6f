"""The cube store: one labelled ``xarray.Dataset`` per experiment, stored as netCDF4.

What a cube holds -- every dimension, coordinate and data variable, with dtype, units and
meaning -- is defined in one place, :mod:`hotmess.core.schema` (``hotmess schema`` prints
it; ``docs/design.md``, "The cube schema"). This module stores cubes: provenance attributes
(:func:`provenance`), the atomic writer (:func:`save_cube`), the reader that upgrades older
schema versions (:func:`open_cube`), and :class:`CubeStore`, the part files of a run.

Storage (resumable): the sampling loop writes one *part* file per (model, size, budget) cell
and chunk of questions, ``<root>/parts/<model>__<size>__<budget>/chunk<NNNNN>.nc``; a
producer writes named parts ``<root>/parts/<name>.nc``. Each is written to a temporary file
and renamed atomically, so a run killed at any moment leaves only complete parts.
:meth:`CubeStore.combine` merges the sampling loop's parts into ``<root>/cube.nc`` (again
atomically), :meth:`CubeStore.write_cube` writes a producer's cube.
"""

from __future__ import annotations

import datetime as _dt
import errno
import hashlib
import json
import os
import re
import shutil
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


class CubeWriteError(CubeError):
    """A cube or part file could not be written: disk full, read-only or missing folder,
    a path that is a file (the message names the path and the cause; nothing partial is left).

    Attributes
    ----------
    path : pathlib.Path
    reason : {"disk full", "read-only", "not a directory", "permission denied", "other"}
    """

    def __init__(self, message: str, path: Path, reason: str) -> None:
        super().__init__(message)
        self.path = path
        self.reason = reason


def _free_bytes(path: Path) -> int | None:
    for p in (path, *path.parents):
        if p.exists():
            try:
                return shutil.disk_usage(p).free
            except OSError:
                return None
    return None


def check_writable(folder: str | os.PathLike) -> Path:
    """Create ``folder`` if needed and check that a file can be written in it.

    Raises
    ------
    CubeWriteError
        Read-only file system, a path that is a file, no permission, no space (one line).
    """
    folder = Path(folder)
    probe = folder / f".hotmess-write-test-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        err = _write_error(probe, exc, 0)
        raise CubeWriteError(str(err).replace(str(probe), str(folder)), folder, err.reason) from exc
    return folder


def _close_cached_files() -> None:
    try:
        from xarray.backends.file_manager import FILE_CACHE

        FILE_CACHE.clear()  # closes them; xarray reopens any still in use on demand
    except Exception:  # noqa: BLE001 - best effort, never hide the write error
        pass


def _write_error(path: Path, exc: BaseException, need: int) -> CubeWriteError:
    """Translate an exception raised while writing ``path`` into one clear line."""
    err = getattr(exc, "errno", None)
    free = _free_bytes(path.parent)
    if err == errno.ENOSPC or (free is not None and free < max(need, 1 << 16)):
        mb = "?" if free is None else f"{free / 1e6:.1f}"
        return CubeWriteError(f"disk full while writing {path} ({mb} MB free there, about "
                              f"{need / 1e6:.1f} MB needed)", path, "disk full")
    if err == errno.EROFS:
        return CubeWriteError(f"cannot write {path}: the file system is read-only", path, "read-only")
    if err in (errno.ENOTDIR, errno.EEXIST) or any(p.exists() and not p.is_dir() for p in path.parents):
        bad = next((p for p in reversed(path.parents) if p.exists() and not p.is_dir()), path.parent)
        return CubeWriteError(f"cannot write {path}: {bad} is a file, not a folder", path, "not a directory")
    if err in (errno.EACCES, errno.EPERM):
        return CubeWriteError(f"cannot write {path}: permission denied", path, "permission denied")
    return CubeWriteError(f"cannot write {path}: {exc}", path, "other")


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


#: Attributes that change on every write without a change of content (ignored by :func:`same_cube`).
VOLATILE_ATTRS = ("created",)


def same_cube(ds: xr.Dataset, path: str | os.PathLike) -> bool:
    """Whether ``path`` already holds ``ds``: the same variables, coordinates, values (NaN
    equal to NaN), dtypes and attributes, ignoring :data:`VOLATILE_ATTRS`. False when the file
    is absent or unreadable (then it is simply rewritten)."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        with xr.open_dataset(path, engine="netcdf4") as old:
            old = old.load()
    except Exception:  # noqa: BLE001 - an unreadable file is rewritten, never trusted
        return False
    def attrs(x):
        return {k: str(v) for k, v in x.attrs.items() if k not in VOLATILE_ATTRS}

    new = _prepare(ds)
    if attrs(old) != attrs(new):
        return False
    try:
        return bool(old.drop_attrs(deep=False).identical(new.drop_attrs(deep=False)))
    except Exception:  # noqa: BLE001 - incomparable contents: rewrite
        return False


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
    ds = _prepare(ds)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _write_error(path, exc, int(ds.nbytes)) from exc
    os.close(fd)
    try:
        ds.to_netcdf(tmp, format="NETCDF4", engine="netcdf4", encoding=_encoding(ds))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a cube is an ordinary file
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # netCDF-C reports a full disk as "NetCDF: HDF error"
        _close_cached_files()  # the failed file's handle would keep its disk space in use
        Path(tmp).unlink(missing_ok=True)
        raise _write_error(path, exc, int(ds.nbytes)) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def open_cube(path: str | os.PathLike) -> xr.Dataset:
    """Open a cube fully into memory (the file is closed afterwards), brought to the current
    schema version (:func:`hotmess.core.schema.upgrade`).

    Raises
    ------
    CubeError
        The file does not exist, is not a readable netCDF file, or was written by a schema
        version this hotmess cannot read (the message names the file and both versions).
    """
    from hotmess.core import schema

    path = Path(path)
    if not path.exists():
        raise CubeError(f"no cube at {path}")
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            ds = ds.load()
    except (OSError, ValueError) as exc:
        raise CubeError(f"cannot read cube {path}: {exc}") from exc
    try:
        return schema.upgrade(ds)
    except schema.SchemaError as exc:
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
        """The sampling loop's part files (one per model, size, budget and chunk)."""
        if not self.parts_dir.exists():
            return []
        return sorted(self.parts_dir.glob("*/chunk*.nc"))

    # -- producers: one named part per finished piece (e.g. one trained size)
    def named_part_path(self, name: str) -> Path:
        """``<root>/parts/<name>.nc``: a producer's part file."""
        return self.parts_dir / f"{_safe(name)}.nc"

    def has_named_part(self, name: str) -> bool:
        return self.named_part_path(name).exists()

    def write_named_part(self, ds: xr.Dataset, name: str) -> Path:
        """Write a producer's part file atomically (:func:`save_cube`)."""
        return save_cube(ds, self.named_part_path(name))

    def read_named_part(self, name: str) -> xr.Dataset:
        """Read a producer's part file fully into memory.

        Raises
        ------
        CubeError
            The part is missing or unreadable (the message names it and the remedy).
        """
        path = self.named_part_path(name)
        try:
            with xr.open_dataset(path, engine="netcdf4") as part:
                return part.load()
        except (OSError, ValueError) as exc:
            raise CubeError(f"cannot read part file {path}: {exc}; delete it and rerun the same command") from exc

    def named_part_paths(self) -> list[Path]:
        """Every producer part file."""
        if not self.parts_dir.exists():
            return []
        return sorted(self.parts_dir.glob("*.nc"))

    def write_cube(self, ds: xr.Dataset) -> Path:
        """Write ``ds`` as ``<root>/cube.nc`` atomically (:func:`save_cube`), unless the file
        already holds the same cube (:func:`same_cube`: a rerun with nothing new keeps the file,
        so its SHA-256 in the figures' stamps stays)."""
        if same_cube(ds, self.cube_path):
            return self.cube_path
        return save_cube(ds, self.cube_path)

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
        if not same_cube(ds, self.cube_path):
            save_cube(ds, self.cube_path)
        return ds


def finish_reason_attrs() -> dict[str, Any]:
    """CF flag attributes for the ``finish_reason`` codes."""
    return {
        "flag_values": np.arange(len(FINISH_REASONS), dtype=np.int8),
        "flag_meanings": " ".join(FINISH_REASONS),
        "long_name": "why generation of the draw ended",
    }
