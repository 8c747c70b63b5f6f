"""Conformance checks of a producer (:class:`hotmess.core.producer.Producer`)."""

from __future__ import annotations

from typing import Any

from hotmess.testing._common import check_provenance, fail


def check_producer(producer: Any, experiment: Any = None) -> Any:
    """Run a producer through its contract.

    Checks: it subclasses :class:`hotmess.core.producer.Producer` and overrides ``produce``;
    ``outcome_kind`` is a kind of :data:`hotmess.core.schema.KINDS`; ``info()`` is a
    JSON-serialisable dict without credentials or home paths. With an ``experiment``
    (a :class:`hotmess.core.experiment.Experiment`, e.g. from
    :func:`hotmess.core.experiment.parse_experiment`): ``manifest(experiment)`` is ``None`` or
    a JSON-serialisable dict; the producer makes its cube through the engine
    (:func:`hotmess.core.engine.run_producer`, into ``experiment.root``); the cube follows the
    schema (:func:`hotmess.core.schema.validate` finds nothing) and carries
    ``schema_version``; a second run with the same settings gives the same data variables
    (resumption).

    Returns
    -------
    xarray.Dataset or None
        The cube, when an ``experiment`` was given.

    Raises
    ------
    AssertionError
        A contract violation (the message names the rule).
    """
    import json

    import numpy as np

    from hotmess.core import schema
    from hotmess.core.producer import Producer

    what = f"producer {getattr(producer, 'name', type(producer).__name__)!r}"
    if not isinstance(producer, Producer):
        fail(what, f"{type(producer).__name__} does not subclass hotmess.core.producer.Producer")
    if getattr(type(producer), "produce", None) is Producer.produce:
        fail(what, "does not implement produce(exp, store)")
    if producer.outcome_kind not in schema.KINDS:
        fail(what, f"outcome_kind {producer.outcome_kind!r} is not one of {list(schema.KINDS)}")
    check_provenance(what, producer.info(), strings_only=False)
    if experiment is None:
        return None
    settings = producer.manifest(experiment)
    if settings is not None:
        try:
            json.dumps(settings)
        except (TypeError, ValueError) as exc:
            fail(what, f"manifest() must be JSON-serialisable (it is stored in manifest.json): {exc}")
    from hotmess.core.cube import open_cube
    from hotmess.core.engine import run_producer

    ds = open_cube(run_producer(experiment, producer))
    problems = schema.validate(ds, producer.outcome_kind)
    if problems:
        fail(what, "its cube does not follow the schema: " + "; ".join(problems))
    again = open_cube(run_producer(experiment, producer))
    for name in ds.data_vars:
        a, b = ds[name].values, again[name].values
        same = np.array_equal(a, b, equal_nan=a.dtype.kind == "f") if a.dtype == b.dtype else False
        if not same:
            fail(what, f"a second run with the same settings changed data variable {name!r}")
    return ds
