"""The synthetic optimizer experiment end to end (docs/science.md, "The synthetic optimizer"; metric: "Metrics").

:class:`SyntheticProducer` (``hotmess run experiment=synthetic``; or :func:`run_experiment`
without the engine) generates the problem and the teacher's trajectories, trains every model
size (resumable checkpoints), rolls each out from the same start points, and returns the cube
that the engine writes to ``<out_dir>/cube.nc``.

Cube layout (dims ``model x size x step x question x draw x coordinate``):

* ``model`` has length 1 (``"transformer"``) so every cube shares the design's dims;
* ``size`` labels with ``params(model, size)`` (exact parameter counts), ``layers``, ``width``
  and ``heads``;
* ``step`` = rollout step t (x_0 is the start point), every ``rollout.record_every`` steps;
* ``question`` = one problem instance (A, b) the models were trained on (the model sees only
  x, so one family of models learns one instance; ``question`` has length 1);
* ``draw`` = one start point x_0 (the randomness of the decomposition: decoding is greedy);
* ``coordinate`` = the d coordinates of x.

Variables: ``outcome`` (the iterate x_t), ``teacher`` (the teacher's iterate from the same
start), ``minimiser`` (b), ``hessian`` (A, dims ``question x coordinate x coordinate2``),
``clamped_steps`` (steps whose x was outside the encoding's range), ``test_loss`` (final
held-out u-token cross-entropy, nats/token), the curves ``test_loss_curve`` and
``train_loss_curve`` over ``train_step``, ``train_seconds``, and for convenience ``bias``,
``variance`` and ``error`` per step (A-norm relative to b; the figures recompute them).

Run directory (a :class:`hotmess.core.cube.CubeStore`): ``checkpoints/<size>.pt`` (training
state, resumable), ``parts/<size>.nc`` (the finished rollout of a size, written atomically by
the store), ``manifest.json`` (:mod:`hotmess.core.manifest`: the settings the files on disk
were made with, :func:`manifest_settings`; resuming with different settings is refused).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from hotmess.core.producer import Producer
from hotmess.core.seeding import derive_seed

log = logging.getLogger(__name__)

MODEL_LABEL = "transformer"


class SyntheticConfigError(ValueError):
    """Invalid ``synthetic`` settings (the message names the key)."""


@dataclass
class ProblemConfig:
    dim: int = 4
    condition_number: float = 50.0
    spectrum: str = "logspace"
    minimiser_scale: float = 0.5
    start_distance: float = 0.5
    start_spread: float = 0.05


@dataclass
class DataConfig:
    trajectories: int = 1000
    trajectory_steps: int = 400
    test_fraction: float = 0.1
    #: Training starts uniform in the ball of this radius around b (OPEN); None = the
    #: evaluation start distribution (problem.start_distance / start_spread).
    start_radius: float | None = None
    #: Training starts ``start_center + start_spread * N(0, I)`` with this spread instead of
    #: problem.start_spread (OPEN; a wider tube of training trajectories around the
    #: evaluation starts); None = problem.start_spread. Ignored when start_radius is set.
    start_spread: float | None = None
    #: This fraction of the trajectories starts uniform in the ball of ``near_radius`` around b
    #: instead (OPEN): teacher steps that approach b from every side, so that a model learns
    #: to turn around at b rather than walk past it (docs/science.md, "Diagnosis").
    near_fraction: float = 0.0
    near_radius: float = 0.1


@dataclass
class RolloutConfig:
    starts: int = 256
    steps: int = 256
    record_every: int = 1
    temperature: float = 0.0
    batch_size: int = 4096


@dataclass
class SynthConfig:
    """All settings of the experiment (config block ``synthetic``); see conf/experiment/synthetic.yaml."""

    problem: ProblemConfig = field(default_factory=ProblemConfig)
    step_norm: float = 0.005
    precision: int = 4
    data: DataConfig = field(default_factory=DataConfig)
    sizes: list[dict] = field(default_factory=list)
    train: dict = field(default_factory=dict)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    device: str = "auto"
    threads: int = 0
    train_seed: int | None = None  # initialisation and batch order; None = the experiment seed

    @classmethod
    def from_mapping(cls, raw: dict[str, Any]) -> SynthConfig:
        """Build from a plain mapping, refusing unknown keys.

        Raises
        ------
        SyntheticConfigError
            Unknown or invalid keys (named ``synthetic.<key>``).
        """
        from hotmess.plugins.synthetic.model import SizeSpec
        from hotmess.plugins.synthetic.train import TrainConfig

        raw = dict(raw or {})
        sub = {"problem": ProblemConfig, "data": DataConfig, "rollout": RolloutConfig}
        kwargs: dict[str, Any] = {}
        known = {f.name for f in fields(cls)}
        for key, value in raw.items():
            if key not in known:
                raise SyntheticConfigError(f"unknown key synthetic.{key}; known: {sorted(known)}")
            if key in sub:
                kwargs[key] = _sub(sub[key], value, f"synthetic.{key}")
            else:
                kwargs[key] = value
        cfg = cls(**kwargs)
        if not cfg.sizes:
            raise SyntheticConfigError("synthetic.sizes is empty: give at least one {name, layers, width, heads}")
        names = [s.get("name") for s in cfg.sizes]
        if len(set(names)) != len(names) or None in names:
            raise SyntheticConfigError(f"synthetic.sizes need unique names, got {names}")
        try:
            cfg.sizes = [dict(s) for s in cfg.sizes]
            [SizeSpec(**s) for s in cfg.sizes]
            TrainConfig(**cfg.train)
        except TypeError as exc:
            raise SyntheticConfigError(f"synthetic.sizes / synthetic.train: {exc}") from exc
        if not 0 < cfg.data.test_fraction < 1:
            raise SyntheticConfigError("synthetic.data.test_fraction must be in (0, 1)")
        if cfg.rollout.temperature < 0:
            raise SyntheticConfigError("synthetic.rollout.temperature must be >= 0")
        return cfg

    def spec(self, size: dict):
        from hotmess.plugins.synthetic.model import SizeSpec

        return SizeSpec(**size)

    def train_config(self):
        from hotmess.plugins.synthetic.train import TrainConfig

        return TrainConfig(**self.train)


def _sub(klass, value, where):
    names = {f.name for f in fields(klass)}
    value = dict(value or {})
    bad = sorted(set(value) - names)
    if bad:
        raise SyntheticConfigError(f"unknown key(s) {where}.{bad[0]}; known: {sorted(names)}")
    return klass(**value)


def pick_device(name: str = "auto"):
    """``"auto"``: CUDA when present, else CPU."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


