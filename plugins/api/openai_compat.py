"""The ``api`` backend's OpenAI-compatible provider (``provider: openai``): vLLM, SGLang,
llama.cpp and OpenAI through the official ``openai`` SDK (``docs/design.md``, "Backends").

Reasoning modes (option ``reasoning``) and the budgets they honour (``budget_kinds``):

``two_phase`` (default; token caps)
    A hard budget for prompted chain of thought or native thinking. Phase 1 generates at most
    ``budget`` tokens and stops at the end of the reasoning (the answer prefix, or the
    model's ``thinking.end`` marker); phase 2 continues the same text with the answer prefix
    appended (forced) for at most ``sampling.max_tokens`` answer tokens. Reasoning tokens are
    phase 1's completion tokens as counted by the server, so ``reasoning_tokens <= budget``
    holds per draw by construction; a draw that used the whole budget has finish reason
    ``"budget"``. Raw prompts go to ``/v1/completions``; chat messages go to
    ``/v1/chat/completions`` with the reasoning prefilled as the assistant message
    (``prefill: continue_final_message`` for vLLM/SGLang; ``new_turn`` otherwise).
``effort`` (OpenAI o-series; effort levels)
    ``reasoning_effort`` = the request's effort; ``max_completion_tokens`` = ``max_output_tokens``;
    reasoning tokens from ``usage.completion_tokens_details.reasoning_tokens``. A token cap is
    not honoured (the API has none for reasoning alone), so ``budget_kinds == ("effort",)``.
``server`` (token caps)
    The server enforces the budget itself (the ``sglang`` backend's thinking-budget logit
    processor, through :meth:`OpenAICompatBackend.budget_extra_body`); reasoning tokens are
    checked against the budget per draw (``extra["budget_ok"]``).
``none``
    No budget is sent (``budget_kinds == ()``).

Subclasses (the ``sglang`` backend) may override :meth:`OpenAICompatBackend.budget_extra_body`
and :meth:`OpenAICompatBackend.count_tokens`; both are part of this class's public contract.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hotmess.core.types import DrawResult, SampleRequest
from hotmess.plugins.api.common import ApiBase, ApiConfigError, Attempts, Generation


class OpenAICompatBackend(ApiBase):
    """An OpenAI-compatible server or the OpenAI API (module docstring; options:
    :class:`~hotmess.plugins.api.common.ApiBase`)."""

    default_url = "https://api.openai.com/v1"
    default_key_env = "OPENAI_API_KEY"

    def _setup(self) -> None:
        if self.settings["server"]:
            self._launch_server()

    def _launch_server(self) -> None:
        from hotmess.plugins.serving import ServerProcess, llama_cpp_command, resolve_gguf

        if self.settings["server"] != "llama_cpp":
            raise ApiConfigError(f"option 'server' must be 'llama_cpp' or null, not {self.settings['server']!r}")
        if self.settings["base_url"]:
            return  # attach to the given server instead of launching one
        so = dict(self.settings["server_options"] or {})
        path = resolve_gguf(self.model.source)
        cmd = llama_cpp_command(
            n_ctx=so.get("n_ctx", 4096), n_threads=so.get("n_threads"), extra=so.get("extra_args", ())
        )
        self._server = ServerProcess(
            cmd, model=path, health_path="/v1/models", health_timeout_s=so.get("health_timeout_s", 300)
        )
        self.settings["base_url"] = self._server.start() + "/v1"

    def _make_client(self):
        import openai

        s = self.settings
        self._sdk_version = f"openai {openai.__version__}"
        return openai.AsyncOpenAI(
            api_key=self._api_key, base_url=s["base_url"], timeout=float(s["timeout_s"]), max_retries=0
        )

    def _can_use_n(self, req: SampleRequest) -> bool:
        s = self.settings
        return bool(s["use_n"]) and (req.budget is None or s["reasoning"] != "two_phase")

    async def _sample_group(self, req: SampleRequest, js: list[int], sem: asyncio.Semaphore) -> list[DrawResult]:
        s = self.settings
        seed = req.seeds[js[0]]
        att = Attempts()
        try:
            if s["reasoning"] == "two_phase" and req.budget is not None:
                return [await self._two_phase(req, js[0], sem, att)]
            gens = await self._call(self._openai_single, sem, att, req, seed, len(js))
        except Exception as exc:
            return [self._error(req, j, self._describe(exc), att.retries) for j in js]
        return self._results(req, js, gens, att)


    def _messages(self, req: SampleRequest) -> list[dict[str, str]]:
        msgs = [dict(m) for m in req.messages] if req.messages is not None else [{"role": "user", "content": req.prompt}]
        system = req.metadata.get("system")
        if system and not any(m.get("role") in ("system", "developer") for m in msgs):
            msgs.insert(0, {"role": "system", "content": str(system)})
        return msgs

    def _sampling_kwargs(self, req: SampleRequest) -> tuple[dict[str, Any], dict[str, Any]]:
        """(SDK keyword arguments, extra body) for the request's sampling settings."""
        kw: dict[str, Any] = {}
        extra: dict[str, Any] = dict(self.settings["extra_body"] or {})
        if self.settings["send_sampling"]:
            sp = req.sampling
            kw["temperature"] = float(sp.temperature)
            if sp.top_p < 1.0:
                kw["top_p"] = float(sp.top_p)
            if sp.top_k > 0:
                extra["top_k"] = int(sp.top_k)  # vLLM, SGLang and llama.cpp accept top_k
        return kw, extra

    async def _openai_single(self, req: SampleRequest, seed: int, n: int = 1, **override) -> list[Generation]:
        """One OpenAI-compatible call; ``override`` replaces max tokens / stop / prompt."""
        s = self.settings
        client = self._get_client()
        kw, extra = self._sampling_kwargs(req)
        if s["send_seed"]:
            kw["seed"] = int(seed)
        if n > 1:
            kw["n"] = n
        max_tokens = override.pop("max_tokens", None)
        if s["reasoning"] == "effort":
            if req.effort is not None:
                kw["reasoning_effort"] = req.effort
            kw["max_completion_tokens"] = int(max_tokens or s["max_output_tokens"])
        elif s["reasoning"] == "server" and req.budget is not None and max_tokens is None:
            kw["max_tokens"] = int(req.budget) + int(req.sampling.max_tokens) + 8  # forced "\n</think>\n\n" slack
            extra.update(self.budget_extra_body(req))
        else:
            kw["max_tokens"] = int(max_tokens or s["max_output_tokens"])
        extra.update(override.pop("extra_body", {}))
        logprobs = override.pop("logprobs", False) or (n > 1)
        if "stop" in override and override["stop"]:
            kw["stop"] = override.pop("stop")
        override.pop("stop", None)
        prompt = override.pop("prompt", None)
        messages = override.pop("messages", None)
        if req.prompt is not None and messages is None:
            if logprobs:
                kw["logprobs"] = int(s["top_logprobs"])
            resp = await client.completions.create(
                model=self.model.source, prompt=prompt if prompt is not None else req.prompt, extra_body=extra or None, **kw
            )
            if len(resp.choices) == 1:
                return [self._parse_completion(resp.choices[0], resp.usage)]
            return [self._parse_completion(c) for c in sorted(resp.choices, key=lambda c: c.index)]
        if logprobs:
            kw["logprobs"] = True
            kw["top_logprobs"] = int(s["top_logprobs"])
        resp = await client.chat.completions.create(
            model=self.model.source, messages=messages or self._messages(req), extra_body=extra or None, **kw
        )
        if len(resp.choices) == 1:
            return [self._parse_chat(resp.choices[0], resp.usage)]
        return [self._parse_chat(c) for c in sorted(resp.choices, key=lambda c: c.index)]

    def budget_extra_body(self, req: SampleRequest) -> dict[str, Any]:
        """Request-body fields that make the server enforce ``req.budget`` (``server`` mode);
        the ``sglang`` backend overrides this."""
        return {}

    @staticmethod
    def _finish(raw: str | None) -> str:
        return "length" if raw == "length" else "stop"

    def _parse_completion(self, choice, usage=None) -> Generation:
        top = None
        lp = getattr(choice, "logprobs", None)
        tokens = None
        if lp is not None and getattr(lp, "top_logprobs", None):
            first = lp.top_logprobs[0]
            top = dict(first) if first else None
            tokens = len(lp.tokens or [])
        ct = getattr(usage, "completion_tokens", None) if usage is not None else tokens
        return Generation(text=choice.text or "", finish=self._finish(choice.finish_reason), completion_tokens=ct, first_top_logprobs=top)

    def _parse_chat(self, choice, usage=None) -> Generation:
        msg = choice.message
        content = msg.content or ""
        extra = getattr(msg, "model_extra", None) or {}
        reasoning = extra.get("reasoning_content") or extra.get("reasoning") or ""
        top = None
        tokens = None
        lp = getattr(choice, "logprobs", None)
        if lp is not None and getattr(lp, "content", None):
            tokens = len(lp.content)
            first = lp.content[0]
            top = {t.token: float(t.logprob) for t in (first.top_logprobs or [])} or {first.token: float(first.logprob)}
        ct = getattr(usage, "completion_tokens", None) if usage is not None else tokens
        rt = None
        details = getattr(usage, "completion_tokens_details", None) if usage is not None else None
        if details is not None and getattr(details, "reasoning_tokens", None) is not None:
            rt = int(details.reasoning_tokens)
        elif usage is not None and (getattr(usage, "model_extra", None) or {}).get("reasoning_tokens") is not None:
            rt = int(usage.model_extra["reasoning_tokens"])
        return Generation(
            text=content, reasoning=reasoning, finish=self._finish(choice.finish_reason), completion_tokens=ct,
            reasoning_tokens=rt, first_top_logprobs=top,
        )

    async def _two_phase(self, req: SampleRequest, j: int, sem: asyncio.Semaphore, att: Attempts) -> DrawResult:
        """Hard reasoning budget by two calls (see module docstring)."""
        s = self.settings
        seed = req.seeds[j]
        th = self.model.thinking
        end = th.get("end") if th else None
        stop = [end] if end else ([req.answer_prefix] if req.answer_prefix else None)
        try:
            g1 = (await self._call(self._openai_single, sem, att, req, seed, 1, max_tokens=int(req.budget), stop=stop))[0]
        except Exception as exc:
            return self._error(req, j, "reasoning phase: " + self._describe(exc), att.retries)
        reasoning_raw = g1.reasoning or g1.text
        reasoning = reasoning_raw
        if th and th.get("start") and th["start"] in reasoning:
            reasoning = reasoning.split(th["start"], 1)[1]
        hit_budget = g1.finish == "length"
        rt = g1.completion_tokens if g1.completion_tokens is not None else self.count_tokens(reasoning_raw)
        forced = reasoning_raw.rstrip() + ("\n" + end if end else "") + "\n" + (req.answer_prefix or "")
        kw: dict[str, Any] = {"max_tokens": int(req.sampling.max_tokens), "logprobs": req.want_logprobs}
        if req.prompt is not None:
            kw["prompt"] = req.prompt + forced
        else:
            kw["messages"] = self._messages(req) + [{"role": "assistant", "content": forced}]
            if s["prefill"] == "continue_final_message":
                kw["extra_body"] = {"continue_final_message": True, "add_generation_prompt": False}
        try:
            g2 = (await self._call(self._openai_single, sem, att, req, seed, 1, **kw))[0]
        except Exception as exc:
            res = self._error(req, j, "answer phase: " + self._describe(exc), att.retries)
            res.reasoning, res.reasoning_tokens = reasoning.strip(), int(rt or 0)
            return res
        finish = "budget" if hit_budget else ("length" if g2.finish == "length" else "stop")
        ct = (g1.completion_tokens or 0) + (g2.completion_tokens or 0)
        return DrawResult(
            text=(req.answer_prefix or "") + g2.text,
            reasoning=reasoning.strip(),
            output_tokens=int(ct),
            reasoning_tokens=int(rt) if rt is not None else -1,
            finish_reason=finish,  # type: ignore[arg-type]
            seed=seed,
            logprobs=self._label_logprobs(req, g2.first_top_logprobs),
            extra={
                "seed_sent": bool(s["send_seed"]),
                "retries": att.retries,
                "all_draws_identical": False,
                "reasoning_tokens_source": "two_phase",
                "budget_ok": bool(rt is not None and rt <= req.budget),
                "answer_finish": g2.finish,
            },
        )
