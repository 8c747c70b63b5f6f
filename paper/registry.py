"""Registry of figure/table builders.

A builder is a function ``build(cubes: dict[str, xarray.Dataset], settings: dict) -> (Figure,
dict)`` that reads cubes only (never a backend) and returns the matplotlib figure and the
plotted numbers (JSON-serialisable), registered with :func:`figure`::

    @figure("fig02a", cubes=("gpqa_frontier", "gpqa_qwen3", "cpu_demo"), need="any",
            title="Incoherence vs reasoning length", options={"n_buckets": 5},
            variables=("outcome", "target", "reasoning_tokens"))
    def build(cubes, settings): ...

- ``cubes`` names experiment cubes (``<results>/<experiment>/cube.nc``); ``need="all"``
  builds only when every cube exists, ``need="any"`` when at least one does (the builder then
  receives only those present).
- ``options``: the builder's named choices (the paper's OPEN choices) with their defaults;
  ``settings`` passed to the builder holds these defaults overridden by the user's settings,
  and is written into the figure's JSON.
- ``variables``: the data variables / coordinates it reads from every cube; checked with
  :func:`hotmess.core.schema.require` before the builder runs.
- The numbers may hold ``"claims"``: a list of :meth:`hotmess.paper.claims.Claim.to_dict`.
- ``caption``: one or two sentences for the report page.

Third-party packages register builders the same way through the ``register_figures`` hook
(``docs/design.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class FigureSpec:
    name: str
    cubes: tuple[str, ...]
    build: Callable
    need: Literal["all", "any"] = "all"
    title: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    variables: tuple[str, ...] = ()
    caption: str = ""


FIGURES: dict[str, FigureSpec] = {}


def figure(name: str, *, cubes: tuple[str, ...], need: Literal["all", "any"] = "all", title: str = "",
           options: dict[str, Any] | None = None, variables: tuple[str, ...] = (), caption: str = ""):
    """Register a figure builder under ``name`` (see module docstring).

    Raises
    ------
    ValueError
        Another function is already registered under ``name``.
    """

    def deco(fn):
        if name in FIGURES and FIGURES[name].build is not fn:
            raise ValueError(f"figure {name!r} is registered twice")
        FIGURES[name] = FigureSpec(name, tuple(cubes), fn, need, title, dict(options or {}),
                                   tuple(variables), caption)
        return fn

    return deco
