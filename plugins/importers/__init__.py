"""Importers: cubes from samples other tools wrote (lm-evaluation-harness, Inspect, a long
table), registered as *producers* (``register_producers``), and ``hotmess report``.

The science-free core is pure functions ``files -> xarray.Dataset``
(:func:`~hotmess.plugins.importers.lm_eval.import_lm_eval`,
:func:`~hotmess.plugins.importers.inspect_log.import_inspect`,
:func:`~hotmess.plugins.importers.table.import_table`); the producer glue is
:mod:`hotmess.plugins.importers.producer`. Nothing heavy is imported here.
"""

from __future__ import annotations

from hotmess.core.hookspecs import hookimpl

#: producer name -> (module, function, description)
IMPORTERS = {
    "import_lm_eval": ("lm_eval", "import_lm_eval", "lm-evaluation-harness --log_samples output"),
    "import_inspect": ("inspect_log", "import_inspect", "Inspect eval logs (.eval, .json)"),
    "import_table": ("table", "import_table", "a long table of draws (CSV, JSONL, Parquet)"),
}
EXTRAS = {"import_lm_eval": "", "import_inspect": "swebench", "import_table": ""}


def _factory(name: str):
    def make(**options):
        from hotmess.plugins.importers.producer import ImportProducer

        return ImportProducer(name, **options)

    return make


@hookimpl
def register_producers(register):
    for name, (_, _, description) in IMPORTERS.items():
        register(name, _factory(name), description=f"import {description}", extra=EXTRAS[name])
