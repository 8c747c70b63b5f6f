"""Bias/variance decompositions, incoherence and the grouping/fitting helpers of the paper.

Every function is a pure function of :class:`xarray.DataArray` inputs, vectorised over every
dimension it does not reduce. Dimension names are keyword arguments whose defaults are the
cube's names (``docs/design.md``, the cube; ``hotmess.core.schema``):

``model``, ``size``, ``budget``, ``question``, ``draw``
    the cube's axes;
``option`` / ``test`` / ``embedding`` / ``coordinate``
    the outcome dimension of multiple-choice, SWE-bench, open-ended and synthetic tasks;
``step``
    the step of a synthetic-optimizer rollout (never reduced here, so results are per step).

Missing data: cells and draws not run are NaN; a draw with a NaN in its outcome vector is
skipped; an entry NaN in every draw of a question is padding (probability and pass/fail
vectors only); a question with no valid draw gives NaN, never 0
(``docs/science.md#missing-data-and-padding``). Ties of an argmax are split fractionally
(:data:`TIE_RULE`, ``docs/science.md#ties``).

The families, one module each (every name is importable from here):

- :mod:`.decompositions`: ``smooth``, ``kl_decomposition``, ``brier_decomposition``,
  ``zero_one_decomposition``, ``accuracy`` (numpy core in :mod:`._kernels`);
- :mod:`.outcomes`: ``coverage_error``, ``embedding_variance``, ``point_decomposition``,
  ``format_error_counts``, ``format_error_rate``;
- :mod:`.grouping`: ``incoherence``, ``length_buckets``, ``incoherence_by_group``,
  ``incoherence_by_bucket``, ``difficulty_groups``, ``median_split``, ``overthinking``;
- :mod:`.fits`: ``power_law_fit``, ``joint_fit_incoherence``;
- :mod:`.resampling`: ``ensemble``, ``bootstrap_draws``, ``bootstrap_questions``;
- :mod:`.validation`: constants, the missing-data rules, ``present_options``, ``cells_run``.

Formulas: ``docs/science.md#metrics``.
"""

from hotmess.core.metrics import decompositions, fits, grouping, outcomes, resampling, validation
from hotmess.core.metrics.decompositions import *  # noqa: F403
from hotmess.core.metrics.fits import *  # noqa: F403
from hotmess.core.metrics.grouping import *  # noqa: F403
from hotmess.core.metrics.outcomes import *  # noqa: F403
from hotmess.core.metrics.resampling import *  # noqa: F403
from hotmess.core.metrics.validation import *  # noqa: F403

__all__ = [
    *validation.__all__,
    *decompositions.__all__,
    *outcomes.__all__,
    *grouping.__all__,
    *fits.__all__,
    *resampling.__all__,
]
