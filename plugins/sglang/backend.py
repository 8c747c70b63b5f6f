"""The ``sglang`` backend: an SGLang server, attached by URL or launched here.

Launch: ``python -m sglang.launch_server --model-path <model.source> --tp-size <tp_size>
--dp-size <dp_size> [--reasoning-parser <reasoning_parser>] [--enable-custom-logit-processor]``
on loopback with a free port, then poll ``/health`` until it answers (``health_timeout_s``),
and stop the server's process group on :meth:`close`, at interpreter exit, on Ctrl-C (the
engine's ``with`` block) and -- through ``PR_SET_PDEATHSIG`` -- when this process dies.
``command`` replaces the launch command (placeholders ``{python}``, ``{model}``, ``{host}``,
``{port}``), which is how the tests drive the same code path with a stand-in server.

Sampling goes through SGLang's OpenAI-compatible API: this class extends
:class:`hotmess.plugins.api.openai_compat.OpenAICompatBackend` (concurrency, retries, one seed
per draw) through its public hooks only (``budget_extra_body``, ``count_tokens``); launching
and stopping the server uses :mod:`hotmess.plugins.serving`, shared with the ``api`` backend.
Budgets (``budget_kinds == ("tokens",)``: token caps only; SGLang has no effort levels):

* models with native thinking (``model.thinking`` set, e.g. Qwen3) and a thinking-budget
  logit processor (``thinking_budget_processor``, by default chosen from the reasoning
  parser: ``qwen3`` -> ``Qwen3ThinkingBudgetLogitProcessor``, ``deepseek-r1`` ->
  ``DeepSeekR1ThinkingBudgetLogitProcessor``): SGLang itself ends the thinking after
  ``budget`` tokens (``custom_params.thinking_budget``); the reasoning comes back separated
  (``reasoning_content``) and its token count -- from the server's usage where reported,
  else from the model's tokenizer -- is checked per draw (``extra["budget_ok"]``: at most the
  budget plus the two tokens the processor forces, a newline and the end marker);
* other models (prompted chain of thought): the two-phase hard budget of the ``api`` backend.

``sglang`` itself is imported only to serialise the logit processor, i.e. only when this
backend is used with a thinking budget.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
from collections.abc import Sequence
from typing import Any

from hotmess.core.backend import ModelSpec
from hotmess.core.types import SampleRequest
from hotmess.plugins.api.common import ApiConfigError
from hotmess.plugins.api.openai_compat import OpenAICompatBackend
from hotmess.plugins.serving import ServerProcess, resolve_gguf, wait_for_health

log = logging.getLogger(__name__)

SGLANG_DEFAULTS: dict[str, Any] = {
    "url": None,
    "host": "127.0.0.1",
    "port": 0,
    "tp_size": 1,
    "dp_size": 1,
    "reasoning_parser": None,
    "thinking_budget_processor": "auto",
    "mem_fraction_static": None,
    "extra_args": (),
    "command": None,
    "health_path": "/health",
    "health_timeout_s": 900.0,
    "log_path": None,
    "env": None,
}
PROCESSORS = {
    "qwen3": "Qwen3ThinkingBudgetLogitProcessor",
    "qwen3-thinking": "Qwen3ThinkingBudgetLogitProcessor",
    "deepseek-r1": "DeepSeekR1ThinkingBudgetLogitProcessor",
    "glm45": "Glm4MoeThinkingBudgetLogitProcessor",
}


def sglang_command(
    *,
    tp_size: int = 1,
    dp_size: int = 1,
    reasoning_parser: str | None = None,
    custom_logit_processor: bool = False,
    mem_fraction_static: float | None = None,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The ``sglang.launch_server`` command line (with ``{python}``, ``{model}``, ``{host}``,
    ``{port}`` placeholders)."""
    cmd = [
        "{python}", "-m", "sglang.launch_server", "--model-path", "{model}",
        "--host", "{host}", "--port", "{port}",
        "--tp-size", str(int(tp_size)), "--dp-size", str(int(dp_size)),
    ]  # fmt: skip
    if reasoning_parser:
        cmd += ["--reasoning-parser", str(reasoning_parser)]
    if custom_logit_processor:
        cmd += ["--enable-custom-logit-processor"]
    if mem_fraction_static is not None:
        cmd += ["--mem-fraction-static", str(float(mem_fraction_static))]
    return cmd + [str(a) for a in extra_args]


