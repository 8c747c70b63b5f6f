"""The embedder contract: text -> vector, for open-ended outcomes.

An open-ended task (e.g. ``mwe_open``) scores each draw's answer as an embedding; the
embedders are plugins registered with ``register_embedders`` and built by the task as
``hotmess.core.plugins.create("embedders", name, **options)``. The variance of a question is
then the mean squared distance of its draws' embeddings from their mean
(``docs/science.md``, "Open-ended outcomes"; ``docs/design.md``, "Plugins").
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np


class Embedder(ABC):
    """Turns texts into fixed-length vectors.

    Built by the factory a plugin registers with ``register_embedders`` as
    ``factory(**options)``. The conformance kit (:func:`hotmess.testing.check_embedder`)
    checks the rules below.

    Attributes
    ----------
    name : str
        Registered name (``"openai"``, ``"minilm"``).
    dim : int
        Length of every vector (may be a property that asks the model once).
    """

    name: str = "embedder"
    dim: int
    #: The typed options (a dataclass; :mod:`hotmess.core.options`). ``None``: the
    #: constructor's signature declares them.
    Options: ClassVar[type | None] = None

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``.

        Returns
        -------
        numpy.ndarray, shape (len(texts), dim)
            Finite floats for every text (empty, non-ASCII and very long texts included);
            ``embed([])`` has shape ``(0, dim)``. A text embeds to the same vector alone and
            within a batch.
        """

    def info(self) -> dict[str, Any]:
        """Provenance for the cube (model name, dimensions, versions; no secrets, no
        home-directory paths)."""
        return {"embedder": self.name}
