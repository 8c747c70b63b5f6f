"""The Hugging Face transformers backend plugin (``hf``).

Registers the backend ``hf`` through the ``hotmess`` entry-point group, exactly as a third-party
plugin would. This module imports nothing heavy: torch and transformers are imported by
:mod:`hotmess.plugins.hf.backend` when the factory is first called. Install the dependencies
with ``pip install 'hotmess[hf]'``.
"""

from __future__ import annotations

from hotmess.core.hookspecs import hookimpl


def _make_backend(model, **options):
    from hotmess.plugins.hf.backend import HFBackend

    return HFBackend(model, **options)


@hookimpl
def register_backends(register):
    register(
        "hf",
        _make_backend,
        description="Hugging Face transformers on CPU/GPU (hub id, local directory or GGUF; "
        "batched generate with per-draw seeds and a reasoning budget)",
        extra="hf",
        budget_kinds=("tokens",),  # known before the model loads: wrong budgets refused at once
    )