class SGLangBackend(OpenAICompatBackend):
    """Sample through an SGLang server (see module docstring).

    Parameters
    ----------
    model : ModelSpec
        ``model.source``: hub id or local directory the server loads (``pypi:<package>``
        GGUFs are assembled first); ``model.thinking``: native thinking markers.
    **options
        ``url`` (attach to this running server, ``http://host:port``), ``host``, ``port``
        (0 = free), ``tp_size``, ``dp_size``, ``reasoning_parser``,
        ``thinking_budget_processor`` ("auto", a class name in
        ``sglang.srt.sampling.custom_logit_processor``, an already serialised processor
        (JSON), or null for the two-phase budget), ``mem_fraction_static``, ``extra_args``,
        ``command``, ``health_path``, ``health_timeout_s`` (seconds), ``log_path``, ``env``;
        and every option of the ``api`` backend (``concurrency``, ``max_retries``, ...).

    Raises
    ------
    hotmess.plugins.serving.ServerError
        The server exited or did not become healthy in time (the message has its log tail).
    """

    name = "sglang"
    #: Token caps (the thinking-budget processor or the two-phase budget).
    budget_kinds = ("tokens",)

    def __init__(self, model: ModelSpec, **options: Any) -> None:
        so = dict(SGLANG_DEFAULTS)
        for key in list(options):
            if key in SGLANG_DEFAULTS:
                value = options.pop(key)
                if value is not None:
                    so[key] = value
        if so["reasoning_parser"] == "auto":
            so["reasoning_parser"] = self._auto_parser(model)
        self.sglang_options = so
        self._launched: ServerProcess | None = None
        self._tokenizer = None
        self._processor_str = self._processor(model, so)
        if not model.thinking or self._processor_str is None:
            options.setdefault("reasoning", "two_phase")
        else:
            options.setdefault("reasoning", "server")
        options.setdefault("provider", "openai")
        if options.get("provider") != "openai":
            raise ApiConfigError("the sglang backend speaks the OpenAI-compatible API: option 'provider' must be 'openai'")
        url = so["url"]
        if url:
            url = str(url).rstrip("/").removesuffix("/v1")
            wait_for_health(url + so["health_path"], timeout_s=float(so["health_timeout_s"]))
        else:
            url = self._launch(model, so)
        self.server_url = url
        options["base_url"] = url + "/v1"
        try:
            super().__init__(model, **options)
        except BaseException:
            if self._launched is not None:
                self._launched.stop()
            raise

    # ------------------------------------------------------------------
    @staticmethod
    def _auto_parser(model: ModelSpec) -> str | None:
        """SGLang's reasoning parser for a thinking model, from its source name."""
        if not model.thinking:
            return None
        src = model.source.lower()
        for key, parser in (("qwen3", "qwen3"), ("deepseek-r1", "deepseek-r1"), ("glm-4.5", "glm45")):
            if key in src:
                return parser
        return None

    @staticmethod
    def _processor(model: ModelSpec, so: dict[str, Any]) -> str | None:
        choice = so["thinking_budget_processor"]
        if not model.thinking or choice in (None, "", "none", False):
            return None
        if choice == "auto":
            choice = PROCESSORS.get(str(so["reasoning_parser"] or "").lower())
            if choice is None:
                return None
        choice = str(choice)
        if choice.lstrip().startswith("{"):
            json.loads(choice)  # a serialised processor: must at least be JSON
            return choice
        from sglang.srt.sampling import custom_logit_processor as clp  # only here

        try:
            cls = getattr(clp, choice)
        except AttributeError as exc:
            raise ApiConfigError(
                f"option 'thinking_budget_processor': sglang has no logit processor {choice!r}"
            ) from exc
        return cls().to_str()

    def _launch(self, model: ModelSpec, so: dict[str, Any]) -> str:
        command = so["command"] or sglang_command(
            tp_size=so["tp_size"],
            dp_size=so["dp_size"],
            reasoning_parser=so["reasoning_parser"],
            custom_logit_processor=self._processor_str is not None,
            mem_fraction_static=so["mem_fraction_static"],
            extra_args=so["extra_args"],
        )
        self._launched = ServerProcess(
            list(command),
            model=resolve_gguf(model.source),
            host=so["host"],
            port=int(so["port"]),
            health_path=so["health_path"],
            health_timeout_s=float(so["health_timeout_s"]),
            env=so["env"],
            log_path=so["log_path"],
        )
        return self._launched.start()

    def launched_server(self) -> ServerProcess | None:
        return self._launched

    @property
    def server(self) -> ServerProcess | None:
        """The launched server process (None when attached)."""
        return self._launched

    def budget_extra_body(self, req: SampleRequest) -> dict[str, Any]:
        body: dict[str, Any] = {"separate_reasoning": True}
        if self._processor_str is not None and req.budget is not None:
            body["custom_logit_processor"] = self._processor_str
            body["custom_params"] = {"thinking_budget": int(req.budget)}
        return body

    def count_tokens(self, text: str) -> int | None:
        """Tokens of ``text`` under the served model's tokenizer (transformers, loaded once);
        None where it cannot be loaded."""
        if self._tokenizer is None:
            try:
                from transformers import AutoTokenizer

                self._tokenizer = AutoTokenizer.from_pretrained(self.model.source)
            except Exception as exc:
                log.warning("cannot load the tokenizer of %r to count reasoning tokens: %s", self.model.source, exc)
                self._tokenizer = False
        if self._tokenizer is False:
            return None
        return len(self._tokenizer.encode(text, add_special_tokens=False))

    def info(self) -> dict[str, str]:
        out = super().info()
        out["backend"] = self.name
        out["api_base_url"] = "sglang launched on loopback" if self._launched else "sglang attached"
        try:
            out["sglang_version"] = importlib.metadata.version("sglang")
        except importlib.metadata.PackageNotFoundError:
            out["sglang_version"] = "not installed here"
        so = self.sglang_options
        out["sglang_tp_size"] = str(so["tp_size"])
        out["sglang_dp_size"] = str(so["dp_size"])
        out["sglang_reasoning_parser"] = str(so["reasoning_parser"])
        out["sglang_budget_enforcement"] = "logit_processor" if self.settings["reasoning"] == "server" else "two_phase"
        return out

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._launched is not None:
                self._launched.stop()
