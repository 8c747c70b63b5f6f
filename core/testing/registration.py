"""Checks that a plugin is installed and registered the way the engine finds it."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from hotmess.testing._common import fail

#: Modules a plugin must not import at import time (import them inside the factory).
HEAVY_MODULES = ("torch", "transformers", "openai", "anthropic", "sglang", "vllm", "inspect_ai",
                 "inspect_evals", "sentence_transformers", "tensorflow", "jax")

_KINDS = {"backend": "backends", "task": "tasks", "embedder": "embedders", "producer": "producers",
          "figure": "figures"}


def _kind(kind: str) -> str:
    k = _KINDS.get(kind, kind)
    if k not in _KINDS.values():
        raise ValueError(f"kind must be one of {sorted(_KINDS)} (or plural), not {kind!r}")
    return k


def entry_point(plugin: str) -> importlib.metadata.EntryPoint:
    """The ``hotmess`` entry point named ``plugin``.

    Raises
    ------
    AssertionError
        No installed distribution declares it.
    """
    eps = [ep for ep in importlib.metadata.entry_points(group="hotmess") if ep.name == plugin]
    if not eps:
        names = sorted(ep.name for ep in importlib.metadata.entry_points(group="hotmess"))
        fail(f"plugin {plugin!r}", "no entry point of that name in the group 'hotmess' "
             f"(declare it under [project.entry-points.hotmess] and reinstall); installed: {names}")
    return eps[0]


def check_light_import(module: str, *, heavy: Sequence[str] = HEAVY_MODULES, timeout_s: float = 120) -> None:
    """Import ``module`` in a fresh interpreter and check that none of ``heavy`` (or their
    submodules) was imported.

    Raises
    ------
    AssertionError
        The module fails to import, or imports a heavy module (named in the message).
    """
    code = (
        "import importlib, json, sys\n"
        f"importlib.import_module({module!r})\n"
        f"heavy = {list(heavy)!r}\n"
        "print(json.dumps(sorted(h for h in heavy if h in sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0:
        fail(f"plugin module {module!r}", f"does not import in a fresh interpreter:\n{proc.stderr[-2000:]}")
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    if loaded:
        fail(f"plugin module {module!r}", f"imports {', '.join(loaded)} at import time; import heavy "
             "dependencies inside the factory (or a submodule the factory imports), so that "
             "`hotmess --help` stays fast and a missing extra only matters when the plugin is used")


def check_plugin_registration(
    name: str, kind: str, *, distribution: str | None = None, factory_args: Sequence[Any] = (),
    factory_kwargs: dict[str, Any] | None = None, build: bool = True, light: bool = True,
) -> Any:
    """Check that ``name`` is registered as a ``kind`` through the ``hotmess`` entry-point
    group of an installed distribution, and (``build``) that its factory builds the object.

    Checks: the plugin manager lists ``name`` under ``kind``; the plugin that registered it
    is an entry point of the group ``hotmess`` from an installed distribution (``distribution``,
    if given, must be its name; a version is recorded); the description is a non-empty str;
    the entry point's module imports no heavy module (:func:`check_light_import`, if
    ``light``); the factory called with ``factory_args``/``factory_kwargs`` returns an object
    with the kind's methods (``sample``/``info``/``close`` for a backend,
    ``questions``/``build_request``/``score`` for a task, ``embed`` for an embedder,
    ``produce``/``manifest``/``info`` for a producer); for a figure, the registered builder
    is returned uncalled.

    Parameters
    ----------
    name : str
        The registered name (``"hf"``, ``"mmlu"``, ...).
    kind : {"backend", "task", "embedder", "producer", "figure"} (or the plural)
    distribution : str, optional
        The expected distribution name (e.g. ``"hotmess-example-plugin"``).
    factory_args, factory_kwargs
        Passed to the factory: a backend's factory takes the ModelSpec first.

    Returns
    -------
    object or None
        The built object (None if not ``build``).

    Raises
    ------
    AssertionError
        A registration problem (the message says what to fix).
    """
    from hotmess.core import plugins

    k = _kind(kind)
    what = f"{k[:-1]} {name!r}"
    regs = plugins.registrations(k)
    if name not in regs:
        failed = plugins.failed_plugins()
        hint = f"; plugins that failed to load: {failed}" if failed else ""
        fail(what, f"is not registered; registered {k}: {sorted(regs)}{hint}")
    reg = regs[name]
    ep = entry_point(reg.plugin)
    dist = ep.dist.metadata["Name"] if getattr(ep, "dist", None) is not None else ""
    if not reg.distribution or not reg.version:
        fail(what, f"registered by plugin {reg.plugin!r} without an installed distribution/version "
                   "(register it through an entry point of an installed package)")
    if distribution is not None and importlib.metadata.distribution(distribution).metadata["Name"] != dist:
        fail(what, f"comes from distribution {dist!r}, expected {distribution!r}")
    if not isinstance(reg.description, str) or not reg.description.strip():
        fail(what, "has no description (register(name, factory, description=...))")
    if light:
        check_light_import(ep.value.split(":")[0])
    if not build:
        return None
    if k == "figures":  # a figure registers its builder, not a factory
        if not callable(reg.factory):
            fail(what, "registered a builder that is not callable")
        return reg.factory
    obj = reg.factory(*factory_args, **(factory_kwargs or {}))
    methods = {"backends": ("sample", "info", "close"), "tasks": ("questions", "build_request", "score", "info"),
               "embedders": ("embed",), "producers": ("produce", "manifest", "info"), "figures": ()}[k]
    missing = [m for m in methods if not callable(getattr(obj, m, None))]
    if missing:
        fail(what, f"its factory returned a {type(obj).__name__} without {missing}")
    return obj


def registered(kind: str, *, distribution: str | None = None) -> list[str]:
    """Names registered as ``kind`` (optionally only those of one distribution), sorted:
    for ``pytest.mark.parametrize``."""
    from hotmess.core import plugins

    regs = plugins.registrations(_kind(kind))
    return sorted(n for n, r in regs.items() if distribution is None or r.distribution == distribution)
