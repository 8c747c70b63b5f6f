"""The ``api`` backend's entry point: :func:`ApiBackend` builds the provider's backend from
the ``provider`` option (``docs/design.md``, "Backends").

* :mod:`hotmess.plugins.api.common` -- options, retries, concurrency, request/draw
  bookkeeping (:class:`~hotmess.plugins.api.common.ApiBase`);
* :mod:`hotmess.plugins.api.openai_compat` -- OpenAI-compatible servers and the OpenAI API
  (:class:`~hotmess.plugins.api.openai_compat.OpenAICompatBackend`);
* :mod:`hotmess.plugins.api.anthropic_messages` -- Anthropic Messages
  (:class:`~hotmess.plugins.api.anthropic_messages.AnthropicBackend`);
* :mod:`hotmess.plugins.serving` -- launching a local server (``server: llama_cpp``).
"""

from __future__ import annotations

from typing import Any

from hotmess.core.backend import ModelSpec
from hotmess.plugins.api.common import ApiBase, ApiConfigError, merge_options, with_options

__all__ = ["ApiBackend", "ApiBase", "ApiConfigError", "with_options"]


def ApiBackend(model: ModelSpec, **options: Any) -> ApiBase:  # noqa: N802 - the plugin's class-like factory
    """The ``api`` backend for ``model``: an
    :class:`~hotmess.plugins.api.openai_compat.OpenAICompatBackend` or an
    :class:`~hotmess.plugins.api.anthropic_messages.AnthropicBackend`, by the ``provider``
    option (model options, then backend options; see
    :func:`~hotmess.plugins.api.common.merge_options`).

    Raises
    ------
    ApiConfigError
        Unknown option or bad value (the message names the key); no API key for a remote URL.
    """
    provider = merge_options(model, options)["provider"]
    if provider == "anthropic":
        from hotmess.plugins.api.anthropic_messages import AnthropicBackend

        return AnthropicBackend(model, **options)
    from hotmess.plugins.api.openai_compat import OpenAICompatBackend

    return OpenAICompatBackend(model, **options)
