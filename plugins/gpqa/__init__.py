"""GPQA task plugin (Rein et al., 2023): registers the task ``gpqa``.

Heavy work (reading data, ``datasets``) happens in :mod:`hotmess.plugins.gpqa.task`, imported
by the factory.
"""

from __future__ import annotations

from hotmess.core.hookspecs import hookimpl


def _factory(**options):
    from hotmess.plugins.gpqa.task import GPQATask

    return GPQATask.from_options(**options)


@hookimpl
def register_tasks(register):
    register(
        "gpqa",
        _factory,
        description="GPQA main/diamond (gated Idavidrein/gpqa or local CSV/JSONL), options shuffled once per question",
        extra="datasets",
        declares="hotmess.plugins.gpqa.task:GPQATask",
    )
