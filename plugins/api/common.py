"""What every ``api`` provider shares: options, retries, concurrency, and the bookkeeping of
requests and draws (``docs/design.md``, "Backends").

The providers are subclasses of :class:`ApiBase`, one module each:
:mod:`hotmess.plugins.api.openai_compat` (OpenAI-compatible servers: vLLM, SGLang,
llama.cpp, OpenAI) and :mod:`hotmess.plugins.api.anthropic_messages` (Anthropic Messages).
:func:`hotmess.plugins.api.backend.ApiBackend` picks one from the ``provider`` option.

Seeds: every draw is its own request carrying its own seed (``extra["seed_sent"] = True``)
unless the provider takes none (Anthropic: ``seed_sent = False``) or ``use_n`` groups draws
into one request with ``n`` choices (the group shares the first draw's seed). After each
request the backend checks whether all its draws came back identical although their seeds
differ and the temperature is positive -- the symptom of a server that ignores seeds -- logs
a warning and sets ``extra["all_draws_identical"]`` on those draws.

Retries: 408/409/429/5xx answers, timeouts and connection errors are retried with
exponential backoff and jitter (tenacity), at most ``max_retries`` times per call; the SDKs'
own retries are off so that every retry is counted (``extra["retries"]``, and
:attr:`ApiBase.retry_counts`). A draw that still fails is a ``finish_reason="error"``
result whose ``error`` names the question, draw, seed, attempts and last error; the other
draws are kept.

Budgets (``budget_kinds``, decided per instance from the provider and ``reasoning`` mode,
:data:`BUDGET_KINDS`): token caps for ``two_phase`` and ``server`` (OpenAI-compatible) and
``thinking`` (Anthropic); effort levels for ``effort`` (OpenAI o-series); none for ``none``.

API keys are read from the environment variable named by ``api_key_env`` only and are never
returned by :meth:`ApiBase.info` or written anywhere.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlparse

from hotmess.core.backend import Backend, ModelSpec
from hotmess.core.types import DrawResult, SampleRequest

log = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "provider": "openai",
    "base_url": None,
    "api_key_env": None,
    "reasoning": None,  # None = by provider: openai -> two_phase, anthropic -> thinking
    "concurrency": 8,
    "timeout_s": 120.0,
    "max_retries": 4,
    "backoff_initial_s": 0.5,
    "backoff_max_s": 30.0,
    "backoff_jitter_s": 0.5,
    "use_n": False,
    "max_n": 16,
    "max_output_tokens": 4096,
    "send_seed": None,  # None = by provider
    "send_sampling": True,
    "prefill": "continue_final_message",
    "extra_body": None,
    "server": None,
    "server_options": None,
    "top_logprobs": 20,
}
PROVIDERS = ("openai", "anthropic")
REASONING_MODES = ("two_phase", "effort", "thinking", "server", "none")
#: The reasoning modes each provider implements.
PROVIDER_MODES = {"openai": ("two_phase", "effort", "server", "none"), "anthropic": ("thinking", "none")}
#: ``Backend.budget_kinds`` of each reasoning mode: what a budget of the cube can be.
BUDGET_KINDS: dict[str, tuple[str, ...]] = {
    "two_phase": ("tokens",),  # hard cap by two calls (openai_compat)
    "server": ("tokens",),  # the server enforces the cap (sglang's thinking-budget processor)
    "thinking": ("tokens",),  # Anthropic extended thinking: budget_tokens
    "effort": ("effort",),  # OpenAI reasoning_effort; a token cap is not honoured
    "none": (),  # budgets are not sent: only unbudgeted cells
}
PREFILL_MODES = ("continue_final_message", "new_turn")
RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})


class ApiConfigError(ValueError):
    """A bad ``api`` backend option (the message names the key)."""


@dataclass
class Generation:
    """One generated choice, normalised across providers."""

    text: str
    reasoning: str = ""
    finish: str = "stop"  # provider finish reason, normalised to stop/length
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None
    first_top_logprobs: dict[str, float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Attempts:
    """Retry bookkeeping of one draw (or group of draws sharing a call)."""

    retries: int = 0
    last_error: str = ""


def is_loopback(url: str | None) -> bool:
    if not url:
        return False
    host = urlparse(url).hostname or ""
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


def merge_options(model: ModelSpec, options: dict[str, Any]) -> dict[str, Any]:
    """Settings = defaults, then the model config's options, then the backend config's
    options; a ``None`` value never overrides. Unknown keys raise :class:`ApiConfigError`."""
    out = dict(DEFAULTS)
    for source_name, source in (("model", model.options), ("backend", options)):
        for key, value in (source or {}).items():
            if key in ("name", "_target_", "sizes", "chat", "thinking"):
                continue
            if key not in DEFAULTS:
                if source_name == "model":
                    continue  # model configs may carry options meant for other backends
                raise ApiConfigError(f"unknown api backend option {key!r} (known: {', '.join(sorted(DEFAULTS))})")
            if value is not None:
                out[key] = value
    if out["provider"] not in PROVIDERS:
        raise ApiConfigError(f"option 'provider' must be one of {PROVIDERS}, not {out['provider']!r}")
    if out["reasoning"] is None:
        out["reasoning"] = "thinking" if out["provider"] == "anthropic" else "two_phase"
    if out["reasoning"] not in REASONING_MODES:
        raise ApiConfigError(f"option 'reasoning' must be one of {REASONING_MODES}, not {out['reasoning']!r}")
    if out["reasoning"] not in PROVIDER_MODES[out["provider"]]:
        raise ApiConfigError(
            f"option 'reasoning': provider {out['provider']!r} supports {PROVIDER_MODES[out['provider']]}, "
            f"not {out['reasoning']!r}"
        )
    if out["prefill"] not in PREFILL_MODES:
        raise ApiConfigError(f"option 'prefill' must be one of {PREFILL_MODES}, not {out['prefill']!r}")
    if out["send_seed"] is None:
        out["send_seed"] = out["provider"] == "openai"
    for key in ("concurrency", "max_retries", "max_n", "max_output_tokens"):
        if int(out[key]) < (0 if key == "max_retries" else 1):
            raise ApiConfigError(f"option {key!r} must be a positive integer, not {out[key]!r}")
    return out


class LoopThread:
    """A private asyncio event loop on a daemon thread, so :meth:`ApiBase.sample` can be
    called synchronously (also from code that already runs an event loop)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="hotmess-api", daemon=True)
        self.thread.start()

    def run(self, coro):
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result()
        except BaseException:
            fut.cancel()
            raise

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        if not self.thread.is_alive():
            self.loop.close()


