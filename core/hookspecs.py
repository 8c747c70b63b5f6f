"""Hook specifications: the only functions a plugin implements.

A plugin is a module (or object) with functions marked ``@hookimpl`` and is registered
through the ``hotmess`` entry-point group::

    [project.entry-points.hotmess]
    mybackend = "my_package.plugin"

Each hook receives a ``register`` callback and calls it once per thing it provides, with a
*factory* (a callable that builds the object on first use). Import heavy dependencies
(torch, openai, ...) inside the factory, not at module import, so that ``hotmess --help``
stays fast and a missing optional dependency only matters when the plugin is used.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("hotmess")
#: Marker for plugin authors: ``from hotmess.core import hookimpl``.
hookimpl = pluggy.HookimplMarker("hotmess")


@hookspec
def register_backends(register):
    """Register model backends.

    Call ``register(name, factory, description="...", extra="...")`` per backend.
    ``factory(model: ModelSpec, **options) -> hotmess.core.backend.Backend``; ``options`` are
    the keys of the ``backend`` config group entry. ``extra`` names the pip extra that
    installs the backend's dependencies (shown in error messages).
    """


@hookspec
def register_tasks(register):
    """Register tasks.

    Call ``register(name, factory, description="...", extra="...")`` per task.
    ``factory(**options) -> hotmess.core.task.Task``; ``options`` are the keys of the
    ``task`` config group entry.
    """


@hookspec
def register_embedders(register):
    """Register text embedders (for open-ended outcomes).

    Call ``register(name, factory, description="...", extra="...")``;
    ``factory(**options)`` returns an object with ``embed(texts: list[str]) -> ndarray``
    of shape ``(len(texts), dim)``.
    """


@hookspec
def register_producers(register):
    """Register producers: experiments that make their cube without the backend x task
    sampling loop (the synthetic optimizer, SWE-bench through Inspect, the survey, importers).

    Call ``register(name, factory, description="...", extra="...")`` per producer;
    ``factory(**options) -> hotmess.core.producer.Producer``; ``options`` are the keys of the
    ``producer`` config group entry (``docs/design.md``, "Plugins: backends, tasks, embedders, producers, figures").
    """


@hookspec
def register_figures(register):
    """Register figure/table builders shipped by a plugin.

    Call ``register(name, build, cubes=(...), need="all", title="", options={...},
    variables=(...), caption="", description="")`` per figure, with the same meaning as
    :func:`hotmess.paper.registry.figure`; ``build(cubes, settings) -> (Figure, numbers)``.
    ``hotmess paper`` builds them beside the built-in figures.
    """
