"""The SWE-bench Verified producer plugin (docs/science.md, "SWE-bench"; Figs. 2b and 25).

SWE-bench runs through Inspect (``inspect_ai``) with inspect_evals' SWE-bench task and a
minimal ReAct bash agent; the eval logs are converted into a cube of per-run pass/fail
vectors over each instance's FAIL_TO_PASS and PASS_TO_PASS tests
(:mod:`hotmess.plugins.swebench.convert`). Registered as producer ``swebench`` (``hotmess run
experiment=swebench_frontier``; needs Docker, network and API keys at run time). Nothing
heavy is imported here (extra ``swebench``).
"""

from __future__ import annotations

from hotmess.core.hookspecs import hookimpl


def _factory(**options):
    from hotmess.plugins.swebench.producer import SWEBenchProducer

    return SWEBenchProducer(**options)


@hookimpl
def register_producers(register):
    register(
        "swebench",
        _factory,
        description="SWE-bench Verified via inspect_ai/inspect_evals; per-test pass/fail cube",
        extra="swebench",
        declares="hotmess.plugins.swebench.producer:SWEBenchProducer",
    )