class ApiBase(Backend):
    """The part of the ``api`` backend every provider shares (module docstring).

    A provider subclass implements :meth:`_make_client` and :meth:`_sample_group`, and may
    override :meth:`_setup` (before the API key is read, e.g. to launch a server),
    :meth:`_can_use_n`, :meth:`_estimate_reasoning_tokens` and :meth:`count_tokens`.

    Parameters
    ----------
    model : ModelSpec
        ``model.source`` is the model name sent to the server (or, with
        ``server: llama_cpp``, the GGUF to serve). ``model.options`` may set any option below;
        the backend config's options override them.
    **options
        ``provider`` ("openai" | "anthropic"), ``base_url``, ``api_key_env``, ``reasoning``
        ("two_phase" | "effort" | "server" | "none" for openai; "thinking" | "none" for
        anthropic), ``concurrency`` (in-flight HTTP calls), ``timeout_s`` (per HTTP call,
        seconds), ``max_retries``, ``backoff_initial_s``, ``backoff_max_s``,
        ``backoff_jitter_s`` (seconds), ``use_n``, ``max_n``, ``max_output_tokens`` (tokens),
        ``send_seed``, ``send_sampling``, ``prefill``, ``extra_body`` (dict merged into every
        request body), ``server`` (``"llama_cpp"``: launch a llama.cpp server on loopback for
        ``model.source``), ``server_options`` (``n_ctx``, ``n_threads``, ``health_timeout_s``,
        ``extra_args``), ``top_logprobs``.

    Attributes
    ----------
    budget_kinds : tuple of str
        From the reasoning mode (:data:`BUDGET_KINDS`).

    Raises
    ------
    ApiConfigError
        Unknown option or bad value; no API key in the environment for a non-local URL.
    """

    name = "api"
    #: The provider's public endpoint (reported by :meth:`info` when ``base_url`` is unset).
    default_url = ""
    #: The environment variable holding the key when ``api_key_env`` is unset.
    default_key_env = ""

    def __init__(self, model: ModelSpec, **options: Any) -> None:
        super().__init__(model, **options)
        self.settings = merge_options(model, options)
        self.budget_kinds = BUDGET_KINDS[self.settings["reasoning"]]
        self.retry_counts: collections.Counter[str] = collections.Counter()
        self.calls = 0
        self._server = None
        self._client = None
        self._sdk_version = ""
        self._loop: LoopThread | None = None
        self._setup()
        self._api_key = self._read_api_key()
        self._loop = LoopThread()

    # ------------------------------------------------------------------ provider hooks
    def _setup(self) -> None:
        """Run before the API key is read (default: nothing)."""

    def _make_client(self):
        """The provider's async SDK client; sets ``self._sdk_version``."""
        raise NotImplementedError

    async def _sample_group(self, req: SampleRequest, js: list[int], sem: asyncio.Semaphore) -> list[DrawResult]:
        """The results of draws ``js`` of ``req`` (one per draw, errors included)."""
        raise NotImplementedError

    def _can_use_n(self, req: SampleRequest) -> bool:
        """True if the draws of ``req`` may share one call with ``n`` choices (default: no)."""
        return False

    def _estimate_reasoning_tokens(self, gen: Generation, text: str) -> int | None:
        """Reasoning tokens where the provider reports only the total (default: None)."""
        return None

    # ------------------------------------------------------------------ setup
    def _read_api_key(self) -> str:
        provider = self.settings["provider"]
        env = self.settings["api_key_env"] or self.default_key_env
        key = os.environ.get(env)
        if key:
            return key
        if is_loopback(self.settings["base_url"]):
            return "EMPTY"  # local servers take any key
        raise ApiConfigError(
            f"the {provider} API at {self.settings['base_url'] or 'its default URL'} needs an API key in the "
            f"environment variable {env} (option api_key_env names another variable)"
        )

    def _get_client(self):
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def info(self) -> dict[str, str]:
        s = self.settings
        if self._client is None:
            self._loop.run(self._init_client())
        url = s["base_url"] or self.default_url
        if self._server is not None:
            url = "llama.cpp server launched on loopback"
        return {
            "backend": self.name,
            "model_source": os.path.basename(self.model.source) if self._server else self.model.source,
            "api_provider": s["provider"],
            "api_base_url": url,
            "api_sdk": self._sdk_version,
            "api_reasoning_mode": s["reasoning"],
            "api_budget_kinds": ",".join(self.budget_kinds) or "none",
            "api_seed_sent": str(bool(s["send_seed"])),
            "api_max_retries": str(s["max_retries"]),
            "api_concurrency": str(s["concurrency"]),
        }

    async def _init_client(self) -> None:
        self._get_client()

    def close(self) -> None:
        if self._loop is not None and self._client is not None:
            try:
                self._loop.run(self._client.close())
            except Exception as exc:  # pragma: no cover - best effort on shutdown
                log.debug("closing client: %s", exc)
            self._client = None
        if self._loop is not None:
            self._loop.close()
            self._loop = None
        if self._server is not None:
            self._server.stop()
            self._server = None

    # ------------------------------------------------------------------ sampling
    def sample(self, requests: Sequence[SampleRequest]) -> list[list[DrawResult]]:
        """See :meth:`hotmess.core.backend.Backend.sample`. Runs every draw of every request
        concurrently (at most ``concurrency`` HTTP calls in flight)."""
        if self._loop is None:
            raise RuntimeError("the api backend is closed")
        return self._loop.run(self._sample_all(list(requests)))

    async def _sample_all(self, requests: list[SampleRequest]) -> list[list[DrawResult]]:
        self._get_client()
        sem = asyncio.Semaphore(int(self.settings["concurrency"]))
        out: list[list[DrawResult | None]] = [[None] * r.n_draws for r in requests]

        async def run_group(i: int, js: list[int]) -> None:
            req = requests[i]
            t0 = time.perf_counter()
            try:
                results = await self._sample_group(req, js, sem)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never lose a draw: turn anything into error results
                results = [self._error(req, j, f"{type(exc).__name__}: {exc}", 0) for j in js]
            dt = time.perf_counter() - t0
            for j, res in zip(js, results, strict=True):
                if math.isnan(res.latency_s):
                    res.latency_s = dt
                out[i][j] = res

        tasks = []
        for i, req in enumerate(requests):
            for js in self._groups(req):
                tasks.append(asyncio.ensure_future(run_group(i, js)))
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for t in tasks:
                t.cancel()
            raise
        final: list[list[DrawResult]] = []
        for i, req in enumerate(requests):
            row = out[i]
            missing = [j for j, r in enumerate(row) if r is None]
            if missing:  # pragma: no cover - defensive: would be a bug above
                raise RuntimeError(f"question {req.question_id!r}: draws {missing} got no result")
            self._check_identical(req, row)  # type: ignore[arg-type]
            final.append(row)  # type: ignore[arg-type]
        return final

    def _groups(self, req: SampleRequest) -> list[list[int]]:
        if not self._can_use_n(req):
            return [[j] for j in range(req.n_draws)]
        k = int(self.settings["max_n"])
        return [list(range(a, min(a + k, req.n_draws))) for a in range(0, req.n_draws, k)]

    # ------------------------------------------------------------------ retry

    def _retryable(self, exc: BaseException) -> bool:
        status = getattr(exc, "status_code", None)
        if status is not None:
            return int(status) in RETRYABLE_STATUS
        name = type(exc).__name__
        return name in ("APITimeoutError", "APIConnectionError", "TimeoutError", "ReadTimeout", "ConnectError")

    def _describe(self, exc: BaseException) -> str:
        status = getattr(exc, "status_code", None)
        msg = str(exc).splitlines()[0][:300] if str(exc) else ""
        out = f"{type(exc).__name__}" + (f" (HTTP {status})" if status else "") + (f": {msg}" if msg else "")
        server = self.launched_server()
        if server is not None and not server.alive():
            code = server.process.returncode if server.process is not None else None
            out += f" [the server launched for this run exited with code {code}; its log: {server.log_path}]"
        return out

    def launched_server(self):
        """The server process this backend launched, or None (attached / remote API)."""
        return self._server

    async def _call(self, fn, sem: asyncio.Semaphore, att: Attempts, *args, **kwargs):
        """Call ``fn(*args, **kwargs)`` under the concurrency limit with tenacity retries."""
        from tenacity import (
            AsyncRetrying,
            retry_if_exception,
            stop_after_attempt,
            wait_exponential_jitter,
        )

        s = self.settings

        def before_sleep(rs) -> None:
            exc = rs.outcome.exception()
            status = getattr(exc, "status_code", None)
            reason = str(status) if status else type(exc).__name__
            att.retries += 1
            att.last_error = self._describe(exc)
            self.retry_counts[reason] += 1
            log.debug("retry %d after %s", rs.attempt_number, att.last_error)

        retrying = AsyncRetrying(
            stop=stop_after_attempt(int(s["max_retries"]) + 1),
            wait=wait_exponential_jitter(
                multiplier=float(s["backoff_initial_s"]), max=float(s["backoff_max_s"]), jitter=float(s["backoff_jitter_s"])
            ),
            retry=retry_if_exception(self._retryable),
            before_sleep=before_sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                async with sem:
                    self.calls += 1
                    return await fn(*args, **dict(kwargs))

    def _error(self, req: SampleRequest, j: int, why: str, retries: int) -> DrawResult:
        msg = (
            f"question {req.question_id!r} draw {j} (seed {req.seeds[j]}): failed after {retries + 1} "
            f"attempt(s) (max_retries={self.settings['max_retries']}): {why}"
        )
        log.warning(msg)
        return DrawResult(
            text="",
            finish_reason="error",
            error=msg,
            seed=req.seeds[j],
            extra={"seed_sent": bool(self.settings["send_seed"]), "retries": retries, "all_draws_identical": False},
        )

    # ------------------------------------------------------------------ results
    def _results(self, req: SampleRequest, js: list[int], gens: list[Generation], att: Attempts) -> list[DrawResult]:
        """One result per draw of ``js`` from the generations of one call."""
        results = []
        for idx, j in enumerate(js):
            if idx >= len(gens):
                results.append(self._error(req, j, f"the server returned {len(gens)} choices for n={len(js)}", att.retries))
                continue
            results.append(self._finish_single(req, j, gens[idx], att.retries, shared=len(js)))
        return results

    def _label_logprobs(self, req: SampleRequest, top: dict[str, float] | None) -> dict[str, float] | None:
        """Log-probability of each option label as the first answer token (variants with
        leading spaces or parentheses pooled by log-sum-exp); ``-inf`` for a label not among
        the server's top log-probs."""
        if not (req.want_logprobs and req.option_labels and top):
            return None
        out: dict[str, float] = {}
        for label in req.option_labels:
            vals = [v for tok, v in top.items() if tok.strip().strip("(").strip() == label]
            out[label] = float(max(vals) + math.log(sum(math.exp(v - max(vals)) for v in vals))) if vals else -math.inf
        return out

    def _split_reasoning(self, req: SampleRequest, gen: Generation) -> tuple[str, str]:
        """(reasoning, answer) of a single-call generation: server-separated reasoning, the
        model's thinking markers, or the last answer prefix."""
        if gen.reasoning:
            return gen.reasoning, gen.text
        text = gen.text
        th = self.model.thinking
        if th and th.get("end") and th["end"] in text:
            head, _, tail = text.rpartition(th["end"])
            start = th.get("start")
            if start and start in head:
                head = head.split(start, 1)[1]
            return head.strip(), tail.strip()
        prefix = req.answer_prefix
        if prefix and prefix in text and self.model.thinking is None:
            k = text.rfind(prefix)
            return text[:k].rstrip(), text[k:]
        return "", text

    def _finish_single(self, req: SampleRequest, j: int, gen: Generation, retries: int, shared: int = 1) -> DrawResult:
        s = self.settings
        reasoning, text = self._split_reasoning(req, gen)
        rt = gen.reasoning_tokens
        source = "usage"
        if rt is None:
            est = self._estimate_reasoning_tokens(gen, text) if reasoning else None
            if est is not None:
                rt = est
                source = "estimate"
            elif reasoning:
                rt = self.count_tokens(reasoning)
                source = "tokenizer" if rt is not None else "unknown"
            else:
                rt = 0
                source = "none"
        extra: dict[str, Any] = {
            "seed_sent": bool(s["send_seed"]),
            "retries": retries,
            "all_draws_identical": False,
            "reasoning_tokens_source": source,
        }
        extra.update(gen.extra)
        if shared > 1:
            extra["seed_shared_by"] = shared
        finish = gen.finish
        if finish == "length" and not text.strip() and reasoning:
            finish = "budget" if req.budget is not None else "length"
        if req.budget is not None and rt is not None and s["reasoning"] == "server":
            extra["budget_ok"] = bool(rt <= req.budget + 2)  # the processor forces "\n" + end marker
            if rt >= req.budget:
                finish = "budget" if finish == "stop" else finish
        ct = gen.completion_tokens
        return DrawResult(
            text=text,
            reasoning=reasoning,
            output_tokens=int(ct) if ct is not None else -1,
            reasoning_tokens=int(rt) if rt is not None else -1,
            finish_reason=finish,  # type: ignore[arg-type]
            seed=req.seeds[j],
            logprobs=self._label_logprobs(req, gen.first_top_logprobs),
            extra=extra,
        )

    def count_tokens(self, text: str) -> int | None:
        """Tokens in ``text`` where the server did not report them (None = unknown); the
        ``sglang`` backend counts them with the model's tokenizer."""
        return None

    def _check_identical(self, req: SampleRequest, row: list[DrawResult]) -> None:
        ok = [r for r in row if r.finish_reason != "error"]
        seeds = {r.seed for r in ok}
        if len(ok) < 2 or len(seeds) < 2:
            return
        if len({(r.text, r.reasoning) for r in ok}) == 1:
            for r in ok:
                r.extra["all_draws_identical"] = True
            if req.sampling.temperature > 0:
                log.warning(
                    "question %r: all %d draws are identical although their seeds differ (temperature %g): "
                    "the server may ignore per-request seeds (seed_sent=%s)",
                    req.question_id, len(ok), req.sampling.temperature, self.settings["send_seed"],
                )


def with_options(model: ModelSpec, **options: Any) -> ModelSpec:
    """A copy of ``model`` with ``options`` merged into its options (helper for tests and
    scripts)."""
    return replace(model, options={**model.options, **options})
