"""Training data and the teacher-forced training loop (the paper's section 3, docs/science.md).

A training example is one (x_t, u_t) pair of a teacher trajectory, encoded as
``2 * d * tokens_per_float`` tokens (x then u, fields by position). The model is trained with
teacher forcing on the cross-entropy of the u tokens only (x is given at rollout time), with
AdamW, linear warm-up and cosine decay.

Resumable and deterministic: the batch of step ``s`` is a pure function of (seed, s), the
learning rate a pure function of s, and a checkpoint (model, optimizer, step, history) is
written atomically every ``checkpoint_every`` steps; a killed run restarted on the same
checkpoint continues exactly as an uninterrupted one would on the same device and thread count.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hotmess.core.seeding import derive_seed
from hotmess.plugins.synthetic.encoding import encode
from hotmess.plugins.synthetic.model import Transformer, count_params


def encode_pairs(xs: np.ndarray, us: np.ndarray, precision: int) -> np.ndarray:
    """Encode (x, u) pairs as token rows.

    Parameters
    ----------
    xs, us : numpy.ndarray, shape (n, d)

    Returns
    -------
    numpy.ndarray of uint8, shape (n, 2 * d * tokens_per_float(precision))

    Raises
    ------
    EncodingRangeError
        A coordinate outside the encoding's range (the teacher's data is never clamped).
    """
    tx, _ = encode(xs, precision)
    tu, _ = encode(us, precision)
    n = xs.shape[0]
    return np.concatenate([tx.reshape(n, -1), tu.reshape(n, -1)], axis=1)


@dataclass
class TrainConfig:
    """Training hyper-parameters (config keys under ``synthetic.train``)."""

    steps: int = 2000
    batch_size: int = 128
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup: int = 100
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.99)
    grad_clip: float = 1.0
    eval_every: int = 250
    eval_pairs: int = 2048
    checkpoint_every: int = 500

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)
        if self.checkpoint_every % self.eval_every:
            raise ValueError(
                f"synthetic.train.checkpoint_every ({self.checkpoint_every}) must be a multiple of "
                f"eval_every ({self.eval_every}) so that a resumed run keeps the same training curve"
            )
        if self.steps < 1 or self.batch_size < 1 or self.warmup < 0:
            raise ValueError("synthetic.train: steps and batch_size must be >= 1 and warmup >= 0")

    def lr_at(self, step: int) -> float:
        """Learning rate of ``step`` (0-based): linear warm-up, then cosine to ``min_lr_ratio * lr``."""
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        frac = (step - self.warmup) / max(1, self.steps - self.warmup)
        return self.lr * (self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))


@dataclass
class History:
    """Training curves: mean train loss over each eval interval and test loss at each eval."""

    eval_step: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0


def u_loss(model: Transformer, tokens: torch.Tensor, n_x: int) -> torch.Tensor:
    """Mean cross-entropy (nats per token) of the u tokens given the x tokens, teacher-forced.

    Parameters
    ----------
    tokens : torch.LongTensor, shape (batch, 2 * n_x)
        x tokens then u tokens.
    n_x : int
        Tokens of x (= tokens of u).
    """
    logits = model(tokens[:, :-1])[:, n_x - 1:]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, n_x:].reshape(-1))


@torch.no_grad()
def heldout_loss(model: Transformer, tokens: torch.Tensor, n_x: int, batch: int = 4096) -> float:
    """Mean u-token cross-entropy over held-out pairs (nats per token)."""
    was = model.training
    model.eval()
    tot, n = 0.0, 0
    for i in range(0, tokens.shape[0], batch):
        t = tokens[i:i + batch]
        tot += float(u_loss(model, t, n_x)) * t.shape[0]
        n += t.shape[0]
    model.train(was)
    return tot / max(n, 1)


def batch_indices(seed: int, step: int, n: int, batch: int) -> torch.Tensor:
    """The rows of training step ``step``: a pure function of (seed, step), the same for every size."""
    g = torch.Generator().manual_seed(derive_seed(seed, "batch", step))
    return torch.randint(0, n, (batch,), generator=g)


def _param_groups(model: Transformer, weight_decay: float):
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def make_optimizer(model: Transformer, cfg: TrainConfig) -> torch.optim.AdamW:
    return torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=tuple(cfg.betas))


def _save(path: Path, state: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def train(
    model: Transformer,
    train_tokens: torch.Tensor,
    test_tokens: torch.Tensor,
    cfg: TrainConfig,
    *,
    seed: int,
    n_x: int,
    checkpoint: str | os.PathLike | None = None,
    progress=None,
) -> History:
    """Train ``model`` in place (resuming from ``checkpoint`` when it exists).

    Parameters
    ----------
    model : Transformer
        On the device to train on.
    train_tokens : torch.Tensor of uint8, shape (n_train, 2 * n_x)
        Training pairs (on any device; batches are moved to the model's device).
    test_tokens : torch.Tensor of uint8, shape (n_test, 2 * n_x)
        Held-out pairs for the test loss (the first ``cfg.eval_pairs`` are used).
    cfg : TrainConfig
    seed : int
        Experiment seed (batch order).
    n_x : int
        Tokens of x per pair.
    checkpoint : path, optional
        Checkpoint file; written every ``cfg.checkpoint_every`` steps and at the end.
    progress : callable, optional
        ``progress(step, train_loss, test_loss)`` after each evaluation.

    Returns
    -------
    History
        Also stored in the checkpoint; a finished checkpoint is returned without training.
    """
    device = next(model.parameters()).device
    opt = make_optimizer(model, cfg)
    hist, start = History(), 0
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None and ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start, hist = state["step"], History(**state["history"])
    test = test_tokens[: cfg.eval_pairs].to(device).long()
    n = train_tokens.shape[0]
    model.train()

    def save(step):
        if ckpt is not None:
            _save(ckpt, {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                         "history": vars(hist)})

    run_loss = torch.zeros((), device=device)
    run_n = 0
    t0 = time.perf_counter()
    for step in range(start, cfg.steps):
        lr = cfg.lr_at(step)
        for group in opt.param_groups:
            group["lr"] = lr
        idx = batch_indices(seed, step, n, cfg.batch_size)
        batch = train_tokens[idx].to(device, non_blocking=True).long()
        loss = u_loss(model, batch, n_x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        run_loss += loss.detach()
        run_n += 1
        done = step + 1
        if done % cfg.eval_every == 0 or done == cfg.steps:
            hist.eval_step.append(done)
            hist.train_loss.append(float(run_loss) / run_n)
            hist.test_loss.append(heldout_loss(model, test, n_x))
            run_loss.zero_()
            run_n = 0
            if progress is not None:
                progress(done, hist.train_loss[-1], hist.test_loss[-1])
        if ckpt is not None and (done % cfg.checkpoint_every == 0 or done == cfg.steps):
            hist.seconds += time.perf_counter() - t0
            t0 = time.perf_counter()
            save(done)
    return hist


def describe(model: Transformer) -> dict:
    """Size facts for the cube: layers, width, heads, exact parameter count."""
    s = model.spec
    return {"layers": s.layers, "width": s.width, "heads": s.heads, "params": count_params(model)}
