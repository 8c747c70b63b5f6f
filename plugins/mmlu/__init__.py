"""MMLU task plugin (Hendrycks et al., 2021): registers the task ``mmlu``.

Heavy work (reading data, ``datasets``) happens in :mod:`hotmess.plugins.mmlu.task`, imported
by the factory.
"""

from __future__ import annotations

from hotmess.core.hookspecs import hookimpl


def _factory(**options):
    from hotmess.plugins.mmlu.task import MMLUTask

    return MMLUTask.from_options(**options)


@hookimpl
def register_tasks(register):
    register(
        "mmlu",
        _factory,
        description="MMLU multiple choice (cais/mmlu or local JSONL), letter or <PROB> answers",
        extra="datasets",
        declares="hotmess.plugins.mmlu.task:MMLUTask",
    )
