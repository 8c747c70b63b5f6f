"""The one place where the importers meet the producer contract (``docs/design.md``,
"Plugins"; ``hotmess.core.producer``): :class:`ImportProducer` wraps an importer function ``files -> cube``.

Options (the ``producer`` config entry): ``paths`` (list of files/folders), ``out`` (the cube
to write; merged with a cube already there unless ``replace``) and the importer's own
keyword arguments (``model``, ``size``, ``budget``, ``params``, ``length_norm``,
``answer_from``, ``scorer``, ``options``).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

try:  # the base class lands with the producer contract; until then a plain object
    from hotmess.core.producer import Producer as _Base  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - depends on the core branch
    _Base = object


class ImportProducer(_Base):  # type: ignore[misc,valid-type]
    """A producer whose cube is an import of existing files.

    Parameters
    ----------
    importer : str
        A key of :data:`hotmess.plugins.importers.IMPORTERS`.
    paths : list of str
    out : str, optional
    replace : bool
    **options
        Passed to the importer function.

    Raises
    ------
    ValueError
        Unknown importer.
    """

    def __init__(self, importer: str, paths: list[str] | None = None, out: str | None = None,
                 replace: bool = False, **options: Any) -> None:
        from hotmess.plugins.importers import IMPORTERS

        if importer not in IMPORTERS:
            raise ValueError(f"unknown importer {importer!r}; known: {sorted(IMPORTERS)}")
        self.name = importer
        self.paths = [str(p) for p in (paths or [])]
        self.out = out
        self.replace = replace
        self.options = options

    def _function(self):
        from hotmess.plugins.importers import IMPORTERS

        module, func, _ = IMPORTERS[self.name]
        return getattr(importlib.import_module(f"hotmess.plugins.importers.{module}"), func)

    def produce(self):
        """The imported cube (``xarray.Dataset``), not written."""
        return self._function()(self.paths, **self.options)

    def run(self, out_dir: str | Path | None = None):
        """Import and write ``out`` (default ``<out_dir>/cube.nc``); returns the cube written."""
        from hotmess.core.cube import CUBE_FILE
        from hotmess.plugins.importers.common import write_cube

        path = Path(self.out) if self.out else Path(out_dir or ".") / CUBE_FILE
        return write_cube(self.produce(), path, merge_existing=not self.replace)
