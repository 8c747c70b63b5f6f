"""Power-law and joint fits of the scaling figures (``docs/science.md#fits``)."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import xarray as xr

from hotmess.core.metrics.validation import require

__all__ = ["PowerLawFit", "power_law_fit", "JointFit", "joint_fit_incoherence"]


class PowerLawFit(NamedTuple):
    """``y = prefactor · x^(−alpha)``; ``r2`` of the straight line on log-log axes."""

    alpha: Any
    prefactor: Any
    r2: Any


def _fit_line(lx: np.ndarray, ly: np.ndarray) -> tuple[float, float, float]:
    slope, intercept = np.polyfit(lx, ly, 1)
    resid = ly - (intercept + slope * lx)
    ss_tot = float(((ly - ly.mean()) ** 2).sum())
    r2 = 1.0 - float((resid**2).sum()) / ss_tot if ss_tot > 0 else float("nan")
    return float(slope), float(intercept), r2


def _power_law_1d(x: np.ndarray, y: np.ndarray, strict: bool) -> tuple[float, float, float]:
    ok = np.isfinite(x) & np.isfinite(y)
    if (x[ok] <= 0).any() or (y[ok] <= 0).any():
        raise ValueError("power_law_fit: x and y must be > 0 (log-log fit); got non-positive values")
    if np.unique(x[ok]).size < 2:
        if strict:
            raise ValueError(
                f"power_law_fit needs at least 2 distinct finite x values; got {np.unique(x[ok]).size}"
            )
        return (np.nan, np.nan, np.nan)
    slope, intercept, r2 = _fit_line(np.log(x[ok]), np.log(y[ok]))
    return (-slope, float(np.exp(intercept)), r2)


def power_law_fit(x: Any, y: Any, *, dim: str | None = None) -> PowerLawFit:
    """Fit ``y ∝ x^(−alpha)`` by least squares on log-log axes.

    Parameters
    ----------
    x, y : array-like or xarray.DataArray
        Positive values (e.g. parameters N and bias or variance); NaN pairs are skipped.
    dim : str, optional
        With DataArrays: fit along ``dim``, separately for every index of the other
        (broadcast) dims, e.g. one fit per difficulty group; lines with fewer than two
        distinct x give NaN. Without ``dim`` all values are fitted together.

    Returns
    -------
    PowerLawFit
        ``(alpha, prefactor, r2)``: ``y = prefactor · x^(−alpha)``; ``r2`` = coefficient of
        determination of ``log y`` (NaN if all ``log y`` are equal). Floats, or DataArrays
        with ``dim``.

    Raises
    ------
    ValueError
        Non-positive finite values, or (without ``dim``) fewer than two distinct x.

    Notes
    -----
    ``docs/science.md#fits``; Figs. 5d, 6, 24.
    """
    if dim is None:
        xv = np.asarray(x, dtype=float).ravel()
        yv = np.asarray(y, dtype=float).ravel()
        if xv.shape != yv.shape:
            raise ValueError(f"x and y have {xv.size} and {yv.size} values")
        return PowerLawFit(*_power_law_1d(xv, yv, strict=True))
    x, y = xr.broadcast(require(x, "x", dim), require(y, "y"))
    out = xr.apply_ufunc(
        lambda a, b: _power_law_1d(a, b, strict=False),
        x.astype(float),
        y.astype(float),
        input_core_dims=[[dim], [dim]],
        output_core_dims=[[], [], []],
        vectorize=True,
    )
    return PowerLawFit(*(o.rename(n) for o, n in zip(out, PowerLawFit._fields, strict=True)))


class JointFit(NamedTuple):
    """``incoherence ≈ intercept + length_coef · log(length) + size_coef · log(size)``.

    With ``log_incoherence=True`` the left side is ``log(incoherence)``.
    """

    intercept: float
    length_coef: float
    size_coef: float
    r2: float
    log_incoherence: bool = False

    def predict(self, length: Any, size: Any) -> Any:
        """Fitted incoherence at ``length`` (tokens) and ``size`` (parameters); broadcasts."""
        z = self.intercept + self.length_coef * np.log(length) + self.size_coef * np.log(size)
        return np.exp(z) if self.log_incoherence else z


def joint_fit_incoherence(
    length: Any, size: Any, incoherence: Any, *, log_incoherence: bool = False
) -> JointFit:
    """Fit incoherence jointly on log length and log size by least squares.

    Parameters
    ----------
    length : array-like or xarray.DataArray
        Mean reasoning length (tokens) of each point (e.g. each (size, bucket)).
    size : array-like or xarray.DataArray
        Model size (parameters), broadcast against ``length`` (DataArrays broadcast by
        dimension name, arrays by numpy rules).
    incoherence : array-like or xarray.DataArray
        Incoherence at each point. NaN points are skipped.
    log_incoherence : bool, default False
        Fit ``log(incoherence)`` instead of incoherence (the paper does not say; the default
        is linear in both logs with incoherence itself as the response).

    Returns
    -------
    JointFit
        ``(intercept, length_coef, size_coef, r2, log_incoherence)`` with a ``predict``
        method (e.g. for the contour of Fig. 14).

    Raises
    ------
    ValueError
        Non-positive length or size (or incoherence when ``log_incoherence``), or fewer
        than 3 usable points.

    Notes
    -----
    ``docs/science.md#fits`` (joint fit); Fig. 14.
    """
    if any(isinstance(a, xr.DataArray) for a in (length, size, incoherence)):
        arrs = [a if isinstance(a, xr.DataArray) else xr.DataArray(a) for a in (length, size, incoherence)]
        L, N, Y = (np.asarray(a.values, dtype=float).ravel() for a in xr.broadcast(*arrs))
    else:
        L, N, Y = (np.asarray(a, dtype=float).ravel() for a in np.broadcast_arrays(length, size, incoherence))
    ok = np.isfinite(L) & np.isfinite(N) & np.isfinite(Y)
    if (L[ok] <= 0).any() or (N[ok] <= 0).any() or (log_incoherence and (Y[ok] <= 0).any()):
        raise ValueError("joint_fit_incoherence: length and size (and a logged incoherence) must be > 0")
    if ok.sum() < 3:
        raise ValueError(f"joint_fit_incoherence needs at least 3 finite points; got {int(ok.sum())}")
    X = np.column_stack([np.ones(ok.sum()), np.log(L[ok]), np.log(N[ok])])
    z = np.log(Y[ok]) if log_incoherence else Y[ok]
    coef, *_ = np.linalg.lstsq(X, z, rcond=None)
    resid = z - X @ coef
    ss_tot = float(((z - z.mean()) ** 2).sum())
    r2 = 1.0 - float((resid**2).sum()) / ss_tot if ss_tot > 0 else float("nan")
    return JointFit(float(coef[0]), float(coef[1]), float(coef[2]), r2, log_incoherence)
