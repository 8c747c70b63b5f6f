"""The ``api`` backend's Anthropic provider (``provider: anthropic``): the Messages API through
the official ``anthropic`` SDK (``docs/design.md``, "Backends").

Reasoning modes (option ``reasoning``) and the budgets they honour (``budget_kinds``):

``thinking`` (default; token caps)
    Extended thinking: ``thinking.budget_tokens`` = the request's budget, ``max_tokens`` =
    budget + answer tokens. Anthropic reports one output-token count (thinking included);
    reasoning tokens are that count minus an estimate of the answer's tokens (4 characters
    per token), flagged in ``extra["reasoning_tokens_source"] = "estimate"``. Extended
    thinking requires temperature 1 and no top-k, so only ``top_p`` (at least 0.95) is sent.
``none``
    No thinking (``budget_kinds == ()``).

The API takes no seed: ``extra["seed_sent"] = False`` on every draw.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from hotmess.core.types import DrawResult, SampleRequest
from hotmess.plugins.api.common import ApiBase, Attempts, Generation


class AnthropicBackend(ApiBase):
    """The Anthropic Messages API (module docstring; options:
    :class:`~hotmess.plugins.api.common.ApiBase`)."""

    default_url = "https://api.anthropic.com"
    default_key_env = "ANTHROPIC_API_KEY"

    def _make_client(self):
        import anthropic

        s = self.settings
        self._sdk_version = f"anthropic {anthropic.__version__}"
        return anthropic.AsyncAnthropic(
            api_key=self._api_key, base_url=s["base_url"], timeout=float(s["timeout_s"]), max_retries=0
        )

    async def _sample_group(self, req: SampleRequest, js: list[int], sem: asyncio.Semaphore) -> list[DrawResult]:
        att = Attempts()
        try:
            gens = [await self._call(self._anthropic, sem, att, req)]
        except Exception as exc:
            return [self._error(req, j, self._describe(exc), att.retries) for j in js]
        return self._results(req, js, gens, att)

    def _estimate_reasoning_tokens(self, gen: Generation, text: str) -> int | None:
        """Output tokens minus ceil(len(answer) / 4) (module docstring)."""
        if gen.completion_tokens is None:
            return None
        return max(0, int(gen.completion_tokens) - math.ceil(len(text) / 4))

    async def _anthropic(self, req: SampleRequest) -> Generation:
        s = self.settings
        client = self._get_client()
        msgs = [dict(m) for m in req.messages] if req.messages is not None else [{"role": "user", "content": req.prompt}]
        system = req.metadata.get("system")
        sys_msgs = [m for m in msgs if m.get("role") == "system"]
        msgs = [m for m in msgs if m.get("role") != "system"]
        if sys_msgs:
            system = "\n\n".join(str(m["content"]) for m in sys_msgs)
        kw: dict[str, Any] = {"model": self.model.source, "messages": msgs}
        if system:
            kw["system"] = str(system)
        budget = req.budget if s["reasoning"] == "thinking" else None
        # Sampling fields go in the body directly: recent SDKs no longer name them.
        body: dict[str, Any] = dict(s["extra_body"] or {})
        if budget is not None:
            kw["thinking"] = {"type": "enabled", "budget_tokens": int(budget)}
            kw["max_tokens"] = int(budget) + int(req.sampling.max_tokens)
            # extended thinking requires temperature 1 and no top_k; top_p >= 0.95 is allowed
            if s["send_sampling"] and req.sampling.top_p < 1.0:
                body["top_p"] = max(0.95, float(req.sampling.top_p))
        else:
            kw["max_tokens"] = int(s["max_output_tokens"])
            if s["send_sampling"]:
                body["temperature"] = float(req.sampling.temperature)
                if req.sampling.top_p < 1.0:
                    body["top_p"] = float(req.sampling.top_p)
                if req.sampling.top_k > 0:
                    body["top_k"] = int(req.sampling.top_k)
        if body:
            kw["extra_body"] = body
        resp = await client.messages.create(**kw)
        text = "".join(getattr(b, "text", "") for b in resp.content if b.type == "text")
        thinking = "".join(getattr(b, "thinking", "") for b in resp.content if b.type == "thinking")
        redacted = sum(1 for b in resp.content if b.type == "redacted_thinking")
        finish = "length" if resp.stop_reason == "max_tokens" else "stop"
        gen = Generation(text=text, reasoning=thinking, finish=finish, completion_tokens=int(resp.usage.output_tokens))
        if budget is not None and not thinking and not redacted:
            gen.reasoning_tokens = 0
        if redacted:
            gen.extra["redacted_thinking_blocks"] = redacted
        gen.extra["stop_reason"] = str(resp.stop_reason)
        return gen
