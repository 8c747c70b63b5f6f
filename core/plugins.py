"""The plugin manager: one ``pluggy.PluginManager("hotmess")`` loading the ``hotmess``
entry-point group (built-in plugins included: they are registered by this package's own
entry points, exactly as a third party's would be).
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from hotmess.core import hookspecs

log = logging.getLogger(__name__)

KINDS = ("backends", "tasks", "embedders", "producers", "figures")


class PluginError(LookupError):
    """A plugin or one of its registered names cannot be found or loaded."""


@dataclass(frozen=True)
class Registration:
    """One registered factory.

    Attributes
    ----------
    kind : {"backends", "tasks", "embedders", "producers", "figures"}
    name : str
    factory : callable
    plugin : str
        The entry-point name (or module name) that registered it.
    distribution : str, version : str
        The installed distribution that provides the plugin, and its version.
    description : str
    extra : str
        The pip extra to install for its dependencies (``pip install 'hotmess[extra]'``).
    meta : dict
        Further keyword arguments given to ``register``: ``declares`` (the class or options
        dataclass that declares the plugin's options, or ``"module:attribute"``;
        :mod:`hotmess.core.options`); figures: ``cubes``, ``need``, ``title``, ``options``,
        ``variables``, ``caption``.
    """

    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: str
    distribution: str = ""
    version: str = ""
    description: str = ""
    extra: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


_pm: pluggy.PluginManager | None = None
_failed: dict[str, str] = {}
_dists: dict[str, tuple[str, str]] = {}


#: Comma-separated module names registered as plugins beside the entry points (a plugin
#: under development; importable through ``PYTHONPATH``). Child processes (SLURM jobs,
#: ``hotmess run`` subprocesses) inherit it.
PLUGINS_ENV = "HOTMESS_PLUGINS"


def get_plugin_manager() -> pluggy.PluginManager:
    """Return the process-wide plugin manager, loading entry points on first call, then the
    modules named in ``$HOTMESS_PLUGINS``."""
    global _pm
    if _pm is None:
        pm = pluggy.PluginManager("hotmess")
        pm.add_hookspecs(hookspecs)
        for ep in importlib.metadata.entry_points(group="hotmess"):
            try:
                module = ep.load()
            except Exception as exc:  # a broken third-party plugin must not break the others
                _failed[ep.name] = f"{type(exc).__name__}: {exc}"
                log.warning("hotmess plugin %r failed to load: %s", ep.name, exc)
                continue
            if pm.get_plugin(ep.name) is None and not pm.is_registered(module):
                pm.register(module, name=ep.name)
                dist = getattr(ep, "dist", None)
                if dist is not None:
                    _dists[ep.name] = (dist.metadata["Name"], dist.version)
        for modname in filter(None, (m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(","))):
            try:  # a plugin under development, not installed: HOTMESS_PLUGINS=my_plugin
                module = importlib.import_module(modname)
            except Exception as exc:
                _failed[modname] = f"{type(exc).__name__}: {exc} (from ${PLUGINS_ENV})"
                log.warning("hotmess plugin %r (from $%s) failed to load: %s", modname, PLUGINS_ENV, exc)
                continue
            if pm.get_plugin(modname) is None and not pm.is_registered(module):
                pm.register(module, name=modname)
        _pm = pm
    return _pm


def register_plugin(plugin: Any, name: str | None = None) -> None:
    """Register a plugin object or module directly (tests, notebooks)."""
    pm = get_plugin_manager()
    pm.register(plugin, name=name)


def unregister_plugin(name: str) -> None:
    get_plugin_manager().unregister(name=name)


def registrations(kind: str) -> dict[str, Registration]:
    """All registered factories of one kind, by name.

    Raises
    ------
    PluginError
        Two plugins register the same name.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    pm = get_plugin_manager()
    out: dict[str, Registration] = {}
    hook = getattr(pm.hook, f"register_{kind}")
    for impl in hook.get_hookimpls():
        plugin_name = pm.get_name(impl.plugin) or getattr(impl.plugin, "__name__", "?")
        dist, version = _dists.get(plugin_name, ("", ""))

        def register(name, factory, *, description="", extra="", _p=plugin_name, _d=dist, _v=version,
                     **meta):
            if name in out and out[name].plugin != _p:
                raise PluginError(
                    f"{kind[:-1]} {name!r} is registered twice: by plugin {out[name].plugin!r} and by {_p!r}"
                )
            out[name] = Registration(kind, name, factory, _p, _d, _v, description, extra, dict(meta))

        impl.function(register=register)
    return out


def get(kind: str, name: str) -> Registration:
    """Look one registered factory up by name.

    Raises
    ------
    PluginError
        Nothing of that kind is registered under ``name``; the message lists what is.
    """
    regs = registrations(kind)
    if name not in regs:
        hint = ""
        if name in _failed:
            hint = f" (plugin {name!r} is installed but failed to load: {_failed[name]})"
        raise PluginError(
            f"no {kind[:-1]} named {name!r}{hint}; installed: {', '.join(sorted(regs)) or 'none'}"
        )
    return regs[name]


def create(kind: str, name: str, *args, **options) -> Any:
    """Build a registered backend/task/embedder/producer, turning a missing optional
    dependency into an error that names the pip extra to install.

    Where the registration declares its options (``register(..., declares="module:Class")``,
    :mod:`hotmess.core.options`), they are checked first: an unknown option is refused with
    the list of valid ones, a value of the wrong type with the expected type.

    Raises
    ------
    PluginError
        Unknown name, or the plugin's optional dependency is missing.
    hotmess.core.options.OptionsError
        An unknown option or a value of the wrong type.
    """
    reg = get(kind, name)
    try:
        target = reg.meta.get("declares")
        if target is not None:
            from hotmess.core.options import resolve

            options = resolve(target, [(f"{kind[:-1]} options", options)], where=f"{kind[:-1]} {name!r}",
                              skip=len(args))
        return reg.factory(*args, **options)
    except ModuleNotFoundError as exc:
        extra = f"pip install 'hotmess[{reg.extra}]'" if reg.extra else "install its dependencies"
        raise PluginError(
            f"{kind[:-1]} {name!r} needs the Python package {exc.name!r}, which is not installed: {extra}"
        ) from exc


def failed_plugins() -> dict[str, str]:
    """Entry points that failed to import, with the error."""
    get_plugin_manager()
    return dict(_failed)
