"""The ``survey`` producer: imports a survey CSV into ``<out_dir>/<experiment>/cube.nc``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hotmess.core.producer import Producer
from hotmess.plugins.survey.importer import EXAMPLE_CSV, import_survey


class SurveyProducer(Producer):
    """Import a survey of intelligence / coherence ranks (docs/science.md, "Survey").

    Parameters
    ----------
    csv : str, optional
        Path of the survey CSV (format: :mod:`hotmess.plugins.survey.importer`); default the
        packaged example ``example_survey.csv`` (ILLUSTRATIVE ranks, not the paper's).
    n_entities : int, optional
        N of the coherence inversion ``N + 1 - rank``; default the number of entities in the
        file.

    The cube is made anew on every run (an import keeps no state, so no manifest).
    """

    name = "survey"
    outcome_kind = "survey"

    def __init__(self, csv: str | None = None, n_entities: int | None = None) -> None:
        self.csv = Path(csv) if csv else EXAMPLE_CSV
        self.n_entities = n_entities

    def produce(self, exp, store):
        """The survey cube (:func:`hotmess.plugins.survey.importer.import_survey`).

        Raises
        ------
        FileNotFoundError, hotmess.plugins.survey.importer.SurveyError
            The CSV is missing or malformed (the message names the file and line).
        """
        return import_survey(self.csv, n_entities=self.n_entities)

    def info(self) -> dict[str, Any]:
        return {"producer": self.name, "csv": self.csv.name, "n_entities": self.n_entities}
