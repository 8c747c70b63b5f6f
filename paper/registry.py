"""Registry of figure/table builders.

A builder is a function ``build(cubes: dict[str, xarray.Dataset], settings: dict) -> (Figure,
dict)`` that reads cubes only (never a backend) and returns the matplotlib figure and the
plotted numbers (JSON-serialisable; the figure may be ``None`` for a figure that is data only,
such as the transcripts of Fig. 19), registered with :func:`figure`::

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
- ``kind``: the cube kind the builder reads (``hotmess.core.schema.KINDS``, e.g. ``"tests"``);
  a cube of another kind is reported as foreign instead of reaching the builder.
- ``option_help``: one line per option (what it chooses; ``hotmess paper --list`` shows it).

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
    kind: str | None = None
    option_help: dict[str, str] = field(default_factory=dict)

    @property
    def builder(self) -> str:
        """``module:function`` of the build function."""
        return f"{getattr(self.build, '__module__', '?')}:{getattr(self.build, '__qualname__', repr(self.build))}"


FIGURES: dict[str, FigureSpec] = {}


def figure(name: str, *, cubes: tuple[str, ...], need: Literal["all", "any"] = "all", title: str = "",
           options: dict[str, Any] | None = None, variables: tuple[str, ...] = (), caption: str = "",
           kind: str | None = None, option_help: dict[str, str] | None = None):
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
                                   tuple(variables), caption, kind, dict(option_help or {}))
        return fn

    return deco
