"""The quadratic problem, its start points and the steepest-descent teacher (the paper's section 3, docs/science.md).

f(x) = 1/2 (x - b)^T A (x - b) in R^d, A symmetric positive definite with a given condition
number, b the minimiser. The teacher takes steps of fixed Euclidean norm ``step_norm`` along
the negative gradient: u = -step_norm * A(x - b) / ||A(x - b)|| (u = 0 where the gradient is 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SPECTRA = ("logspace", "random")


@dataclass(frozen=True)
class Quadratic:
    """One problem instance.

    Attributes
    ----------
    A : numpy.ndarray, shape (d, d)
        Symmetric positive definite; eigenvalues in [1, condition_number].
    b : numpy.ndarray, shape (d,)
        The minimiser.
    start_center : numpy.ndarray, shape (d,)
        Mean of the start distribution (``b + start_distance * direction``).
    start_spread : float
        Standard deviation per coordinate of the start points around ``start_center``.
    """

    A: np.ndarray
    b: np.ndarray
    start_center: np.ndarray
    start_spread: float

    @property
    def dim(self) -> int:
        return int(self.b.shape[0])

    def value(self, x: np.ndarray) -> np.ndarray:
        """f(x) for points of shape (..., d); returns shape (...)."""
        e = np.asarray(x) - self.b
        return 0.5 * np.einsum("...i,ij,...j->...", e, self.A, e)

    def gradient(self, x: np.ndarray) -> np.ndarray:
        """A (x - b), shape (..., d)."""
        return (np.asarray(x) - self.b) @ self.A.T

    def sq_a_norm(self, v: np.ndarray) -> np.ndarray:
        """||v||_A^2 = v^T A v for vectors of shape (..., d); returns shape (...)."""
        return np.einsum("...i,ij,...j->...", v, self.A, v)

    def starts(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` start points ``start_center + start_spread * N(0, I)``, shape (n, d)."""
        return self.start_center + self.start_spread * rng.standard_normal((n, self.dim))

    def ball_starts(self, n: int, radius: float, rng: np.random.Generator) -> np.ndarray:
        """``n`` points uniform in the Euclidean ball of ``radius`` around the minimiser b,
        shape (n, d) (direction uniform on the sphere, distance ``radius * U**(1/d)``)."""
        v = rng.standard_normal((n, self.dim))
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        r = radius * rng.uniform(0.0, 1.0, (n, 1)) ** (1.0 / self.dim)
        return self.b + r * v


def make_problem(
    rng: np.random.Generator,
    *,
    dim: int = 4,
    condition_number: float = 50.0,
    spectrum: str = "logspace",
    minimiser_scale: float = 0.5,
    start_distance: float = 0.5,
    start_spread: float = 0.05,
) -> Quadratic:
    """Draw a problem instance.

    Parameters
    ----------
    rng : numpy.random.Generator
    dim : int
        d (paper: 4).
    condition_number : float
        lambda_max / lambda_min of A (paper: 50); eigenvalues span [1, condition_number].
    spectrum : {"logspace", "random"}
        Eigenvalues log-spaced between the ends, or the two ends plus log-uniform inner ones
        (OPEN in the paper).
    minimiser_scale : float
        b is uniform in [-minimiser_scale, minimiser_scale]^d.
    start_distance, start_spread : float
        Start points: x0 = b + start_distance * w + start_spread * N(0, I) with w a random unit
        vector drawn once per problem (the start distribution is OPEN in the paper: it only
        says "random starts near the minimum"). An off-centre mean makes the start error
        mostly bias, so incoherence can rise along the rollout.

    Raises
    ------
    ValueError
        dim < 1, condition_number < 1 or an unknown spectrum.
    """
    if dim < 1 or condition_number < 1:
        raise ValueError(f"need dim >= 1 and condition_number >= 1, got {dim}, {condition_number}")
    if spectrum == "logspace":
        eig = np.logspace(0.0, np.log10(condition_number), dim)
    elif spectrum == "random":
        inner = np.exp(rng.uniform(0.0, np.log(condition_number), max(dim - 2, 0)))
        eig = np.concatenate([[1.0], inner, [condition_number]])[:dim] if dim > 1 else np.array([1.0])
    else:
        raise ValueError(f"spectrum must be one of {SPECTRA}, not {spectrum!r}")
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    q = q * np.sign(np.diag(r))  # a Haar-random rotation
    A = (q * eig) @ q.T
    A = 0.5 * (A + A.T)
    b = rng.uniform(-minimiser_scale, minimiser_scale, dim)
    w = rng.standard_normal(dim)
    w /= np.linalg.norm(w)
    return Quadratic(A=A, b=b, start_center=b + start_distance * w, start_spread=float(start_spread))


def teacher_step(problem: Quadratic, x: np.ndarray, step_norm: float) -> np.ndarray:
    """The teacher's update u = -step_norm * g / ||g||, g = A(x - b); shape (..., d).

    Where g = 0 exactly, u = 0.
    """
    g = problem.gradient(x)
    n = np.linalg.norm(g, axis=-1, keepdims=True)
    return np.where(n > 0, -step_norm * g / np.where(n > 0, n, 1.0), 0.0)


def teacher_trajectories(problem: Quadratic, x0: np.ndarray, steps: int, step_norm: float) -> tuple[np.ndarray, np.ndarray]:
    """Roll the teacher out from each start point.

    Parameters
    ----------
    x0 : numpy.ndarray, shape (n, d)
    steps : int
    step_norm : float

    Returns
    -------
    xs : numpy.ndarray, shape (steps + 1, n, d)
        Iterates x_0 .. x_steps.
    us : numpy.ndarray, shape (steps, n, d)
        Updates, x_{t+1} = x_t + u_t.
    """
    x = np.array(x0, dtype=np.float64)
    xs = np.empty((steps + 1,) + x.shape)
    us = np.empty((steps,) + x.shape)
    xs[0] = x
    for t in range(steps):
        u = teacher_step(problem, x, step_norm)
        us[t] = u
        x = x + u
        xs[t + 1] = x
    return xs, us
