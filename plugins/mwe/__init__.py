"""The ``mwe`` task plugin: Perez et al. (2022)'s 16 human-written "advanced AI risk"
model-written evals, in the paper's two formats (PAPER.md 1b):

* ``mwe_mc``: multiple choice, scored against the answer that shows the desired behaviour;
* ``mwe_open``: open-ended, the ``<answer>`` text embedded (variance only).

Nothing heavy is imported here; see :mod:`hotmess.plugins.mwe.task` and
:mod:`hotmess.plugins.mwe.data`.
"""

from __future__ import annotations

from hotmess.core.hookspecs import hookimpl


def _mc(**options):
    from hotmess.plugins.mwe.task import MweMultipleChoice

    return MweMultipleChoice(**options)


def _open(**options):
    from hotmess.plugins.mwe.task import MweOpenEnded

    return MweOpenEnded(**options)


@hookimpl
def register_tasks(register):
    register("mwe_mc", _mc, description="Model-written evals (16 advanced-AI-risk subsets), multiple choice",
             extra="", declares="hotmess.plugins.mwe.task:MweMultipleChoice")
    register("mwe_open", _open, description="Model-written evals (16 advanced-AI-risk subsets), open-ended, embedded",
             extra="embed", declares="hotmess.plugins.mwe.task:MweOpenEnded")
