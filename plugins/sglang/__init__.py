"""The ``sglang`` backend plugin: attach to or launch an SGLang server (``python -m
sglang.launch_server``) and sample through its OpenAI-compatible API with per-request seeds
and a hard thinking budget. ``sglang`` is imported only when the backend is used.
"""

from __future__ import annotations

from hotmess.core.hookspecs import hookimpl


def _factory(model, **options):
    from hotmess.plugins.sglang.backend import SGLangBackend

    return SGLangBackend(model, **options)


@hookimpl
def register_backends(register):
    register(
        "sglang",
        _factory,
        description="SGLang server (launched or attached): seeds per draw, hard thinking budgets",
        extra="sglang",
        budget_kinds=("tokens",),  # known before the model loads: wrong budgets refused at once
    )
