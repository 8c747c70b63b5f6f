"""The survey producer plugin (docs/science.md, "Survey"; Figs. 4b and 27).

People ranked entities (ML models, non-human organisms, well-known people, human
institutions) by intelligence and by coherence; coherence ranks are inverted to incoherence
ranks and both are averaged per entity with the standard error of the mean. The paper's raw
ranks are not public, so the producer imports a documented CSV (see
:mod:`hotmess.plugins.survey.importer`). Registered as producer ``survey`` (``hotmess run
experiment=survey``). Nothing heavy is imported here.
"""

from __future__ import annotations

from hotmess.core.hookspecs import hookimpl


def _factory(**options):
    from hotmess.plugins.survey.producer import SurveyProducer

    return SurveyProducer(**options)


@hookimpl
def register_producers(register):
    register(
        "survey",
        _factory,
        description="import a survey CSV of intelligence/coherence ranks",
        extra="",
        declares="hotmess.plugins.survey.producer:SurveyProducer",
    )
