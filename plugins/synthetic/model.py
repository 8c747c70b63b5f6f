"""A decoder-only transformer family for the synthetic optimizer (the paper's section 3, docs/science.md).

Pre-LayerNorm blocks (causal multi-head self-attention, GELU MLP), learned token and position
embeddings, an untied output head. Sizes grow in depth (``layers``) and width (``width``);
each size is reported by its exact parameter count (:func:`count_params`). Incremental
decoding uses a preallocated key/value cache (:class:`KVCache`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class SizeSpec:
    """One model size.

    Attributes
    ----------
    name : str
        Label of the size in the cube (``size`` coordinate).
    layers, width, heads : int
        Depth, model width and attention heads (``width % heads == 0``).
    mlp_ratio : int
        MLP hidden width / model width.
    """

    name: str
    layers: int
    width: int
    heads: int
    mlp_ratio: int = 4

    def __post_init__(self) -> None:
        if self.layers < 1 or self.width < 1 or self.heads < 1 or self.width % self.heads:
            raise ValueError(
                f"size {self.name!r}: need layers, width, heads >= 1 and width divisible by heads "
                f"(got layers={self.layers}, width={self.width}, heads={self.heads})"
            )


class KVCache:
    """Preallocated keys and values of every layer, shape (layers, 2, batch, heads, max_len, head_dim)."""

    def __init__(self, model: Transformer, batch: int, device, dtype=torch.float32) -> None:
        s = model.spec
        self.kv = torch.empty(s.layers, 2, batch, s.heads, model.max_len, s.width // s.heads, device=device, dtype=dtype)
        self.length = 0


class Block(nn.Module):
    def __init__(self, width: int, heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.ln2 = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, mlp_ratio * width)
        self.fc2 = nn.Linear(mlp_ratio * width, width)

    def forward(self, h: torch.Tensor, cache: torch.Tensor | None = None, start: int = 0) -> torch.Tensor:
        B, T, W = h.shape
        H = self.heads
        q, k, v = self.qkv(self.ln1(h)).view(B, T, 3, H, W // H).permute(2, 0, 3, 1, 4)
        if cache is not None:
            cache[0, :, :, start:start + T] = k
            cache[1, :, :, start:start + T] = v
            k = cache[0, :, :, : start + T]
            v = cache[1, :, :, : start + T]
        # A prefix (start == 0) is causal; one new token attends to everything before it.
        causal = start == 0 and T > 1
        if start > 0 and T > 1:
            raise ValueError("the cache decodes one token at a time after the prefix")
        a = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        h = h + self.proj(a.transpose(1, 2).reshape(B, T, W))
        return h + self.fc2(F.gelu(self.fc1(self.ln2(h))))


class Transformer(nn.Module):
    """Decoder-only transformer over the 12-token number vocabulary.

    Parameters
    ----------
    spec : SizeSpec
    vocab_size : int
    max_len : int
        Longest sequence (tokens): one (x, u) pair, 2 * d * tokens_per_float.
    """

    def __init__(self, spec: SizeSpec, vocab_size: int, max_len: int) -> None:
        super().__init__()
        self.spec, self.max_len = spec, max_len
        self.tok = nn.Embedding(vocab_size, spec.width)
        self.pos = nn.Embedding(max_len, spec.width)
        self.blocks = nn.ModuleList(Block(spec.width, spec.heads, spec.mlp_ratio) for _ in range(spec.layers))
        self.ln_f = nn.LayerNorm(spec.width)
        self.head = nn.Linear(spec.width, vocab_size)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        std = 0.02
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                s = std / math.sqrt(2 * self.spec.layers) if name.endswith(("proj.weight", "fc2.weight")) else std
                nn.init.normal_(p, 0.0, s)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, tokens: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Logits for the next token at every position.

        Parameters
        ----------
        tokens : torch.LongTensor, shape (batch, T)
        cache : KVCache, optional
            Continue after ``cache.length`` cached tokens (then advanced by T).

        Returns
        -------
        torch.Tensor, shape (batch, T, vocab_size)

        Raises
        ------
        ValueError
            More than ``max_len`` tokens in total.
        """
        start = cache.length if cache is not None else 0
        T = tokens.shape[1]
        if start + T > self.max_len:
            raise ValueError(f"sequence of {start + T} tokens is longer than max_len={self.max_len}")
        pos = torch.arange(start, start + T, device=tokens.device)
        h = self.tok(tokens) + self.pos(pos)
        for i, block in enumerate(self.blocks):
            h = block(h, None if cache is None else cache.kv[i], start)
        if cache is not None:
            cache.length = start + T
        return self.head(self.ln_f(h))


def count_params(model: nn.Module) -> int:
    """Exact number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def build_model(spec: SizeSpec, vocab_size: int, max_len: int, seed: int) -> Transformer:
    """A freshly initialised model; the initialisation depends only on ``seed``."""
    g = torch.random.fork_rng(devices=[])
    with g:
        torch.manual_seed(seed)
        return Transformer(spec, vocab_size, max_len)
