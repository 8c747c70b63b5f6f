"""``hotmess.cli``: the command line, an application layer above :mod:`hotmess.core` and
:mod:`hotmess.paper` (``python -m hotmess.cli`` = the ``hotmess`` command)."""

from hotmess.cli.main import main

__all__ = ["main"]
