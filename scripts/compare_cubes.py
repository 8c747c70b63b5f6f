"""Compare the cubes of two results folders variable by variable (refactor identity check).

    python scripts/compare_cubes.py OLD_RESULTS NEW_RESULTS [experiment ...]

For every experiment (default: every ``<name>/cube.nc`` in OLD_RESULTS) it reads both cubes
with plain xarray (no hotmess code) and prints one line per data variable and coordinate:
``same`` when dims, shape, dtype kind and every value agree (NaN equal to NaN, text compared
as text), else what differs. Wall-clock timings (variables with ``units: s``: ``latency_s``,
``train_seconds``, ...) are shown but not compared: they differ between any two runs.
Attributes are listed separately (provenance such as creation time and git revision always
differs). Exit status 1 if any other variable differs or is missing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import xarray as xr


def _same(a: xr.DataArray, b: xr.DataArray) -> str:
    if a.dims != b.dims:
        return f"dims {a.dims} vs {b.dims}"
    if a.shape != b.shape:
        return f"shape {a.shape} vs {b.shape}"
    if a.dtype.kind != b.dtype.kind and not ({a.dtype.kind, b.dtype.kind} <= set("OUS")):
        return f"dtype {a.dtype} vs {b.dtype}"
    if a.dtype.kind in "OUS":
        va = np.vectorize(str, otypes=[object])(a.values) if a.size else a.values
        vb = np.vectorize(str, otypes=[object])(b.values) if b.size else b.values
        n = int(np.sum(va != vb))
        return "same" if n == 0 else f"{n} text value(s) differ"
    if not np.array_equal(a.values, b.values, equal_nan=a.dtype.kind in "fc"):
        diff = np.abs(a.values.astype(float) - b.values.astype(float))
        return f"{int(np.sum(~np.isclose(a.values, b.values, equal_nan=True)))} value(s) differ (max |diff| {np.nanmax(diff)})"
    return "same"


def compare(old: Path, new: Path) -> bool:
    """Print the comparison of two cubes; return True if every variable is the same."""
    a, b = xr.load_dataset(old), xr.load_dataset(new)
    ok = True
    names = list(dict.fromkeys([*a.data_vars, *a.coords, *b.data_vars, *b.coords]))
    for name in names:
        kind = "coord" if name in a.coords or name in b.coords else "data "
        if name not in a.variables or name not in b.variables:
            print(f"  {kind} {name:<22} only in {'new' if name not in a.variables else 'old'}")
            ok = False
            continue
        verdict = _same(a[name], b[name])
        if a[name].attrs.get("units") == "s" and verdict != "same":
            verdict = f"wall-clock timing, not compared ({verdict})"
        else:
            ok &= verdict == "same"
        print(f"  {kind} {name:<22} {verdict}")
    attrs = sorted(k for k in set(a.attrs) | set(b.attrs) if a.attrs.get(k) != b.attrs.get(k))
    print(f"  attributes that differ: {attrs}")
    return ok


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__)
        return 2
    old, new = Path(argv[0]), Path(argv[1])
    names = argv[2:] or sorted(p.parent.name for p in old.glob("*/cube.nc"))
    all_ok = True
    for name in names:
        print(f"{name}:")
        if not (new / name / "cube.nc").exists() or not (old / name / "cube.nc").exists():
            print("  cube missing")
            all_ok = False
            continue
        ok = compare(old / name / "cube.nc", new / name / "cube.nc")
        print(f"  => {'IDENTICAL in every variable' if ok else 'DIFFERENT'}")
        all_ok &= ok
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
