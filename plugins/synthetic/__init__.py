"""The synthetic optimizer producer plugin (docs/science.md, "Synthetic optimizer").

Transformers trained to imitate steepest descent on a quadratic; per-step bias and variance of
their rollouts. Registered as producer ``synthetic`` (``hotmess run experiment=synthetic``).
Nothing heavy is imported here; the implementation lives in
:mod:`hotmess.plugins.synthetic.experiment` and its siblings (torch is needed: extra
``synthetic``).
"""

from __future__ import annotations

from hotmess.core.hookspecs import hookimpl


def _factory(**options):
    from hotmess.plugins.synthetic.experiment import SyntheticProducer

    return SyntheticProducer(**options)


@hookimpl
def register_producers(register):
    register(
        "synthetic",
        _factory,
        description="transformers imitating steepest descent; per-step bias/variance",
        extra="synthetic",
        declares="hotmess.plugins.synthetic.experiment:SyntheticProducer",
    )