# --------------------------------------------------------------------------- the pieces
def make_experiment_problem(cfg: SynthConfig, seed: int):
    from hotmess.plugins.synthetic.problem import make_problem

    return make_problem(np.random.default_rng(derive_seed(seed, "problem", 0)), **asdict(cfg.problem))


def training_starts(cfg: SynthConfig, problem, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` start points of teacher trajectories for training, shape (n, d).

    ``data.start_radius`` set: uniform in that ball around b; else ``start_center +
    data.start_spread * N(0, I)`` (``problem.start_spread`` when ``data.start_spread`` is None).
    Then the first ``round(near_fraction * n)`` are replaced by points uniform in the ball of
    ``data.near_radius`` around b, and the order is shuffled (so that the held-out split takes
    both kinds). Raises ValueError for a fraction outside [0, 1] or a radius <= 0.
    """
    dc = cfg.data
    if not 0.0 <= float(dc.near_fraction) <= 1.0:
        raise ValueError(f"synthetic.data.near_fraction must be in [0, 1], got {dc.near_fraction!r}")
    if float(dc.near_radius) <= 0.0:
        raise ValueError(f"synthetic.data.near_radius must be > 0, got {dc.near_radius!r}")
    if dc.start_radius is not None:
        x0 = problem.ball_starts(n, float(dc.start_radius), rng)
    elif dc.start_spread is not None:
        x0 = problem.start_center + float(dc.start_spread) * rng.standard_normal((n, problem.dim))
    else:
        x0 = problem.starts(n, rng)
    k = int(round(float(dc.near_fraction) * n))
    if k:
        x0[:k] = problem.ball_starts(k, float(dc.near_radius), rng)
        x0 = x0[rng.permutation(n)]
    return x0


def training_start_text(cfg: SynthConfig) -> str:
    """The training start distribution of ``cfg`` in words (recorded in the cube's task_info)."""
    dc = cfg.data
    if dc.start_radius is not None:
        text = f"uniform in the ball of radius {dc.start_radius} around b"
    else:
        sp = dc.start_spread if dc.start_spread is not None else cfg.problem.start_spread
        text = f"b + start_distance * w + {sp} * N(0, I)"
    if dc.near_fraction:
        text += f"; a fraction {dc.near_fraction} uniform in the ball of radius {dc.near_radius} around b"
    return text + " (OPEN)"


def make_training_data(cfg: SynthConfig, problem, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Teacher trajectories, split by trajectory into train and test pairs (tokens).

    Returns
    -------
    train, test : numpy.ndarray of uint8, shape (n_pairs, 2 * d * tokens_per_float)
    """
    from hotmess.plugins.synthetic.encoding import tokens_per_float
    from hotmess.plugins.synthetic.problem import teacher_trajectories
    from hotmess.plugins.synthetic.train import encode_pairs

    n = cfg.data.trajectories
    n_test = max(1, int(round(n * cfg.data.test_fraction)))
    x0 = training_starts(cfg, problem, n, np.random.default_rng(derive_seed(seed, "train-starts", 0)))
    xs, us = teacher_trajectories(problem, x0, cfg.data.trajectory_steps, cfg.step_norm)
    xs = xs[:-1]  # (steps, n, d): pairs (x_t, u_t)
    d = problem.dim

    def pairs(sl, chunk=1000):
        # pairs ordered by (step, trajectory); encoded a chunk of trajectories at a time to bound memory
        idx = np.arange(n)[sl]
        out = np.empty((xs.shape[0], len(idx), 2 * d * tokens_per_float(cfg.precision)), dtype=np.uint8)
        for lo in range(0, len(idx), chunk):
            j = idx[lo:lo + chunk]
            out[:, lo:lo + chunk] = encode_pairs(xs[:, j].reshape(-1, d), us[:, j].reshape(-1, d),
                                                 cfg.precision).reshape(xs.shape[0], len(j), -1)
        return out.reshape(-1, out.shape[-1])

    test = pairs(slice(n - n_test, n))
    # Shuffle the test pairs once so that the first eval_pairs cover all test trajectories.
    test = test[np.random.default_rng(derive_seed(seed, "test-order", 0)).permutation(len(test))]
    return pairs(slice(0, n - n_test)), test


def eval_starts(cfg: SynthConfig, problem, seed: int) -> np.ndarray:
    """The rollout start points (the ``draw`` dimension), shape (starts, d)."""
    return problem.starts(cfg.rollout.starts, np.random.default_rng(derive_seed(seed, "eval-starts", 0)))


def decomposition_np(xs: np.ndarray, b: np.ndarray, A: np.ndarray) -> dict[str, np.ndarray]:
    """Per-step bias^2, variance and error in the A-norm over start points (docs/science.md, "Metrics").

    Parameters
    ----------
    xs : numpy.ndarray, shape (..., n_draws, d)
    b : numpy.ndarray, shape (d,)
    A : numpy.ndarray, shape (d, d)

    Returns
    -------
    dict with ``bias``, ``variance``, ``error``, each of shape (...)
    """
    mean = xs.mean(-2)
    e = mean - b
    bias = np.einsum("...i,ij,...j->...", e, A, e)
    dev = xs - mean[..., None, :]
    var = np.einsum("...ni,ij,...nj->...n", dev, A, dev).mean(-1)
    de = xs - b
    err = np.einsum("...ni,ij,...nj->...n", de, A, de).mean(-1)
    return {"bias": bias, "variance": var, "error": err}


# --------------------------------------------------------------------------- run
def manifest_settings(cfg: SynthConfig, seed: int) -> dict[str, Any]:
    """The settings the files of a run directory depend on (for :mod:`hotmess.core.manifest`):
    every setting but the device, the CPU threads and the rollout batch size."""
    data = asdict(cfg)
    for k in ("device", "threads"):
        data.pop(k)
    data["rollout"].pop("batch_size")
    data["seed"] = seed
    return data


def has_samples(store) -> bool:
    """Whether the run directory holds finished sizes or training checkpoints."""
    return bool(store.named_part_paths()) or any((store.root / "checkpoints").glob("*.pt"))


def run_experiment(cfg: SynthConfig, out_dir: str | os.PathLike, *, seed: int = 0, provenance_attrs=None) -> Path:
    """Train, roll out and write the cube; resumable at any point (without the engine:
    ``hotmess run experiment=synthetic`` goes through :class:`SyntheticProducer`).

    Parameters
    ----------
    cfg : SynthConfig
    out_dir : path
        The experiment's directory; the cube is ``out_dir/cube.nc``.
    seed : int
        Experiment seed (problem, data, batch order, initialisation, start points).
    provenance_attrs : dict, optional
        Attributes from :func:`hotmess.core.cube.provenance` for the cube.

    Returns
    -------
    pathlib.Path
        The cube's path.

    Raises
    ------
    hotmess.core.experiment.ConfigError
        ``out_dir`` holds files made with different settings.
    """
    from hotmess.core import manifest, schema
    from hotmess.core.cube import CubeStore, provenance

    store = CubeStore(out_dir)
    manifest.check(store.root, manifest_settings(cfg, seed), has_samples=has_samples(store))
    ds = produce(cfg, store, seed=seed)
    if provenance_attrs is None:  # called without the engine: record this experiment's settings
        provenance_attrs = provenance({"seed": seed, "experiment": "synthetic", "synthetic": asdict(cfg)})
    ds.attrs = {**provenance_attrs, **ds.attrs}
    schema.stamp(ds.attrs, "point")
    return store.write_cube(ds)


def produce(cfg: SynthConfig, store, *, seed: int = 0):
    """Train every size (resumable checkpoints under ``store.root/checkpoints``), roll each
    out (one part file per size, :meth:`~hotmess.core.cube.CubeStore.write_named_part`) and
    return the assembled cube (:func:`assemble`), without provenance.
    """
    import torch
    import xarray as xr

    from hotmess.plugins.synthetic.encoding import tokens_per_float
    from hotmess.plugins.synthetic.model import build_model
    from hotmess.plugins.synthetic.rollout import rollout
    from hotmess.plugins.synthetic.train import describe, train

    root = store.root
    (root / "checkpoints").mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    device = pick_device(cfg.device)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    problem = make_experiment_problem(cfg, seed)
    d = problem.dim
    n_x = d * tokens_per_float(cfg.precision)
    x0 = eval_starts(cfg, problem, seed)
    tcfg = cfg.train_config()
    data = None
    for size in cfg.sizes:
        spec = cfg.spec(size)
        if store.has_named_part(spec.name):
            log.info("synthetic: size %s already done (%s)", spec.name, store.named_part_path(spec.name))
            continue
        if data is None:
            t0 = time.perf_counter()
            tr, te = make_training_data(cfg, problem, seed)
            data = (torch.from_numpy(tr).to(device), torch.from_numpy(te).to(device))
            log.info("synthetic: %d train / %d test pairs in %.1fs", len(tr), len(te), time.perf_counter() - t0)
        tseed = seed if cfg.train_seed is None else int(cfg.train_seed)
        model = build_model(spec, 12, 2 * n_x, derive_seed(tseed, "init", spec.name)).to(device)
        facts = describe(model)
        log.info("synthetic: training size %s (%d parameters) on %s", spec.name, facts["params"], device)

        def progress(step, trl, tel, _n=spec.name):
            log.info("synthetic: %s step %d train loss %.4f test loss %.4f", _n, step, trl, tel)

        ckpt = root / "checkpoints" / f"{spec.name}.pt"
        if ckpt.exists():
            log.info("synthetic: resuming size %s from %s", spec.name, ckpt)
        hist = train(model, data[0], data[1], tcfg, seed=tseed, n_x=n_x, checkpoint=ckpt, progress=progress)
        t0 = time.perf_counter()
        xs, steps, clamped = rollout(model, x0, cfg.rollout.steps, cfg.precision,
                                     record_every=cfg.rollout.record_every,
                                     temperature=cfg.rollout.temperature,
                                     seed=derive_seed(seed, "rollout", spec.name),
                                     batch_size=cfg.rollout.batch_size)
        roll_s = time.perf_counter() - t0
        log.info("synthetic: %s rollout %d starts x %d steps in %.1fs", spec.name, len(x0), cfg.rollout.steps, roll_s)
        ds = xr.Dataset(
            {
                "outcome": (("step", "draw", "coordinate"), xs),
                "clamped_steps": (("draw",), clamped),
                "test_loss_curve": (("train_step",), np.asarray(hist.test_loss)),
                "train_loss_curve": (("train_step",), np.asarray(hist.train_loss)),
            },
            coords={"step": steps, "train_step": np.asarray(hist.eval_step)},
            attrs={**{k: int(v) for k, v in facts.items()}, "train_seconds": hist.seconds,
                   "rollout_seconds": roll_s, "device": str(device)},
        )
        store.write_named_part(ds, spec.name)
    return assemble(cfg, store, problem, x0, seed=seed)


def assemble(cfg: SynthConfig, store, problem, x0: np.ndarray, *, seed: int):
    """Combine the per-size parts with the teacher's rollout into the cube (a dataset)."""
    import xarray as xr

    from hotmess.plugins.synthetic.problem import teacher_trajectories
    from hotmess.plugins.synthetic.rollout import recorded_steps

    names = [s["name"] for s in cfg.sizes]
    parts = [store.read_named_part(n) for n in names]
    steps = recorded_steps(cfg.rollout.steps, cfg.rollout.record_every)
    txs, _ = teacher_trajectories(problem, x0, cfg.rollout.steps, cfg.step_norm)
    teacher = txs[steps]
    d = problem.dim
    qid = "quadratic-0"
    n_train = max(len(p.train_step) for p in parts)
    tstep = parts[int(np.argmax([len(p.train_step) for p in parts]))].train_step.values

    def curve(p, name):
        out = np.full(n_train, np.nan)
        out[: len(p.train_step)] = p[name].values
        return out

    outcome = np.stack([p.outcome.values for p in parts])[None, :, :, None]  # model,size,step,q,draw,coord
    dec = decomposition_np(outcome, problem.b, problem.A)
    size_dims = ("model", "size")
    ds = xr.Dataset(
        {
            "outcome": (("model", "size", "step", "question", "draw", "coordinate"), outcome,
                        {"long_name": "iterate x_t of the model's rollout"}),
            "teacher": (("step", "question", "draw", "coordinate"), teacher[:, None],
                        {"long_name": "iterate x_t of the teacher (steepest descent) from the same start"}),
            "minimiser": (("question", "coordinate"), problem.b[None], {"long_name": "minimiser b"}),
            "hessian": (("question", "coordinate", "coordinate2"), problem.A[None],
                        {"long_name": "A of f(x) = 1/2 (x-b)^T A (x-b)"}),
            "clamped_steps": (("model", "size", "question", "draw"),
                              np.stack([p.clamped_steps.values for p in parts])[None, :, None],
                              {"long_name": "rollout steps whose x was clamped to the encoding's range"}),
            "test_loss": (size_dims, np.array([[p.test_loss_curve.values[-1] for p in parts]]),
                          {"long_name": "final held-out cross-entropy of the u tokens", "units": "nats/token"}),
            "test_loss_curve": (size_dims + ("train_step",), np.stack([curve(p, "test_loss_curve") for p in parts])[None],
                                {"units": "nats/token"}),
            "train_loss_curve": (size_dims + ("train_step",), np.stack([curve(p, "train_loss_curve") for p in parts])[None],
                                 {"units": "nats/token", "long_name": "mean train loss over the eval interval"}),
            "train_seconds": (size_dims, np.array([[p.attrs["train_seconds"] for p in parts]]), {"units": "s"}),
            "rollout_seconds": (size_dims, np.array([[p.attrs["rollout_seconds"] for p in parts]]), {"units": "s"}),
            "bias": (("model", "size", "step", "question"), dec["bias"],
                     {"long_name": "||E x_t - b||_A^2 over start points"}),
            "variance": (("model", "size", "step", "question"), dec["variance"],
                         {"long_name": "E ||x_t - E x_t||_A^2 over start points"}),
            "error": (("model", "size", "step", "question"), dec["error"],
                      {"long_name": "E ||x_t - b||_A^2 over start points"}),
        },
        coords={
            "model": [MODEL_LABEL],
            "size": names,
            "params": (size_dims, np.array([[p.attrs["params"] for p in parts]], dtype=np.int64)),
            "layers": ("size", np.array([p.attrs["layers"] for p in parts], dtype=np.int64)),
            "width": ("size", np.array([p.attrs["width"] for p in parts], dtype=np.int64)),
            "heads": ("size", np.array([p.attrs["heads"] for p in parts], dtype=np.int64)),
            "step": ("step", steps, {"long_name": "rollout step t"}),
            "question": [qid],
            "subject": ("question", ["quadratic"]),
            "draw": ("draw", np.arange(len(x0)), {"long_name": "start point index"}),
            "coordinate": np.arange(d),
            "coordinate2": np.arange(d),
            "train_step": ("train_step", tstep, {"long_name": "optimizer step of training"}),
        },
    )
    info = {
        "experiment_seed": seed,
        "synthetic": asdict(cfg),
        "question_means": "one problem instance (A, b)",
        "draw_means": "one start point x_0",
        "start_distribution": "x0 = b + start_distance * w + start_spread * N(0, I), w a random unit vector (OPEN)",
        "training_start_distribution": training_start_text(cfg),
        "decomposition_randomness": "start points (greedy decoding)" if cfg.rollout.temperature == 0
        else f"start points and sampling at temperature {cfg.rollout.temperature}",
        "devices": sorted({p.attrs["device"] for p in parts}),
    }
    ds.attrs.update({"experiment": "synthetic", "outcome_kind": "point",
                     "task_info": json.dumps(info, sort_keys=True),
                     "seed_scheme": "derive_seed(seed, purpose, ...)"})
    return ds


# --------------------------------------------------------------------------- producer plugin
class SyntheticProducer(Producer):
    """The synthetic optimizer as a producer (``hotmess run experiment=synthetic``).

    Parameters
    ----------
    settings : dict
        The experiment's ``synthetic`` block (conf/producer/synthetic.yaml passes it as
        ``settings: ${synthetic}``; keys: :class:`SynthConfig`). The experiment seed is
        ``exp.seed``.

    Raises
    ------
    SyntheticConfigError
        No or invalid settings (the message names ``synthetic.<key>``).
    """

    name = "synthetic"
    outcome_kind = "point"

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        if settings is None:
            raise SyntheticConfigError("the config has no `synthetic` block (use experiment=synthetic)")
        self.config = SynthConfig.from_mapping(dict(settings))

    def manifest(self, exp) -> dict[str, Any]:
        return manifest_settings(self.config, exp.seed)

    def has_samples(self, store) -> bool:
        return has_samples(store)

    def produce(self, exp, store):
        return produce(self.config, store, seed=exp.seed)

    def info(self) -> dict[str, Any]:
        return {"producer": self.name, "spec": "docs/science.md, synthetic optimizer"}
