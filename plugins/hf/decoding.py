"""The decoding state machine of the ``hf`` backend: per-draw random streams, inverse-CDF
sampling, the reasoning budget and the forced answer (``docs/design.md``, "Backends"; the
budget rule is the paper's section 2, ``docs/science.md``).

Both classes plug into one ``transformers`` ``generate`` call per batch:
:class:`RowSampler` is its only logits processor (decoding never uses transformers' own
sampler), :class:`Controller` its stopping criterion.

Seed scheme (what is reproducible)
----------------------------------
Decoding never uses transformers' own sampler. Each draw (a row of a batch) owns a
``torch.Generator`` seeded with the draw's seed (``SampleRequest.seeds[j]``). At every decoding
step a logits processor (:class:`RowSampler`) takes one uniform number ``u`` from each row's
generator, applies that row's temperature, top-k and top-p to that row's logits only, and picks
the token by inverse-CDF sampling with ``u`` (candidates ordered by decreasing probability when
top-k or top-p is set, else in vocabulary order, which spares a full sort per step); it
then forces that token (all other logits ``-inf``, greedy ``generate``). Temperature ``0`` is
argmax. So the token of row ``i`` at its step ``t`` is a function of row ``i``'s logits at
that step and of the ``t``-th number of row ``i``'s own stream, and of nothing else in the batch.
Forced tokens (the answer prefix after a budget hit) also consume one number, so the stream
index equals the row's step index.

Guarantees:

1. **Same batch, same result.** The same requests (same order, same ``batch_size``, same
   device, dtype, library versions) give bit-identical texts on CPU.
2. **A draw alone vs in a batch.** A draw regenerated alone (or in another batch) uses the
   same random stream; its logits differ from the batched ones only by floating-point rounding
   (different left padding and matrix shapes change the order of floating-point operations;
   padded positions are masked and RoPE positions count real tokens only, so the computation is
   otherwise the same). Its text is identical unless such a rounding difference flips a token
   choice (a near-tie at the sampled ``u``), after which the two continuations diverge. The
   tests measure this agreement on the real model.
3. The seed of each draw is recorded in ``DrawResult.seed``.

Not guaranteed: identical results across devices (CPU vs CUDA), dtypes, torch/transformers
versions or thread counts.

Reasoning budget
----------------
One ``generate`` call per batch runs a per-row state machine (:class:`Controller`):

* **reasoning**: sampled until the row's generated text contains the reasoning end
  (``ModelSpec.thinking["end"]`` for native thinking, else ``request.answer_prefix``), EOS, or
  ``request.budget`` tokens (``None`` = the backend option ``max_reasoning_tokens``);
* on hitting the cap (finish reason ``"budget"``), the answer is forced: the tokens of
  ``[thinking end] + answer_separator + answer_prefix`` are emitted one per step;
* **answer**: sampled for at most ``sampling.max_tokens`` tokens. With prompted chain of
  thought the answer stops at the first newline after a non-blank character (the answer line,
  ``"Answer: B"``); with native thinking it stops at EOS. An answer cut at ``max_tokens``
  has finish reason ``"length"`` unless the budget was hit (``"budget"`` takes precedence;
  ``extra["answer_cut"]`` records the cut either way).

EOS during reasoning ends the draw with finish reason ``"stop"`` and an empty answer ``text``.
``reasoning_tokens`` counts the generated tokens before the one in which the reasoning end
starts (all of them at a budget hit); ``output_tokens`` counts every generated token
(reasoning, marker, forced and answer tokens).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import LogitsProcessor, StoppingCriteria

from hotmess.core.types import SamplingParams

# Row phases of the state machine.
REASON, FORCE, ANSWER, DONE = 0, 1, 2, 3


@dataclass
class Row:
    """One draw of one request, as scheduled in a batch."""

    req: int
    draw: int
    seed: int
    prompt_ids: tuple[int, ...]
    sampling: SamplingParams
    cap: int  # reasoning-token cap
    end_marker: str  # reasoning end (thinking end or answer prefix)
    force_ids: tuple[int, ...]  # tokens appended at a budget hit
    answer_marker: str  # text that starts the answer (answer prefix, or "" for native thinking)
    label_ids: dict[str, tuple[int, ...]]  # option label -> candidate first-token ids
    stop_at_newline: bool


class Controller(StoppingCriteria):
    """Per-row state machine of one ``generate`` call; also its stopping criterion.

    ``observe`` is called by ``generate`` after every appended token (as a stopping
    criterion) and moves each row between the phases reasoning -> (forcing) -> answer -> done.
    """

    def __init__(self, rows: Sequence[Row], start: int, tokenizer, eos_ids: set[int]):
        self.rows = list(rows)
        self.start = start  # column where generated tokens begin
        self.tok = tokenizer
        self.eos = eos_ids
        n = len(rows)
        self.phase = np.full(n, REASON, dtype=np.int8)
        self.n_gen = np.zeros(n, dtype=np.int64)  # generated (incl. forced) tokens so far
        self.n_reason = np.zeros(n, dtype=np.int64)  # tokens generated in the reasoning phase
        self.n_answer = np.zeros(n, dtype=np.int64)  # tokens sampled in the answer phase
        self.answer_col = np.zeros(n, dtype=np.int64)  # first column of the answer phase
        self.force_pos = np.zeros(n, dtype=np.int64)
        self.budget_hit = np.zeros(n, dtype=bool)
        self.eos_in_reasoning = np.zeros(n, dtype=bool)
        self.answer_cut = np.zeros(n, dtype=bool)
        self.logprobs: list[dict[str, float] | None] = [None] * n
        self._tail = [max(len(r.end_marker), 1) + 2 for r in rows]
        for i, r in enumerate(rows):
            if r.cap <= 0:
                self._enter_force(i)

    def _enter_force(self, i: int) -> None:
        self.budget_hit[i] = True
        if self.rows[i].force_ids:
            self.phase[i] = FORCE
            self.force_pos[i] = 0
        else:
            self._enter_answer(i, self.start + int(self.n_gen[i]))

    def _enter_answer(self, i: int, col: int) -> None:
        self.phase[i] = ANSWER
        self.answer_col[i] = col
        if self.rows[i].sampling.max_tokens <= 0:
            self.phase[i] = DONE

    def __call__(self, input_ids: torch.LongTensor, scores=None, **kwargs) -> torch.BoolTensor:
        ids = input_ids.tolist()
        cur = input_ids.shape[1]
        for i, row in enumerate(self.rows):
            ph = self.phase[i]
            if ph == DONE:
                continue
            seq = ids[i]
            tok = seq[-1]
            self.n_gen[i] += 1
            if ph == REASON:
                self.n_reason[i] += 1
                if tok in self.eos:
                    self.eos_in_reasoning[i] = True
                    self.phase[i] = DONE
                    continue
                tail = self.tok.decode(seq[max(self.start, cur - self._tail[i]):], skip_special_tokens=False)
                if row.end_marker and row.end_marker in tail:
                    self._enter_answer(i, cur)
                elif self.n_reason[i] >= row.cap:
                    self._enter_force(i)
            elif ph == FORCE:
                self.force_pos[i] += 1
                if self.force_pos[i] >= len(row.force_ids):
                    self._enter_answer(i, cur)
            elif ph == ANSWER:
                self.n_answer[i] += 1
                if tok in self.eos:
                    self.phase[i] = DONE
                    continue
                if row.stop_at_newline:
                    text = self.tok.decode(seq[self.answer_col[i]:], skip_special_tokens=True)
                    if "\n" in text.lstrip():
                        self.phase[i] = DONE
                        continue
                if self.n_answer[i] >= row.sampling.max_tokens:
                    self.answer_cut[i] = True
                    self.phase[i] = DONE
        return torch.from_numpy(self.phase == DONE).to(input_ids.device)


class RowSampler(LogitsProcessor):
    """Samples each row with its own generator and sampling parameters, then forces the
    token (module docstring, "Seed scheme"). Rows being forced get their forced token; rows
    entering the answer phase record log-probs of the option labels."""

    def __init__(self, rows: Sequence[Row], ctrl: Controller, device: torch.device):
        self.rows = list(rows)
        self.ctrl = ctrl
        self.device = device
        self.gens = [torch.Generator(device="cpu").manual_seed(int(r.seed)) for r in rows]
        self.temp = torch.tensor([float(r.sampling.temperature) for r in rows], device=device)
        groups: dict[tuple[int, float], list[int]] = {}
        for i, r in enumerate(rows):
            if r.sampling.temperature > 0:
                key = (max(int(r.sampling.top_k), 0), float(r.sampling.top_p))
                groups.setdefault(key, []).append(i)
        self.groups = {k: torch.tensor(v, device=device) for k, v in groups.items()}
        self.greedy = torch.tensor([r.sampling.temperature <= 0 for r in rows], device=device)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        ctrl = self.ctrl
        # One uniform per row per step, from the row's own stream (always drawn: stream index
        # = step index).
        u = torch.cat([torch.rand(1, generator=g, dtype=torch.float64) for g in self.gens]).to(self.device)
        scores = scores.float()
        if bool(self.greedy.any()):
            choice = scores.argmax(dim=-1)
        else:
            choice = torch.zeros(scores.shape[0], dtype=torch.long, device=scores.device)
        for (top_k, top_p), idx in self.groups.items():
            choice[idx] = sample_rows(scores[idx], self.temp[idx], top_k, top_p, u[idx])
        for i in np.flatnonzero(ctrl.phase == FORCE):
            choice[i] = self.rows[i].force_ids[ctrl.force_pos[i]]
        for i in np.flatnonzero((ctrl.phase == ANSWER) & (ctrl.n_answer == 0)):
            row = self.rows[i]
            if row.label_ids and ctrl.logprobs[i] is None:
                lp = torch.log_softmax(scores[i], dim=-1)
                ctrl.logprobs[i] = {
                    lab: float(torch.logsumexp(lp[list(ids)], dim=0)) for lab, ids in row.label_ids.items()
                }
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(1, choice[:, None], 0.0)
        return out


def sample_rows(logits: torch.Tensor, temp: torch.Tensor, top_k: int, top_p: float, u: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF sampling, row by row independent.

    Parameters
    ----------
    logits : Tensor, shape (rows, vocab)
    temp : Tensor, shape (rows,)
        Temperatures (> 0).
    top_k : int
        Keep the ``top_k`` most likely tokens (0 = all).
    top_p : float
        Keep the smallest prefix of the tokens sorted by decreasing probability whose mass
        reaches ``top_p`` (1 = all).
    u : Tensor, shape (rows,)
        Uniform numbers in [0, 1), float64.

    Returns
    -------
    Tensor, shape (rows,)
        Token ids.
    """
    scaled = logits / temp[:, None]
    vocab = scaled.shape[-1]
    if top_k <= 0 and top_p >= 1.0:
        cand_idx = None
        cand = scaled
    else:
        k = vocab if top_k <= 0 else min(top_k, vocab)
        cand, cand_idx = torch.topk(scaled, k, dim=-1, sorted=True)
    probs = torch.softmax(cand.double(), dim=-1)
    if top_p < 1.0:
        before = torch.cumsum(probs, dim=-1) - probs
        probs = probs.masked_fill(before >= top_p, 0.0)
    cdf = torch.cumsum(probs, dim=-1)
    target = (u * cdf[:, -1])[:, None]
    pos = torch.searchsorted(cdf, target, right=True).clamp_(max=cdf.shape[-1] - 1)
    # never pick a zero-probability tail entry because of rounding
    pos = torch.minimum(pos, (probs > 0).sum(dim=-1, keepdim=True) - 1)
    if cand_idx is None:
        return pos[:, 0]
    return cand_idx.gather(1, pos)[:, 0]
