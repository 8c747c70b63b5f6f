"""The ``example_incoherence`` figure: Brier incoherence per calculator size and budget."""

from __future__ import annotations

from hotmess.core import metrics, schema


def incoherence_by_budget(cubes, settings=None):
    """Incoherence (ratio of sums over questions; Brier decomposition of the unsmoothed
    probability vectors) of every (size, budget) cell of the ``arith_demo`` cube, one line per
    size.

    Returns
    -------
    (matplotlib.figure.Figure, dict)
        The figure and its numbers: ``incoherence[size][budget]``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cube = schema.require(cubes["arith_demo"], ["outcome", "target"], experiment="arith_demo",
                          needed_by="figure example_incoherence")
    brier = metrics.brier_decomposition(cube.outcome, cube.target, delta=0.0)
    inc = metrics.incoherence(brier.variance, brier.error, dim="question")
    fig, ax = plt.subplots(figsize=(4, 3))
    numbers = {"incoherence": {}}
    for size in cube["size"].values:
        row = inc.sel(model=cube["model"].values[0], size=size)
        numbers["incoherence"][str(size)] = {str(b): float(row.sel(budget=b)) for b in cube["budget"].values}
        ax.plot([str(b) for b in cube["budget"].values], row.values, marker="o", label=str(size))
    ax.set_xlabel("reasoning budget (words)")
    ax.set_ylabel("incoherence")
    ax.legend()
    return fig, numbers
