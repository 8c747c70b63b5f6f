"""hotmess core: the engine (experiment parsing, manifest, sampling loop, assembly), the plugin
contracts and manager, options, the cube store and schema, metrics, seeding (no CLI, plugins
or figures: those import core, never the reverse)."""

from hotmess.core.hookspecs import hookimpl

__all__ = ["hookimpl", "__version__"]


def __getattr__(name):
    if name == "__version__":
        from importlib.metadata import version

        return version("hotmess")
    raise AttributeError(name)
